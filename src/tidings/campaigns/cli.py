"""`tidings campaigns list`: an org's campaigns, read as the API reads them."""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.campaigns import service
from tidings.campaigns.schemas import CampaignOut
from tidings.cli_support import (
    JsonOption,
    LimitOption,
    OrgOption,
    org_id,
    out,
    print_json,
    run,
    settings_of,
    when,
)

app = typer.Typer(help="Campaigns of an org.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context, org: OrgOption, limit: LimitOption = 50, as_json: JsonOption = False
) -> None:
    """List an org's campaigns, newest first: channel, purpose, template, sender, connection."""

    async def work(session: AsyncSession) -> list[CampaignOut]:
        found = await service.list_campaigns(
            session, org_id=await org_id(session, org), after_id=None, limit=limit,
            newest_first=True,
        )  # fmt: skip
        return [CampaignOut.model_validate(c) for c in found]

    found = run(settings_of(ctx), work)
    if as_json:
        print_json([c.model_dump(mode="json") for c in found])
        return
    table = Table("id", "name", "channel", "purpose", "template", "from", "connection", "updated")
    for c in found:
        sender = c.from_email if c.channel == "email" else c.sms_sender
        connection = "default" if c.connection_id is None else str(c.connection_id)
        table.add_row(str(c.id), c.name, c.channel, c.purpose, str(c.template_id), sender or "",
                      connection, when(c.updated_at))  # fmt: skip
    out.print(table)

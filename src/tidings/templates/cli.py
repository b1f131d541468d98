"""`tidings templates list`: an org's templates, read as the API reads them."""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

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
from tidings.templates import service
from tidings.templates.schemas import TemplateOut

app = typer.Typer(help="Templates of an org.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context, org: OrgOption, limit: LimitOption = 50, as_json: JsonOption = False
) -> None:
    """List an org's templates, newest first: channel, current version, subject."""

    async def work(session: AsyncSession) -> list[TemplateOut]:
        found = await service.list_templates(
            session, org_id=await org_id(session, org), after_id=None, limit=limit,
            newest_first=True,
        )  # fmt: skip
        return [TemplateOut.model_validate(t) for t in found]

    found = run(settings_of(ctx), work)
    if as_json:
        print_json([t.model_dump(mode="json") for t in found])
        return
    table = Table("id", "name", "channel", "version", "subject / text", "updated")
    for t in found:
        shown = t.subject if t.channel == "email" else t.text
        table.add_row(str(t.id), t.name, t.channel, str(t.version), " ".join((shown or "").split()),
                      when(t.updated_at))  # fmt: skip
    out.print(table)

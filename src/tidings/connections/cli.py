"""`tidings connections list`: an org's provider connections, never their credentials."""

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
from tidings.connections import service
from tidings.connections.schemas import ConnectionOut, connection_out

app = typer.Typer(help="Provider connections of an org.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context, org: OrgOption, limit: LimitOption = 50, as_json: JsonOption = False
) -> None:
    """List an org's connections, newest first: channel, kind, default, limits. Which
    credentials are set is shown, never their values (as GET …/connections)."""

    async def work(session: AsyncSession) -> list[ConnectionOut]:
        found = await service.list_connections(session, org_id=await org_id(session, org))
        return [connection_out(c) for c in reversed(found[-limit:])]

    found = run(settings_of(ctx), work)
    if as_json:
        print_json([c.model_dump(mode="json") for c in found])
        return
    table = Table("id", "name", "channel", "kind", "default", "per second", "concurrency",
                  "credentials set", "updated")  # fmt: skip
    for c in found:
        rate = "" if c.max_per_second is None else f"{c.max_per_second:g}"
        table.add_row(str(c.id), c.name, c.channel, c.kind, "yes" if c.is_default else "",
                      rate, str(c.max_concurrency), ", ".join(c.credentials_set),
                      when(c.updated_at))  # fmt: skip
    out.print(table)
    if not found:
        out.print("No connection: every message goes to the built-in sink.")

"""What every `tidings` command shares: the consoles, the common options, one transaction
per command on the database it names, and the refusal to make up an empty one.

The commands live beside their concept (`broadcasts/cli.py`, `messages/cli.py`, …) and
`tidings.cli` registers them. Each opens the database through `run` (one transaction) or
`run_db` (work that opens its own), which first says on stderr which database it uses and
stops when an SQLite file is missing: run from another directory, `./var/tidings.db`
would otherwise be created empty and every command would find nothing. Only the commands
meant to create a database (`serve`, `db upgrade`) pass `may_create`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db import migrate
from tidings.db.engine import Database
from tidings.errors import InvalidInput, TidingsError
from tidings.orgs.models import Org
from tidings.settings import Settings, sqlite_path

T = TypeVar("T")
Prepare = Callable[[Database], Awaitable[None]]

err = Console(stderr=True)
out = Console()

OrgOption = Annotated[str, typer.Option("--org", "-o", help="The org's id or login.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]
LimitOption = Annotated[
    int, typer.Option("--limit", "-n", min=1, max=1000, help="At most this many, newest first.")
]


def settings_of(ctx: typer.Context) -> Settings:
    """The settings `tidings.cli` read from TIDINGS_* before any command ran."""
    settings: Settings = ctx.obj
    return settings


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str) + "\n")


def when(moment: datetime | None) -> str:
    """A time as a table shows it: to the second, or empty."""
    return moment.isoformat(timespec="seconds") if moment is not None else ""


def database_label(database_url: str) -> str:
    """The database as the stderr line names it: `sqlite ./var/tidings.db`, or the
    PostgreSQL URL without its driver and password."""
    if database_url.startswith("sqlite"):
        if sqlite_path(database_url) is None:
            return "sqlite in memory"
        return "sqlite " + database_url.partition(":///")[2].split("?", 1)[0]  # as written
    url = make_url(database_url)
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


def open_database(settings: Settings, *, may_create: bool = False) -> None:
    """Say which database the command uses (stderr); unless `may_create`, stop with exit
    code 1 when it is an SQLite file that does not exist, naming the file looked for and
    how to point at the right one."""
    err.print(f"database: {database_label(settings.database_url)}", highlight=False)
    path = sqlite_path(settings.database_url)
    if may_create or path is None or path.exists():
        return
    err.print(
        f"[red]error:[/red] no database at {path.absolute()}: this command never creates "
        "one.\n  Run it from the directory where Tidings runs, or point TIDINGS_DATABASE_URL "
        "at the right file,\n  e.g. TIDINGS_DATABASE_URL=sqlite+aiosqlite:////srv/tidings/var/"
        "tidings.db (four slashes: an absolute path).\n  `tidings db upgrade` creates a new, "
        "empty database.",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(1)


def run(
    settings: Settings,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    write: bool = False,
    may_create: bool = False,
    prepare: Prepare | None = None,
) -> T:
    """Run `work` in one transaction (a write one: committed when it returns), the schema
    brought up to date first (see `run_db`); errors exit non-zero."""

    async def in_session(db: Database) -> T:
        async with db.transaction(write=write) as session:
            return await work(session)

    return run_db(settings, in_session, may_create=may_create, prepare=prepare)


def run_db(
    settings: Settings,
    work: Callable[[Database], Awaitable[T]],
    *,
    may_create: bool = False,
    prepare: Prepare | None = None,
) -> T:
    """`run` for work that opens its own sessions (one transaction per item). The
    database is checked first (`open_database`), migrated when TIDINGS_AUTO_MIGRATE,
    then `prepare`d (the composition root's step after a migration)."""
    open_database(settings, may_create=may_create)

    async def main() -> T:
        db = Database(settings)
        try:
            if settings.auto_migrate:
                await migrate.upgrade_async(settings.database_url)
                if prepare is not None:
                    await prepare(db)
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except InvalidInput as exc:
        for error in exc.errors:
            err.print(f"[red]error:[/red] {error.field}: {error.reason}")
        raise typer.Exit(2) from None
    except TidingsError as exc:
        err.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from None


async def org_id(session: AsyncSession, ref: str) -> int:
    """The id of the org named by id or login (read in the command's transaction)."""
    condition = Org.id == int(ref) if ref.isdigit() else Org.login == ref
    found = await session.scalar(select(Org.id).where(condition))
    if found is None:
        raise InvalidInput.field("--org", f"no org with id or login {ref!r}")
    return found

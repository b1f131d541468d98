"""The operator's command line: `tidings serve`, `db`, `orgs`, `keys`, `contacts import`,
`contacts export`, `contacts erase`, `credits`, `bounces poll`, `secrets`; and registers the
commands packages keep in their own cli.py (`broadcasts`, `messages`, `sink`, `templates`,
`campaigns`, `connections`), which share `cli_support.py`.

Commands work on the database named by `TIDINGS_DATABASE_URL` directly (no API key is
needed: whoever can run them can read the database anyway). `--json` prints exactly one
JSON document on stdout for scripts; messages and progress go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import os
import socket
import ssl
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff, view
from tidings.bounces import imap
from tidings.broadcasts import cli as broadcasts_cli
from tidings.campaigns import cli as campaigns_cli
from tidings.cli_support import JsonOption, OrgOption, err, open_database, out, run, run_db
from tidings.cli_support import org_id as _org_id
from tidings.cli_support import print_json as _print_json
from tidings.cli_support import settings_of as _settings
from tidings.connections import cli as connections_cli
from tidings.connections.models import Connection
from tidings.contacts.importer import import_csv
from tidings.credits import service as credits
from tidings.credits.schemas import CreditEntryOut, to_credits, to_micro
from tidings.db import migrate
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.db.reseal import count, reseal
from tidings.db.sealed import sealed_columns
from tidings.errors import InvalidInput
from tidings.keys import service as keys
from tidings.keys.schemas import KeyKind, Scope, audited
from tidings.links.secret import erasure_key
from tidings.members import cli as users_cli
from tidings.members import service as members
from tidings.members.roles import Role
from tidings.messages import cli as messages_cli
from tidings.net.ssrf import UnsafeURL
from tidings.orgs import service as orgs
from tidings.orgs.schemas import OrgOut
from tidings.privacy import service as privacy
from tidings.privacy.schemas import ContactExportOut
from tidings.runtime import adopt_uvicorn_logs, configure_logging, tune_gc
from tidings.schema import Base
from tidings.settings import Settings
from tidings.templates import cli as templates_cli
from tidings.vault.keyring import SecretError, keyring_for, new_key

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

T = TypeVar("T")
app = typer.Typer(
    help="Tidings: campaigns, invitations and broadcasts by email and SMS.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold keys and personal data
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
orgs_app = typer.Typer(help="Orgs (tenants).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of an org.", no_args_is_help=True)
contacts_app = typer.Typer(help="Contacts of an org.", no_args_is_help=True)
credits_app = typer.Typer(help="An org's credit balance and ledger.", no_args_is_help=True)
bounces_app = typer.Typer(
    help="Bounce mailboxes of SMTP connections (docs/bounces.md).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(orgs_app, name="orgs")
app.add_typer(keys_app, name="keys")
app.add_typer(contacts_app, name="contacts")
app.add_typer(credits_app, name="credits")
secrets_app = typer.Typer(
    help="The keys that seal secrets at rest (docs/security.md).", no_args_is_help=True
)
app.add_typer(bounces_app, name="bounces")
app.add_typer(secrets_app, name="secrets")
app.add_typer(broadcasts_cli.app, name="broadcasts")
app.add_typer(messages_cli.messages_app, name="messages")
app.add_typer(messages_cli.sink_app, name="sink")
app.add_typer(templates_cli.app, name="templates")
app.add_typer(campaigns_cli.app, name="campaigns")
app.add_typer(connections_cli.app, name="connections")
app.add_typer(users_cli.app, name="users")


def _run(
    settings: Settings,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    write: bool = False,
    may_create: bool = False,
) -> T:
    """`cli_support.run`, with the secrets stored before sealing sealed after migrating."""
    return run(settings, work, write=write, may_create=may_create, prepare=_seal_plaintext)


def _run_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """`cli_support.run_db`, with the secrets stored before sealing sealed after migrating."""
    return run_db(settings, work, prepare=_seal_plaintext)


async def _seal_plaintext(db: Database) -> None:
    """Seal the secrets written before they were sealed (revision 0015 keeps them as they
    were): reads the keyring only when there is one, so nothing after the first start."""
    await reseal(db, sealed_columns(Base.metadata), plaintext_only=True)


def _migrate(settings: Settings, *, may_create: bool = True) -> None:
    """`tidings serve` and `worker`: the schema up to date, every secret sealed."""
    open_database(settings, may_create=may_create)
    migrate.upgrade(settings.database_url)

    async def seal() -> None:
        db = Database(settings)
        try:
            await _seal_plaintext(db)
        finally:
            await db.dispose()

    asyncio.run(seal())


async def _new_org(session: AsyncSession, created: keys.NewOrg) -> None:
    """Record an org made at the CLI, and its first key, in the command's transaction."""
    org_id, key = created.org.id, created.key.key
    await audit.record(
        session,
        org_id=org_id,
        by=audit.CLI,
        action=Action.ORG_CREATE,
        target_id=org_id,
        changes=diff(None, view(OrgOut.model_validate(created.org))),
    )
    await audit.record(
        session,
        org_id=org_id,
        by=audit.CLI,
        action=Action.KEY_CREATE,
        target_id=key.id,
        changes=diff(None, audited(key)),
    )


def _version(asked: bool) -> None:
    if asked:
        out.print(f"tidings {version('tidings')}", highlight=False)
        raise typer.Exit


@app.callback()
def main_callback(
    ctx: typer.Context,
    _: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Settings come from TIDINGS_* environment variables (see docs/settings.md)."""
    try:
        ctx.obj = Settings()
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            name = "TIDINGS_" + "_".join(str(part) for part in error["loc"]).upper()
            err.print(f"[red]error:[/red] {name}: {error['msg']}")
        raise typer.Exit(2) from None


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address [TIDINGS_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [TIDINGS_PORT].")] = None,
    bootstrap: Annotated[
        bool, typer.Option(help="On an empty database, create a first org and print its key once.")
    ] = False,
    dispatcher: Annotated[
        bool | None,
        typer.Option(help="Send from this process too [TIDINGS_DISPATCHER, default on]."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(min=1, help="API processes on one port (PostgreSQL only; each sends too)."),
    ] = 1,
) -> None:
    """Serve the API and /docs, migrating the database first (unless TIDINGS_AUTO_MIGRATE=false)."""
    import uvicorn

    from tidings.app import create_app

    settings = _settings(ctx)
    if dispatcher is not None:
        settings = settings.model_copy(update={"dispatcher": dispatcher})
    if workers > 1 and not settings.database_url.startswith("postgresql"):
        err.print("[red]error:[/red] --workers above 1 needs PostgreSQL (SQLite has one writer)")
        raise typer.Exit(2)
    host, port = host or settings.host, port or settings.port
    if bootstrap:
        _bootstrap(settings, base_url=f"http://{host}:{port}")
    elif settings.auto_migrate:
        _migrate(settings)
    if workers == 1:
        api = create_app(settings)
        configure_logging(settings.log_level, settings.log_format)
        tune_gc(settings.gc_threshold)
        server = uvicorn.Server(
            uvicorn.Config(api, host=host, port=port, log_level=settings.log_level)
        )
        adopt_uvicorn_logs(settings.log_format)  # uvicorn.Config set its loggers up
        _serve(api, server)
        if not server.started:  # as uvicorn.run has it: the app or the socket failed
            raise typer.Exit(3)
        return
    # The processes read the same TIDINGS_* variables, with --dispatcher/--no-dispatcher
    # passed on through the environment.
    os.environ["TIDINGS_DISPATCHER"] = "true" if settings.dispatcher else "false"
    from tidings.api.processes import supervise

    try:
        code = supervise(host=host, port=port, workers=workers)
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot listen on {host}:{port}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@app.command("serve-process", hidden=True)
def serve_process(
    ctx: typer.Context, fd: Annotated[int, typer.Option(help="Its listening socket.")]
) -> None:
    """One of `serve --workers N`'s processes: the API on the socket its parent made."""
    import uvicorn

    from tidings.app import create_app

    settings = _settings(ctx)
    api = create_app(settings)
    configure_logging(settings.log_level, settings.log_format)
    tune_gc(settings.gc_threshold)
    server = uvicorn.Server(uvicorn.Config(api, log_level=settings.log_level))
    adopt_uvicorn_logs(settings.log_format)  # uvicorn.Config set its loggers up
    _serve(api, server, sockets=[socket.socket(fileno=fd)])


def _serve(
    api: FastAPI, server: uvicorn.Server, sockets: list[socket.socket] | None = None
) -> None:
    """Run `server` on `api` until a signal stops it, or a worker loop of the app dies:
    then the server stops too, and the command exits with status 1 (see api/app.py)."""
    api.state.stop_serving = lambda: setattr(server, "should_exit", True)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=sockets)
    if getattr(api.state, "worker_died", False):
        raise typer.Exit(1)


def _bootstrap(settings: Settings, *, base_url: str) -> None:
    """First start: an org and its key when there is no org; an owner of the first org
    when nobody can sign in to the console yet (a new database, or one from before it)."""

    async def work(session: AsyncSession) -> tuple[keys.NewOrg | None, FirstOwner | None]:
        created = None
        if not await orgs.count_orgs(session):
            created = await keys.create_org(session, name="Default", login="default")
            await _new_org(session, created)
        return created, await _first_owner(session)

    created, owner = _run(settings, work, write=True, may_create=True)
    if created is not None:
        org, secret = created.org, created.key.secret
        err.print(
            "\n[bold]First start: created org 'default'[/bold] (shown once, stored only as a hash)"
        )
        key = f"[bold green]{secret}[/bold green]"
        err.print(f"  org id  {org.id}\n  login   {org.login}\n  API key {key}")
        err.print(
            f"  try:    curl -H 'Authorization: Bearer {secret}' {base_url}/v1/orgs/{org.id}\n",
            soft_wrap=True,
        )
    if owner is not None:
        err.print(
            f"[bold]The console: {base_url}/[/bold] — sign in as the owner of org "
            f"{owner.org_login!r} (shown once, stored only as a hash)",
            soft_wrap=True,
        )
        err.print(
            f"  email    {owner.email}\n  password [bold green]{owner.password}[/bold green]\n"
            f"  change it: tidings users reset-password --email {owner.email}\n",
            soft_wrap=True,
        )


FIRST_OWNER_EMAIL = "owner@tidings.local"


@dataclass(frozen=True, slots=True)
class FirstOwner:
    email: str
    password: str
    org_login: str


async def _first_owner(session: AsyncSession) -> FirstOwner | None:
    """An owner (and operator) of the first org, with a generated password, when the
    database has no member at all; None otherwise."""
    if await members.count_members(session):
        return None
    first = await orgs.first_org(session)
    if first is None:
        return None
    password = members.generate_password()
    member = await members.add_member(
        session, org_id=first.id, email=FIRST_OWNER_EMAIL, password=password, role=Role.OWNER,
        is_operator=True,
    )  # fmt: skip
    await members.record_creation(session, member, audit.CLI)
    return FirstOwner(email=member.email, password=password, org_login=first.login)


@app.command()
def worker(ctx: typer.Context) -> None:
    """Run a standalone dispatcher (PostgreSQL: any number, on any machines).

    SIGTERM or Ctrl-C stops it after the batch in hand: its outcomes are recorded, so
    nothing it claimed waits for a lease to expire.
    """
    from tidings.dispatcher.run import run_worker

    settings = _settings(ctx)
    # A worker run from the wrong directory stops, instead of idling on a new database.
    if settings.auto_migrate:
        _migrate(settings, may_create=False)
    else:
        open_database(settings)
    err.print("worker started; Ctrl-C to stop")
    configure_logging(settings.log_level, settings.log_format)
    tune_gc(settings.gc_threshold)
    code = run_worker(settings)
    if code:
        raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Migrate the database to the current schema (safe to run at any time)."""
    settings = _settings(ctx)
    _migrate(settings)
    err.print(f"database at revision {migrate.head()}")


@orgs_app.command("create")
def orgs_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The org's display name.")],
    login: Annotated[
        str | None, typer.Option(help="Login for api-login/Basic; default: from the name.")
    ] = None,
    phone_region: Annotated[
        str | None, typer.Option(help="ISO region for national phone numbers.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an org and its first API key (every scope), printed once."""

    async def work(session: AsyncSession) -> keys.NewOrg:
        created = await keys.create_org(session, name=name, login=login, phone_region=phone_region)
        await _new_org(session, created)
        return created

    created = _run(_settings(ctx), work, write=True)
    if as_json:
        _print_json(
            {
                "org_id": created.org.id,
                "name": created.org.name,
                "login": created.org.login,
                "key_id": created.key.key.id,
                "api_key": created.key.secret,
            }
        )
        return
    out.print(
        f"org [bold]{created.org.name}[/bold]: id {created.org.id}, login {created.org.login}"
    )
    out.print(f"API key (shown once): [bold green]{created.key.secret}[/bold green]")


@orgs_app.command("list")
def orgs_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List every org."""
    found = _run(_settings(ctx), orgs.list_orgs)
    if as_json:
        _print_json([{"org_id": o.id, "name": o.name, "login": o.login} for o in found])
        return
    table = Table("id", "login", "name", "created")
    for o in found:
        table.add_row(str(o.id), o.login, o.name, o.created_at.isoformat(timespec="seconds"))
    out.print(table)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    org: OrgOption,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "cli key",
    kind: Annotated[
        KeyKind, typer.Option(help="live sends; test never reaches a provider.")
    ] = KeyKind.LIVE,
    scope: Annotated[
        list[Scope] | None, typer.Option(help="Repeat for several; default: all.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Issue an API key; its secret is printed once."""

    async def work(session: AsyncSession) -> keys.IssuedKey:
        org_id = await _org_id(session, org)
        issued = await keys.create_key(
            session, org_id=org_id, name=name, kind=kind, scopes=scope or list(Scope)
        )
        await audit.record(
            session,
            org_id=org_id,
            by=audit.CLI,
            action=Action.KEY_CREATE,
            target_id=issued.key.id,
            changes=diff(None, audited(issued.key)),
        )
        return issued

    issued = _run(_settings(ctx), work, write=True)
    if as_json:
        _print_json(
            {
                "key_id": issued.key.id,
                "org_id": issued.key.org_id,
                "kind": issued.key.kind,
                "scopes": keys.parse_scopes(issued.key.scopes),
                "api_key": issued.secret,
            }
        )
        return
    out.print(f"key {issued.key.id} ({issued.key.kind}, {issued.key.scopes})")
    out.print(f"API key (shown once): [bold green]{issued.secret}[/bold green]")


@keys_app.command("list")
def keys_list(ctx: typer.Context, org: OrgOption, as_json: JsonOption = False) -> None:
    """List an org's keys (prefixes only; secrets are never stored)."""

    async def work(session: AsyncSession) -> list[Any]:
        org_id = await _org_id(session, org)
        return await keys.list_keys(session, org_id=org_id)

    found = _run(_settings(ctx), work)
    rows = [
        {
            "key_id": k.id,
            "name": k.name,
            "kind": k.kind,
            "scopes": keys.parse_scopes(k.scopes),
            "prefix": k.prefix,
            "created_at": k.created_at.isoformat(),
            "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
            "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
        }
        for k in found
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "name", "kind", "scopes", "prefix", "last used", "revoked")
    for r in rows:
        table.add_row(
            str(r["key_id"]),
            r["name"],
            r["kind"],
            " ".join(r["scopes"]),
            r["prefix"] + "…",
            r["last_used_at"] or "never",
            r["revoked_at"] or "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    org: OrgOption,
    key_id: Annotated[int, typer.Argument(help="The key's id (see `keys list`).")],
    as_json: JsonOption = False,
) -> None:
    """Revoke a key: it stops working at once."""

    async def work(session: AsyncSession) -> Any:
        org_id = await _org_id(session, org)
        revoked = await keys.revoke_key(session, org_id=org_id, key_id=key_id)
        await audit.record(
            session,
            org_id=org_id,
            by=audit.CLI,
            action=Action.KEY_REVOKE,
            target_id=key_id,
            changes=diff({}, {"revoked_at": audited(revoked)["revoked_at"]}),
        )
        return revoked

    key = _run(_settings(ctx), work, write=True)
    if as_json:
        _print_json({"key_id": key.id, "revoked_at": key.revoked_at.isoformat()})
        return
    out.print(f"key {key.id} revoked at {key.revoked_at.isoformat(timespec='seconds')}")


def _count_rows(path: Path) -> int:
    """Data rows, estimated as newlines minus the header (fast; for the progress bar)."""
    lines = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
    return max(lines - 1, 0)


@contacts_app.command("import")
def contacts_import(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A UTF-8 CSV file.")
    ],
    org: OrgOption,
    list_id: Annotated[
        list[int] | None, typer.Option("--list", help="A list every contact joins (repeatable).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import contacts from CSV, streaming (any size), with a progress bar.

    Columns: email, phone, first_name, last_name, locale, timezone, email_status,
    sms_status; any other column becomes an attribute.
    """
    settings = _settings(ctx)
    total = _count_rows(file)
    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
    )
    task = progress.add_task("import", total=total)

    async def work(db: Database) -> Any:
        async with db.transaction(write=False) as session:
            org_id = await _org_id(session, org)
        async with db.session() as session:  # the importer opens a transaction per batch
            with file.open("rb") as handle, progress:
                report = await import_csv(
                    session,
                    org_id=org_id,
                    source=handle,
                    list_ids=list_id or [],
                    batch_size=settings.import_batch_size,
                    on_batch=lambda n: progress.advance(task, n),
                )
        async with db.transaction() as session:
            counts = {"created": report.created, "updated": report.updated}
            await audit.record(
                session,
                org_id=org_id,
                by=audit.CLI,
                action=Action.CONTACT_IMPORT,
                target_id=None,
                changes=counts | {"failed": report.failed},
            )
        return report

    report = _run_db(settings, work)
    summary = {
        "rows": report.rows,
        "created": report.created,
        "updated": report.updated,
        "failed": report.failed,
        "errors": [e.as_dict() for e in report.errors],
        "errors_truncated": report.errors_truncated,
    }
    if as_json:
        _print_json(summary)
        return
    out.print(
        f"{report.rows} rows: {report.created} created, {report.updated} updated, "
        f"{report.failed} failed"
    )
    for e in report.errors[:20]:
        out.print(f"  row {e.index}: {e.field}: {e.reason}")
    if len(report.errors) > 20 or report.errors_truncated:
        out.print("  … (use --json for the first 1,000 errors)")


@contacts_app.command("export")
def contacts_export(
    ctx: typer.Context,
    org: OrgOption,
    contact_id: Annotated[int, typer.Argument(help="The contact's id.")],
    as_json: JsonOption = False,
) -> None:
    """Everything held about one contact (the document `GET …/contacts/{id}/export` gives)."""

    async def work(session: AsyncSession) -> ContactExportOut:
        org_id = await _org_id(session, org)
        export = await privacy.export_contact(session, org_id=org_id, contact_id=contact_id)
        return ContactExportOut.of(export, at=utcnow())

    document = _run(_settings(ctx), work)
    if as_json:
        sys.stdout.write(document.model_dump_json() + "\n")
        return
    c = document.contact
    out.print(f"contact {c.id}: {c.email or ''} {c.phone or ''} {c.first_name or ''}")
    out.print(
        f"{len(document.lists)} lists, {len(document.suppressions)} suppressions, "
        f"{len(document.messages)} messages, {len(document.events)} events "
        "(--json for the whole record)"
    )


@contacts_app.command("erase")
def contacts_erase(
    ctx: typer.Context,
    org: OrgOption,
    contact_id: Annotated[int, typer.Argument(help="The contact's id.")],
    as_json: JsonOption = False,
) -> None:
    """Erase a contact's personal data everywhere it lives (docs/privacy.md)."""
    settings = _settings(ctx)

    async def work(session: AsyncSession) -> Any:
        org_id = await _org_id(session, org)
        return await privacy.erase_contact(
            session, org_id=org_id, contact_id=contact_id, erasure_key=erasure_key(settings)
        )

    contact = _run(settings, work, write=True)
    if as_json:
        _print_json({"contact_id": contact.id, "erased_at": contact.erased_at.isoformat()})
        return
    out.print(f"contact {contact.id} erased at {contact.erased_at.isoformat(timespec='seconds')}")


def _credits_amount(raw: str) -> int:
    """Credits as typed ("100", "2.5") → micro-credits; at most 6 decimals, above 0."""
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise InvalidInput.field("AMOUNT", "a number of credits, e.g. 100 or 2.5") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.000001")):
        raise InvalidInput.field("AMOUNT", "above 0, with at most 6 decimals")
    return to_micro(amount)


@credits_app.command("top-up")
def credits_top_up(
    ctx: typer.Context,
    org: OrgOption,
    amount: Annotated[str, typer.Argument(help="Credits to add, e.g. 100 or 2.5.")],
    note: Annotated[str | None, typer.Option(help="Kept on the ledger entry.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Add credit to an org (an append-only ledger entry)."""

    async def work(session: AsyncSession) -> CreditEntryOut:
        micro = _credits_amount(amount)
        org_id = await _org_id(session, org)
        entry = CreditEntryOut.of(
            await credits.top_up(session, org_id=org_id, amount=micro, note=note)
        )
        await audit.record(
            session,
            org_id=org_id,
            by=audit.CLI,
            action=Action.CREDITS_TOP_UP,
            target_id=entry.id,
            changes=diff(None, view(entry)),
        )
        return entry

    entry = _run(_settings(ctx), work, write=True)
    if as_json:
        _print_json(entry.model_dump(mode="json"))
        return
    out.print(f"added {entry.amount:g} credits; balance {entry.balance_after:g}")


@credits_app.command("show")
def credits_show(
    ctx: typer.Context,
    org: OrgOption,
    limit: Annotated[int, typer.Option(help="Ledger entries to show, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show an org's balance and its latest ledger entries."""

    async def work(session: AsyncSession) -> credits.CreditsView:
        org_id = await _org_id(session, org)
        return await credits.credits_view(session, org_id=org_id, before_id=None, limit=limit)

    view = _run(_settings(ctx), work)
    entries = [CreditEntryOut.of(e) for e in view.entries]
    if as_json:
        _print_json(
            {
                "balance": to_credits(view.balance),
                "entries": [e.model_dump(mode="json") for e in entries],
            }
        )
        return
    out.print(f"balance: [bold]{to_credits(view.balance):g}[/bold] credits")
    table = Table("id", "when", "kind", "amount", "balance after", "reference", "note")
    for e in entries:
        table.add_row(
            str(e.id),
            e.created_at.isoformat(timespec="seconds"),
            e.kind,
            f"{e.amount:+g}",
            f"{e.balance_after:g}",
            e.reference or "",
            e.note or "",
        )
    out.print(table)


def main() -> None:
    app()


MAILBOX_ERRORS = (imaplib.IMAP4.error, OSError, ssl.SSLError, EOFError, UnsafeURL)
"""What reading a mailbox can fail with: the server's refusal, the network, TLS."""


@bounces_app.command("poll")
def bounces_poll(
    ctx: typer.Context,
    connection: Annotated[
        list[int] | None,
        typer.Option(
            "--connection", "-c", help="An smtp connection's id (repeatable). Default: all."
        ),
    ] = None,
    org: Annotated[
        str | None, typer.Option("--org", "-o", help="Only this org's connections (id or login).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Read bounce mailboxes once: apply their DSNs and ARF reports.

    Polls the bounce_imap mailbox of each --connection, or of every smtp
    connection that has one (of --org), marks what it read as seen, and
    prints what it found: messages read and, per report, bounced, deferred
    or complained (applied now), duplicate (applied before) or ignored.

    The worker does this every TIDINGS_BOUNCE_POLL_SECONDS; use it to try
    a mailbox's settings or to apply what waits now. Exit code 1: a mailbox
    could not be read (the others are still polled).
    """
    settings = _settings(ctx)
    progress = Progress(
        TextColumn("polling mailboxes"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
    )

    async def work(db: Database) -> list[dict[str, Any]]:
        org_id = None
        if org is not None:
            async with db.session() as session:
                org_id = await _org_id(session, org)
        found = await imap.mailbox_connections(db, org_id=org_id)
        wanted = found if not connection else list(dict.fromkeys(connection))
        missing = [c for c in wanted if c not in found]
        if missing:
            raise InvalidInput.field(
                "--connection",
                f"{', '.join(map(str, missing))}: no smtp connection with a bounce_imap "
                "mailbox" + (f" in org {org}" if org is not None else ""),
            )
        results: list[dict[str, Any]] = []
        task = progress.add_task("poll", total=len(wanted))
        with progress:
            for connection_id in wanted:
                results.append(await _poll_one(db, connection_id, settings))
                progress.advance(task)
        return results

    results = _run_db(settings, work)
    failed = any(r["error"] for r in results)
    if as_json:
        _print_json(results)
    elif not results:
        out.print("No smtp connection has a bounce_imap mailbox.")
    else:
        table = Table("connection", "org", "mailbox", "read", "reports")
        for r in results:
            found = r["error"] and f"[red]error: {r['error']}[/red]"
            counts = ", ".join(f"{n} {kind}" for kind, n in sorted(r["reports"].items()))
            table.add_row(
                f"{r['connection_id']} {r['name']}",
                str(r["org_id"]),
                r["mailbox"],
                "" if r["error"] else str(r["messages"]),
                found or counts or "none",
            )
        out.print(table)
    if failed:
        raise typer.Exit(1)


async def _poll_one(db: Database, connection_id: int, settings: Settings) -> dict[str, Any]:
    """One mailbox's poll as printed: what was found, or why it could not be read."""
    try:
        polled = await imap.poll(
            db, connection_id=connection_id, soft_bounce_limit=settings.soft_bounce_limit,
            fallback_window=settings.fallback_bounce_window,
        )  # fmt: skip
    except MAILBOX_ERRORS as exc:
        async with db.session() as session:
            row = await session.get(Connection, connection_id)
            assert row is not None
            box = imap.Mailbox.of(row)
            assert box is not None
            reason = str(exc) or type(exc).__name__
            return {"connection_id": row.id, "org_id": row.org_id, "name": row.name,
                    "mailbox": box.where,
                    "messages": 0, "reports": {}, "error": reason}  # fmt: skip
    assert polled is not None  # chosen among the connections with a mailbox
    return {
        "connection_id": polled.connection_id,
        "org_id": polled.org_id,
        "name": polled.name,
        "mailbox": polled.mailbox,
        "messages": polled.messages,
        "reports": dict(Counter(polled.outcomes)),
        "error": None,
    }


@secrets_app.command("new-key")
def secrets_new_key() -> None:
    """Print a fresh key for TIDINGS_SECRET_KEYS (base64 of 32 random bytes)."""
    out.print(new_key(), highlight=False)


@secrets_app.command("rotate")
def secrets_rotate(
    ctx: typer.Context,
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Values per transaction.")
    ] = 500,
    as_json: JsonOption = False,
) -> None:
    """Seal every stored secret under the newest key of TIDINGS_SECRET_KEYS, online: one
    short transaction per batch while Tidings runs. Then the older keys can be removed."""
    settings = _settings(ctx)
    columns = sealed_columns(Base.metadata)
    try:
        keyring = keyring_for(settings)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None

    async def work(db: Database) -> dict[str, Any]:
        total = await count(db, columns)
        with Progress(
            TextColumn("resealing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=as_json or not err.is_terminal,
        ) as bar:
            task = bar.add_task("secrets", total=total)
            report = await reseal(
                db, columns, batch_size=batch_size, progress=lambda n: bar.advance(task, n)
            )
        return {
            "version": keyring.current,
            "checked": sum(report.checked.values()),
            "resealed": sum(report.resealed.values()),
            "columns": {
                name: {"checked": report.checked[name], "resealed": report.resealed[name]}
                for name in report.checked
            },
        }

    try:
        summary = _run_db(settings, work)
    except SecretError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        _print_json(summary)
        return
    out.print(
        f"{summary['resealed']} of {summary['checked']} secrets sealed again; every secret "
        f"is sealed under key {summary['version']!r}: the other keys can be removed."
    )

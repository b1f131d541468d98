"""`tidings users …`: the console's members at the command line.

    tidings users create --org acme --email ada@acme.example --role owner [--operator]
    tidings users reset-password --email ada@acme.example
    tidings users list [--org acme] [--json]

A password is read from a hidden prompt (typed twice), or from the first line of stdin
with `--password-stdin` (scripts): never from an argument, which the shell's history and
`ps` would show. Creating a member and resetting a password are audited (`member.create`,
`member.reset_password`, actor `cli`); a reset ends every session of the member.

Registered by `tidings.cli` (one line); it reads the settings that command built.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.cli_support import JsonOption, out, run, settings_of
from tidings.cli_support import org_id as find_org
from tidings.members import service as members
from tidings.members.models import Member
from tidings.members.roles import Role

T = TypeVar("T")

app = typer.Typer(help="People who sign in to the console (members).", no_args_is_help=True)

StdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")
]


def _run(ctx: typer.Context, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """`work` in one write transaction, as every `tidings` command runs (`cli_support.run`:
    the database named, never created, migrated first; errors exit non-zero)."""
    return run(settings_of(ctx), work, write=True)


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def as_json(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "org_id": member.org_id,
        "email": member.email,
        "role": member.role,
        "is_operator": member.is_operator,
        "created_at": member.created_at.isoformat(),
        "disabled_at": member.disabled_at.isoformat() if member.disabled_at else None,
        "last_sign_in_at": member.last_sign_in_at.isoformat() if member.last_sign_in_at else None,
    }


@app.command("create")
def users_create(
    ctx: typer.Context,
    org: Annotated[str, typer.Option("--org", "-o", help="The org's id or login.")],
    email: Annotated[str, typer.Option(help="What the member signs in with.")],
    role: Annotated[Role, typer.Option(help="What the member may do.")] = Role.VIEWER,
    operator: Annotated[
        bool, typer.Option("--operator", help="May switch the console between every org.")
    ] = False,
    password_stdin: StdinOption = False,
    json_out: JsonOption = False,
) -> None:
    """Add a member to an org."""
    password = read_password(password_stdin)

    async def work(session: AsyncSession) -> Member:
        member = await members.add_member(
            session, org_id=await find_org(session, org), email=email, password=password,
            role=role, is_operator=operator,
        )  # fmt: skip
        await members.record_creation(session, member, audit.CLI)
        return member

    member = _run(ctx, work)
    if json_out:
        sys.stdout.write(json.dumps(as_json(member)) + "\n")
        return
    out.print(f"member {member.id} created: {member.email} ({member.role}) in org {member.org_id}")


@app.command("reset-password")
def users_reset_password(
    ctx: typer.Context,
    email: Annotated[str, typer.Option(help="The member's email.")],
    password_stdin: StdinOption = False,
    json_out: JsonOption = False,
) -> None:
    """Set a member's password, ending every session they have."""
    password = read_password(password_stdin)

    async def work(session: AsyncSession) -> tuple[Member, int]:
        member = await members.get_by_email(session, email=email)
        ended = await members.reset_password(session, member_id=member.id, password=password)
        await audit.record(session, org_id=member.org_id, by=audit.CLI,
                           action=Action.MEMBER_RESET, target_id=member.id,
                           changes={"sessions_ended": ended})  # fmt: skip
        return member, ended

    member, ended = _run(ctx, work)
    if json_out:
        sys.stdout.write(json.dumps({**as_json(member), "sessions_ended": ended}) + "\n")
        return
    out.print(f"password of {member.email} reset; {ended} session(s) ended")


@app.command("list")
def users_list(
    ctx: typer.Context,
    org: Annotated[
        str | None, typer.Option("--org", "-o", help="The org's id or login (default: all).")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """List the members of an org, or of every org."""

    async def work(session: AsyncSession) -> list[Member]:
        org_id = await find_org(session, org) if org is not None else None
        return list(await members.list_members(session, org_id=org_id))

    found = _run(ctx, work)
    if json_out:
        sys.stdout.write(json.dumps([as_json(m) for m in found]) + "\n")
        return
    table = Table("id", "org", "email", "role", "operator", "last sign-in", "disabled")
    for m in found:
        last = m.last_sign_in_at.isoformat(timespec="seconds") if m.last_sign_in_at else ""
        table.add_row(str(m.id), str(m.org_id), m.email, m.role, "yes" if m.is_operator else "",
                      last, "yes" if m.disabled_at else "")  # fmt: skip
    out.print(table)

"""`tidings users create|reset-password|list`: members made at the terminal sign in to the
console; a reset ends their sessions; both are audited; a password never comes from an
argument nor shows in the output."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.support.console import sign_in
from tidings.app import create_app
from tidings.audit.models import AuditEntry
from tidings.cli import app
from tidings.db.engine import Database
from tidings.settings import Settings

runner = CliRunner()
PASSWORD = "a long enough password"


def _ok(*args: str, stdin: str | None = None) -> Any:
    result = runner.invoke(app, [*args, "--json"], input=stdin)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def _console(settings: Settings, email: str, password: str) -> tuple[int, int]:
    """Sign in to the console with these; the sign-in's status, then that of GET /."""
    api = create_app(settings)
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            signed = await sign_in(http, email, password)
            return signed.status_code, (await http.get("/")).status_code


@pytest.mark.usefixtures("cli_env")
def test_a_member_made_at_the_terminal_signs_in(settings: Settings) -> None:
    org = _ok("orgs", "create", "Acme")
    made = _ok("users", "create", "--org", "acme", "--email", "Ada@Acme.example", "--role",
               "admin", "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert (made["email"], made["role"], made["org_id"]) == (
        "ada@acme.example",
        "admin",
        org["org_id"],
    )
    assert PASSWORD not in json.dumps(made)
    assert asyncio.run(_console(settings, "ada@acme.example", PASSWORD)) == (303, 200)

    listed = _ok("users", "list", "--org", "acme")
    assert [(m["email"], m["role"]) for m in listed] == [("ada@acme.example", "admin")]
    assert listed[0]["last_sign_in_at"] is not None
    human = runner.invoke(app, ["users", "list"])
    assert "ada@acme.example" in human.output

    async def entries() -> list[tuple[str, str, dict[str, Any]]]:
        db = Database(settings)  # on this loop: the fixture's engine belongs to another
        try:
            async with db.transaction(write=False) as session:
                rows = await session.execute(
                    select(AuditEntry.action, AuditEntry.actor, AuditEntry.changes).where(
                        AuditEntry.target_kind == "member"
                    )
                )
                return [tuple(row) for row in rows]  # type: ignore[misc]
        finally:
            await db.dispose()

    [(action, actor, changes)] = asyncio.run(entries())
    assert (action, actor) == ("member.create", "cli")
    assert changes["role"] == {"to": "admin"}
    assert PASSWORD not in json.dumps(changes)


@pytest.mark.usefixtures("cli_env")
def test_a_reset_password_ends_the_sessions_and_the_old_password(settings: Settings) -> None:
    _ok("orgs", "create", "Acme")
    _ok("users", "create", "--org", "acme", "--email", "ada@acme.example", "--password-stdin",
        stdin=PASSWORD + "\n")  # fmt: skip
    assert asyncio.run(_console(settings, "ada@acme.example", PASSWORD)) == (303, 200)

    # From the prompt: typed twice, never echoed.
    result = runner.invoke(
        app, ["users", "reset-password", "--email", "ada@acme.example"],
        input="the new password 2\nthe new password 2\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 session(s) ended" in result.output
    assert "the new password 2" not in result.output
    assert asyncio.run(_console(settings, "ada@acme.example", PASSWORD))[0] == 401
    assert asyncio.run(_console(settings, "ada@acme.example", "the new password 2")) == (303, 200)


@pytest.mark.usefixtures("cli_env")
def test_bad_input_is_refused_with_the_reason() -> None:
    _ok("orgs", "create", "Acme")
    short = runner.invoke(app, ["users", "create", "--org", "acme", "--email", "a@acme.example",
                                "--password-stdin"], input="short\n")  # fmt: skip
    assert short.exit_code == 2
    assert "password: at least 10 characters" in short.output
    nobody = runner.invoke(app, ["users", "create", "--org", "nobody", "--email", "a@b.example",
                                 "--password-stdin"], input=PASSWORD + "\n")  # fmt: skip
    assert nobody.exit_code == 2
    assert "--org" in nobody.output
    _ok("users", "create", "--org", "acme", "--email", "a@acme.example", "--password-stdin",
        stdin=PASSWORD + "\n")  # fmt: skip
    again = runner.invoke(app, ["users", "create", "--org", "acme", "--email", "A@acme.example",
                                "--password-stdin"], input=PASSWORD + "\n")  # fmt: skip
    assert again.exit_code == 1
    assert "already exists" in again.output
    missing = runner.invoke(app, ["users", "reset-password", "--email", "x@acme.example",
                                  "--password-stdin"], input=PASSWORD + "\n")  # fmt: skip
    assert missing.exit_code == 1


def _owner_password(printed: str) -> str:
    found = re.search(r"password\s+(\S+)", printed)
    assert found, printed
    return found.group(1)


@pytest.mark.usefixtures("cli_env")
def test_the_first_start_prints_the_console_and_an_owner_s_password_once(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from tidings.cli import FIRST_OWNER_EMAIL, _bootstrap

    _bootstrap(settings, base_url="http://127.0.0.1:8000")
    first = capsys.readouterr().err
    assert "The console: http://127.0.0.1:8000/" in first
    assert FIRST_OWNER_EMAIL in first
    password = _owner_password(first)
    assert asyncio.run(_console(settings, FIRST_OWNER_EMAIL, password)) == (303, 200)
    [owner] = _ok("users", "list")
    assert (owner["role"], owner["is_operator"], owner["org_id"]) == ("owner", True, 1)

    _bootstrap(settings, base_url="http://127.0.0.1:8000")
    again = capsys.readouterr().err  # only the database line: shown once
    assert again.startswith("database: ")
    assert "password" not in again
    assert "First start" not in again


@pytest.mark.usefixtures("cli_env")
def test_a_database_from_before_the_console_gets_its_owner_too(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from tidings.cli import _bootstrap

    _ok("orgs", "create", "Older")
    capsys.readouterr()
    _bootstrap(settings, base_url="http://t")
    printed = capsys.readouterr().err
    assert "API key" not in printed  # the org was there: no new org, no new key
    assert "'older'" in printed
    password = _owner_password(printed)
    assert asyncio.run(_console(settings, "owner@tidings.local", password)) == (303, 200)

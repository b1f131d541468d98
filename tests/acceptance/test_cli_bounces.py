"""`tidings bounces poll` against a real IMAP server on loopback (Dovecot): it reads each
bounce mailbox once, applies what it found, prints it (a table, or `--json`), and says
when a mailbox cannot be read."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from tests.support.factories import OrgWithKey, make_org
from tests.support.imap_server import PASSWORD, USER, dovecot_server
from tests.support.reports import arf, dsn
from tests.support.sending import emailed
from tidings.cli import app
from tidings.db.engine import Database

runner = CliRunner()


async def _cli(*args: str) -> Result:
    """The CLI runs its own event loop (asyncio.run), so it runs in a thread here."""
    return await asyncio.to_thread(runner.invoke, app, list(args))


async def smtp_connection(
    http: httpx.AsyncClient, org: OrgWithKey, name: str, *, port: int | None = None,
    password: str = PASSWORD,
) -> int:  # fmt: skip
    """An smtp connection, with a bounce mailbox on the local Dovecot when `port` is given."""
    settings: dict[str, Any] = {"host": "smtp.example.com"}
    credentials = {}
    if port is not None:
        settings["bounce_imap"] = {"host": "127.0.0.1", "port": port, "security": "none",
                                   "username": USER}  # fmt: skip
        credentials["bounce_imap_password"] = password
    response = await http.post(
        f"/v1/orgs/{org.id}/connections",
        json={"name": name, "channel": "email", "kind": "smtp", "settings": settings,
              "credentials": credentials},
        headers=org.bearer,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.mark.usefixtures("cli_env")
async def test_bounces_poll_reads_each_mailbox_once_and_prints_what_it_found(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    sent = await emailed(db, org, 3)
    broadcast, ids = sent.broadcast_id, sent.message_ids
    with dovecot_server() as server:
        polled = await smtp_connection(client, org, "relay", port=server.port)
        plain = await smtp_connection(client, org, "plain")  # no mailbox: not polled
        hard = dsn(message_id=ids["p0@example.com"], recipient="p0@example.com")
        server.deliver(hard, "dsn")
        server.deliver(arf(message_id=ids["p1@example.com"], recipient="p1@example.com"), "arf")
        server.deliver(b"Subject: out of office\r\n\r\nAway.\r\n", "vacation")

        result = await _cli("bounces", "poll", "--json")

        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == [
            {"connection_id": polled, "org_id": org.id, "name": "relay",
             "mailbox": f"{USER}@127.0.0.1:{server.port}/INBOX", "messages": 3,
             "reports": {"bounced": 1, "complained": 1}, "error": None},
        ]  # fmt: skip
        assert server.seen() == 3
        assert PASSWORD not in result.output

        server.deliver(hard, "dsn-again")  # the same report again: read, applied before
        result = await _cli("bounces", "poll", "--connection", str(polled), "--org", str(org.id))
        assert result.exit_code == 0, result.output
        assert "1 duplicate" in result.stdout
        assert f"{USER}@127.0.0.1:{server.port}/INBOX" in result.stdout
        assert server.seen() == 4

        refused = await _cli("bounces", "poll", "--connection", str(plain))
        assert refused.exit_code == 2
        assert f"--connection: {plain}: no smtp connection with a bounce_imap" in refused.output

    got = (await client.get(f"/v1/orgs/{org.id}/broadcasts/{broadcast}", headers=org.bearer)).json()
    assert (got["failed_count"], got["complained_count"]) == (1, 1)


@pytest.mark.usefixtures("cli_env")
async def test_bounces_poll_names_a_mailbox_it_cannot_read_and_polls_the_others(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    with dovecot_server() as server:
        wrong = await smtp_connection(
            client, org, "wrong", port=server.port, password="not-the-password"
        )
        right = await smtp_connection(client, org, "right", port=server.port)
        server.deliver(b"Subject: hello\r\n\r\nNot a report.\r\n", "note")

        result = await _cli("bounces", "poll", "--json", "--org", str(org.id))

    assert result.exit_code == 1
    by_id = {r["connection_id"]: r for r in json.loads(result.stdout)}
    assert set(by_id) == {wrong, right}
    assert "authentication failed" in by_id[wrong]["error"].lower()
    assert (by_id[right]["messages"], by_id[right]["reports"], by_id[right]["error"]) == (
        1,
        {},
        None,
    )
    assert "not-the-password" not in result.output


@pytest.mark.usefixtures("cli_env")
async def test_bounces_poll_with_no_mailbox_says_so(db: Database) -> None:
    result = await _cli("bounces", "poll")
    assert result.exit_code == 0, result.output
    assert "No smtp connection has a bounce_imap mailbox." in result.stdout
    as_json = await _cli("bounces", "poll", "--json")
    assert json.loads(as_json.stdout) == []

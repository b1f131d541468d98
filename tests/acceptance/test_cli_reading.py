"""The reading commands (broadcasts, messages, sink, templates, campaigns, connections) on
the test's database, compared with what the API answers for the same objects; `watch`
follows a broadcast that a dispatcher sends meanwhile; the database refusal; --version.

The CLI runs `asyncio.run` itself, so from these async tests it runs in a thread."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.support.factories import OrgWithKey, make_org
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings.broadcasts import cli as broadcasts_cli
from tidings.broadcasts import service as broadcasts
from tidings.cli import app
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.events.service import NewEvent, record_events

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("cli_env")


async def _cli(*args: str) -> Result:
    return await asyncio.to_thread(runner.invoke, app, list(args))


async def _json(*args: str) -> Any:
    result = await _cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@dataclass(frozen=True)
class Sent:
    broadcast_id: int
    campaign_id: int
    list_id: int


async def _sent(db: Database, org: OrgWithKey, count: int = 3) -> Sent:
    """p0@example.com … on a list, an email broadcast to them, sent to the sink."""
    people = await audience(db, org, [{"email": f"p{n}@example.com"} for n in range(count)])
    campaign_id = await email_campaign(db, org)
    broadcast_id = await broadcast_now(db, org, campaign_id, people.list_id)
    await Dispatcher(db, renderer=Renderer()).drain()
    return Sent(broadcast_id, campaign_id, people.list_id)


async def _again(db: Database, org: OrgWithKey, sent: Sent) -> int:
    """Another broadcast of the same campaign to the same list, sent."""
    broadcast_id = await broadcast_now(db, org, sent.campaign_id, sent.list_id)
    await Dispatcher(db, renderer=Renderer()).drain()
    return broadcast_id


async def test_broadcasts_show_and_list_give_what_the_api_gives(
    db: Database, client: httpx.AsyncClient
) -> None:
    org = await make_org(db)
    sent = await _sent(db, org)
    first, second = sent.broadcast_id, await _again(db, org, sent)

    shown = await _json("broadcasts", "show", str(first), "--org", org.login)
    api = await client.get(f"/v1/orgs/{org.id}/broadcasts/{first}", headers=org.bearer)
    assert shown == api.json()
    assert (shown["status"], shown["sent_count"]) == ("SENT", 3)

    listed = await _json("broadcasts", "list", "--org", str(org.id))
    assert [b["id"] for b in listed] == [second, first]  # newest first
    assert (await _json("broadcasts", "list", "--org", org.login, "--limit", "1"))[0][
        "id"
    ] == second

    table = await _cli("broadcasts", "list", "--org", org.login)
    assert table.exit_code == 0, table.output
    assert "SENT" in table.stdout
    assert "3/3" in table.stdout  # of 3 recipients, 3 have an outcome
    assert "100%" in table.stdout
    assert "database: " in table.stderr


async def test_another_orgs_broadcast_and_message_are_not_found(db: Database) -> None:
    owner = await make_org(db)
    broadcast_id = (await _sent(db, owner, count=1)).broadcast_id
    [message] = await _json("messages", "list", "--org", owner.login)
    [copy] = await _json("sink", "list", "--org", owner.login)
    other = await make_org(db, "Other")
    for command, ident in (
        (("broadcasts", "show"), broadcast_id),
        (("broadcasts", "watch"), broadcast_id),
        (("messages", "show"), message["id"]),
        (("sink", "show"), copy["id"]),
    ):
        result = await _cli(*command, str(ident), "--org", other.login)
        assert result.exit_code == 1, result.output
        assert "does not exist" in result.stderr
    assert await _json("messages", "list", "--org", other.login) == []
    assert await _json("sink", "list", "--org", other.login) == []


async def test_watch_follows_a_send_to_the_end_in_json_lines(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await make_org(db)
    people = await audience(db, org, [{"email": f"w{n}@example.com"} for n in range(25)])
    broadcast_id = await broadcast_now(db, org, await email_campaign(db, org), people.list_id)
    first_line = threading.Event()
    print_json = broadcasts_cli.print_json

    def printed(data: Any) -> None:
        print_json(data)
        first_line.set()

    monkeypatch.setattr(broadcasts_cli, "print_json", printed)
    watching = asyncio.create_task(
        _cli("broadcasts", "watch", str(broadcast_id), "--org", org.login, "--json",
             "--interval", "0.1")
    )  # fmt: skip
    assert await asyncio.to_thread(first_line.wait, 30), "watch printed nothing"
    await Dispatcher(db, renderer=Renderer()).drain()  # sends while it watches
    result = await asyncio.wait_for(watching, 30)

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["status"] == "SCHEDULED"
    assert lines[0]["progress"]["done"] == 0
    assert lines[-1]["status"] == "SENT"
    assert lines[-1]["progress"] == lines[-1]["progress"] | {"done": 25, "total": 25}
    assert lines[-1]["sent_count"] == 25
    assert len(lines) >= 2


async def test_watch_exits_non_zero_when_the_send_is_cancelled(db: Database) -> None:
    org = await make_org(db)
    people = await audience(db, org, [{"email": "c@example.com"}])
    broadcast_id = await broadcast_now(db, org, await email_campaign(db, org), people.list_id)
    async with db.transaction() as session:
        await broadcasts.cancel(session, org_id=org.id, broadcast_id=broadcast_id)

    result = await _cli("broadcasts", "watch", str(broadcast_id), "--org", org.login, "--json")
    assert result.exit_code == broadcasts_cli.EXIT_NOT_SENT
    [line] = [json.loads(line) for line in result.stdout.splitlines()]
    assert line["status"] == "CANCELLED"

    human = await _cli("broadcasts", "watch", str(broadcast_id), "--org", org.login)
    assert human.exit_code == broadcasts_cli.EXIT_NOT_SENT
    assert f"broadcast {broadcast_id} CANCELLED" in human.stdout


async def test_messages_list_filters_and_show_tells_the_timeline(db: Database) -> None:
    org = await make_org(db)
    sent = await _sent(db, org, count=3)
    first = sent.broadcast_id
    await _again(db, org, sent)

    everything = await _json("messages", "list", "--org", org.login)
    assert len(everything) == 6
    assert [m["id"] for m in everything] == sorted((m["id"] for m in everything), reverse=True)
    mine = await _json("messages", "list", "--org", org.login, "--broadcast", str(first))
    assert {m["recipient"] for m in mine} == {"p0@example.com", "p1@example.com", "p2@example.com"}
    to_p1 = await _json("messages", "list", "--org", org.login, "--to", "P1@Example.COM")
    assert [m["recipient"] for m in to_p1] == ["p1@example.com", "p1@example.com"]
    assert len(await _json("messages", "list", "--org", org.login, "--status", "sent")) == 6
    assert await _json("messages", "list", "--org", org.login, "--status", "failed") == []
    assert len(await _json("messages", "list", "--org", org.login, "--since", "1h")) == 6
    assert await _json("messages", "list", "--org", org.login, "--since", "2999-01-01") == []
    for bad in (("--since", "yesterday"), ("--to", "nobody"), ("--status", "lost")):
        refused = await _cli("messages", "list", "--org", org.login, *bad)
        assert refused.exit_code == 2, refused.output
        assert bad[0] in refused.output

    message = next(m for m in mine if m["recipient"] == "p0@example.com")
    async with db.transaction() as session:
        await record_events(
            session,
            events=[
                NewEvent(org.id, "opened", "tracking", "1:open", message["id"], first,
                         message["campaign_id"]),
                NewEvent(org.id, "clicked", "tracking", "2:click", message["id"], first,
                         message["campaign_id"], data={"url": "https://acme.example/a"}),
            ],
        )  # fmt: skip
    shown = await _json("messages", "show", str(message["id"]), "--org", org.login)
    assert shown["message"]["id"] == message["id"]
    assert [step["what"] for step in shown["timeline"]] == ["queued", "sent", "opened", "clicked"]
    assert "url https://acme.example/a" in shown["timeline"][-1]["detail"]
    assert [e["type"] for e in shown["events"]] == ["sent", "opened", "clicked"]

    table = await _cli("messages", "show", str(message["id"]), "--org", org.login)
    assert table.exit_code == 0, table.output
    assert "p0@example.com" in table.stdout
    assert "clicked" in table.stdout


async def test_sink_list_and_show_print_the_message_as_received(
    db: Database, client: httpx.AsyncClient
) -> None:
    org = await make_org(db)
    await _sent(db, org, count=2)
    listed = await _json("sink", "list", "--org", org.login)
    api = await client.get(f"/v1/orgs/{org.id}/sink/messages", headers=org.bearer)
    assert listed == list(reversed(api.json()["data"]))
    newest = listed[0]
    assert await _json(
        "sink", "list", "--org", org.login, "--message", str(newest["message_id"])
    ) == [newest]

    shown = await _json("sink", "show", str(newest["id"]), "--org", org.login)
    assert shown == newest
    raw = await _cli("sink", "show", str(newest["id"]), "--org", org.login)
    assert raw.exit_code == 0, raw.output
    assert raw.stdout.splitlines() == newest["content"].splitlines()  # MIME has CRLF
    assert f"To: {newest['recipient']}" in raw.stdout
    assert "Subject: " in raw.stdout


async def test_templates_campaigns_and_connections_lists(
    db: Database, client: httpx.AsyncClient
) -> None:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org, name="spring")
    made = await client.post(
        f"/v1/orgs/{org.id}/connections",
        json={"name": "test sink", "channel": "email", "kind": "sink"},
        headers=org.bearer,
    )
    assert made.status_code == 201, made.text

    templates = await _json("templates", "list", "--org", org.login)
    assert [t["name"] for t in templates] == ["spring-template"]
    campaigns = await _json("campaigns", "list", "--org", org.login)
    assert [(c["id"], c["name"]) for c in campaigns] == [(campaign_id, "spring")]
    connections = await _json("connections", "list", "--org", org.login)
    api = await client.get(f"/v1/orgs/{org.id}/connections", headers=org.bearer)
    assert connections == api.json()
    assert [c["name"] for c in connections] == ["test sink"]
    for command in ("templates", "campaigns", "connections"):
        table = await _cli(command, "list", "--org", org.login)
        assert table.exit_code == 0, table.output
    assert "spring" in (await _cli("campaigns", "list", "--org", org.login)).stdout

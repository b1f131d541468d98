"""A person's record over HTTP and the CLI: the export holds each kind of record, and after
`tidings contacts erase` it holds none of their personal data."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from tests.support.factories import make_org
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings.cli import app
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.links.models import Link
from tidings.outbox.models import Message
from tidings.suppressions import service as suppressions

EMAIL = "ada.export@example.com"
runner = CliRunner()


@pytest.mark.usefixtures("cli_env")
async def test_export_holds_every_kind_of_record_and_nothing_after_erase(
    db: Database, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Erasure hashes with a key derived from the secret, which PostgreSQL needs set.
    monkeypatch.setenv("TIDINGS_SECRET_KEY", "cli-secret-key-of-at-least-32-characters")
    org = await make_org(db)
    people = await audience(
        db,
        org,
        [{"email": EMAIL, "first_name": "Ada", "attributes": {"plan": "pro"}},
         {"email": "someone.else@example.com"}],
    )  # fmt: skip
    ada = people.contact_ids[0]
    await broadcast_now(db, org, await email_campaign(db, org), people.list_id)
    await Dispatcher(db, renderer=Renderer()).drain()
    async with db.transaction() as session:
        message_id = await session.scalar(select(Message.id).where(Message.contact_id == ada))
        await session.execute(
            insert(Link),
            [{"message_id": message_id, "position": 0, "org_id": org.id,
              "url": "https://survey.example/s/1", "clicks": 0}],
        )  # fmt: skip
        await suppressions.suppress(session, org_id=org.id, channel="email", address=EMAIL,
                                    reason="unsubscribed", source="link")  # fmt: skip
        await suppressions.note_soft_bounce(session, org_id=org.id, channel="email",
                                            address=EMAIL, limit=5, source="dsn")  # fmt: skip

    path = f"/v1/orgs/{org.id}/contacts/{ada}/export"
    answer = await client.get(path, headers=org.bearer)
    assert answer.status_code == 200, answer.text
    record = answer.json()
    assert record["contact"]["email"] == EMAIL
    assert record["contact"]["attributes"] == {"plan": "pro"}
    assert [entry["name"] for entry in record["lists"]] == ["audience"]
    assert [(s["address"], s["reason"]) for s in record["suppressions"]] == [
        (EMAIL, "unsubscribed")
    ]
    assert [(b["address"], b["count"]) for b in record["soft_bounces"]] == [(EMAIL, 1)]
    [message] = record["messages"]
    assert message["recipient"] == EMAIL
    assert message["status"] == "sent"
    assert "Hello Ada" in message["content"]["subject"]
    assert EMAIL in message["content"]["content"]  # the MIME the sink kept
    assert message["links"] == ["https://survey.example/s/1"]
    assert [e["type"] for e in record["events"]] == ["sent"]
    assert "someone.else" not in answer.text  # only this person

    missing = await client.get(f"/v1/orgs/{org.id}/contacts/999999/export", headers=org.bearer)
    assert missing.status_code == 404

    def cli(*args: str) -> dict[str, object]:
        result = runner.invoke(app, [*args, "--org", str(org.id), str(ada), "--json"])
        assert result.exit_code == 0, result.output
        document: dict[str, object] = json.loads(result.stdout)
        return document

    exported = await asyncio.to_thread(cli, "contacts", "export")
    assert {k: v for k, v in exported.items() if k != "exported_at"} == {
        k: v for k, v in record.items() if k != "exported_at"
    }
    erased = await asyncio.to_thread(cli, "contacts", "erase")
    assert erased["contact_id"] == ada
    after = (await client.get(path, headers=org.bearer)).json()
    text = json.dumps(after)
    assert EMAIL not in text
    assert "Ada" not in text
    assert after["contact"]["erased_at"] is not None
    assert after["messages"][0]["recipient"] is None
    assert after["messages"][0]["content"] is None
    assert after["messages"][0]["links"] == []
    assert after["suppressions"] == []
    assert after["soft_bounces"] == []


async def test_an_orgs_retention_has_defaults_and_is_set_through_the_org(
    db: Database, client: httpx.AsyncClient
) -> None:
    org = await make_org(db)
    path = f"/v1/orgs/{org.id}"
    shown = (await client.get(path, headers=org.bearer)).json()
    assert (
        shown["content_retention_days"],
        shown["event_retention_days"],
        shown["message_retention_days"],
    ) == (30, 400, 400)

    changed = await client.patch(
        path, json={"content_retention_days": 7, "event_retention_days": None}, headers=org.bearer
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["content_retention_days"], body["event_retention_days"]) == (7, None)
    assert body["message_retention_days"] == 400  # left out: unchanged

    refused = await client.patch(path, json={"message_retention_days": 0}, headers=org.bearer)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["message_retention_days"]

"""A broadcast of a few thousand personalised emails through a real SMTP connection to an
aiosmtpd server on loopback: every message arrives once, personalised, with its headers."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from email import policy
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP as SmtpServer  # noqa: N811 (the library names its class SMTP)
from aiosmtpd.smtp import Envelope, Session

from tests.support.controller import serving
from tests.support.factories import make_org, upsert
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig

RECIPIENTS = 2_000


class Recorder:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: SmtpServer, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or b""
        self.received.append((str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 2.0.0 Ok: queued as Q" + str(len(self.received))


@pytest.fixture
def smtp_server() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    with serving(recorder) as port:
        yield recorder, port


async def _post(http: httpx.AsyncClient, path: str, headers: dict[str, str], body: Any) -> Any:
    response = await http.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def test_broadcast_over_smtp(
    client: httpx.AsyncClient, db: Database, smtp_server: tuple[Recorder, int]
) -> None:
    recorder, port = smtp_server
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    rows = [
        {
            "email": f"r{i}@example.com",
            "first_name": f"Zoë{i}",
            "last_name": "Ünal",
            "attributes": {"ticket": f"T-{i:05d}"},
        }
        for i in range(RECIPIENTS)
    ]
    for start in range(0, RECIPIENTS, 1_000):
        await upsert(client, org, rows[start : start + 1_000])
    await _post(
        client,
        f"{base}/connections",
        h,
        {
            "name": "relay",
            "channel": "email",
            "kind": "smtp",
            "is_default": True,
            "settings": {"host": "127.0.0.1", "port": port, "security": "none", "pool_size": 4},
        },
    )
    template = await _post(
        client,
        f"{base}/templates",
        h,
        {
            "name": "t",
            "channel": "email",
            "subject": "Ticket {{ ticket }} for {{ first_name }}",
            "html": "<p>{{ first_name }} {{ last_name }}: {{ ticket }}</p>",
            "text": "{{ first_name }} {{ last_name }}: {{ ticket }}",
        },
    )
    campaign = await _post(
        client,
        f"{base}/campaigns",
        h,
        {
            "name": "c",
            "channel": "email",
            "template_id": template["id"],
            "from_email": "tickets@acme.example",
            "from_name": "Acme Tickets",
        },
    )
    broadcast = await _post(
        client,
        f"{base}/broadcasts",
        h,
        {
            "name": "b",
            "campaign_id": campaign["id"],
            "send_to_all": True,
        },
    )

    dispatcher = Dispatcher(db, renderer=Renderer(), config=DispatcherConfig(batch_size=250))
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()

    done = (await client.get(f"{base}/broadcasts/{broadcast['id']}", headers=h)).json()
    assert (done["status"], done["sent_count"], done["failed_count"]) == ("SENT", RECIPIENTS, 0)
    assert len(recorder.received) == RECIPIENTS
    seen: set[int] = set()
    for sender, recipients, content in recorder.received:
        parsed = email.message_from_bytes(content, policy=policy.default)
        [recipient] = recipients
        i = int(recipient[1:].split("@")[0])
        seen.add(i)
        assert sender == "tickets@acme.example"
        assert parsed["To"].addresses[0].addr_spec == recipient
        assert parsed["To"].addresses[0].display_name == f"Zoë{i} Ünal"
        assert parsed["From"].addresses[0].display_name == "Acme Tickets"
        assert parsed["Subject"] == f"Ticket T-{i:05d} for Zoë{i}"
        assert re.fullmatch(r"<[0-9a-f]{14}\.[0-9a-f]{32}@acme\.example>", parsed["Message-ID"])
        assert parsed["List-Id"] is None  # transactional mail is no list mail
        assert parsed["Date"]
        assert parsed.get_content_type() == "multipart/alternative"
        html = parsed.get_body(("html",))
        assert html is not None
        assert f"Zoë{i} Ünal: T-{i:05d}" in html.get_content()
    assert seen == set(range(RECIPIENTS))  # every recipient exactly once
    sent = (await client.get(f"{base}/messages?status=sent&limit=1", headers=h)).json()["data"]
    assert sent[0]["provider_id"].startswith("Q")  # the relay's queue id


async def test_a_test_keys_broadcast_reaches_the_sink_not_the_relay(
    client: httpx.AsyncClient, db: Database, smtp_server: tuple[Recorder, int]
) -> None:
    from tidings.keys.schemas import KeyKind
    from tidings.keys.service import create_key

    recorder, port = smtp_server
    org = await make_org(db)
    async with db.transaction() as session:
        test_key = await create_key(session, org_id=org.id, name="ci", kind=KeyKind.TEST)
    base, live = f"/v1/orgs/{org.id}", org.bearer
    as_test = {"Authorization": f"Bearer {test_key.secret}"}
    await upsert(client, org, [{"email": f"t{i}@example.com"} for i in range(3)])
    await _post(
        client,
        f"{base}/connections",
        live,
        {
            "name": "relay",
            "channel": "email",
            "kind": "smtp",
            "is_default": True,
            "settings": {"host": "127.0.0.1", "port": port, "security": "none"},
        },
    )
    template = await _post(
        client,
        f"{base}/templates",
        live,
        {"name": "t", "channel": "email", "subject": "s", "text": "hello"},
    )
    campaign = await _post(
        client,
        f"{base}/campaigns",
        live,
        {
            "name": "c",
            "channel": "email",
            "template_id": template["id"],
            "from_email": "a@acme.example",
        },
    )
    broadcast = await _post(
        client,
        f"{base}/broadcasts",
        as_test,
        {"name": "dry run", "campaign_id": campaign["id"], "send_to_all": True},
    )
    assert broadcast["test"] is True
    single = await _post(
        client,
        f"{base}/messages",
        as_test,
        {"campaign_id": campaign["id"], "to": {"email": "solo@example.com"}},
    )
    assert single["test"] is True

    dispatcher = Dispatcher(db, renderer=Renderer())
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()

    assert recorder.received == []  # nothing handed to the real relay
    sunk = (await client.get(f"{base}/sink/messages", headers=live)).json()["data"]
    # The single send upserted solo@ before the broadcast expanded: it is one of "all".
    assert sorted(m["recipient"] for m in sunk) == [
        "solo@example.com",
        "solo@example.com",
        "t0@example.com",
        "t1@example.com",
        "t2@example.com",
    ]
    done = (await client.get(f"{base}/broadcasts/{broadcast['id']}", headers=live)).json()
    assert (done["status"], done["sent_count"]) == ("SENT", 4)

    live_broadcast = await _post(
        client,
        f"{base}/broadcasts",
        live,
        {"name": "real", "campaign_id": campaign["id"], "send_to_all": True},
    )
    assert live_broadcast["test"] is False
    dispatcher = Dispatcher(db, renderer=Renderer())
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()
    assert len(recorder.received) == 4  # the live key's broadcast went to the relay

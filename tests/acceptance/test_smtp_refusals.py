"""A recipient an SMTP server refuses for good while sending is suppressed as a bounce
report would have it; a refusal that is about the connection (a relay that denies
relaying) suppresses nobody."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP as SmtpServer  # noqa: N811 (the library names its class SMTP)
from aiosmtpd.smtp import Envelope, Session

from tests.support.controller import serving
from tests.support.factories import make_org, upsert
from tidings.channels.smtp import refuses_address
from tidings.channels.smtp_wire import Reply
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.suppressions import service as suppressions

AT_RCPT = {
    "gone@example.com": "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown",
    "denied@example.com": "554 5.7.1 <denied@example.com>: Relay access denied",
}
AFTER_DATA = {"late@example.com": "550 5.1.1 <late@example.com>: no such user here"}


class Refusing:
    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SmtpServer, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:  # fmt: skip
        if address in AT_RCPT:
            return AT_RCPT[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SmtpServer, session: Session, envelope: Envelope
    ) -> str:
        [recipient] = envelope.rcpt_tos
        return AFTER_DATA.get(recipient, "250 2.0.0 Ok: queued as Q1")


@pytest.fixture
def smtp_port() -> Iterator[int]:
    with serving(Refusing()) as port:
        yield port


async def _post(http: httpx.AsyncClient, path: str, headers: dict[str, str], body: Any) -> Any:
    response = await http.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _drain(db: Database) -> None:
    dispatcher = Dispatcher(db, renderer=Renderer())
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()


async def test_a_recipient_refused_for_good_is_suppressed_as_a_hard_bounce(
    client: httpx.AsyncClient, db: Database, smtp_port: int
) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    people = ["ok@example.com", *AT_RCPT, *AFTER_DATA]
    await upsert(client, org, [{"email": address} for address in people])
    await _post(client, f"{base}/connections", h, {
        "name": "relay", "channel": "email", "kind": "smtp", "is_default": True,
        "settings": {"host": "127.0.0.1", "port": smtp_port, "security": "none"},
    })  # fmt: skip
    template = await _post(client, f"{base}/templates", h, {
        "name": "t", "channel": "email", "subject": "Receipt", "text": "Thanks",
    })  # fmt: skip
    campaign = await _post(client, f"{base}/campaigns", h, {
        "name": "c", "channel": "email", "template_id": template["id"],
        "from_email": "shop@acme.example",
    })  # fmt: skip

    async def broadcast() -> dict[str, tuple[str, str | None]]:
        body = {"name": "b", "campaign_id": campaign["id"], "send_to_all": True}
        made = await _post(client, f"{base}/broadcasts", h, body)
        await _drain(db)
        page = await client.get(f"{base}/messages?broadcast_id={made['id']}", headers=h)
        return {m["recipient"]: (m["status"], m["reason"]) for m in page.json()["data"]}

    assert await broadcast() == {
        "ok@example.com": ("sent", None),
        "gone@example.com": ("failed", f"RCPT TO: {AT_RCPT['gone@example.com']}"),
        "denied@example.com": ("failed", f"RCPT TO: {AT_RCPT['denied@example.com']}"),
        "late@example.com": ("failed", f"DATA: {AFTER_DATA['late@example.com']}"),
    }
    async with db.session() as session:
        listed = await suppressions.list_suppressions(
            session, org_id=org.id, after_id=None, limit=100
        )
    assert {(s.address, s.reason, s.source, s.note) for s in listed} == {
        ("gone@example.com", "hard_bounce", "smtp", f"RCPT TO: {AT_RCPT['gone@example.com']}"),
        ("late@example.com", "hard_bounce", "smtp", f"DATA: {AFTER_DATA['late@example.com']}"),
    }
    # Like a DSN's hard bounce, it stops every later message to the address.
    second = await broadcast()
    assert second["gone@example.com"] == ("skipped", "suppressed: hard_bounce")
    assert second["late@example.com"] == ("skipped", "suppressed: hard_bounce")
    assert second["ok@example.com"] == ("sent", None)
    assert second["denied@example.com"][0] == "failed"


@pytest.mark.parametrize(
    ("code", "text", "address"),
    [
        (550, "5.1.1 <a@example.com>: User unknown", True),
        (550, "5.1.10 null MX", True),
        (553, "5.1.3 bad address syntax", True),
        (550, "5.2.1 mailbox disabled", True),
        (550, "Requested action not taken: mailbox unavailable", True),
        (551, "User not local", True),
        (554, "5.7.1 Relay access denied", False),
        (550, "5.7.1 Message rejected as spam", False),
        (530, "5.7.0 Authentication required", False),
        (552, "5.3.4 Message size exceeds fixed limit", False),
        (552, "5.2.2 Mailbox full", False),
        (554, "Transaction failed", False),
        (450, "4.1.1 try later", False),
    ],
)
def test_which_refusals_are_the_address_s(code: int, text: str, address: bool) -> None:
    assert refuses_address(Reply(code, text.encode())) is address

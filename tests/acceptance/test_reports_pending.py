"""A delivery report that overtakes its message's outcome: the provider reports on a
message while the dispatcher has not yet written its outcome down (the provider id for
Infobip and Twilio; the status `sent` for Kannel, whose reports name our id). The report
waits (`pending`), and the reports housekeeping applies it once the outcome is written,
or counts it stale when the provider id never appears. Real dispatcher, real gateway on
loopback: the gateway posts each report to Tidings while the send request is still open,
which is exactly that race."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from tests.acceptance.test_reports import twilio_signature
from tests.acceptance.test_sms_broadcast import RECIPIENTS, _drain, _messages, _sms_broadcast
from tests.support.factories import OrgWithKey, make_org
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.reports.models import PendingReport
from tidings.reports.pending import HOLD, ReportsKeeper, sweep
from tidings.settings import Settings
from tidings.testing import Gateway, Recorded, Reply

TOKEN = "pending-report-token-0123456789"
AUTH_TOKEN = "twilio-auth-token-for-races"
ACCOUNT = "AC" + "1" * 32
SENT = RECIPIENTS  # every contact with a phone (one more has none: skipped)


async def _connection(http: httpx.AsyncClient, org: OrgWithKey, kind: str, url: str) -> int:
    settings: dict[str, Any]
    if kind == "infobip":
        settings = {"base_url": url}
        credentials = {"api_key": "ib-key", "inbound_token": TOKEN}
    elif kind == "kannel":
        # Tidings builds the dlr-url (its token generated); the provider below calls it.
        settings = {"base_url": url}
        credentials = {"username": "u", "password": "p"}
    else:
        settings = {"account_sid": ACCOUNT, "base_url": url, "from_number": "+15005550006"}
        credentials = {"auth_token": AUTH_TOKEN}
    response = await http.post(
        f"/v1/orgs/{org.id}/connections",
        json={"name": kind, "channel": "sms", "kind": kind, "is_default": True,
              "settings": settings, "credentials": credentials},
        headers=org.bearer,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _infobip_report(message_ids: list[str], group: str = "DELIVERED") -> dict[str, Any]:
    return {
        "results": [
            {"bulkId": "tidings-x", "messageId": mid, "to": "41793020000",
             "doneAt": "2026-11-22T04:00:05.000+0000",
             "status": {"groupId": 3, "groupName": group, "id": 5, "name": f"{group}_X"},
             "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR"}}
            for mid in message_ids
        ]
    }  # fmt: skip


class Provider:
    """Answers each send like the provider and, before answering, posts that message's
    delivery report to Tidings, recording Tidings' answers."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings, kind: str) -> None:
        self.http, self.settings, self.kind = http, settings, kind
        self.connection_id = 0
        self.answers: list[dict[str, Any]] = []

    async def __call__(self, request: Recorded) -> Reply:
        if self.kind == "infobip":
            ids = [m["destinations"][0]["messageId"] for m in request.json()["messages"]]
            await self._report(
                f"/reports/{self.connection_id}/infobip/{TOKEN}", json=_infobip_report(ids)
            )
            pending = {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED"}
            entries = [{"to": "4179", "messageId": mid, "status": pending} for mid in ids]
            return Reply(200, {"bulkId": request.json()["bulkId"], "messages": entries})
        if self.kind == "kannel":
            # Kannel fills in its %-escapes: %d, the report type, is 1 (delivered).
            dlr = urlsplit(request.param("dlr-url"))
            assert dlr.path.startswith(f"/reports/{self.connection_id}/kannel/")
            query = urlencode({"message_id": parse_qs(dlr.query)["message_id"][0], "type": 1})
            response = await self.http.get(f"{dlr.path}?{query}")
            assert response.status_code == 200, response.text
            self.answers.append(response.json())
            return Reply(202, "0: Accepted for delivery")
        form = request.form()
        sid = "SM" + form["To"].lstrip("+").rjust(32, "0")  # one per recipient
        path = f"/reports/{self.connection_id}/twilio"
        for status in ("sent", "delivered"):
            callback = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT,
                        "To": form["To"], "ApiVersion": "2010-04-01"}  # fmt: skip
            url = self.settings.public_url.rstrip("/") + path
            signature = twilio_signature(AUTH_TOKEN, url, callback)
            await self._report(path, data=callback, headers={"X-Twilio-Signature": signature})
        return Reply(201, {"sid": sid, "status": "queued"})

    async def _report(self, path: str, **kwargs: Any) -> None:
        response = await self.http.post(path, **kwargs)
        assert response.status_code == 200, response.text
        self.answers.append(response.json())


async def _pending(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(PendingReport)) or 0)


@pytest.mark.parametrize("kind", ["infobip", "twilio", "kannel"])
async def test_a_report_before_its_provider_id_waits_then_applies(
    kind: str, client: httpx.AsyncClient, db: Database, gateway: Gateway, settings: Settings
) -> None:
    provider = Provider(client, settings, kind)
    gateway.plan = provider
    org = await make_org(db)
    provider.connection_id = await _connection(client, org, kind, gateway.url)
    broadcast_id = await _sms_broadcast(client, org)

    await _drain(db)

    # Every final report arrived while its message was being sent: none was applied and
    # none was thrown away as stale.
    assert sum(a["pending"] for a in provider.answers) == SENT
    assert sum(a["stale"] for a in provider.answers) == 0
    assert await _pending(db) == SENT
    messages = await _messages(client, org, broadcast_id)
    assert {m["status"] for m in messages if m["recipient"]} == {"sent"}
    base = f"/v1/orgs/{org.id}"
    broadcast = (await client.get(f"{base}/broadcasts/{broadcast_id}", headers=org.bearer)).json()
    assert broadcast["delivered_count"] == 0

    swept = await sweep(db, hold=HOLD, soft_bounce_limit=3)

    assert (swept.applied, swept.stale) == (SENT, 0)
    assert await _pending(db) == 0
    messages = await _messages(client, org, broadcast_id)
    assert {m["status"] for m in messages if m["recipient"]} == {"delivered"}
    broadcast = (await client.get(f"{base}/broadcasts/{broadcast_id}", headers=org.bearer)).json()
    assert (broadcast["delivered_count"], broadcast["failed_count"]) == (SENT, 0)
    rejected = (await client.get(f"{base}/reports/rejected", headers=org.bearer)).json()
    assert rejected["total"] == 0
    again = await sweep(db, hold=HOLD, soft_bounce_limit=3)  # nothing left: nothing moves
    assert (again.applied, again.stale) == (0, 0)


async def test_a_report_whose_provider_id_never_appears_ends_stale(
    client: httpx.AsyncClient, db: Database, gateway: Gateway, settings: Settings
) -> None:
    """The provider reports on an id the send never records (say, a lost lease sent the
    message again under another id): it waits `hold`, then counts as stale."""
    provider = Provider(client, settings, "infobip")
    gateway.plan = provider
    org = await make_org(db)
    connection_id = await _connection(client, org, "infobip", gateway.url)
    provider.connection_id = connection_id
    unknown = "not-an-id-we-sent"

    async def also_unknown(request: Recorded) -> Reply:
        path = f"/reports/{connection_id}/infobip/{TOKEN}"
        response = await client.post(path, json=_infobip_report([unknown], "UNDELIVERABLE"))
        assert response.json() == {"accepted": 0, "stale": 0, "pending": 1}
        return await provider(request)

    gateway.plan = also_unknown
    broadcast_id = await _sms_broadcast(client, org)
    await _drain(db)
    swept = await sweep(db, hold=HOLD, soft_bounce_limit=3)
    assert (swept.applied, swept.stale) == (SENT, 0)
    waiting = await _pending(db)
    assert waiting == len(gateway.requests)  # one unknown report per send request

    later = utcnow() + HOLD + timedelta(seconds=1)
    swept = await sweep(db, hold=HOLD, soft_bounce_limit=3, now=later)
    assert (swept.applied, swept.stale) == (0, waiting)
    assert await _pending(db) == 0
    base = f"/v1/orgs/{org.id}"
    rejected = (await client.get(f"{base}/reports/rejected", headers=org.bearer)).json()
    assert [(r["source"], r["reason"], r["count"]) for r in rejected["data"]] == [
        ("infobip", "stale", waiting)
    ]
    broadcast = (await client.get(f"{base}/broadcasts/{broadcast_id}", headers=org.bearer)).json()
    assert (broadcast["delivered_count"], broadcast["failed_count"]) == (SENT, 0)


async def test_with_nothing_in_flight_an_unknown_id_is_stale_at_once(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    org = await make_org(db)
    connection_id = await _connection(client, org, "infobip", gateway.url)
    response = await client.post(
        f"/reports/{connection_id}/infobip/{TOKEN}", json=_infobip_report(["4711"])
    )
    assert response.json() == {"accepted": 0, "stale": 1, "pending": 0}
    assert await _pending(db) == 0


async def test_the_keeper_sweeps_pending_reports(
    client: httpx.AsyncClient, db: Database, gateway: Gateway, settings: Settings
) -> None:
    """`ReportsKeeper.tick`, what the worker runs every few seconds, applies them too."""
    provider = Provider(client, settings, "infobip")
    gateway.plan = provider
    org = await make_org(db)
    provider.connection_id = await _connection(client, org, "infobip", gateway.url)
    broadcast_id = await _sms_broadcast(client, org)
    await _drain(db)
    assert await _pending(db) == SENT
    keeper = ReportsKeeper(db, hold=HOLD, retention=timedelta(days=7), soft_bounce_limit=3)
    await keeper.tick()
    assert await _pending(db) == 0
    broadcast = (
        await client.get(f"/v1/orgs/{org.id}/broadcasts/{broadcast_id}", headers=org.bearer)
    ).json()
    assert broadcast["delivered_count"] == SENT

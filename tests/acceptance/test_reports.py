"""Delivery reports: each provider's real-shaped report moves a sent message and the
counters; unsigned, badly signed and stale reports are refused and counted; and the DLR
storm (every report three times, shuffled, 1% forged, 1% stale) ends in the truth."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import select, update

from tests.support.factories import OrgWithKey, make_org
from tests.support.sending import audience, broadcast_now, campaign
from tidings.broadcasts.models import Broadcast
from tidings.connections import service as connections
from tidings.connections.schemas import ConnectionCreate
from tidings.content.render import Renderer
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.outbox.models import Message
from tidings.settings import Settings
from tidings.suppressions.models import SoftBounce, Suppression

TOKEN = "report-token-0123456789abcdef"
AUTH_TOKEN = "twilio-auth-token-secret"
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


@dataclass
class World:
    org: OrgWithKey
    broadcast_id: int
    message_ids: list[int]
    kannel: int
    infobip: int
    twilio: int
    generic: int


async def _world(db: Database, n: int, *, name: str = "Acme") -> World:
    """An org whose SMS broadcast of `n` went out through the sink, and one connection of
    each reporting kind."""
    org = await make_org(db, name)
    campaign_id = await campaign(db, org, channel="sms", text="Hi", name="c", sms_sender="Acme")
    target = await audience(db, org, [{"phone": f"+4179302{i:04d}"} for i in range(n)])
    broadcast_id = await broadcast_now(db, org, campaign_id, target.list_id)
    await Dispatcher(db, renderer=Renderer()).drain()
    ids = []
    kinds: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "kannel": (
            {"base_url": "http://kannel.test"},
            {"username": "u", "password": "p", "inbound_token": TOKEN},
        ),
        "infobip": ({"base_url": "http://infobip.test"}, {"api_key": "k", "inbound_token": TOKEN}),
        "twilio": ({"account_sid": "AC" + "0" * 32}, {"auth_token": AUTH_TOKEN}),
        "sink": ({}, {"report_secret": SECRET}),
    }
    made = {}
    for kind, (settings, credentials) in kinds.items():
        async with db.transaction() as session:
            connection = await connections.create_connection(
                session,
                org_id=org.id,
                body=ConnectionCreate(
                    name=kind, channel="sms", kind=kind, settings=settings, credentials=credentials
                ),
            )
            made[kind] = connection.id
    async with db.session() as session:
        ids = list(
            await session.scalars(
                select(Message.id).where(Message.broadcast_id == broadcast_id).order_by(Message.id)
            )
        )
        # As each provider would have recorded them: Kannel "kannel-<id>", Infobip our
        # id as its messageId, Twilio a message SID.
        for k, mid in enumerate(ids):
            await session.execute(
                update(Message).where(Message.id == mid).values(provider_id=_provider_id(k, mid))
            )
        await session.commit()
    assert len(ids) == n
    return World(
        org, broadcast_id, ids, made["kannel"], made["infobip"], made["twilio"], made["sink"]
    )


def _provider_id(k: int, mid: int) -> str:
    return (f"kannel-{mid}", str(mid), _sid(mid))[k % 3]


def _sid(mid: int) -> str:
    return f"SM{mid:032x}"


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's documented algorithm, written again here."""
    data = url
    for name in sorted(params):
        data += name + params[name]
    mac = hmac.new(token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("utf-8")


def standard_headers(secret: str, body: bytes, *, ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    msg_id = f"msg_{random.randrange(10**9)}"
    key = base64.b64decode(secret.split("_", 1)[1])
    sig = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": "v1," + base64.b64encode(sig).decode(),
        "content-type": "application/json",
    }


def _kannel(w: World, mid: int, kind: int, token: str = TOKEN) -> tuple[str, str, Any]:
    query = urlencode({"message_id": mid, "type": kind, "smsc-id": "smsc1", "reply": "ACK/"})
    return ("GET", f"/reports/{w.kannel}/kannel/{token}?{query}", None)


def _infobip(w: World, items: list[tuple[str, str]], token: str = TOKEN) -> tuple[str, str, Any]:
    results = [
        {
            "bulkId": "tidings-x",
            "messageId": pid,
            "to": "41793020000",
            "sentAt": "2026-11-22T04:00:00.000+0000",
            "doneAt": "2026-11-22T04:00:05.000+0000",
            "smsCount": 1,
            "price": {"pricePerMessage": 0.01, "currency": "EUR"},
            "status": {"groupId": 0, "groupName": group, "id": 5, "name": f"{group}_X"},
            "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR"},
        }
        for pid, group in items
    ]
    return ("POST", f"/reports/{w.infobip}/infobip/{token}", {"results": results})


def _twilio(
    settings: Settings, w: World, sid: str, status: str, *, token: str = AUTH_TOKEN
) -> tuple[str, str, Any]:
    path = f"/reports/{w.twilio}/twilio"
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "MessageStatus": status,
        "SmsStatus": status,
        "To": "+41793020000",
        "From": "Acme",
        "ApiVersion": "2010-04-01",
    }
    signature = twilio_signature(token, settings.public_url.rstrip("/") + path, form)
    return ("FORM", path, (form, signature))


async def _send(http: httpx.AsyncClient, request: tuple[str, str, Any]) -> httpx.Response:
    method, path, body = request
    if method == "GET":
        return await http.get(path)
    if method == "FORM":
        form, signature = body
        return await http.post(path, data=form, headers={"X-Twilio-Signature": signature})
    return await http.post(path, json=body)


async def _states(db: Database, ids: list[int]) -> dict[int, str]:
    async with db.session() as session:
        rows = await session.execute(select(Message.id, Message.status).where(Message.id.in_(ids)))
        return {mid: status for mid, status in rows}  # noqa: C416 — rows, not pairs


async def _broadcast(db: Database, broadcast_id: int) -> Broadcast:
    async with db.session() as session:
        found = await session.get(Broadcast, broadcast_id)
        assert found is not None
        return found


async def _rejected(http: httpx.AsyncClient, org: OrgWithKey) -> dict[tuple[str, str], int]:
    response = await http.get(f"/v1/orgs/{org.id}/reports/rejected", headers=org.bearer)
    assert response.status_code == 200, response.text
    return {(r["source"], r["reason"]): r["count"] for r in response.json()["data"]}


async def test_kannel_reports(db: Database, client: httpx.AsyncClient) -> None:
    w = await _world(db, 3)
    a, b, _ = w.message_ids
    for request in (_kannel(w, a, 8), _kannel(w, a, 1), _kannel(w, a, 1), _kannel(w, b, 16)):
        response = await _send(client, request)
        assert response.status_code == 200, response.text
    assert (await _send(client, _kannel(w, b, 1, token=TOKEN[:-1] + "X"))).status_code == 403
    assert await _states(db, [a, b]) == {a: "delivered", b: "bounced"}
    broadcast = await _broadcast(db, w.broadcast_id)
    assert (broadcast.delivered_count, broadcast.failed_count) == (1, 1)
    async with db.session() as session:
        soft = await session.scalars(select(SoftBounce.count).where(SoftBounce.org_id == w.org.id))
        assert list(soft) == [1]  # a failure counts once, however often it is reported
    assert await _rejected(client, w.org) == {("kannel", "bad_signature"): 1}


async def test_infobip_reports(db: Database, client: httpx.AsyncClient) -> None:
    w = await _world(db, 5)
    ids = w.message_ids
    request = _infobip(w, [(str(ids[1]), "DELIVERED"), (str(ids[1]), "PENDING"),
                           (str(ids[4]), "UNDELIVERABLE")])  # fmt: skip
    response = await _send(client, request)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 3, "stale": 0, "pending": 0}
    assert await _states(db, [ids[1], ids[4]]) == {ids[1]: "delivered", ids[4]: "bounced"}
    # ids[0] went through Kannel: its id is no Infobip messageId
    response = await _send(client, _infobip(w, [(str(ids[0]), "DELIVERED")]))
    assert response.json() == {"accepted": 0, "stale": 1, "pending": 0}
    response = await _send(client, _infobip(w, [(str(ids[1] + 10_000), "DELIVERED")]))
    assert response.json() == {"accepted": 0, "stale": 1, "pending": 0}
    assert (
        await client.post(f"/reports/{w.infobip}/infobip/{TOKEN}", content=b"{")
    ).status_code == 422
    assert (
        await _send(client, _infobip(w, [(str(ids[1]), "DELIVERED")], token="x" * 24))
    ).status_code == 403
    assert await _rejected(client, w.org) == {
        ("infobip", "stale"): 2, ("infobip", "malformed"): 1, ("infobip", "bad_signature"): 1,
    }  # fmt: skip


async def test_twilio_status_callbacks(
    db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    w = await _world(db, 3)
    mid = w.message_ids[2]
    for status in ("sent", "delivered"):
        response = await _send(client, _twilio(settings, w, _sid(mid), status))
        assert response.status_code == 200, response.text
    assert await _states(db, [mid]) == {mid: "delivered"}
    forged = _twilio(settings, w, _sid(mid), "undelivered", token="not-the-auth-token")
    assert (await _send(client, forged)).status_code == 403
    form = forged[2][0]
    assert (await client.post(f"/reports/{w.twilio}/twilio", data=form)).status_code == 401
    assert await _states(db, [mid]) == {mid: "delivered"}
    assert (await _broadcast(db, w.broadcast_id)).delivered_count == 1
    assert await _rejected(client, w.org) == {
        ("twilio", "bad_signature"): 1, ("twilio", "unsigned"): 1,
    }  # fmt: skip


async def test_generic_signed_json(db: Database, client: httpx.AsyncClient) -> None:
    w = await _world(db, 3)
    mid = w.message_ids[0]
    body = json.dumps(
        {"reports": [{"id": "r-1", "message_id": mid, "type": "bounced", "permanent": True,
                      "reason": "550 5.1.1 no such user"}]}
    ).encode()  # fmt: skip
    path = f"/reports/{w.generic}/json"
    assert (await client.post(path, content=body)).status_code == 401
    stale = standard_headers(SECRET, body, ts=int(time.time()) - 301)
    assert (await client.post(path, content=body, headers=stale)).status_code == 403
    other = "whsec_" + base64.b64encode(b"z" * 32).decode()
    forged = standard_headers(other, body)
    assert (await client.post(path, content=body, headers=forged)).status_code == 403
    assert await _states(db, [mid]) == {mid: "sent"}
    for _ in range(2):
        response = await client.post(path, content=body, headers=standard_headers(SECRET, body))
        assert response.status_code == 200, response.text
    assert await _states(db, [mid]) == {mid: "bounced"}
    assert (await _broadcast(db, w.broadcast_id)).failed_count == 1
    async with db.session() as session:
        reasons = list(await session.scalars(select(Suppression.reason)))
    assert reasons == ["hard_bounce"]
    assert await _rejected(client, w.org) == {
        ("json", "unsigned"): 1, ("json", "stale"): 1, ("json", "bad_signature"): 1,
    }  # fmt: skip


async def test_dlr_storm(db: Database, client: httpx.AsyncClient, settings: Settings) -> None:
    """200 messages over three providers; every genuine report three times, shuffled;
    1% forged (wrong token or signature, each one a lie that would change a state) and
    1% stale (another org's message, or one sent 8 days ago); then exact states and
    counters."""
    rng = random.Random(5)
    w = await _world(db, 201)
    other = await _world(db, 3, name="Other")
    old, ids = w.message_ids[0], w.message_ids[1:]
    async with db.session() as session:
        await session.execute(
            update(Message).where(Message.id == old).values(sent_at=utcnow() - timedelta(days=8))
        )
        await session.commit()
    truth: dict[int, str] = {}
    genuine: list[tuple[str, str, Any]] = []
    lies: list[tuple[int, str]] = []  # (message, the opposite of its truth)
    for k, mid in enumerate(w.message_ids):
        if mid == old:
            continue
        final = "bounced" if k % 5 == 0 else "delivered"
        truth[mid] = final
        lies.append((k, "delivered" if final == "bounced" else "bounced"))
        provider = k % 3
        if provider == 0:
            genuine += [_kannel(w, mid, 8), _kannel(w, mid, 1 if final == "delivered" else 2)]
        elif provider == 1:
            group = "DELIVERED" if final == "delivered" else "UNDELIVERABLE"
            genuine += [_infobip(w, [(str(mid), "PENDING")]), _infobip(w, [(str(mid), group)])]
        else:
            status = "delivered" if final == "delivered" else "undelivered"
            genuine += [_twilio(settings, w, _sid(mid), "sent"),
                        _twilio(settings, w, _sid(mid), status)]  # fmt: skip
    requests = genuine * 3
    n_bad = len(requests) // 100
    forged = []
    for k, lie in rng.sample(lies, n_bad):
        mid = w.message_ids[k]
        forged.append(
            (
                _kannel(w, mid, 1 if lie == "delivered" else 2, token=TOKEN[::-1]),
                _infobip(w, [(str(mid), "DELIVERED" if lie == "delivered" else "EXPIRED")],
                         token=TOKEN[::-1]),
                _twilio(settings, w, _sid(mid), "delivered" if lie == "delivered" else "failed",
                        token=AUTH_TOKEN[::-1]),
            )[k % 3]
        )  # fmt: skip
    stale = []
    for i in range(n_bad):
        target = other.message_ids[i % 3] if i % 2 else old
        stale.append(
            (
                _kannel(w, target, 2),
                _infobip(w, [(str(target), "UNDELIVERABLE")]),
                _twilio(settings, w, _sid(target), "failed"),
            )[i % 3]
        )
    requests += forged + stale
    rng.shuffle(requests)
    for start in range(0, len(requests), 8):
        responses = await asyncio.gather(*(_send(client, r) for r in requests[start : start + 8]))
        for request, response in zip(requests[start : start + 8], responses, strict=True):
            expected = 403 if request in forged else 200
            assert response.status_code == expected, (request, response.text)

    assert await _states(db, ids) == truth
    assert await _states(db, [old]) == {old: "sent"}
    assert set((await _states(db, other.message_ids)).values()) == {"sent"}
    broadcast = await _broadcast(db, w.broadcast_id)
    delivered = sum(1 for s in truth.values() if s == "delivered")
    assert (broadcast.delivered_count, broadcast.failed_count) == (
        delivered,
        len(truth) - delivered,
    )
    assert (await _broadcast(db, other.broadcast_id)).failed_count == 0
    rejected = await _rejected(client, w.org)
    assert sum(n for (_, reason), n in rejected.items() if reason == "bad_signature") == n_bad
    assert sum(n for (_, reason), n in rejected.items() if reason == "stale") == n_bad
    assert sum(rejected.values()) == 2 * n_bad
    assert await _rejected(client, other.org) == {}

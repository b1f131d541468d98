"""The ledger's invariant under concurrent use, as a seeded random walk (hypothesis is
not a dependency): rounds of concurrent SMS sends (live and test keys, 1 to 3 segments
once their link is in), broadcasts (now, or scheduled and then cancelled), top-ups, and
two dispatchers sending through a channel that fails some recipients. After every
round, for the org:

- its balance is the sum of its ledger, and no balance (now, or after any entry) is
  below zero;
- what its ledger took for sends is what its messages still hold: the sum of `cost` over
  the messages not failed, skipped or cancelled;

and at the end every sent SMS cost its price per segment × the segments it was sent
with (a test key's, nothing)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.support.factories import OrgWithKey, make_org
from tidings.channels.base import Outgoing, PermanentSendError, Result, TransientSendError
from tidings.contacts.models import Contact
from tidings.content.render import Renderer
from tidings.credits.models import CreditBalance, CreditEntry
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.dispatcher.retry import RetryPolicy
from tidings.outbox.models import Message
from tidings.testing import RecordingChannel
from tidings.testing.channel import sent

CH_PRICE, OTHER_PRICE = 10_000, 25_000  # micro-credits per segment
PHONES = [f"+4179302{i:04d}" for i in range(10)] + ["+33612345678", "+33612345679"]
REJECTED = {PHONES[3], PHONES[10]}  # the provider refuses these for good
FLAKY = {PHONES[5]}  # the provider is busy for these (one attempt: failed)
NOTES = ["", "Hi", "x" * 150, "x" * 280, "é" * 100]  # UCS-2 too
REFUNDED = ("failed", "skipped", "cancelled")


def _provider(message: Outgoing) -> Result:
    if message.recipient in REJECTED:
        return PermanentSendError("rejected by the provider")
    if message.recipient in FLAKY:
        return TransientSendError("busy")
    return sent(message)


class Walk:
    def __init__(
        self, client: httpx.AsyncClient, org: OrgWithKey, test_key: dict[str, str], seed: int
    ) -> None:
        self.client, self.org, self.test_key = client, org, test_key
        self.rng = random.Random(seed)  # a reproducible walk
        self.base = f"/v1/orgs/{org.id}"
        self.campaign_id = 0
        self.broadcasts: list[int] = []
        self.statuses: list[int] = []

    async def _post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", self.org.bearer)
        response = await self.client.post(f"{self.base}{path}", json=body, headers=headers)
        self.statuses.append(response.status_code)
        return response

    async def send(self) -> None:
        key = self.test_key if self.rng.random() < 0.15 else self.org.bearer
        body = {
            "campaign_id": self.campaign_id,
            "to": {"phone": self.rng.choice(PHONES)},
            "variables": {"note": self.rng.choice(NOTES)},
        }
        response = await self._post("/messages", body, headers=key)
        assert response.status_code in (201, 402), response.text

    async def broadcast(self) -> None:
        later = self.rng.random() < 0.5
        body = {
            "name": "walk",
            "campaign_id": self.campaign_id,
            "recipients": [
                {"phone": phone, "variables": {"note": self.rng.choice(NOTES)}}
                for phone in self.rng.sample(PHONES, self.rng.randint(1, 4))
            ],
            "scheduled_at": "2999-01-01T00:00:00Z" if later else None,
        }
        response = await self._post("/broadcasts", body)
        assert response.status_code in (201, 402), response.text
        if response.status_code == 201:
            self.broadcasts.append(response.json()["id"])

    async def cancel(self) -> None:
        if not self.broadcasts:
            return
        broadcast_id = self.rng.choice(self.broadcasts)
        response = await self._post(f"/broadcasts/{broadcast_id}/cancel")
        assert response.status_code in (200, 409), response.text

    async def top_up(self) -> None:
        amount = self.rng.choice([0.01, 0.02, 0.05])
        response = await self._post("/credits/top-ups", {"amount": amount})
        assert response.status_code == 201, response.text


async def _setup(client: httpx.AsyncClient, org: OrgWithKey) -> tuple[int, dict[str, str]]:
    base, h = f"/v1/orgs/{org.id}", org.bearer
    prices = [
        {"channel": "sms", "country": "CH", "amount": CH_PRICE / 1e6},
        {"channel": "sms", "country": "*", "amount": OTHER_PRICE / 1e6},
    ]
    assert (await client.put(f"{base}/prices", json={"prices": prices}, headers=h)).is_success
    template = await client.post(
        f"{base}/templates",
        json={"name": "t", "channel": "sms", "text": "{{ note }} {{ invite_link }}"},
        headers=h,
    )
    campaign = await client.post(
        f"{base}/campaigns",
        json={"name": "c", "channel": "sms", "template_id": template.json()["id"],
              "sms_sender": "Acme", "invite_url": "https://survey.example/s"},
        headers=h,
    )  # fmt: skip
    assert campaign.status_code == 201, campaign.text
    issued = await client.post(f"{base}/keys", json={"name": "t", "kind": "test"}, headers=h)
    assert issued.status_code == 201, issued.text
    return int(campaign.json()["id"]), {"Authorization": f"Bearer {issued.json()['api_key']}"}


async def _check_ledger(db: Database, org: OrgWithKey) -> None:
    async with db.session() as session:
        balance = await session.scalar(
            select(CreditBalance.balance).where(CreditBalance.org_id == org.id)
        )
        entries = list(
            await session.execute(
                select(CreditEntry.kind, CreditEntry.amount, CreditEntry.balance_after).where(
                    CreditEntry.org_id == org.id
                )
            )
        )
        held = await session.scalar(
            select(func.coalesce(func.sum(Message.cost), 0)).where(
                Message.org_id == org.id, Message.status.not_in(REFUNDED)
            )
        )
    assert balance is not None
    assert balance == sum(amount for _, amount, _ in entries)
    assert balance >= 0
    assert min(after for _, _, after in entries) >= 0
    taken = -sum(amount for kind, amount, _ in entries if kind != "top-up")
    assert taken == held


async def _check_sent_costs(db: Database, org: OrgWithKey) -> int:
    """Every sent SMS cost its destination's price × its segments (a test key's: 0);
    returns how many were sent."""
    async with db.session() as session:
        rows = list(
            await session.execute(
                select(Message.cost, Message.segments, Message.is_test, Contact.phone_country)
                .join(Contact, Contact.id == Message.contact_id)
                .where(Message.org_id == org.id, Message.status == "sent")
            )
        )
    for cost, segments, is_test, country in rows:
        price = CH_PRICE if country == "CH" else OTHER_PRICE
        assert cost == (0 if is_test else price * segments), (cost, segments, is_test, country)
    return len(rows)


@pytest.mark.parametrize("seed", [15, 2026])
async def test_the_balance_is_the_ledger_under_concurrent_sends_cancels_failures_and_top_ups(
    client: httpx.AsyncClient, db: Database, seed: int
) -> None:
    org = await make_org(db)
    campaign_id, test_key = await _setup(client, org)
    walk = Walk(client, org, test_key, seed)
    walk.campaign_id = campaign_id
    channel = RecordingChannel(_provider)
    config = DispatcherConfig(batch_size=7, retry=RetryPolicy(max_attempts=1))
    workers = [
        Dispatcher(db, renderer=Renderer(), config=config, channels=lambda spec, db: channel)
        for _ in range(2)
    ]
    await walk.top_up()
    for _ in range(10):
        steps: list[Awaitable[Any]] = [
            walk.rng.choice([walk.send, walk.send, walk.broadcast, walk.cancel, walk.top_up])()
            for _ in range(8)
        ]
        steps += [worker.tick() for worker in workers]
        walk.rng.shuffle(steps)
        await asyncio.gather(*steps)
        await _check_ledger(db, org)
    for worker in workers:
        await worker.drain()
    await _check_ledger(db, org)
    assert await _check_sent_costs(db, org) > 0
    assert 402 in walk.statuses  # the walk did run the balance out
    failed = {m.recipient for m in channel.messages} & (REJECTED | FLAKY)
    assert failed  # and some sends failed at the provider

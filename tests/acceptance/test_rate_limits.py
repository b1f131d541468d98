"""A connection's messages-per-second limit, enforced by the dispatcher on a controlled
clock: each second the provider sees no more than the rate; deferred messages keep their
attempt; a 429's Retry-After stops the connection for everyone."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from tests.acceptance.test_provider_faults import (
    Clock,
    _broadcast,
    _clock,
    _infobip_ok,
    _message_ids,
    _messages,
)
from tests.support.factories import make_org
from tests.support.gateway import Gateway, Recorded
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.worker import Dispatcher, DispatcherConfig


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    server = Gateway()
    await server.start()
    yield server
    await server.stop()


async def test_the_provider_never_sees_more_than_the_rate(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    per_second = 2
    seen_at: list[float] = []
    clock: Clock = _clock()

    def plan(request: Recorded) -> object:
        seen_at.extend([clock.now.timestamp()] * len(_message_ids(request)))
        return _infobip_ok(request)

    gateway.plan = plan  # type: ignore[assignment]
    org = await make_org(db)
    infobip = {
        "kind": "infobip",
        "settings": {"base_url": gateway.url, "batch_size": 100},
        "credentials": {"api_key": "k"},
        "max_per_second": per_second,
    }
    broadcast_id = await _broadcast(client, org, channel="sms", connection=infobip)
    config = DispatcherConfig(batch_size=50)  # one claim takes every message
    dispatcher = Dispatcher(
        db, renderer=Renderer(), config=config, clock=clock, rng=random.Random(1)
    )
    try:
        for _ in range(40):  # 10 simulated seconds, a tick every quarter second
            await dispatcher.tick()
            clock.now += timedelta(seconds=0.25)
    finally:
        await dispatcher.close()

    messages = await _messages(client, org, broadcast_id)
    assert {m["status"] for m in messages.values()} == {"sent"}
    assert {m["attempts"] for m in messages.values()} == {1}  # deferrals cost no attempt
    assert len(seen_at) == len(messages)  # each sent once
    # A token bucket holding one second's worth: in any window of w seconds, at most
    # rate × w + one second's burst; and over the whole send, the rate on average.
    times = sorted(seen_at)
    burst = per_second
    for i, first in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= per_second * (times[j] - first) + burst + 1e-9
    assert times[-1] - times[0] >= (len(times) - burst) / per_second - 1e-9

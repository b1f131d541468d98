"""A connection's messages-per-second limit, enforced by the dispatcher on a controlled
clock: each second the provider sees no more than the rate; deferred messages keep their
attempt; a 429's Retry-After stops the connection for everyone."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import httpx

from tests.acceptance.test_provider_faults import (
    _broadcast,
    _clock,
    _message_ids,
    _messages,
)
from tests.support.factories import make_org
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.testing import Clock, Gateway, Recorded, infobip_ok


async def test_the_provider_never_sees_more_than_the_rate(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    per_second = 2
    seen_at: list[float] = []
    clock: Clock = _clock()

    def plan(request: Recorded) -> object:
        seen_at.extend([clock.now.timestamp()] * len(_message_ids(request)))
        return infobip_ok(request)

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


def _infobip(gateway: Gateway, *, batch_size: int, max_concurrency: int) -> dict[str, object]:
    return {
        "kind": "infobip",
        "settings": {"base_url": gateway.url, "batch_size": batch_size},
        "credentials": {"api_key": "k"},
        "max_concurrency": max_concurrency,
    }


async def test_a_batching_channel_counts_a_request_as_one_send(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    """Infobip carries up to batch_size messages per request, so max_concurrency 1 means
    one request at a time, not one message: the whole batch goes in one request."""
    gateway.plan = infobip_ok
    org = await make_org(db)
    connection = _infobip(gateway, batch_size=100, max_concurrency=1)
    broadcast_id = await _broadcast(client, org, channel="sms", connection=connection)
    dispatcher = Dispatcher(db, renderer=Renderer(), config=DispatcherConfig(batch_size=50))
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()

    messages = await _messages(client, org, broadcast_id)
    assert {m["status"] for m in messages.values()} == {"sent"}
    (request,) = gateway.requests
    assert _message_ids(request) == {str(m["id"]) for m in messages.values()}


async def test_batching_workers_together_keep_max_concurrency_requests_in_flight(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    """Two workers, requests of 2 messages, max_concurrency 2 for the cluster: never more
    than 2 requests in flight together; what a worker could not send waits, attempt kept."""
    in_flight = most = 0

    async def plan(request: Recorded) -> object:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)  # long enough for the other worker to ask meanwhile
        in_flight -= 1
        return infobip_ok(request)

    gateway.plan = plan  # type: ignore[assignment]
    org = await make_org(db)
    connection = _infobip(gateway, batch_size=2, max_concurrency=2)
    broadcast_id = await _broadcast(client, org, channel="sms", connection=connection)
    clock = _clock()
    workers = [
        Dispatcher(
            db,
            renderer=Renderer(),
            config=DispatcherConfig(batch_size=4),
            clock=clock,
            rng=random.Random(seed),
        )
        for seed in range(2)
    ]
    try:
        for _ in range(10):
            await asyncio.gather(*(worker.tick() for worker in workers))
            clock.now += timedelta(seconds=1)
    finally:
        for worker in workers:
            await worker.close()

    messages = await _messages(client, org, broadcast_id)
    assert {m["status"] for m in messages.values()} == {"sent"}
    assert {m["attempts"] for m in messages.values()} == {1}
    sent = [i for request in gateway.requests for i in _message_ids(request)]
    assert sorted(sent) == sorted(str(m["id"]) for m in messages.values())  # each once
    assert all(len(_message_ids(request)) <= 2 for request in gateway.requests)
    assert most <= 2

"""The webhook delivery loop: claim due deliveries, POST them signed, record the outcome.

    tick():  claim(batch) ──▶ POST each (signed, concurrently, 10 s timeout, through the
             SSRF-guarded client) ──▶ record(outcomes) in one transaction

A 2xx answer delivers. Anything else — another status (a 3xx too: redirects are never
followed), no answer (refused, reset or timed out: one reason, `NO_ANSWER`, so that the
org cannot tell an open port from a closed one), an address the operator's outbound
policy refuses — is a failed attempt, tried again after
`RetryPolicy.delay` until the next attempt would fall more than `RetryPolicy.window`
(a day) after the delivery was created; then the delivery is `failed`.

It runs as its own task beside the dispatcher: `tidings serve` starts it in the app's
lifespan when the embedded dispatcher is on, and `tidings worker` runs it with its
dispatcher (`tidings.dispatcher.run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from tidings.db.availability import unavailable
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.net.answers import excerpt
from tidings.net.ssrf import STRICT, OutboundPolicy, UnsafeURL, guarded_client, parse
from tidings.webhooks import queries, signing
from tidings.webhooks.queries import Attempted, Claimed

log = logging.getLogger(__name__)
RESPONSE_BYTES = 64 * 1024  # read this much of an answer (keeps the connection reusable)
ERROR_CHARS = 500  # the last_error column
NO_ANSWER = "connection failed: no answer from the receiver"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delays after the 1st, 2nd, … failed attempt (the last repeats), ±`jitter`; no
    attempt is scheduled past `window` after the delivery was created."""

    delays: tuple[float, ...] = (5, 30, 120, 600, 1_800, 3_600, 7_200, 14_400, 28_800)
    jitter: float = 0.1
    window: timedelta = timedelta(days=1)

    def next_attempt(
        self, *, attempts: int, created_at: datetime, now: datetime, rng: random.Random
    ) -> datetime | None:
        """When to try again after `attempts` failed attempts, or None: give up."""
        base = self.delays[min(attempts, len(self.delays)) - 1]
        wait = base + rng.uniform(-base * self.jitter, base * self.jitter)
        at = now + timedelta(seconds=wait)
        return at if at <= created_at + self.window else None


@dataclass(frozen=True, slots=True)
class SenderConfig:
    batch_size: int = 50
    timeout: float = 10.0
    idle_sleep: float = 1.0
    policy: OutboundPolicy = STRICT
    retry: RetryPolicy = RetryPolicy()


class WebhookSender:
    """One delivery loop. `tick()` does one batch; `run()` ticks until stopped; `drain()`
    ticks until nothing is due (tests, one-shot runs)."""

    def __init__(
        self,
        db: Database,
        *,
        config: SenderConfig | None = None,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.config = config or SenderConfig()
        self.client = client or guarded_client(
            policy=self.config.policy, timeout=self.config.timeout
        )
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not security)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    busy = await self.tick()
                except Exception as exc:
                    if unavailable(exc):  # a restart: one line, not a traceback a tick
                        log.warning("webhook deliveries: the database is unavailable (%r)", exc)
                    else:
                        log.exception("webhook delivery tick failed; retrying")
                    busy = 0
                if busy:
                    seconds = time.perf_counter() - started
                    log.debug("webhook deliveries: %d attempted in %.3f s", busy, seconds)
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=self.config.idle_sleep)
        finally:
            await self.close()

    async def close(self) -> None:
        await self.client.aclose()

    async def drain(self, max_ticks: int = 1_000) -> int:
        """Tick until nothing is due now; returns the attempts made."""
        made = 0
        for _ in range(max_ticks):
            done = await self.tick()
            if not done:
                return made
            made += done
        raise RuntimeError("webhook deliveries did not drain")

    async def tick(self) -> int:
        """Claim, send and record one batch; returns the attempts made (0 = idle)."""
        now = self.clock()
        # The lease outlasts the attempt, so a live worker's rows are never claimed twice.
        lease_until = now + timedelta(seconds=self.config.timeout * 3 + 30)
        async with self.db.transaction() as session:
            claimed = await queries.claim(
                session, now=now, lease_until=lease_until, limit=self.config.batch_size
            )
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self._attempt(item) for item in claimed))
        async with self.db.transaction() as session:
            await queries.record(session, outcomes=outcomes)
        return len(outcomes)

    async def _attempt(self, item: Claimed) -> Attempted:
        code, error = await self._post(item)
        now = self.clock()
        if error is None:
            return Attempted(item.id, "delivered", now, code, None, delivered_at=now)
        log.warning("webhook delivery %s attempt %s failed: %s", item.id, item.attempts, error)
        retry_at = self.config.retry.next_attempt(
            attempts=item.attempts, created_at=item.created_at, now=now, rng=self.rng
        )
        if retry_at is None:
            return Attempted(item.id, "failed", now, code, error[:ERROR_CHARS])
        return Attempted(item.id, "pending", retry_at, code, error[:ERROR_CHARS])

    async def _post(self, item: Claimed) -> tuple[int | None, str | None]:
        """(status code, error or None when delivered)."""
        body = json.dumps(item.payload, separators=(",", ":")).encode()
        headers = signing.headers(
            item.secret,
            msg_id=signing.message_id(item.id),
            timestamp=int(self.clock().timestamp()),
            body=body,
        )
        try:
            parse(item.url)  # the scheme and credentials rules; the guard checks addresses
            async with self.client.stream("POST", item.url, content=body, headers=headers) as r:
                read = 0
                async for chunk in r.aiter_raw():
                    read += len(chunk)
                    if read > RESPONSE_BYTES:
                        break
        except UnsafeURL as exc:
            return None, f"refused: {exc.reason}"
        except httpx.HTTPError as exc:
            # One reason for refused, reset, timed out…: the org must not tell an open
            # port from a closed one. The cause is in the operator's log.
            log.info("webhook delivery %s: %s: %s", item.id, type(exc).__name__, excerpt(str(exc)))
            return None, NO_ANSWER
        if 200 <= r.status_code < 300:
            return r.status_code, None
        if r.is_redirect:
            location = excerpt(r.headers.get("location", ""))
            return r.status_code, f"HTTP {r.status_code}: redirect to {location!r} not followed"
        return r.status_code, f"HTTP {r.status_code}"

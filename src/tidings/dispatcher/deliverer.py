"""Sending a rendered batch through its connections, within their cluster-wide limits.

    send(rendered, outcomes) ──▶ per connection: the live channel (rebuilt when the row changed)
        sink ─────────▶ call_provider(whole group)
        a connection ─▶ acquire slots (max_concurrency) ──▶ acquire a rate grant
                        ──▶ call_provider(chunks), each once the batch's recorder has
                            room for it … until done or the provider pushes back
                        ──▶ release the slots ──▶ penalise on push-back
                        ──▶ the rest deferred, spread at the rate, no attempt used
    ──▶ one Outcome per message, handed to `outcomes` the moment it is known (a streaming
        channel reports each reply as it reads it): sent, queued again (retry policy),
        or failed

`outcomes` (the batch's `dispatcher/recorder.py`) writes them down in small steps, and
no chunk goes to a provider before it has room for it (`room`): at most twice
`record_every` messages are handed over without their outcome written down, so a worker
killed mid-batch sends again only those. A streaming channel (SMTP) gets chunks of half
`record_every`, so that chunks go while the last ones' outcomes are written. A group that
cannot go on (the database unreachable while taking a connection's slots, or a bug)
ends every message it had not yet handed over: deferred, its attempt given back, when
the database was away; queued again as an "internal error" attempt otherwise.

`call_provider` is the one place a channel is called: it times the call, logs one line
per call (and one per failed message, without content), and turns a SendError raised
for the whole batch into one result per message.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from tidings import metrics
from tidings.channels.base import (
    Channel,
    Outgoing,
    RecipientRefused,
    Report,
    Result,
    SendError,
    Sent,
    TransientSendError,
    internal_error,
)
from tidings.channels.provider import Builder
from tidings.channels.registry import ConnectionSpec, build_channel
from tidings.db.availability import unavailable
from tidings.db.engine import Database
from tidings.dispatcher.limits import ConnectionLimiter, Grant
from tidings.dispatcher.renderer import Rendered
from tidings.dispatcher.retry import RetryPolicy
from tidings.outbox.outcomes import Outcome
from tidings.outbox.queue import Claimed
from tidings.outbox.status import MessageStatus

log = logging.getLogger(__name__)
PUSHBACK_CHECK_EVERY = 1000
"""Messages handed to a channel between two looks at the connection's push-back block:
a 421 or 429 another worker got stops this worker's batch within this many messages."""

Group = list[tuple[Claimed, Outgoing]]
"""The messages of a batch that go through one connection, in claim order."""


async def call_provider(
    channel: Channel,
    batch: Sequence[Outgoing],
    *,
    spec: ConnectionSpec,
    report: Report | None = None,
    broadcasts: Mapping[int, int | None] | None = None,
) -> Sequence[Result]:
    """`channel.send(batch, report=report)`, timed and logged: one result per message, in
    order (`report` hears those the channel tells as it goes).

    Logs at INFO one line per call (connection, kind, messages, sent, failed, unsent,
    seconds) and at WARNING one line per failed message (its id, org, broadcast —
    `broadcasts` maps message ids to theirs —, connection and reason: never the
    recipient, the content or a credential). A message a push-back kept from being
    handed over (`attempted=False`) is unsent, not failed. A SendError raised for the
    whole batch becomes that error for each message.
    """
    started = time.perf_counter()
    results = await _send_each_failing_alone(channel, batch, where=_where(spec), report=report)
    seconds = time.perf_counter() - started
    sent = permanent = transient = 0
    for result in results:
        if isinstance(result, Sent):
            sent += 1
        elif not isinstance(result, TransientSendError):
            permanent += 1
        elif result.attempted:
            transient += 1
    failed = permanent + transient
    unsent = len(results) - sent - failed
    connection = "sink" if spec.id is None else str(spec.id)
    metrics.PROVIDER_CALL_SECONDS.labels(spec.kind, connection).observe(seconds)
    tally: Counter[tuple[str, str, str]] = Counter(
        (message.channel, *result_class(result))
        for message, result in zip(batch, results, strict=False)
    )
    for (message_channel, name, reason), count in tally.items():
        metrics.MESSAGE_RESULTS.labels(spec.kind, connection, message_channel, name, reason).inc(
            count
        )
    where = _where(spec)
    log.info(
        "provider call: %s, %d messages: %d sent, %d failed, %d unsent in %.3f s",
        where, len(batch), sent, failed, unsent, seconds,
        extra={"connection_id": spec.id, "kind": spec.kind, "seconds": round(seconds, 3)},
    )  # fmt: skip
    if failed:
        for message, result in zip(batch, results, strict=False):
            if isinstance(result, SendError) and (
                not isinstance(result, TransientSendError) or result.attempted
            ):
                reason = _without_recipient(result.reason, message.recipient)
                broadcast_id = (broadcasts or {}).get(message.message_id)
                log.warning(
                    "message %d (org %d, %s) not sent on %s, %s: %s",
                    message.message_id,
                    message.org_id,
                    "no broadcast" if broadcast_id is None else f"broadcast {broadcast_id}",
                    where,
                    "transient" if isinstance(result, TransientSendError) else "permanent",
                    reason,
                    extra={"message_id": message.message_id, "org_id": message.org_id,
                           "broadcast_id": broadcast_id, "connection_id": spec.id,
                           "reason": reason},
                )  # fmt: skip
    return results


def _without_recipient(reason: str, recipient: str) -> str:
    """A failure's reason fit for the log, which holds no recipient: a provider's reply
    often quotes the address ("550 5.1.1 <bob@example.com>: no such user")."""
    if not recipient:
        return reason
    return re.sub(re.escape(recipient), "<recipient>", reason, flags=re.IGNORECASE)


_REPLY_CODE = re.compile(r"(?<![\d.])([45])\d\d(?![\d.])")  # an SMTP or HTTP status: 421, 550, 503…
_CONNECTION_WORDS = ("connection", "connect", "timed out", "timeout", "unreachable")


def result_class(result: Result) -> tuple[str, str]:
    """A provider's result as two labels of bounded cardinality: the result (sent,
    failed, retried, unsent) and a class of its reason — never its text, which names
    addresses and varies without end:

        ok          sent
        held        not handed over (a push-back stopped the batch first): no attempt used
        pushback    the provider said to hold off (SMTP 421, HTTP 429 with Retry-After)
        internal    an unexpected exception (a bug), `internal error: …`
        connection  the connection failed, closed or timed out
        4xx / 5xx   the provider refused it with this class of reply code
        other       anything else
    """
    if isinstance(result, Sent):
        return "sent", "ok"
    transient = result if isinstance(result, TransientSendError) else None
    if transient is not None and not transient.attempted:
        return "unsent", "held"
    name = "failed" if transient is None else "retried"
    reason = result.reason
    if transient is not None and transient.retry_after is not None:
        return name, "pushback"
    if reason.startswith("internal error"):
        return name, "internal"
    if (code := _REPLY_CODE.search(reason)) is not None:
        return name, f"{code.group(1)}xx"
    lowered = reason.lower()
    if any(word in lowered for word in _CONNECTION_WORDS):
        return name, "connection"
    return name, "other"


def _where(spec: ConnectionSpec) -> str:
    return "the sink" if spec.id is None else f"connection {spec.id} ({spec.kind})"


async def _send_each_failing_alone(
    channel: Channel, batch: Sequence[Outgoing], *, where: str, report: Report | None
) -> Sequence[Result]:
    """`channel.send(batch)`. A SendError raised for the whole batch is the result of each
    message the channel had not reported. Any other exception is a bug, logged with its
    traceback, and the messages it had not reported are sent again one at a time, so that
    only what raises again fails, alone, with a transient "internal error" (retried until
    the retry policy gives up). A message handed over before the exception but not
    reported may go twice: at most this batch."""
    told: dict[int, Result] = {}

    def tell(position: int, result: Result) -> None:
        told[position] = result
        if report is not None:
            report(position, result)

    try:
        return await channel.send(batch, report=tell)
    except SendError as exc:  # the whole batch failed the same way
        return [told.get(position, exc) for position in range(len(batch))]
    except Exception as exc:
        log.exception("provider call on %s raised; sending its %d one by one", where, len(batch))
        if len(batch) == 1 and not told:
            return [TransientSendError(internal_error(exc))]
    results: list[Result] = []
    for position, outgoing in enumerate(batch):
        if position in told:
            results.append(told[position])
            continue
        alone = await _send_each_failing_alone(channel, [outgoing], where=where, report=None)
        results.extend(alone)
        if report is not None:
            report(position, alone[0])
    return results


Record = Callable[[Sequence[Outcome]], None]
"""Where the deliverer puts outcomes the moment it knows them."""


class Outcomes(Protocol):
    """What the deliverer needs of the batch's recorder (`dispatcher/recorder.py`)."""

    every: int  # outcomes written at once; twice this may be handed over unwritten

    def add(self, outcomes: Sequence[Outcome]) -> None:
        """Outcomes to write down (never blocks)."""

    async def room(self, count: int) -> None:
        """Wait until `count` more messages may be handed over."""


class Deliverer:
    """Sends rendered batches for one worker; keeps each connection's channel open
    between batches. `hold_seconds` is how long a grant holds its concurrency slots
    unless renewed (the worker's heartbeat renews them: a dead worker's slots free
    themselves that long after its last heartbeat)."""

    def __init__(
        self,
        db: Database,
        *,
        limiter: ConnectionLimiter,
        retry: RetryPolicy,
        hold_seconds: float,
        clock: Callable[[], datetime],
        rng: random.Random,
        channels: Builder = build_channel,
    ) -> None:
        self.db = db
        self.build_channel = channels
        self.limiter = limiter
        self.retry = retry
        self.hold_seconds = hold_seconds
        self.clock = clock
        self.rng = rng
        self._channels: dict[int | None, tuple[datetime | None, Channel]] = {}

    async def send(self, rendered: Rendered, outcomes: Outcomes) -> None:
        """Every outcome of a rendered batch, each to `outcomes` as soon as it is known: the
        failures found while rendering, then each connection's. Never raises (but for
        cancellation): every message of the batch gets its outcome."""
        outcomes.add([self._outcome(message, error) for message, error in rendered.failures])
        for connection_id, group in rendered.by_channel.items():
            await self.send_group(rendered.specs[connection_id], group, outcomes)

    async def close(self) -> None:
        """Close every provider connection this worker opened."""
        channels, self._channels = self._channels, {}
        for _, channel in channels.values():
            await channel.close()

    async def send_group(self, spec: ConnectionSpec, group: Group, outcomes: Outcomes) -> None:
        """Send what the connection's cluster-wide limits allow now; defer the rest. Each
        outcome goes to `outcomes` once, as soon as it is known."""
        record = outcomes.add
        done: set[int] = set()  # positions in `group` whose outcome was recorded

        def settle(position: int, result: Result) -> None:
            if position in done or (
                isinstance(result, TransientSendError) and not result.attempted
            ):
                return  # known already, or never handed over: deferred below
            done.add(position)
            message, outgoing = group[position]
            record([self._outcome(message, result, outgoing=outgoing, connection_id=spec.id)])

        wait = 0.0
        try:
            channel = await self._channel(spec)
            if spec.id is None:  # the sink has no limits
                sunk = await call_provider(
                    channel, [outgoing for _, outgoing in group], spec=spec, report=settle,
                    broadcasts=_broadcasts(group),
                )  # fmt: skip
                for position, result in enumerate(sunk):
                    settle(position, result)
                return
            results, retry_after = await self._send_limited(channel, spec, group, settle, outcomes)
            pushback = _pushback(results)
            if pushback is not None:
                await self._penalise(spec.id, seconds=pushback)
            wait = max(retry_after, pushback or 0.0)
        except Exception as exc:
            self._abandon(spec, group, done, exc, record)
            return
        # Spread the rest over the time the rate allows, so they do not all return at once.
        step = 1 / spec.max_per_second if spec.max_per_second else 0.0
        now = self.clock()
        later = [message for position, (message, _) in enumerate(group) if position not in done]
        record([
            Outcome(message.id, message.broadcast_id, MessageStatus.QUEUED,
                    retry_at=now + timedelta(seconds=wait + k * step), deferred=True)
            for k, message in enumerate(later)
        ])  # fmt: skip

    def _abandon(
        self, spec: ConnectionSpec, group: Group, done: set[int], exc: Exception, record: Record
    ) -> None:
        """The group's messages without an outcome after `exc` stopped it: deferred, their
        attempt given back, when the database could not be reached (they were never
        handed over); otherwise a transient "internal error" attempt (logged), so that a
        bug fails them after `max_attempts` instead of looping."""
        left = [(message, outgoing) for p, (message, outgoing) in enumerate(group) if p not in done]
        if unavailable(exc):
            log.warning(
                "%s: %d messages not handed over, the database is unavailable (%r); "
                "they wait their turn again", _where(spec), len(left), exc,
            )  # fmt: skip
            now = self.clock()
            record([
                Outcome(message.id, message.broadcast_id, MessageStatus.QUEUED, retry_at=now,
                        deferred=True)
                for message, _ in left
            ])  # fmt: skip
            return
        log.exception("sending on %s failed; %d messages queued again", _where(spec), len(left))
        error = TransientSendError(internal_error(exc))
        record([self._outcome(message, error) for message, _ in left])

    async def _penalise(self, connection_id: int, *, seconds: float) -> None:
        """Tell the cluster to hold off; when the database cannot hear it, only this
        worker holds off (its deferrals), and the outcomes are kept all the same."""
        try:
            await self.limiter.penalise(connection_id, seconds=seconds)
        except Exception as exc:
            if not unavailable(exc):
                raise
            log.warning("push-back on connection %d not shared: %r", connection_id, exc)

    async def _blocked_for(self, connection_id: int) -> float:
        """The connection's push-back block (0.0 while the database cannot be read: the
        batch in hand goes on, its outcomes kept)."""
        try:
            return await self.limiter.blocked_for(connection_id)
        except Exception as exc:
            if not unavailable(exc):
                raise
            return 0.0

    async def _send_limited(
        self,
        channel: Channel,
        spec: ConnectionSpec,
        group: Group,
        settle: Report,
        outcomes: Outcomes,
    ) -> tuple[list[Result], float]:
        """The results of the first messages of `group`, as many as the limits let go now
        (fewer when the provider pushed back), and the seconds until more could go; each
        result is also told to `settle` (by its position in `group`) as soon as it is known.

        Concurrency caps how many sends are in flight at once (slots held while they are
        sent); the rate caps how many go now at all. A channel with a `parallelism` (an
        SMTP pool's connections) asks for no more slots than that, and when it has them
        all gets the whole grant in one call, which it streams (pipelined SMTP).
        Otherwise the grant goes `slots.count` sends at a time. A channel that carries
        many messages in one request (`messages_per_request`: Infobip's batch_size)
        counts a request as one send. Each chunk waits for room in `outcomes` (see the
        module's docstring); a stream goes in chunks of half `outcomes.every`.
        """
        assert spec.id is not None
        parallelism = channel.parallelism
        per_send = channel.messages_per_request
        sends = -(-len(group) // per_send)
        slots = await self.limiter.acquire(
            spec.id,
            want=min(sends, spec.max_concurrency, parallelism or sends),
            per_second=None,
            max_concurrency=spec.max_concurrency,
            hold_seconds=self.hold_seconds,
        )
        grant = slots
        results: list[Result] = []
        held_off = 0.0  # a push-back another worker was told of, found between chunks
        try:
            if slots.count and spec.max_per_second is None:
                # No rate to take from: the slots' grant already saw any push-back block.
                grant = Grant(spec.id, len(group), 0.0)
            elif slots.count:
                grant = await self.limiter.acquire(
                    spec.id,
                    want=len(group),
                    per_second=spec.max_per_second,
                    max_concurrency=None,
                    hold_seconds=self.hold_seconds,
                )
            if slots.count:
                now_sending = [outgoing for _, outgoing in group[: grant.count]]
                broadcasts = _broadcasts(group)
                whole = parallelism is not None and parallelism <= slots.count
                width = max(outcomes.every // 2, 1) if whole else slots.count * per_send
                width = min(width, PUSHBACK_CHECK_EVERY)
                unchecked = 0  # messages handed over since the last look at the block
                for start in range(0, len(now_sending), width):
                    if unchecked >= PUSHBACK_CHECK_EVERY:
                        unchecked = 0
                        if held_off := await self._blocked_for(spec.id):
                            break  # another worker was told to hold off: this one stops too
                    await outcomes.room(min(width, len(now_sending) - start))
                    sent = await call_provider(
                        channel,
                        now_sending[start : start + width],
                        spec=spec,
                        report=_shifted(settle, start),
                        broadcasts=broadcasts,
                    )
                    for position, result in enumerate(sent, start):
                        settle(position, result)
                    unchecked += len(sent)
                    results.extend(sent)
                    if _pushback(sent) is not None:
                        break  # the provider said to hold off: what is left waits too
        finally:
            await self.limiter.release(slots)
        return results, max(grant.retry_after, held_off)

    async def _channel(self, spec: ConnectionSpec) -> Channel:
        """The live channel for a connection, rebuilt when the connection was changed."""
        cached = self._channels.get(spec.id)
        if cached is not None and cached[0] == spec.updated_at:
            return cached[1]
        if cached is not None:
            await cached[1].close()
        channel = self.build_channel(spec, self.db)
        self._channels[spec.id] = (spec.updated_at, channel)
        return channel

    def _outcome(
        self,
        message: Claimed,
        result: Result,
        *,
        outgoing: Outgoing | None = None,
        connection_id: int | None = None,
    ) -> Outcome:
        """Sent; never handed over: deferred, its attempt given back; a transient failure
        queued again after the retry policy's backoff (or the provider's Retry-After)
        until it gives up; otherwise failed. Each names `connection_id`, the connection
        it was handed to (failover, the breaker: `connections.health`)."""
        if isinstance(result, TransientSendError) and not result.attempted:
            return Outcome(
                message.id,
                message.broadcast_id,
                MessageStatus.QUEUED,
                retry_at=self.clock() + timedelta(seconds=result.retry_after or 0.0),
                deferred=True,
            )
        if isinstance(result, Sent):
            return Outcome(
                message.id,
                message.broadcast_id,
                MessageStatus.SENT,
                provider_id=result.provider_id,
                segments=outgoing.segments if outgoing is not None else None,
                email_message_id=outgoing.email_message_id if outgoing is not None else None,
                connection_id=connection_id,
            )
        transient = isinstance(result, TransientSendError)
        if isinstance(result, TransientSendError) and not self.retry.gives_up(message.attempts):
            delay = self.retry.delay(message.attempts, retry_after=result.retry_after, rng=self.rng)
            retry_at = self.clock() + timedelta(seconds=delay)
            return Outcome(
                message.id,
                message.broadcast_id,
                MessageStatus.QUEUED,
                result.reason,
                retry_at=retry_at,
                connection_id=connection_id,
                transient=True,
            )
        refused = None
        if isinstance(result, RecipientRefused) and message.recipient is not None:
            refused = (message.channel, message.recipient, result.reason)
        return Outcome(
            message.id,
            message.broadcast_id,
            MessageStatus.FAILED,
            result.reason,
            hard_bounce=refused,
            connection_id=connection_id,
            transient=transient,
        )


def _broadcasts(group: Group) -> dict[int, int | None]:
    """Message id → broadcast id, for the failure log lines."""
    return {message.id: message.broadcast_id for message, _ in group}


def _shifted(report: Report, offset: int) -> Report:
    """`report` for a chunk that starts at `offset` in its group."""

    def shifted(position: int, result: Result) -> None:
        report(offset + position, result)

    return shifted


def _pushback(results: Iterable[Result]) -> float | None:
    """The longest a provider asked to hold off in `results` (HTTP Retry-After, SMTP 421);
    None when none did."""
    waits = [
        r.retry_after
        for r in results
        if isinstance(r, TransientSendError) and r.retry_after is not None
    ]
    return max(waits, default=None)

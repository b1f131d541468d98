"""The dispatcher's steps on the database, each one transaction's worth of statements:
the outbox's own (`outbox.queue`, `outbox.outcomes`) and what moves with them in the same
transaction — the broadcasts' counters, `sent`/`failed` events and their webhooks, reserved
credit given back, tracked links stored.

    claim step    reap · claim · skip_suppressed (+ counters, credit of the skipped)
    settle step   settle: an SMS whose final text takes more or fewer segments than it
                  reserved is charged the difference or given it back before hand-over
    record step   record: outcomes · fallbacks · events · webhooks · counters · credit ·
                  links · the connections' breakers
    finish step   finish_broadcasts (SENDING → SENT through the broadcast table)
    heartbeat     beat · renew (the worker's slots) · free_dead_workers: their claimed
                  messages queued again, their slots and rows deleted
    leaving       free_workers(this one)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from tidings.broadcasts.counters import add_to_counters, finish_broadcasts
from tidings.broadcasts.fallback import fall_back
from tidings.connections import health
from tidings.credits import service as credits
from tidings.db.dialect import insert_selected_ignoring_conflicts, json_rows
from tidings.dispatcher.limit_queries import renew, unhold_all
from tidings.dispatcher.worker_queries import beat, dead, forget, join, silent_on
from tidings.events.outcomes import add_outcome_events, notify_outcome_events
from tidings.links.models import Link
from tidings.outbox import queue
from tidings.outbox.outcomes import Outcome, Written, counter_deltas
from tidings.outbox.outcomes import record as record_outcomes
from tidings.outbox.queue import Claimed, claim, next_due, reap
from tidings.outbox.status import MessageStatus
from tidings.suppressions import erased
from tidings.suppressions.service import suppress_hard_bounce

__all__ = [
    "Here",
    "beat",
    "claim",
    "finish_broadcasts",
    "free_dead_workers",
    "free_workers",
    "join",
    "next_due",
    "reap",
    "record",
    "renew",
    "settle",
    "skip_suppressed",
]


@dataclass(frozen=True, slots=True)
class Freed:
    """What freeing workers gave back: their (id, name), their claimed messages queued
    again, their connection slots deleted."""

    workers: list[tuple[int, str]]
    messages: int
    slots: int


@dataclass(frozen=True, slots=True)
class Here:
    """What a worker knows of its own host: its name, and whether a process id runs. A
    worker of this host silent since `silent_since` whose process is gone is dead then,
    without waiting for the general `silent_since`."""

    host: str
    silent_since: float
    running: Callable[[int], bool]


async def free_dead_workers(
    session: AsyncSession, *, silent_since: float, now: datetime, here: Here | None = None
) -> Freed:
    """Side effects, for every worker whose last heartbeat is before `silent_since` — and,
    given `here`, every worker of this host silent since `here.silent_since` whose
    process is gone —: the messages it claimed and holds no outcome for are QUEUED
    again, due now (`outbox.queue.free_claims`); its connection slots are deleted; its
    row too. The rows of workers another transaction is freeing are skipped
    (PostgreSQL)."""
    found = await dead(session, silent_since=silent_since)
    if here is not None:
        known = {worker_id for worker_id, _ in found}
        found += [
            (worker_id, name)
            for worker_id, name, pid in await silent_on(
                session, host=here.host, silent_since=here.silent_since
            )
            if worker_id not in known and not here.running(pid)
        ]
    return await free_workers(session, workers=found, now=now)


async def free_workers(
    session: AsyncSession, *, workers: Sequence[tuple[int, str]], now: datetime
) -> Freed:
    """Side effects: these workers' claimed messages without an outcome are QUEUED again,
    due now; their connection slots and their rows are deleted (a dead worker's, or one
    stopping: it frees what it could not finish)."""
    if not workers:
        return Freed([], 0, 0)
    ids = [worker_id for worker_id, _ in workers]
    messages = await queue.free_claims(session, worker_ids=ids, now=now)
    slots = await unhold_all(session, holders=[name for _, name in workers])
    await forget(session, worker_ids=ids)
    return Freed(list(workers), messages, slots)


async def skip_suppressed(
    session: AsyncSession,
    *,
    claimed: Sequence[Claimed],
    now: datetime,
    erasure_key: bytes | None = None,
) -> list[Claimed]:
    """The claimed messages still to send: those whose recipient became suppressed end
    SKIPPED (`outbox.queue.skip_suppressed`), an erased person's hashed suppression
    included (`suppressions.erased.restore`, given `erasure_key`). Only when it skips any:
    their broadcasts' skipped_count grows and recipients_count shrinks by them, and their
    reserved credit is released (one entry per org). Run in the claim's transaction."""
    if erasure_key is not None and claimed:
        await erased.restore(
            session,
            key=erasure_key,
            recipients=((c.org_id, c.channel, c.recipient) for c in claimed),
        )
    skipped = await queue.skip_suppressed(session, claimed=claimed, now=now)
    if not skipped:
        return list(claimed)
    deltas: dict[int, dict[str, int]] = {}
    refunds: dict[int, int] = {}
    for c in skipped:
        if c.broadcast_id is not None:
            counters = deltas.setdefault(
                c.broadcast_id, {"skipped_count": 0, "recipients_count": 0}
            )
            counters["skipped_count"] += 1
            counters["recipients_count"] -= 1
        if c.cost > 0:
            refunds[c.org_id] = refunds.get(c.org_id, 0) + c.cost
    await add_to_counters(session, deltas=deltas)
    await _refund(session, refunds, note="suppressed messages")
    gone = {c.id for c in skipped}
    return [c for c in claimed if c.id not in gone]


async def settle(
    session: AsyncSession, *, settlements: Sequence[credits.Settlement], lease_until: datetime
) -> set[int]:
    """The settle step, between rendering a batch and handing it over: of these SMS (each
    `credits.settlement` of its final text), those this worker still holds under
    `lease_until` (their rows locked: `outbox.queue.still_held`) are charged the extra
    segments, or given back the spare ones, with their cost and segments set
    (`credits.settle`). Returns the ids not to hand over: those the balance could not
    cover (to fail with "insufficient credit"), and those no longer held (another worker
    reclaimed them; their outcome would not be written anyway)."""
    if not settlements:
        return set()
    ids = [s.message_id for s in settlements]
    held = await queue.still_held(session, message_ids=ids, lease_until=lease_until)
    refused = await credits.settle(
        session, settlements=[s for s in settlements if s.message_id in held]
    )
    return refused | (set(ids) - held)


async def record(
    session: AsyncSession,
    *,
    outcomes: Sequence[Outcome],
    lease_until: datetime,
    now: datetime,
    links: Sequence[Mapping[str, Any]] = (),
    breaker: health.BreakerPolicy | None = None,
) -> int:
    """Write a batch's outcomes (`outbox.outcomes.record`: only rows still held under
    `lease_until`) and what moves with them: a `sent` or `failed` event per final
    outcome (never twice) and its webhook deliveries; sent_count / failed_count by the
    batch's totals, one UPDATE per broadcast; failed messages give back the cost they had
    reserved (as their rows hold it, settled or not), one ledger entry per org; an
    address the provider refused for good is suppressed as a hard bounce; the
    batch's tracked links (the originals `/l/{token}` redirects to) are stored, once even
    for a message sent twice; a failed message's fallback on the other channel, when its
    campaign has one (`broadcasts.fallback`); the breakers of the connections the
    outcomes went through move on by what they saw (`connections.health.observe`, under
    `breaker`). Returns how many messages were written."""
    recorded = await record_outcomes(session, outcomes=outcomes, lease_until=lease_until, now=now)
    await health.observe(
        session, tallies=_tallies(outcomes), now=now, policy=breaker or health.BreakerPolicy()
    )
    written = recorded.finals
    await _suppress_refused(session, outcomes=outcomes, written=written)
    # Cross-channel fallback: a message that failed for good goes on the other channel.
    await fall_back(
        session,
        message_ids=[w.message_id for w in written if w.status is MessageStatus.FAILED],
        now=now,
    )
    await add_outcome_events(session, message_ids=sorted(w.message_id for w in written), now=now)
    await notify_outcome_events(session, written=written)
    await add_to_counters(session, deltas=counter_deltas(written))
    await _refund(session, _failed_costs(written), note="failed messages")
    if links:
        v = json_rows(session, links, _LINK_COLUMNS)
        stored = insert_selected_ignoring_conflicts(session, Link, list(v), select(*v.values()))
        await session.execute(stored)
    return len(written) + recorded.requeued


_LINK_COLUMNS: dict[str, TypeEngine[Any]] = {
    "message_id": BigInteger(),
    "position": Integer(),
    "org_id": BigInteger(),
    "url": String(),
    "clicks": Integer(),
}  # fmt: skip; the keys of the links the worker gives `record`: one INSERT … SELECT


def _tallies(outcomes: Sequence[Outcome]) -> dict[int, health.Tally]:
    """Each connection's attempts and transient errors among `outcomes` (deferrals were
    never handed over: they count for nothing)."""
    counts: dict[int, list[int]] = {}
    for o in outcomes:
        if o.connection_id is not None and not o.deferred:
            tally = counts.setdefault(o.connection_id, [0, 0])
            tally[0] += 1
            tally[1] += o.transient
    return {cid: health.Tally(n, e) for cid, (n, e) in counts.items()}


async def _suppress_refused(
    session: AsyncSession, *, outcomes: Sequence[Outcome], written: Sequence[Written]
) -> None:
    """Side effect: each address a provider refused for good (`Outcome.hard_bounce`) is
    suppressed, as a bounce report's would be: only for messages whose failure was
    written now, so a stale worker's outcome suppresses nothing."""
    refused = {o.message_id: o.hard_bounce for o in outcomes if o.hard_bounce is not None}
    if not refused:
        return
    for w in written:
        bounce = refused.get(w.message_id)
        if bounce is not None and w.status is MessageStatus.FAILED:
            channel, address, reply = bounce
            await suppress_hard_bounce(
                session, org_id=w.org_id, channel=channel, address=address, source="smtp",
                note=reply,
            )  # fmt: skip


def _failed_costs(written: Sequence[Written]) -> dict[int, int]:
    refunds: dict[int, int] = {}
    for w in written:
        if w.status is MessageStatus.FAILED and w.cost > 0:
            refunds[w.org_id] = refunds.get(w.org_id, 0) + w.cost
    return refunds


async def _refund(session: AsyncSession, refunds: Mapping[int, int], *, note: str) -> None:
    """Side effect: each org's balance grows by its amount (one UPDATE and one ledger
    entry per org; a batch usually holds one org)."""
    for org_id, amount in sorted(refunds.items()):
        await credits.release(session, org_id=org_id, amount=amount, reference=None, note=note)

"""Each connection's circuit breaker, shared by every worker through `connection_health`.

    closed ──(≥ error_rate transient errors over ≥ min_attempts in the sliding window)──▶ open
    open ──(opened_until passes)──▶ half-open: `probes` messages a batch go through
    half-open ──(a probe sent)──▶ closed, counts cleared
    half-open ──(only errors)──▶ open again for `open_seconds`

The rules are pure (`advance`, `state_at`, `route`); the dispatcher's record step writes
what its outcomes did to each connection (`observe`: a fixed number of statements per
step, one row per connection, none per message), and its render step reads the states
(`states`) to route each message to the first connection of its campaign's list, from
its own turn, that is not open.

The window slides: attempts and errors are counted in the current window and in the one
before it, and the one before weighs what is left of it (at 15 s into a 60 s window,
75 % of the previous window's counts still count).

Only transient errors a provider answered count (a 503, a 421, a refused connection): a
permanent refusal of one recipient says nothing about the provider.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import cast

from sqlalchemy import Table, bindparam, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.connections.models import Connection, ConnectionHealth
from tidings.db.dialect import for_update, insert_selected_ignoring_conflicts, one_of
from tidings.db.owned import get_owned
from tidings.settings import Settings


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a connection opens and for how long (`TIDINGS_BREAKER_*`)."""

    error_rate: float = 0.5
    min_attempts: int = 20
    window_seconds: float = 60.0
    open_seconds: float = 30.0
    probes: int = 1  # messages a batch sends through a half-open connection


def breaker_policy(settings: Settings) -> BreakerPolicy:
    """The policy the `TIDINGS_BREAKER_*` settings say."""
    return BreakerPolicy(
        error_rate=settings.breaker_error_rate,
        min_attempts=settings.breaker_min_attempts,
        window_seconds=settings.breaker_window_seconds,
        open_seconds=settings.breaker_open_seconds,
        probes=settings.breaker_probes,
    )


@dataclass(frozen=True, slots=True)
class Health:
    """A connection's breaker as stored (a connection never seen: `Health.fresh`)."""

    state: BreakerState
    opened_until: datetime | None
    window_started_at: datetime
    attempts: int = 0
    errors: int = 0
    previous_attempts: int = 0
    previous_errors: int = 0

    @staticmethod
    def fresh(now: datetime) -> Health:
        return Health(BreakerState.CLOSED, None, now)


@dataclass(frozen=True, slots=True)
class Tally:
    """What one record step saw of a connection: attempts handed over, transient errors."""

    attempts: int
    errors: int


def state_at(health: Health, now: datetime) -> BreakerState:
    """The breaker's state at `now`: an open one whose cool-down has passed is half-open."""
    if health.state is BreakerState.OPEN and (
        health.opened_until is None or health.opened_until <= now
    ):
        return BreakerState.HALF_OPEN
    return health.state


def windowed(health: Health, now: datetime, policy: BreakerPolicy) -> tuple[float, float]:
    """The attempts and errors of the sliding window ending at `now`."""
    rolled = _roll(health, now, policy)
    into = (now - rolled.window_started_at).total_seconds() / policy.window_seconds
    weight = max(0.0, 1.0 - into)
    return (
        rolled.attempts + rolled.previous_attempts * weight,
        rolled.errors + rolled.previous_errors * weight,
    )


def _roll(health: Health, now: datetime, policy: BreakerPolicy) -> Health:
    """The counts moved on to the window `now` is in."""
    window = timedelta(seconds=policy.window_seconds)
    if now < health.window_started_at + window:
        return health
    if now < health.window_started_at + 2 * window:
        return replace(
            health,
            window_started_at=health.window_started_at + window,
            attempts=0,
            errors=0,
            previous_attempts=health.attempts,
            previous_errors=health.errors,
        )
    return replace(
        health, window_started_at=now, attempts=0, errors=0, previous_attempts=0,
        previous_errors=0,
    )  # fmt: skip


def advance(health: Health, tally: Tally, *, now: datetime, policy: BreakerPolicy) -> Health:
    """The breaker after a record step's `tally` at `now` (see the module's diagram)."""
    was = state_at(health, now)
    rolled = _roll(health, now, policy)
    counted = replace(
        rolled, attempts=rolled.attempts + tally.attempts, errors=rolled.errors + tally.errors
    )
    if was is BreakerState.HALF_OPEN:
        if tally.attempts > tally.errors:  # a probe went through
            return Health(BreakerState.CLOSED, None, now)
        if tally.errors:
            return replace(counted, state=BreakerState.OPEN, opened_until=_until(now, policy))
        return counted
    if was is BreakerState.OPEN:  # what was in flight when it opened
        return counted
    attempts, errors = windowed(counted, now, policy)
    if attempts >= policy.min_attempts and errors >= policy.error_rate * attempts:
        return replace(counted, state=BreakerState.OPEN, opened_until=_until(now, policy))
    return counted


def _until(now: datetime, policy: BreakerPolicy) -> datetime:
    return now + timedelta(seconds=policy.open_seconds)


@dataclass(frozen=True, slots=True)
class Closed:
    """Where no connection of a message's list is usable now: the soonest one reopens."""

    until: datetime


def route(
    connection_ids: Sequence[int],
    *,
    attempts: int,
    states: Mapping[int, Health],
    now: datetime,
    probes: dict[int, int],
) -> int | Closed:
    """The connection a message's attempt number `attempts` (1-based) goes through: its
    own turn in the list (attempt n takes the n-th, round the list, so an attempt that
    failed hands the next one to the next connection), else the first after it that is
    not open. A half-open one takes what `probes` (by connection, spent here) still
    allows this batch. `Closed` when every one is open."""
    count = len(connection_ids)
    start = (attempts - 1) % count
    reopens: list[datetime] = []
    for k in range(count):
        connection_id = connection_ids[(start + k) % count]
        health = states.get(connection_id)
        state = BreakerState.CLOSED if health is None else state_at(health, now)
        if state is BreakerState.CLOSED:
            return connection_id
        if state is BreakerState.HALF_OPEN and probes.get(connection_id, 0) > 0:
            probes[connection_id] -= 1
            return connection_id
        assert health is not None
        reopens.append(health.opened_until or now)
    return Closed(max(min(reopens), now))


# The database side.

_COLUMNS = ("connection_id", "org_id", "state", "window_started_at", "attempts", "errors",
            "previous_attempts", "previous_errors", "updated_at")  # fmt: skip


async def states(session: AsyncSession, connection_ids: Sequence[int]) -> dict[int, Health]:
    """The stored breakers of these connections (read only; none: never recorded)."""
    if not connection_ids:
        return {}
    rows = await session.scalars(
        select(ConnectionHealth).where(ConnectionHealth.connection_id.in_(connection_ids))
    )
    return {row.connection_id: _health(row) for row in rows}


async def observe(
    session: AsyncSession, *, tallies: Mapping[int, Tally], now: datetime, policy: BreakerPolicy
) -> None:
    """Side effects, in the record step's transaction: each connection of `tallies` gets
    its `connection_health` row locked (PostgreSQL: workers recording at once take
    turns) and moved on by `advance` (one executemany UPDATE); a connection without one
    gets it first, closed (one INSERT … SELECT, raced safely). Two statements a step
    once every connection has its row."""
    ids = sorted(c for c, tally in tallies.items() if tally.attempts)
    if not ids:
        return
    rows = await _locked(session, ids)
    missing = sorted(set(ids) - {row.connection_id for row in rows})
    if missing:
        c = Connection.__table__.c
        zero, stamp = literal(0), literal(now, c.updated_at.type)
        closed = literal(BreakerState.CLOSED.value)
        await session.execute(
            insert_selected_ignoring_conflicts(
                session,
                ConnectionHealth,
                _COLUMNS,
                select(c.id, c.org_id, closed, stamp, zero, zero, zero, zero, stamp)
                .where(one_of(session, c.id, missing)),
            )
        )  # fmt: skip
        rows += await _locked(session, missing)
    changed = [
        (row.connection_id, advance(_health(row), tallies[row.connection_id], now=now,
                                    policy=policy))
        for row in rows
    ]  # fmt: skip
    table = cast(Table, ConnectionHealth.__table__)  # Core: an executemany, not ORM bulk
    h = table.c
    await session.execute(
        update(table)
        .where(h.connection_id == bindparam("cid"))
        .values(
            state=bindparam("st"), opened_until=bindparam("until"),
            window_started_at=bindparam("since"), attempts=bindparam("n"),
            errors=bindparam("e"), previous_attempts=bindparam("pn"),
            previous_errors=bindparam("pe"), updated_at=literal(now, h.updated_at.type),
        ),
        [
            {"cid": cid, "st": new.state.value, "until": new.opened_until,
             "since": new.window_started_at, "n": new.attempts, "e": new.errors,
             "pn": new.previous_attempts, "pe": new.previous_errors}
            for cid, new in changed
        ],
    )  # fmt: skip


async def _locked(session: AsyncSession, ids: Sequence[int]) -> list[ConnectionHealth]:
    query = select(ConnectionHealth).where(one_of(session, ConnectionHealth.connection_id, ids))
    return list(await session.scalars(for_update(session, query)))


def _health(row: ConnectionHealth) -> Health:
    return Health(
        BreakerState(row.state),
        row.opened_until,
        row.window_started_at,
        row.attempts,
        row.errors,
        row.previous_attempts,
        row.previous_errors,
    )


@dataclass(frozen=True, slots=True)
class HealthView:
    """A connection's health as the API shows it."""

    connection_id: int
    state: BreakerState
    opened_until: datetime | None
    window_attempts: int
    window_errors: int
    error_rate: float | None


async def get_health(
    session: AsyncSession, *, org_id: int, connection_id: int, now: datetime, policy: BreakerPolicy
) -> HealthView:
    """The org's connection's breaker at `now` (NotFound for another org's; closed with
    nothing counted for one that has not sent yet)."""
    connection = await get_owned(
        session, Connection, org_id=org_id, ident=connection_id, what="connection",
        where=Connection.deleted_at.is_(None),
    )  # fmt: skip
    found = (await states(session, [connection.id])).get(connection.id)
    health = found or Health.fresh(now)
    attempts, errors = windowed(health, now, policy)
    state = state_at(health, now)
    return HealthView(
        connection_id=connection.id,
        state=state,
        opened_until=health.opened_until if state is not BreakerState.CLOSED else None,
        window_attempts=round(attempts),
        window_errors=round(errors),
        error_rate=round(errors / attempts, 4) if attempts else None,
    )


async def breaker_states(session: AsyncSession, *, now: datetime) -> dict[int, BreakerState]:
    """Every live connection that has a breaker row → its state at `now` (read only; for
    `/metrics`)."""
    rows = await session.execute(
        select(ConnectionHealth)
        .join(Connection, Connection.id == ConnectionHealth.connection_id)
        .where(Connection.deleted_at.is_(None))
    )
    return {row.connection_id: state_at(_health(row), now) for (row,) in rows}

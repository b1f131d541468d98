"""The circuit breaker's rules (`connections.health`), pure: when a connection opens,
turns half-open and closes, how the window slides, and where a message is routed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tidings.connections.health import (
    BreakerPolicy,
    BreakerState,
    Closed,
    Health,
    Tally,
    advance,
    route,
    state_at,
    windowed,
)

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
POLICY = BreakerPolicy(error_rate=0.5, min_attempts=20, window_seconds=60, open_seconds=30)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_connection_opens_at_the_error_rate_over_enough_attempts() -> None:
    health = Health.fresh(T0)
    health = advance(health, Tally(19, 19), now=_at(1), policy=POLICY)
    assert health.state is BreakerState.CLOSED  # 19 attempts: too few to judge
    health = advance(health, Tally(1, 0), now=_at(2), policy=POLICY)
    assert health.state is BreakerState.OPEN  # 19 errors in 20
    assert health.opened_until == _at(32)


def test_below_the_error_rate_it_stays_closed() -> None:
    health = advance(Health.fresh(T0), Tally(100, 49), now=_at(1), policy=POLICY)
    assert health.state is BreakerState.CLOSED
    assert (health.attempts, health.errors) == (100, 49)


def test_an_open_connection_turns_half_open_when_its_cool_down_ends() -> None:
    health = advance(Health.fresh(T0), Tally(20, 20), now=_at(1), policy=POLICY)
    assert state_at(health, _at(30)) is BreakerState.OPEN
    assert state_at(health, _at(31)) is BreakerState.HALF_OPEN


def test_a_half_open_probe_that_goes_through_closes_it_with_counts_cleared() -> None:
    health = advance(Health.fresh(T0), Tally(20, 20), now=_at(1), policy=POLICY)
    closed = advance(health, Tally(1, 0), now=_at(40), policy=POLICY)
    assert closed.state is BreakerState.CLOSED
    assert (closed.attempts, closed.errors, closed.previous_errors) == (0, 0, 0)
    # An error just after does not open it again at once: the old errors are forgotten.
    assert advance(closed, Tally(1, 1), now=_at(41), policy=POLICY).state is BreakerState.CLOSED


def test_a_half_open_probe_that_fails_opens_it_again_for_the_cool_down() -> None:
    health = advance(Health.fresh(T0), Tally(20, 20), now=_at(1), policy=POLICY)
    again = advance(health, Tally(1, 1), now=_at(40), policy=POLICY)
    assert again.state is BreakerState.OPEN
    assert again.opened_until == _at(70)


def test_outcomes_of_what_was_in_flight_while_open_change_nothing_but_counts() -> None:
    health = advance(Health.fresh(T0), Tally(20, 20), now=_at(1), policy=POLICY)
    later = advance(health, Tally(5, 0), now=_at(10), policy=POLICY)
    assert (later.state, later.opened_until) == (BreakerState.OPEN, _at(31))


def test_the_window_slides_the_previous_one_weighs_what_is_left_of_it() -> None:
    health = advance(Health.fresh(T0), Tally(40, 10), now=_at(1), policy=POLICY)
    # 15 s into the next window: 75 % of the previous one still counts.
    assert windowed(health, _at(75), POLICY) == (30.0, 7.5)
    # Two windows later nothing is left.
    assert windowed(health, _at(121), POLICY) == (0.0, 0.0)


def test_errors_spread_over_two_windows_open_it() -> None:
    health = advance(Health.fresh(T0), Tally(12, 12), now=_at(50), policy=POLICY)
    assert health.state is BreakerState.CLOSED
    # 10 s into the next window: 12 × 5/6 + 10 = 20 attempts, all errors.
    health = advance(health, Tally(10, 10), now=_at(70), policy=POLICY)
    assert health.state is BreakerState.OPEN


def test_a_message_takes_its_turn_in_the_list_by_attempt() -> None:
    ids = [11, 12, 13]
    turns = [route(ids, attempts=n, states={}, now=T0, probes={}) for n in range(1, 6)]
    assert turns == [11, 12, 13, 11, 12]


def test_an_open_connection_is_skipped_and_a_half_open_one_takes_its_probes() -> None:
    opened = Health(BreakerState.OPEN, _at(30), T0)
    states = {11: opened}
    assert route([11, 12], attempts=1, states=states, now=_at(10), probes={}) == 12
    probes = {11: 1}
    assert route([11, 12], attempts=1, states=states, now=_at(31), probes=probes) == 11
    assert probes == {11: 0}
    assert route([11, 12], attempts=1, states=states, now=_at(31), probes=probes) == 12


def test_when_every_connection_is_open_the_message_waits_for_the_soonest() -> None:
    states = {
        11: Health(BreakerState.OPEN, _at(30), T0),
        12: Health(BreakerState.OPEN, _at(20), T0),
    }
    assert route([11, 12], attempts=1, states=states, now=_at(10), probes={}) == Closed(_at(20))

"""A batch's outcomes are written in small steps while it is sent (by count and by time),
kept and written again while the database is away, and all written when the batch ends."""

from __future__ import annotations

import asyncio

import pytest

from tidings.dispatcher import recorder
from tidings.dispatcher.recorder import Recorder
from tidings.outbox.outcomes import Outcome
from tidings.outbox.status import MessageStatus


def sent(first: int, count: int = 1) -> list[Outcome]:
    return [Outcome(i, 1, MessageStatus.SENT) for i in range(first, first + count)]


class Writes:
    """A record step that notes what it wrote; `failures` are raised first, one a call."""

    def __init__(self, *failures: Exception) -> None:
        self.steps: list[list[int]] = []
        self.failures = list(failures)

    async def __call__(self, outcomes: list[Outcome]) -> None:
        await asyncio.sleep(0)  # a transaction's round trip
        if self.failures:
            raise self.failures.pop(0)
        self.steps.append([o.message_id for o in outcomes])


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_every_n_outcomes_are_written_while_the_batch_goes_on() -> None:
    writes = Writes()
    async with Recorder(writes, every=3, seconds=60, give_up_after=60) as outcomes:
        for i in range(7):
            outcomes.add(sent(i))
            await settle()
        assert writes.steps == [[0, 1, 2], [3, 4, 5]]  # the 7th waits: not 3 yet, not old
    assert writes.steps == [[0, 1, 2], [3, 4, 5], [6]]  # the rest when the batch ends
    assert outcomes.tally == {"sent": 7}


async def test_an_outcome_waits_no_longer_than_seconds() -> None:
    writes = Writes()
    async with Recorder(writes, every=1000, seconds=0.02, give_up_after=60) as outcomes:
        outcomes.add(sent(0, 2))
        await asyncio.sleep(0.1)
        assert writes.steps == [[0, 1]]
        outcomes.add(sent(2))
    assert writes.steps == [[0, 1], [2]]


async def test_outcomes_are_kept_while_the_database_is_away_and_written_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recorder, "RECORD_RETRY_SECONDS", (0.001, 0.002))
    away = ConnectionRefusedError("the database restarts")
    writes = Writes(away, away, away)
    async with Recorder(writes, every=2, seconds=60, give_up_after=60) as outcomes:
        outcomes.add(sent(0, 2))
        await asyncio.sleep(0)
        outcomes.add(sent(2, 1))  # comes in while the first write is being retried
    assert sorted(i for step in writes.steps for i in step) == [0, 1, 2]  # each once
    assert writes.failures == []


async def test_a_write_that_fails_for_another_reason_is_logged_and_the_rest_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writes = Writes(ValueError("a bug"))
    async with Recorder(writes, every=2, seconds=60, give_up_after=60) as outcomes:
        outcomes.add(sent(0, 2))
        await settle()
        outcomes.add(sent(2, 2))
    assert writes.steps == [[2, 3]]  # the failed step's messages are left to their lease
    assert "writing 2 outcomes failed" in caplog.text


async def test_outcomes_are_given_up_once_the_lease_has_run_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(recorder, "RECORD_RETRY_SECONDS", (0.01, 0.01))
    writes = Writes(*[ConnectionRefusedError("down")] * 100)
    async with Recorder(writes, every=1, seconds=60, give_up_after=0.05) as outcomes:
        outcomes.add(sent(0))
    assert writes.steps == []
    assert "gave up writing 1 outcomes" in caplog.text


class HeldWrites(Writes):
    """A record step that waits for `release` before it goes through (a slow database)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.started: list[list[int]] = []

    async def __call__(self, outcomes: list[Outcome]) -> None:
        self.started.append([o.message_id for o in outcomes])
        await self.release.wait()
        await super().__call__(outcomes)


async def test_the_sender_waits_while_twice_every_is_unwritten() -> None:
    writes = HeldWrites()
    async with Recorder(writes, every=2, seconds=60, give_up_after=60) as outcomes:
        await outcomes.room(2)  # nothing unwritten: at once
        outcomes.add(sent(0, 3))
        await settle()
        assert writes.started == [[0, 1, 2]]  # `every` came in: being written (slowly)
        await outcomes.room(1)  # 3 + 1 is within twice `every`
        outcomes.add(sent(3))
        waiting = asyncio.create_task(outcomes.room(2))  # 4 + 2 would be over 4
        await settle()
        assert not waiting.done()
        assert outcomes.unwritten == 4
        writes.release.set()
        await asyncio.wait_for(waiting, timeout=5)  # 1 + 2: room again
    assert writes.steps == [[0, 1, 2], [3]]


async def test_room_waits_for_a_slow_write_even_below_every() -> None:
    writes = HeldWrites()
    async with Recorder(writes, every=4, seconds=60, give_up_after=60) as outcomes:
        outcomes.add(sent(0, 3))
        waiting = asyncio.create_task(outcomes.room(6))  # 3 + 6 would be over 8
        await settle()
        # The writer did not wait for `every` or `seconds`: the sender needs room.
        assert writes.started == [[0, 1, 2]]
        assert not waiting.done()
        assert outcomes.unwritten == 3
        writes.release.set()
        await asyncio.wait_for(waiting, timeout=5)
        assert outcomes.unwritten == 0
    assert writes.steps == [[0, 1, 2]]


async def test_room_for_more_than_every_waits_until_everything_is_written() -> None:
    writes = HeldWrites()
    async with Recorder(writes, every=4, seconds=60, give_up_after=60) as outcomes:
        outcomes.add(sent(0, 1))
        waiting = asyncio.create_task(outcomes.room(10))  # one provider request of 10 > 8
        await settle()
        assert not waiting.done()
        writes.release.set()
        await asyncio.wait_for(waiting, timeout=5)
        assert outcomes.unwritten == 0

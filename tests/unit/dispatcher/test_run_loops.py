"""`run_loops`: the worker's loops as named tasks; one that dies stops the worker."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tidings.dispatcher.run import LoopDied, run_loops


class Loop:
    """A loop that runs until `stop`, finishing its batch in hand; or fails or returns."""

    def __init__(self, *, fails: bool = False, returns: bool = False) -> None:
        self.fails = fails
        self.returns = returns
        self.finished = False

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(0)
        if self.fails:
            raise ValueError("a bug in the loop")
        if self.returns:
            return
        await stop.wait()
        await asyncio.sleep(0)  # the batch in hand
        self.finished = True


async def test_stop_ends_every_loop_after_its_batch() -> None:
    stop = asyncio.Event()
    loops = {"dispatcher": Loop(), "webhook sender": Loop()}
    running = asyncio.create_task(run_loops({n: lp.run(stop) for n, lp in loops.items()}, stop))
    await asyncio.sleep(0.01)
    assert not running.done()

    stop.set()
    await running

    assert all(loop.finished for loop in loops.values())


async def test_a_loop_that_dies_stops_the_others_and_is_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    dispatcher, sender = Loop(), Loop(fails=True)

    with pytest.raises(LoopDied) as died:
        await run_loops(
            {"dispatcher": dispatcher.run(stop), "webhook sender": sender.run(stop)}, stop
        )

    assert died.value.name == "webhook sender"
    assert stop.is_set()
    assert dispatcher.finished  # stopped as on SIGTERM: its batch finished
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "worker loop 'webhook sender' died; stopping the worker"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)


async def test_a_loop_that_returns_unasked_stops_the_worker_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    dispatcher = Loop()

    with pytest.raises(LoopDied, match="bounce poller"):
        await run_loops(
            {"dispatcher": dispatcher.run(stop), "bounce poller": Loop(returns=True).run(stop)},
            stop,
        )

    assert dispatcher.finished
    assert "worker loop 'bounce poller' ended unasked; stopping the worker" in caplog.text

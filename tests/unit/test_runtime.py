"""tune_gc: what `serve` and `worker` do to the collector before they serve."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Iterator

import pytest

from tidings.runtime import REQUEST_ID, configure_logging, tune_gc


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_the_youngest_threshold_is_raised_and_the_start_up_heap_frozen() -> None:
    _, second, third = gc.get_threshold()
    tune_gc(12_345)
    assert gc.get_threshold() == (12_345, second, third)
    assert gc.get_freeze_count() > 1_000  # this test run's modules, at least


def test_zero_keeps_pythons_threshold() -> None:
    before = gc.get_threshold()
    tune_gc(0)
    assert gc.get_threshold() == before


def test_tidings_loggers_write_to_stderr_at_the_configured_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("tidings")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    try:
        configure_logging("warning")
        configure_logging("info")  # again: the level changes, no second handler
        assert len(logger.handlers) == len(handlers) + 1
        logging.getLogger("tidings.dispatcher.deliverer").debug("not shown")
        logging.getLogger("tidings.dispatcher.deliverer").info("provider call: shown")
        err = capsys.readouterr().err
        assert "INFO tidings.dispatcher.deliverer: provider call: shown" in err
        assert "not shown" not in err
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def test_json_lines_carry_the_request_id_and_the_ids_a_call_gives(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("tidings")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    token = REQUEST_ID.set("req-7")
    try:
        configure_logging("info", "json")
        log = logging.getLogger("tidings.dispatcher.deliverer")
        log.warning("message 9 not sent", extra={"message_id": 9, "org_id": 2, "other": "x"})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("failed")
        first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
        assert first["level"] == "warning"
        assert first["logger"] == "tidings.dispatcher.deliverer"
        assert first["message"] == "message 9 not sent"
        assert (first["request_id"], first["message_id"], first["org_id"]) == ("req-7", 9, 2)
        assert "other" not in first  # only the documented fields
        assert "RuntimeError: boom" in second["exception"]
    finally:
        REQUEST_ID.reset(token)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate

"""tune_gc: what `serve` and `worker` do to the collector before they serve."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Iterator

import pytest

from tidings.runtime import REQUEST_ID, adopt_uvicorn_logs, configure_logging, tune_gc


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


def test_uvicorns_own_lines_are_json_lines_too_and_its_access_log_is_redacted() -> None:
    """With TIDINGS_LOG_FORMAT=json, uvicorn's start-up and access lines (set up by
    `uvicorn.Config`, before Tidings adopts them) come out as JSON like Tidings' own."""
    import uvicorn

    uvicorn.Config(app=lambda *_: None, log_level="info")  # uvicorn's logging config
    access = logging.getLogger("uvicorn.access")
    saved = [(h, h.formatter) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
             for h in logging.getLogger(name).handlers]  # fmt: skip
    try:
        adopt_uvicorn_logs("json")
        [handler] = access.handlers
        record = logging.LogRecord(
            "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "POST", "/reports/3/kannel/s3cr3t-token?x=1", "1.1", 200), None,
        )  # fmt: skip
        assert all(f.filter(record) for f in access.filters)
        line = json.loads(handler.format(record))
        assert line["logger"] == "uvicorn.access"
        assert "/reports/3/kannel/***" in line["message"]
        assert "s3cr3t-token" not in line["message"]
        [error] = (
            logging.getLogger("uvicorn.error").handlers or logging.getLogger("uvicorn").handlers
        )
        assert json.loads(error.format(logging.LogRecord(
            "uvicorn.error", logging.INFO, __file__, 1, "Started server process [%d]", (7,), None,
        )))["message"] == "Started server process [7]"  # fmt: skip
    finally:
        for handler, formatter in saved:
            handler.setFormatter(formatter)

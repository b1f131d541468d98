"""How a long-running Tidings process (`serve`, its `--workers`, `worker`) tunes Python:
its logging and its garbage collector.

Logging: Tidings' own loggers (`tidings.*`: the dispatcher's provider calls and batches,
the worker loops) write to stderr at `TIDINGS_LOG_LEVEL`, one line each, beside uvicorn's.
The tokens in the paths of public callbacks (delivery reports, inbound SMS, bounces) are
secrets: they are redacted from uvicorn's access log and from Tidings' own lines
(`RedactTokens`).

The cyclic garbage collector runs its youngest pass every 700 container allocations by
default, and now and then a full pass over every object alive. A 500-recipient invite
request or a 2,000-message batch allocates hundreds of thousands of dicts, rows and
strings that reference counting frees anyway, so those passes were work for nothing,
and the full ones stalled a process in the middle of requests. With the threshold at
50,000 (`TIDINGS_GC_THRESHOLD`) and the objects alive at start-up frozen out of the
collector's reach (imported modules, the app, the engine), measured back to back:
`bench/intake_walr.py --postgres --workers 2` 18,700 → 22,200 recipients/s with p99
480 → 300–380 ms, and `bench/quick.py --postgres --tracking` 5,100 → 5,440 messages/s,
for about 21 MB more peak RSS per process. Cycles are still collected, later.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_ID: ContextVar[str | None] = ContextVar("tidings_request_id", default=None)
"""The API request being served, for the log lines written while serving it."""
FIELDS = ("org_id", "broadcast_id", "message_id", "connection_id", "kind", "seconds", "reason")
"""What a log call may add with `extra=` and a JSON line carries."""


TOKEN_PATH = re.compile(
    r"(/(?:reports/\d+/(?:kannel|infobip)|inbound/sms/\d+|bounces/\d+)/)[^/?#\s\"']+"
)
"""The public callback paths whose last segment is a connection's secret token."""
REDACTED = "***"


def redact_tokens(text: str) -> str:
    """`text` with the token of every callback path replaced (`/reports/12/kannel/***`)."""
    return TOKEN_PATH.sub(lambda match: match.group(1) + REDACTED, text)


class RedactTokens(logging.Filter):
    """Rewrites a record's message and string arguments with `redact_tokens`: uvicorn's
    access log line carries the request's path as an argument."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_tokens(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def adopt_uvicorn_logs(log_format: str = "text") -> None:
    """uvicorn's own lines (start-up, errors, the access log) as Tidings writes its own:
    the access log without callback tokens, and JSON lines when `log_format` is "json".
    Called after uvicorn set its logging up (`uvicorn.Config`), which keeps a logger's
    filters and handlers. Idempotent."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
    if log_format == "json":
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            for handler in logging.getLogger(name).handlers:
                handler.setFormatter(JsonFormatter())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request id, the ids a
    call gave (`FIELDS`), and the traceback of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Before serving: the `tidings` loggers write to stderr at `level` (debug, info,
    warning or error), as text or JSON lines. Idempotent: a second call changes the level
    and format only."""
    logger = logging.getLogger("tidings")
    logger.setLevel(level.upper())
    handler = next((h for h in logger.handlers if getattr(h, "tidings", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.tidings = True  # type: ignore[attr-defined]
        handler.addFilter(RedactTokens())
        logger.addHandler(handler)
        logger.propagate = False
    adopt_uvicorn_logs()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(LOG_FORMAT))


def tune_gc(threshold: int) -> None:
    """Before serving: the youngest generation's `threshold` (0 keeps Python's), and
    everything alive now moved to the permanent generation."""
    if threshold > 0:
        _, second, third = gc.get_threshold()
        gc.set_threshold(threshold, second, third)
    gc.freeze()

"""What a Tidings process counts for Prometheus (`/metrics`, guarded by
`TIDINGS_METRICS_TOKEN`). Counters move where things happen (the dispatcher, the API);
the outbox's depth is read from the database when `/metrics` is scraped.

    tidings_provider_call_seconds{kind,connection}  one observation per provider call
    tidings_message_results_total{kind,connection,channel,result,reason}
                                                   each message a provider call returned:
                                                   sent, failed (permanent), retried
                                                   (transient), unsent (held back); reason
                                                   a class (ok, 4xx, 5xx, connection, …)
    tidings_render_failures_total{channel,kind}    messages that failed while rendering:
                                                   template, header, address, internal
    tidings_render_budget_refusals_total{kind}     renders stopped by a limit: time, size,
                                                   memory, loops, output
    tidings_leases_reaped_total                    claims freed after their lease ran out
    tidings_claims_freed_total                     claims freed from dead workers (heartbeat)
    tidings_outcome_write_retries_total            record steps retried (database away)
    tidings_http_request_seconds{method,route,status}  the API, by route template

The outbox's figures (`tidings_messages{status,channel}`, `tidings_oldest_due_seconds`)
are read from the database by `monitoring/outbox.py` and added at scrape time.

Each process counts its own. When PROMETHEUS_MULTIPROC_DIR names a directory (`tidings
serve --workers N` makes one for its processes; an operator may set one for every
process of a host, `tidings worker` included), each process also writes its counts
there (prometheus-client's multiprocess mode) and `exposition()` sums those of every
process that wrote there: a scrape that reaches any one of them shows them all.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""The variable naming where every process writes its counts (prometheus-client's)."""

REGISTRY = CollectorRegistry(auto_describe=True)

PROVIDER_CALL_SECONDS = Histogram(
    "tidings_provider_call_seconds",
    "Seconds per provider call (one call carries a batch, or part of one), by connection",
    ["kind", "connection"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
MESSAGE_RESULTS = Counter(
    "tidings_message_results_total",
    "Messages a provider call returned, by connection, channel, result and reason class",
    ["kind", "connection", "channel", "result", "reason"],
    registry=REGISTRY,
)
RENDER_FAILURES = Counter(
    "tidings_render_failures_total",
    "Messages that failed while being rendered, by channel and kind of failure",
    ["channel", "kind"],
    registry=REGISTRY,
)
LEASES_REAPED = Counter(
    "tidings_leases_reaped_total",
    "Claimed messages queued again because their worker's lease ran out",
    registry=REGISTRY,
)
RENDER_BUDGET_REFUSALS = Counter(
    "tidings_render_budget_refusals_total",
    "Renders stopped by a limit (API previews and messages), by the limit: time, size, "
    "memory, loops, output",
    ["kind"],
    registry=REGISTRY,
)
CLAIMS_FREED = Counter(
    "tidings_claims_freed_total",
    "Claimed messages queued again because their worker stopped heartbeating",
    registry=REGISTRY,
)
OUTCOME_WRITE_RETRIES = Counter(
    "tidings_outcome_write_retries_total",
    "Record steps tried again because the database could not be reached",
    registry=REGISTRY,
)
HTTP_REQUEST_SECONDS = Histogram(
    "tidings_http_request_seconds",
    "API requests, by route template and status class",
    ["method", "route", "status"],
    registry=REGISTRY,
)


def exposition(*extra: Collector) -> bytes:
    """The text format of a scrape: this process's counters — every process's, summed,
    when MULTIPROCESS_DIR is set — then `extra` (figures read at scrape time)."""
    counted = REGISTRY
    if os.environ.get(MULTIPROCESS_DIR):
        counted = CollectorRegistry()
        MultiProcessCollector(counted)  # type: ignore[no-untyped-call]
    read = CollectorRegistry(auto_describe=False)
    for collector in extra:
        read.register(collector)
    return generate_latest(counted) + generate_latest(read)

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
    tidings_messages{status,channel}               the outbox's unfinished rows, at scrape
    tidings_oldest_due_seconds                     how late the oldest due message is
    tidings_connection_state{connection,state}     each connection's breaker, at scrape:
                                                   1 for its state, 0 for the others

Each process counts its own (with `serve --workers N` a scrape reaches one of them).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
MESSAGES = Gauge(
    "tidings_messages",
    "Unfinished messages in the outbox, by status and channel (read at scrape)",
    ["status", "channel"],
    registry=REGISTRY,
)
OLDEST_DUE_SECONDS = Gauge(
    "tidings_oldest_due_seconds",
    "Seconds since the oldest queued message became due (0 when none is late)",
    registry=REGISTRY,
)
CONNECTION_STATE = Gauge(
    "tidings_connection_state",
    "Each connection's circuit breaker: 1 for its current state (closed, open, half_open), "
    "0 for the others (read at scrape, for connections that have sent)",
    ["connection", "state"],
    registry=REGISTRY,
)

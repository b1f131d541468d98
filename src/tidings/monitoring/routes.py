"""`GET /metrics`: Prometheus' text format, to `Authorization: Bearer <TIDINGS_METRICS_TOKEN>`
(404 while no token is set). The process's counters (`tidings.metrics`), and the outbox's
depth read at scrape time through its partial indexes, and each connection's breaker."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tidings import metrics
from tidings.api.deps import DatabaseDep, SettingsDep
from tidings.connections import health
from tidings.db.base import utcnow
from tidings.errors import NotFound, Unauthorized
from tidings.outbox import queue

router = APIRouter(tags=["monitoring"])


@router.get("/metrics", include_in_schema=False)
async def scrape(request: Request, settings: SettingsDep, db: DatabaseDep) -> Response:
    if settings.metrics_token is None:
        raise NotFound("page", "/metrics")
    expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
    given = request.headers.get("authorization", "").encode()
    if not hmac.compare_digest(given, expected):
        raise Unauthorized("the metrics token is required: Authorization: Bearer <token>")
    now = utcnow()
    async with db.session() as session:
        counts = await queue.unfinished_counts(session)
        oldest = await queue.oldest_due(session, now=now)
        breakers = await health.breaker_states(session, now=now)
    metrics.MESSAGES.clear()
    for (status, channel), n in counts.items():
        metrics.MESSAGES.labels(status, channel).set(n)
    metrics.CONNECTION_STATE.clear()
    for connection_id, state in breakers.items():
        for each in health.BreakerState:
            metrics.CONNECTION_STATE.labels(str(connection_id), each.value).set(each is state)
    metrics.OLDEST_DUE_SECONDS.set((now - oldest).total_seconds() if oldest else 0.0)
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

"""`GET /metrics`: Prometheus' text format, to `Authorization: Bearer <TIDINGS_METRICS_TOKEN>`
(404 while no token is set). The counters (`tidings.metrics`: this process's, or every
process's in multiprocess mode), and the outbox's figures (`monitoring/outbox.py`: read
from the database at most every few seconds)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from tidings import metrics
from tidings.api.deps import DatabaseDep, SettingsDep
from tidings.errors import NotFound, Unauthorized
from tidings.monitoring.outbox import OutboxGauges

router = APIRouter(tags=["monitoring"])


@router.get("/metrics", include_in_schema=False)
async def scrape(request: Request, settings: SettingsDep, db: DatabaseDep) -> Response:
    if settings.metrics_token is None:
        raise NotFound("page", "/metrics")
    expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
    given = request.headers.get("authorization", "").encode()
    if not hmac.compare_digest(given, expected):
        raise Unauthorized("the metrics token is required: Authorization: Bearer <token>")
    gauges: OutboxGauges = request.app.state.outbox_gauges
    figures = await gauges.figures(db)
    return Response(metrics.exposition(figures), media_type=CONTENT_TYPE_LATEST)

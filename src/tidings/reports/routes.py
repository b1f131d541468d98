"""Delivery report endpoints (public, each authenticated its provider's way) and the
count of refused reports (API key, read scope). See docs/reports.md."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import BodyDep, ReadKey, SessionDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.api.problems import answers, error_response
from tidings.reports import service
from tidings.reports.schemas import RejectedCountOut, RejectedReportsOut, ReportsOut
from tidings.settings import Settings

router = APIRouter(prefix="/orgs/{org_id}/reports", tags=["reports"])
public = APIRouter(
    prefix="/reports/{connection_id}",
    tags=["delivery reports"],
    responses=answers(401, 403, 404, 422),  # unsigned, badly signed, unknown, malformed
)


async def _receive(
    request: Request, session: AsyncSession, connection_id: Id, incoming: service.Incoming
) -> ReportsOut | Response:
    settings: Settings = request.app.state.settings
    outcome = await service.receive(
        session,
        connection_id=connection_id,
        incoming=incoming,
        soft_bounce_limit=settings.soft_bounce_limit,
    )
    if isinstance(outcome, service.Refused):
        # Answered, not raised: the request's transaction commits the refusal's count.
        return error_response(request, outcome.error)
    return ReportsOut(accepted=outcome.accepted, stale=outcome.stale, pending=outcome.pending)


def _urls(request: Request, settings: Settings) -> tuple[str, ...]:
    """The URLs a sender may have signed: as configured (`TIDINGS_PUBLIC_URL` + path and
    query, what sits behind a proxy) and as received."""
    tail = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return (settings.public_url.rstrip("/") + tail, str(request.url))


@public.get(
    "/kannel/{token}", summary="Kannel DLR (Kannel GETs the dlr-url)", response_model=ReportsOut
)
async def kannel(
    connection_id: Id, token: str, request: Request, session: WriteSessionDep
) -> ReportsOut | Response:
    incoming = service.Incoming(source="kannel", params=dict(request.query_params), token=token)
    return await _receive(request, session, connection_id, incoming)


@public.post(
    "/infobip/{token}",
    summary="Infobip delivery reports (JSON results[])",
    response_model=ReportsOut,
)
async def infobip(
    connection_id: Id, token: str, request: Request, body: BodyDep, session: WriteSessionDep
) -> ReportsOut | Response:
    incoming = service.Incoming(source="infobip", body=body, token=token)
    return await _receive(request, session, connection_id, incoming)


@public.post(
    "/twilio", summary="Twilio status callback (X-Twilio-Signature)", response_model=ReportsOut
)
async def twilio(
    connection_id: Id, request: Request, body: BodyDep, session: WriteSessionDep
) -> ReportsOut | Response:
    try:
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        form = {}
    incoming = service.Incoming(
        source="twilio",
        body=body,
        params=form,
        headers={k.lower(): v for k, v in request.headers.items()},
        urls=_urls(request, request.app.state.settings),
    )
    return await _receive(request, session, connection_id, incoming)


@public.post(
    "/json", summary="Generic reports, signed as Standard Webhooks", response_model=ReportsOut
)
async def generic(
    connection_id: Id, request: Request, body: BodyDep, session: WriteSessionDep
) -> ReportsOut | Response:
    incoming = service.Incoming(
        source="json",
        body=body,
        headers={k.lower(): v for k, v in request.headers.items()},
    )
    return await _receive(request, session, connection_id, incoming)


@router.get("/rejected", summary="Refused delivery reports, counted by source and reason")
async def rejected(org_id: Id, key: ReadKey, session: SessionDep) -> RejectedReportsOut:
    counts = await service.rejected_counts(session, org_id=key.org_id)
    return RejectedReportsOut(
        total=sum(c.count for c in counts),
        data=[
            RejectedCountOut(source=c.source, reason=c.reason, count=c.count, last_at=c.last_at)
            for c in counts
        ],
    )

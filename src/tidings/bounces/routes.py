"""`POST /bounces/{connection_id}/{token}`: a DSN or ARF report as a raw RFC 5322 message."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from tidings.api.deps import SettingsDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.api.problems import answers
from tidings.bounces import service

public = APIRouter(tags=["inbound"], responses=answers(404, 413))  # an unknown token; > 10 MiB

MAX_BYTES = 10 * 1024 * 1024  # a report may carry the whole original message


async def _report(request: Request) -> bytes:
    """The report, read whole (at most MAX_BYTES) before the write transaction opens: a
    slow sender holds none."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BYTES:
            raise HTTPException(413, "a report of at most 10 MiB")
    return bytes(raw)


RawReport = Annotated[bytes, Depends(_report)]


class BounceOut(BaseModel):
    reports: list[str]  # per report: bounced, deferred, delivered, complained, duplicate, ignored


@public.post(
    "/bounces/{connection_id}/{token}",
    summary="A bounce (DSN) or complaint (ARF) report for an SMTP connection, as message/rfc822",
)
async def receive_bounce(
    connection_id: Id,
    token: str,
    raw: RawReport,
    session: WriteSessionDep,
    settings: SettingsDep,
) -> BounceOut:
    reports = await service.receive(
        session,
        connection_id=connection_id,
        token=token,
        raw=raw,
        soft_bounce_limit=settings.soft_bounce_limit,
        fallback_window=settings.fallback_bounce_window,
    )
    return BounceOut(reports=reports)

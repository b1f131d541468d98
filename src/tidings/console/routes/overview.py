"""The overview, the console's first page: the last seven days per channel (messages
created then and what became of them, with rates), the broadcasts sending, paused or
scheduled, and the recent failures by reason."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request, Response

from tidings.api.deps import SessionDep
from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.progress import live_progress
from tidings.console.deps import ReadViewer
from tidings.console.pages import render
from tidings.console.routing import page_router
from tidings.db.base import utcnow
from tidings.messages import activity

router = page_router()
DAYS = 7


@router.get("/")
async def overview(request: Request, viewer: ReadViewer, session: SessionDep) -> Response:
    now = utcnow()
    since = now - timedelta(days=DAYS)
    org_id = viewer.org_id
    live = await broadcasts.active_broadcasts(session, org_id=org_id)
    return render(
        request,
        "overview.html",
        viewer,
        days=DAYS,
        channels=await activity.by_channel(session, org_id=org_id, since=since),
        failures=await activity.failure_reasons(session, org_id=org_id, since=since),
        live=list(
            zip(
                live,
                await live_progress(session, org_id=org_id, broadcasts=live, now=now),
                strict=True,
            )
        ),
    )

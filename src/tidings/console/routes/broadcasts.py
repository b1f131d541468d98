"""The broadcasts list (live progress, the rate over the last minute, ETA), a
broadcast's report (counters, a chart over time, outcomes by reason, top clicked links,
the exact content sent), and pause, resume, cancel: the services and the status table
the API's routes use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import SessionDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.api.principal import Scope
from tidings.broadcasts import report
from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.progress import live_progress
from tidings.broadcasts.status import BroadcastStatus, can_move
from tidings.console.charts import line_chart
from tidings.console.deps import ReadViewer, SendViewer, Viewer
from tidings.console.pages import fragment, redirect, render
from tidings.console.routing import page_router
from tidings.db.base import utcnow
from tidings.events.stats import broadcast_stats
from tidings.links.service import top_links

router = page_router()
PAGE = 50
MOVING = frozenset({BroadcastStatus.SENDING, BroadcastStatus.SCHEDULED})
"""What moves by itself: the list polls while one of these is shown. A draft or a paused
broadcast changes only when someone acts (its own page keeps polling until it is final)."""
CHARTED = ("sent", "failed", "delivered", "opened", "clicked", "bounced")


ACTIONS = (  # (path, label, the status it moves to)
    ("pause", "Pause", BroadcastStatus.PAUSED),
    ("resume", "Resume", BroadcastStatus.SENDING),
    ("cancel", "Cancel", BroadcastStatus.CANCELLED),
)


def actions(b: Broadcast) -> list[tuple[str, str]]:
    """The moves the status table allows this broadcast now: (path, label). Resume is
    offered from PAUSED alone (SCHEDULED → SENDING is the dispatcher's move)."""
    status = BroadcastStatus(b.status)
    return [
        (path, label)
        for path, label, target in ACTIONS
        if can_move(status, target) and (path != "resume" or status is BroadcastStatus.PAUSED)
    ]


async def _live(session: AsyncSession, b: Broadcast, viewer: Viewer) -> dict[str, Any]:
    """What `broadcasts/_progress.html` shows: on the report page and its fragment."""
    [progress] = await live_progress(session, org_id=viewer.org_id, broadcasts=[b], now=utcnow())
    return {
        "b": b,
        "progress": progress,
        "actions": actions(b) if viewer.can(Scope.SEND) else [],
        "csrf_token": viewer.csrf_token,
    }


async def _rows(session: AsyncSession, viewer: Viewer, found: list[Broadcast]) -> dict[str, Any]:
    """The page's rows, each with its progress: the recent rates in one query."""
    shown = found[:PAGE]
    progress = await live_progress(session, org_id=viewer.org_id, broadcasts=shown, now=utcnow())
    return {
        "rows": list(zip(shown, progress, strict=True)),
        "next_after": shown[-1].id if len(found) > PAGE else None,
        "final": not any(BroadcastStatus(b.status) in MOVING for b in shown),
    }


async def _page(session: SessionDep, viewer: Viewer, after: int | None) -> dict[str, Any]:
    found = await broadcasts.list_broadcasts(
        session, org_id=viewer.org_id, after_id=after, limit=PAGE + 1
    )
    return {"after": after, **await _rows(session, viewer, found)}


@router.get("/broadcasts")
async def broadcast_list(
    request: Request,
    viewer: ReadViewer,
    session: SessionDep,
    after: Annotated[Id | None, Query()] = None,
) -> Response:
    return render(request, "broadcasts/list.html", viewer, **await _page(session, viewer, after))


@router.get("/broadcasts/rows")
async def broadcast_rows(
    request: Request,
    viewer: ReadViewer,
    session: SessionDep,
    after: Annotated[Id | None, Query()] = None,
) -> Response:
    context = await _page(session, viewer, after)
    return fragment(request, "broadcasts/_rows.html", viewer, **context)


@router.get("/broadcasts/{broadcast_id}")
async def broadcast_report(
    request: Request, broadcast_id: Id, viewer: ReadViewer, session: SessionDep
) -> Response:
    org_id = viewer.org_id
    b = await broadcasts.get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    stats = await broadcast_stats(
        session, org_id=org_id, broadcast_id=broadcast_id, interval="minute"
    )
    return render(
        request,
        "broadcasts/report.html",
        viewer,
        **await _live(session, b, viewer),
        stats=stats,
        chart=line_chart(stats["series"], CHARTED),
        reasons=await report.reasons(session, org_id=org_id, broadcast_id=broadcast_id),
        fallbacks=await report.fallbacks(session, org_id=org_id, broadcast_id=broadcast_id),
        links=await top_links(session, org_id=org_id, broadcast_id=broadcast_id),
        content=await report.content_sent(session, org_id=org_id, broadcast_id=broadcast_id),
    )


@router.get("/broadcasts/{broadcast_id}/progress")
async def broadcast_progress(
    request: Request, broadcast_id: Id, viewer: ReadViewer, session: SessionDep
) -> Response:
    b = await broadcasts.get_broadcast(session, org_id=viewer.org_id, broadcast_id=broadcast_id)
    return fragment(request, "broadcasts/_progress.html", viewer, **await _live(session, b, viewer))


Move = Callable[..., Awaitable[Broadcast]]


def _move(move: Move, path: str, done: str) -> None:
    async def endpoint(broadcast_id: Id, viewer: SendViewer, session: WriteSessionDep) -> Response:
        await move(session, org_id=viewer.org_id, broadcast_id=broadcast_id)
        return redirect(f"/broadcasts/{broadcast_id}", viewer, flash=f"Broadcast {done}.")

    endpoint.__name__ = f"{path}_broadcast_page"
    router.add_api_route(f"/broadcasts/{{broadcast_id}}/{path}", endpoint, methods=["POST"])


# The API's actions (`broadcasts.routes`): a move the status table refuses is a 409 page.
_move(broadcasts.pause, "pause", "paused")
_move(broadcasts.resume, "resume", "resumed")
_move(broadcasts.cancel, "cancel", "cancelled")

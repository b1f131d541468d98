"""The overview: the console's first page (for now the org and the signed-in member;
the seven-day figures come with issue 16's overview page)."""

from __future__ import annotations

from fastapi import Request, Response

from tidings.console.deps import ReadViewer
from tidings.console.pages import render
from tidings.console.routing import page_router

router = page_router()


@router.get("/")
async def overview(request: Request, viewer: ReadViewer) -> Response:
    return render(request, "overview.html", viewer)

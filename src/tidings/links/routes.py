"""Public link endpoints (no API key: the signed token is the credential).

`GET /u/{token}` shows a confirmation page and changes nothing, because mail scanners
and link previews fetch links; `POST /u/{token}` unsubscribes, both from that page's
button and as RFC 8058 one-click (`List-Unsubscribe=One-Click`) from mail clients.
`GET /l/{token}` redirects to a link stored for that message. An unknown or tampered
token is a 404, never a redirect to anything taken from the request.

`GET /o/{token}` is the open pixel (a 1×1 GIF that no cache may keep, so every open
reaches us); `GET|POST /p/{token}` records that a recipient played media or reached a
landing page (204). Opens, clicks and plays by scanners and prefetchers are stored but
flagged, not counted (the rule: `tidings.events.bots`).
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tidings.api.deps import WriteSessionDep
from tidings.events.service import Hit
from tidings.links import service
from tidings.links.deps import SignerDep

_HTML_404: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown or tampered token: a page", "content": {"text/html": {}}}
}
_EMPTY_404: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown or tampered token (no body)"}
}
_PAGE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "A page", "content": {"text/html": {}}},
    **_HTML_404,
}
_LINK_ANSWERS: dict[int | str, dict[str, Any]] = {
    302: {"description": "To the stored URL (`Location`)"},
    **_HTML_404,
}
_PIXEL_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The 1×1 GIF", "content": {"image/gif": {}}},
    **_EMPTY_404,
}
router = APIRouter(tags=["links"], include_in_schema=True)

_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><body style="font-family:sans-serif;max-width:32em;margin:4em auto">
<h1>{title}</h1><p>{text}</p>{form}</body></html>"""


def _hit(request: Request) -> Hit:
    return Hit(
        method=request.method,
        user_agent=request.headers.get("user-agent"),
        client_ip=request.client.host if request.client else None,
    )


# The smallest transparent GIF: 1×1, one transparent colour.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0, private",
    "Pragma": "no-cache",
    "Expires": "0",
}


def _page(title: str, text: str, form: str = "", status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=title, text=text, form=form), status_code=status)


def _not_found() -> HTMLResponse:
    return _page("Link not found", "This link is not valid.", status=404)


@router.get(
    "/u/{token}",
    response_class=HTMLResponse,
    responses=_PAGE_ANSWERS,
    summary="Unsubscribe page (confirms; changes nothing)",
)
async def unsubscribe_page(token: str, signer: SignerDep) -> HTMLResponse:
    if service.message_of(signer, token) is None:
        return _not_found()
    form = (
        f'<form method="post" action="/u/{escape(token)}">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return _page("Unsubscribe", "Stop receiving these messages?", form)


@router.post(
    "/u/{token}",
    response_class=HTMLResponse,
    responses=_PAGE_ANSWERS,
    summary="Unsubscribe (page button, or RFC 8058 one-click)",
)
async def unsubscribe(token: str, signer: SignerDep, session: WriteSessionDep) -> HTMLResponse:
    message_id = service.message_of(signer, token)
    if message_id is None:
        return _not_found()
    done = await service.unsubscribe(session, message_id=message_id)
    if done is None:
        return _not_found()
    return _page("Unsubscribed", "You will not receive these messages any more.")


@router.get(
    "/l/{token}",
    response_class=Response,
    responses=_LINK_ANSWERS,
    summary="Follow a link from a message (redirects to the stored URL)",
)
@router.head(
    "/l/{token}",
    response_class=Response,
    responses=_LINK_ANSWERS,
    summary="Probe a link (recorded as a bot's click)",
)
async def follow_link(
    token: str, request: Request, signer: SignerDep, session: WriteSessionDep
) -> Response:
    found = service.link_of(signer, token)
    if found is None:
        return _not_found()
    url = await service.follow(session, message_id=found[0], position=found[1], hit=_hit(request))
    if url is None:
        return _not_found()
    return RedirectResponse(url, status_code=302)


@router.get(
    "/o/{token}",
    response_class=Response,
    responses=_PIXEL_ANSWERS,
    summary="Open pixel (1×1 GIF, never cached)",
)
@router.head(
    "/o/{token}",
    response_class=Response,
    responses=_PIXEL_ANSWERS,
    summary="Probe the open pixel (recorded as a bot's open)",
)
async def open_pixel(
    token: str, request: Request, signer: SignerDep, session: WriteSessionDep
) -> Response:
    message_id = service.tracked_message(signer, service.OPEN, token)
    if message_id is None or not await service.record_hit(
        session, message_id=message_id, kind="opened", hit=_hit(request)
    ):
        return Response(status_code=404, headers=NO_CACHE)
    return Response(PIXEL, media_type="image/gif", headers=NO_CACHE)


@router.get(
    "/p/{token}",
    responses=_EMPTY_404,
    status_code=204,
    summary="Record a play (media, landing page)",
)
@router.post(
    "/p/{token}",
    responses=_EMPTY_404,
    status_code=204,
    summary="Record a play (media, landing page)",
)
async def played(
    token: str, request: Request, signer: SignerDep, session: WriteSessionDep
) -> Response:
    message_id = service.tracked_message(signer, service.PLAY, token)
    if message_id is None or not await service.record_hit(
        session, message_id=message_id, kind="played", hit=_hit(request)
    ):
        return Response(status_code=404, headers=NO_CACHE)
    return Response(status_code=204, headers=NO_CACHE)

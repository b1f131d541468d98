"""Public link endpoints (no API key: the signed token is the credential).

`GET /u/{token}` shows a confirmation page and changes nothing, because mail scanners
and link previews fetch links; `POST /u/{token}` unsubscribes, both from that page's
button and as RFC 8058 one-click (`List-Unsubscribe=One-Click`) from mail clients.
`GET /l/{token}` redirects to a link stored for that message. An unknown or tampered
token is a 404, never a redirect to anything taken from the request.
"""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tidings.api.deps import SessionDep
from tidings.links import service
from tidings.links.tokens import TokenSigner

router = APIRouter(tags=["links"], include_in_schema=True)

_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><body style="font-family:sans-serif;max-width:32em;margin:4em auto">
<h1>{title}</h1><p>{text}</p>{form}</body></html>"""


def get_signer(request: Request) -> TokenSigner:
    signer: TokenSigner = request.app.state.signer
    return signer


SignerDep = Annotated[TokenSigner, Depends(get_signer)]


def _page(title: str, text: str, form: str = "", status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=title, text=text, form=form), status_code=status)


def _not_found() -> HTMLResponse:
    return _page("Link not found", "This link is not valid.", status=404)


@router.get("/u/{token}", summary="Unsubscribe page (confirms; changes nothing)")
async def unsubscribe_page(token: str, signer: SignerDep) -> HTMLResponse:
    if service.message_of(signer, token) is None:
        return _not_found()
    form = (
        f'<form method="post" action="/u/{escape(token)}">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return _page("Unsubscribe", "Stop receiving these messages?", form)


@router.post("/u/{token}", summary="Unsubscribe (page button, or RFC 8058 one-click)")
async def unsubscribe(token: str, signer: SignerDep, session: SessionDep) -> HTMLResponse:
    message_id = service.message_of(signer, token)
    if message_id is None:
        return _not_found()
    done = await service.unsubscribe(session, message_id=message_id)
    if done is None:
        return _not_found()
    return _page("Unsubscribed", "You will not receive these messages any more.")


@router.get("/l/{token}", summary="Follow a link from a message (redirects to the stored URL)")
async def follow_link(token: str, signer: SignerDep, session: SessionDep) -> Response:
    found = service.link_of(signer, token)
    if found is None:
        return _not_found()
    url = await service.follow(session, message_id=found[0], position=found[1])
    if url is None:
        return _not_found()
    return RedirectResponse(url, status_code=302)

"""Rendering a console page: the template, the context every page has, flash messages
and redirects after a POST.

    return render(request, "broadcasts/list.html", viewer, broadcasts=found)
    return redirect("/broadcasts", viewer, flash="Broadcast 12 paused")

Every page's context holds `viewer`, `nav` (the menu entries the viewer's role sees),
`csrf_token`, `flash` (a message the previous POST left, shown once), `static_url(name)`
and `path` (the current path, which the menu highlights).

A flash message travels in a cookie signed with the session's CSRF token (HMAC-SHA256):
nobody else can make the console show a message of their own.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from tidings import __version__
from tidings.console.deps import Viewer
from tidings.console.nav import NAV

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
FLASH_COOKIE = "tidings_flash"


def static_url(name: str) -> str:
    return f"/static/{name}?v={__version__}"


TEMPLATES.env.globals["static_url"] = static_url


def _signature(message: str, key: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()[:32]


def _read_flash(request: Request, viewer: Viewer | None) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or viewer is None:
        return None
    signature, _, quoted = raw.partition(".")
    message = unquote(quoted)
    expected = _signature(message, viewer.csrf_token)
    return message if hmac.compare_digest(signature, expected) else None


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The template rendered with the page context (see the module's docstring)."""
    flash = _read_flash(request, viewer)
    nav = [entry for entry in NAV if viewer is not None and viewer.can(entry.scope)]
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "viewer": viewer,
            "nav": nav,
            "csrf_token": viewer.csrf_token if viewer else context.pop("csrf_token", ""),
            "flash": flash,
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
    )
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def redirect(url: str, viewer: Viewer | None = None, *, flash: str | None = None) -> Response:
    """303 See Other to `url` (a GET after a POST), leaving `flash` for the next page."""
    response = RedirectResponse(url, status_code=303)
    if flash is not None and viewer is not None:
        value = f"{_signature(flash, viewer.csrf_token)}.{quote(flash)}"
        response.set_cookie(FLASH_COOKIE, value, path="/", httponly=True, samesite="lax")
    return response


def fragment(request: Request, template: str, viewer: Viewer, **context: Any) -> HTMLResponse:
    """A part of a page (htmx swaps it in): the template without base.html's frame."""
    return TEMPLATES.TemplateResponse(request, template, {"viewer": viewer, **context})


def local_path(target: str | None, default: str = "/") -> str:
    """`target` if it is a path of this site (`/…`), else `default`: a `next=` parameter
    must not send a member elsewhere after signing in (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


__all__ = ["fragment", "local_path", "redirect", "render"]

"""The console's route class: every failure of a page is answered as a page.

    request ──▶ ConsoleRoute handler ──▶ the page (thin: parse → service → render)
                     │ raises
                     ▼
        SignInRequired        303 to /login?next=<this path> (htmx: HX-Redirect)
        TidingsError          the error page with its status (403, 404, 409, 422 …)
        RequestValidationError  a path naming nothing: 404; a bad field: 422 naming it
        database unavailable  503 with Retry-After
        anything else         500, logged

Its write transaction (`WriteSessionDep`) is rolled back first. Every answer carries
headers that keep a console page private and unframed (`SECURITY_HEADERS`).

`page_router()` is the router every page module starts from: ConsoleRoute, out of the
OpenAPI document (the API is documented there, not the HTML), and `csrf_guard` on every
route, so a POST without the session's token never reaches a page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from tidings.api.deps import answered_failure
from tidings.api.problems import field_path, path_not_found
from tidings.console.deps import SignInRequired, csrf_guard, find_viewer
from tidings.console.pages import render
from tidings.db.availability import RETRY_AFTER_SECONDS, unavailable
from tidings.errors import FieldError, InvalidInput, TidingsError

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}


def sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"/login?next={quote(target, safe='')}"
    if request.headers.get("HX-Request"):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return Response(status_code=303, headers={"Location": url})


def _refusal(exc: RequestValidationError) -> TidingsError:
    missing = path_not_found(exc)
    if missing is not None:
        return missing
    errors = []
    for err in exc.errors():
        field, index = field_path(err["loc"])
        errors.append(
            FieldError(field.removeprefix("body.").removeprefix("query."), err["msg"], index)
        )
    return InvalidInput(errors)


async def error_page(request: Request, exc: Exception) -> Response:
    """The answer to what a console route raised."""
    if isinstance(exc, SignInRequired):
        return sign_in_redirect(request)
    if isinstance(exc, RequestValidationError):
        exc = _refusal(exc)
    viewer = await _viewer_or_none(request)
    if isinstance(exc, TidingsError):
        errors = exc.errors if isinstance(exc, InvalidInput) else []
        return render(request, "error.html", viewer, status_code=exc.status, title=exc.title,
                      detail=exc.detail, errors=errors)  # fmt: skip
    if unavailable(exc):
        log.warning("%s %s: database unavailable: %r", request.method, request.url.path, exc)
        answer = render(request, "error.html", None, status_code=503, title="Unavailable",
                        detail="The database cannot be reached right now; retry shortly.",
                        errors=[])  # fmt: skip
        answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return answer
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    detail = "An unexpected error occurred; it has been logged."
    return render(request, "error.html", viewer, status_code=500, title="Internal error",
                  detail=detail, errors=[])  # fmt: skip


async def _viewer_or_none(request: Request) -> Any:
    """The viewer already resolved for this request, if any (the error page's menu)."""
    try:
        return await find_viewer(request, request.app.state.db, request.app.state.settings)
    except Exception:  # the page still answers when the database is what failed
        return None


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as exc:
                answered_failure(request)  # its write transaction is rolled back
                response = await error_page(request, exc)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return guarded


def page_router(**kwargs: Any) -> APIRouter:
    """The router of a console page module (see the module's docstring)."""
    return APIRouter(
        route_class=ConsoleRoute,
        include_in_schema=False,
        dependencies=[Depends(csrf_guard)],
        **kwargs,
    )


def public_router() -> APIRouter:
    """For the few routes a visitor reaches signed out (sign-in): no session, no guard;
    each checks its own CSRF token."""
    return APIRouter(route_class=ConsoleRoute, include_in_schema=False)

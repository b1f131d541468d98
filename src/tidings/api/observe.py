"""Every API request measured and named: its latency by route template and status class
(`tidings_http_request_seconds`), and a request id (the client's `X-Request-ID`, else a new
one) in the answer's headers and in every log line written while serving it."""

from __future__ import annotations

import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings import metrics
from tidings.runtime import REQUEST_ID

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # echoed in headers and logs: no CR/LF


class Observe:
    """A pure ASGI middleware (nothing buffered, streaming answers pass as they are)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _CLIENT_ID.match(given) else secrets.token_hex(8)
        token = REQUEST_ID.set(request_id)
        status = 500
        started = time.perf_counter()

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            metrics.HTTP_REQUEST_SECONDS.labels(
                scope["method"], route_template(scope), f"{status // 100}xx"
            ).observe(time.perf_counter() - started)
            REQUEST_ID.reset(token)


def route_template(scope: Scope) -> str:
    """The matched route's path template, its router's prefix included (FastAPI keeps an
    included router's routes with their own path: the prefix is what precedes it in the
    request's path); "unmatched" for a 404 on no route."""
    route = scope.get("route")
    template: str | None = getattr(route, "path", None)
    regex = getattr(route, "path_regex", None)
    if template is None or regex is None:
        return "unmatched"
    path: str = scope["path"]
    for at, char in enumerate(path):
        if char == "/" and regex.match(path[at:]):
            return path[:at] + template
    return template

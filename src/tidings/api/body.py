"""Every request body passes here before a route reads it: its size, its media type and,
for JSON, its encoding and its strings. One place, for the native API and the dialects.

    client ─▶ BodyGuard (ASGI middleware) ─▶ the app; a route reads the body via `receive`
                 first read: Content-Length over the limit      ─▶ TooLarge 413, nothing read
                 each chunk: counted; past the limit             ─▶ TooLarge 413
                 JSON (read whole, within the limit): not UTF-8,
                 or a string or a name holding NUL or a lone
                 surrogate                                        ─▶ InvalidInput 422, the field

The limit is `TIDINGS_MAX_BODY_BYTES`, except for the CSV import, which is spooled to a
file and may be far larger (`TIDINGS_MAX_IMPORT_BYTES`). Seed 001's lenient route strips
NUL itself, as its document says (`LENIENT_PATHS`). NUL and lone surrogates parse as
JSON but PostgreSQL can store neither (nor can any email or SMS carry them), so they are
refused here rather than failing a statement later.

A refusal is raised from `receive`, so inside the route that reads: each entry point
answers it in its own shape (problem+json under /v1, the dialect's own under /compat).
FastAPI turns any other exception of its body reading into a 400, so the domain error
travels inside `RefusedBody`, an HTTPException, which `api.problems` and
`compat.routing` unwrap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from fastapi import HTTPException

from tidings.errors import FieldError, InvalidInput, TidingsError, TooLarge
from tidings.settings import Settings

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

IMPORT_PATH: Final = re.compile(r"/v1/orgs/[^/]+/contacts/import/?")
"""The one route whose body is streamed to a file: its own, larger limit."""
LENIENT_PATHS: Final = frozenset({"/compat/octopush/email/campaign/send"})
"""Routes that read their JSON leniently and clean every string themselves, as their seed
says (NUL and the other control characters stripped: docs/compat.md): size and encoding
only."""


# A NUL or any surrogate written as an escape; a raw one is not valid JSON (NUL) or not
# UTF-8 (a surrogate). A match is only a suspicion: parsing tells (a pair is a character).
_SUSPECT: Final = re.compile(r"\\u(?:0000|[dD][89abcdefABCDEF][0-9a-fA-F]{2})")
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")


class RefusedBody(HTTPException):
    """A domain error raised while a route reads its body (see the module docstring)."""

    def __init__(self, error: TidingsError) -> None:
        super().__init__(status_code=error.status, detail=error.detail)
        self.error = error


def media_type(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower()
    return ""


def is_json(kind: str) -> bool:
    """Whether a media type is JSON, which FastAPI parses (other types reach a route as
    bytes: a CSV import, a form, a bounce message, seed 001's lenient body)."""
    main, _, sub = kind.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def json_refusal(raw: bytes, *, strings: bool = True) -> InvalidInput | None:
    """Why a JSON body cannot be used, naming the field; None when it can (or when it is
    not JSON at all: the route says so in its own words). `strings`: check them too."""
    try:
        text = raw.decode("utf-8")  # strict: a surrogate encoded in UTF-8 is refused too
    except UnicodeDecodeError as exc:
        return InvalidInput.field("body", f"not UTF-8: byte {exc.start} cannot be decoded")
    if not strings or not _SUSPECT.search(text):
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    field = _unstorable_at(data)
    if field is None:
        return None
    path, index = field
    return InvalidInput(
        [FieldError(path, "holds a NUL character or a lone surrogate (\\u0000, \\ud800…)", index)]
    )


def _unstorable_at(data: object) -> tuple[str, int | None] | None:
    """The path (`recipients[2].variables.name`) and first index of the first string or
    object key holding NUL or a lone surrogate, or None."""
    stack: list[tuple[object, str, int | None]] = [(data, "", None)]
    while stack:
        value, path, index = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                return path or "body", index
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else key
                if _UNSTORABLE.search(key):
                    return child, index
                stack.append((item, child, index))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                stack.append((item, f"{path}[{i}]", i if index is None else index))
    return None


class _GuardedReceive:
    """The app's `receive`, counting, typing and (for JSON) checking the body."""

    def __init__(
        self,
        receive: Receive,
        *,
        limit: int,
        declared: int | None,
        kind: str,
        streamed: bool,
        lenient: bool,
    ) -> None:
        self._receive = receive
        self._lenient = lenient
        self._limit = limit
        self._declared = declared
        self._kind = kind
        self._streamed = streamed
        self._seen = 0
        self._started = False

    async def __call__(self) -> Message:
        if not self._started:
            self._started = True
            if self._declared is not None and self._declared > self._limit:
                raise self._too_large()
            if not self._streamed and is_json(self._kind):
                return await self._whole_json()
        message = await self._receive()
        if message["type"] == "http.request":
            self._seen += len(message.get("body", b""))
            if self._seen > self._limit:
                raise self._too_large()
        return message

    async def _whole_json(self) -> Message:
        chunks: list[bytes] = []
        while True:
            message = await self._receive()
            if message["type"] != "http.request":
                return message  # the client went away
            chunk = message.get("body", b"")
            self._seen += len(chunk)
            if self._seen > self._limit:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        refusal = json_refusal(raw, strings=not self._lenient)
        if refusal is not None:
            raise RefusedBody(refusal)
        return {"type": "http.request", "body": raw, "more_body": False}

    def _too_large(self) -> RefusedBody:
        return RefusedBody(TooLarge(f"the request body is larger than {self._limit} bytes"))


class BodyGuard:
    """ASGI middleware: see the module docstring. The limits are read per request from
    `app.state.settings`, which the test suite sets per test."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings: Settings = scope["app"].state.settings
        streamed = IMPORT_PATH.fullmatch(scope["path"]) is not None
        headers = scope["headers"]
        guarded = _GuardedReceive(
            receive,
            limit=settings.max_import_bytes if streamed else settings.max_body_bytes,
            declared=declared_length(headers),
            kind=media_type(headers),
            streamed=streamed,
            lenient=scope["path"] in LENIENT_PATHS,
        )
        await self.app(scope, guarded, send)

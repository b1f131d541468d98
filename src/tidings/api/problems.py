"""Errors as RFC 9457 problem+json, naming the field (and the row index in batches).

{"type": "urn:tidings:problem:invalid-input", "title": "Invalid input", "status": 422,
 "detail": "contacts[3].email: …", "instance": "/v1/orgs/1/contacts",
 "errors": [{"field": "contacts[3].email", "index": 3, "reason": "…"}]}
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from tidings.api.body import RefusedBody, is_json
from tidings.db.availability import RAISED as DATABASE_ERRORS
from tidings.db.availability import RETRY_AFTER_SECONDS, unavailable
from tidings.errors import (
    FieldError,
    InvalidInput,
    NotFound,
    TidingsError,
    Unauthorized,
    UnsupportedMedia,
)
from tidings.runtime import redact_tokens

PROBLEM_JSON = "application/problem+json"
AUTH_CHALLENGE = 'Bearer realm="tidings", Basic realm="tidings"'
log = logging.getLogger(__name__)


UNAVAILABLE = "unavailable"  # the problem slug of a 503: the database cannot be reached


class ProblemError(BaseModel):
    field: str = Field(description="The field's path: `contacts[3].email`, `body`, `cursor`")
    reason: str
    index: int | None = Field(default=None, description="The row, in a batch")


class Problem(BaseModel):
    """The body of every /v1 error (RFC 9457), as `application/problem+json`."""

    type: str = Field(description="`urn:tidings:problem:<slug>` (stable), or `about:blank`")
    title: str
    status: int
    detail: str
    instance: str = Field(description="The request's path")
    errors: list[ProblemError] | None = Field(
        default=None, description="Invalid input only: each bad field"
    )


DESCRIPTIONS = {
    400: "Bad request: `detail` says why",
    401: "Missing or invalid credentials (`WWW-Authenticate` names the schemes)",
    402: "The org's credit balance cannot cover this send: `detail` gives cost and balance",
    403: "The key belongs to another org, or lacks the scope",
    404: "No such object in the key's org (or it was deleted, or the path names nothing)",
    409: "Not in this state: the reason is in `detail` (e.g. a send in flight uses it)",
    413: "The request body is larger than `TIDINGS_MAX_BODY_BYTES`",
    415: "The request body is of a media type this route does not read",
    422: "Invalid input: `errors[]` names each field",
}


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem answers a route may give besides its success, for its OpenAPI
    `responses`. `app.py` declares 401, 403, 404 and 503 for every /v1 route, and
    `api/openapi.py` 413, 415 and 422 for every route that takes a body or parameters."""
    return {
        status: {"description": DESCRIPTIONS[status], "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }


def problem_type(slug: str) -> str:
    return f"urn:tidings:problem:{slug}"


def problem_document(
    request: Request,
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    errors: Sequence[FieldError] = (),
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": redact_tokens(request.url.path),  # a callback URL's token is a secret
    }
    if errors:
        body["errors"] = [e.as_dict() for e in errors]
    return body


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = problem_document(request, status, detail, type_=type_, title=title, errors=errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_body(request: Request, exc: TidingsError) -> dict[str, Any]:
    """The problem document a domain error is answered with."""
    return problem_document(
        request,
        exc.status,
        exc.detail,
        type_=problem_type(exc.slug),
        title=exc.title,
        errors=getattr(exc, "errors", ()),
    )


def field_path(loc: Sequence[str | int]) -> tuple[str, int | None]:
    """(`contacts[3].email`, 3) from pydantic's ("body", "contacts", 3, "email")."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    text, index = "", None
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
            index = part if index is None else index
        else:
            text += f".{part}" if text else str(part)
    return text or "body", index


def error_response(request: Request, exc: TidingsError) -> JSONResponse:
    """The answer to a domain error, for a route that answers one without raising it (its
    write transaction then commits what the refusal recorded)."""
    headers = {"WWW-Authenticate": AUTH_CHALLENGE} if isinstance(exc, Unauthorized) else None
    return JSONResponse(
        problem_body(request, exc), status_code=exc.status, media_type=PROBLEM_JSON, headers=headers
    )


async def _tidings_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TidingsError)
    return error_response(request, exc)


def path_not_found(exc: RequestValidationError) -> NotFound | None:
    """A path parameter that cannot name anything (`/orgs/x`, an id out of range): the
    path names no object, so the answer is a 404, as for an id that names none."""
    for err in exc.errors():
        loc = err["loc"]
        if len(loc) >= 2 and loc[0] == "path":
            return NotFound(str(loc[1]), err.get("input", ""))
    return None


def unsupported_media(request: Request, exc: RequestValidationError) -> UnsupportedMedia | None:
    """A JSON body route given a body of another media type: FastAPI then hands the route
    the raw bytes, which fail validation as a whole (`loc == ("body",)`); the type, not the
    content, is what is wrong."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if is_json(kind) or not any(tuple(err["loc"]) == ("body",) for err in exc.errors()):
        return None
    return UnsupportedMedia(f"Content-Type {kind or '(none)'}: send application/json")


def refusal_of(request: Request, exc: RequestValidationError) -> TidingsError | None:
    """The error a validation failure really is, when it is not invalid input: a path
    naming nothing (404), or a body of the wrong media type (415)."""
    return path_not_found(exc) or unsupported_media(request, exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    refusal = refusal_of(request, exc)
    if refusal is not None:
        return error_response(request, refusal)
    errors = []
    for err in exc.errors():
        if err["type"] == "json_invalid":  # its loc holds a character position, not a row
            errors.append(FieldError("body", f"{err['msg']} at character {err['loc'][-1]}"))
            continue
        field, index = field_path(err["loc"])
        errors.append(FieldError(field, err["msg"], index))
    detail = "; ".join(f"{e.field}: {e.reason}" for e in errors[:5])
    return problem(
        request,
        422,
        detail,
        type_=problem_type(InvalidInput.slug),
        title=InvalidInput.title,
        errors=errors,
    )


_FASTAPI_PARSE_ERROR = "There was an error parsing the body"


def unreadable_body(exc: StarletteHTTPException) -> InvalidInput | None:
    """FastAPI's own 400 for a JSON body it could not parse for another reason than its
    syntax (nested too deeply for the parser): like any unreadable body, a 422 on `body`."""
    if exc.status_code != 400 or exc.detail != _FASTAPI_PARSE_ERROR or exc.__cause__ is None:
        return None
    deep = isinstance(exc.__cause__, RecursionError)
    return InvalidInput.field("body", "nested too deeply" if deep else "cannot be parsed")


Unrouted = Callable[[Request, StarletteHTTPException], Awaitable[Response]]
"""How a base path answers a request that reaches no route of it (404, 405)."""


def _http_error_under(elsewhere: Mapping[str, Unrouted]) -> Callable[..., Awaitable[Response]]:
    async def _http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc, RefusedBody):
            return error_response(request, exc.error)
        unreadable = unreadable_body(exc)
        if unreadable is not None:
            return error_response(request, unreadable)
        for prefix, answer in elsewhere.items():
            if request.url.path == prefix or request.url.path.startswith(prefix + "/"):
                return await answer(request, exc)
        headers = dict(exc.headers) if exc.headers else None
        return problem(request, exc.status_code, str(exc.detail), headers=headers)

    return _http_error


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After when the database cannot be reached now (not a bug: logged
    without a traceback); anything else of these types is unexpected."""
    if not unavailable(exc):
        return await _unexpected(request, exc)
    log.warning("%s %s: database unavailable: %r", request.method, request.url.path, exc)
    return problem(
        request,
        503,
        "the database cannot be reached right now; retry shortly",
        type_=problem_type(UNAVAILABLE),
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        request,
        500,
        "an unexpected error occurred; it has been logged",
        type_=problem_type(TidingsError.slug),
    )


def install(app: FastAPI, *, elsewhere: Mapping[str, Unrouted] | None = None) -> None:
    """Answer every error in problem+json, except what reaches no route under a base path
    of `elsewhere` (the dialects, which answer in their own shape)."""
    app.add_exception_handler(TidingsError, _tidings_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error_under(elsewhere or {}))
    for raised in DATABASE_ERRORS:  # handled here, not re-raised to the server as a crash
        app.add_exception_handler(raised, _database_error)
    app.add_exception_handler(Exception, _unexpected)

"""Errors as RFC 9457 problem+json, naming the field (and the row index in batches).

{"type": "urn:tidings:problem:invalid-input", "title": "Invalid input", "status": 422,
 "detail": "contacts[3].email: …", "instance": "/v1/orgs/1/contacts",
 "errors": [{"field": "contacts[3].email", "index": 3, "reason": "…"}]}
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tidings.db.availability import RAISED as DATABASE_ERRORS
from tidings.db.availability import RETRY_AFTER_SECONDS, unavailable
from tidings.errors import FieldError, InvalidInput, TidingsError, Unauthorized
from tidings.runtime import redact_tokens

PROBLEM_JSON = "application/problem+json"
AUTH_CHALLENGE = 'Bearer realm="tidings", Basic realm="tidings"'
log = logging.getLogger(__name__)


UNAVAILABLE = "unavailable"  # the problem slug of a 503: the database cannot be reached


_ANSWERS = {
    404: "No such object in the key's org (or it was deleted)",
    409: "Not in this state: the reason is in `detail` (e.g. a send in flight uses it)",
    422: "Invalid input: `errors[]` names each field",
}


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem answers a route may give besides its success, for its OpenAPI
    `responses` (503 is declared for every route by `app.py`; 401 and 403 are described
    once, in the API's description, not yet per route)."""
    return {
        status: {"description": _ANSWERS[status], "content": {PROBLEM_JSON: {}}}
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


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
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


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return problem(request, exc.status_code, str(exc.detail), headers=headers)


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


def install(app: FastAPI) -> None:
    app.add_exception_handler(TidingsError, _tidings_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for raised in DATABASE_ERRORS:  # handled here, not re-raised to the server as a crash
        app.add_exception_handler(raised, _database_error)
    app.add_exception_handler(Exception, _unexpected)

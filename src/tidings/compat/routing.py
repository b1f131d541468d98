"""What the compatibility dialects share: a router whose every failure is answered in the
dialect's own error shape, and the caller's key checked the native way.

    request ──▶ DialectRoute handler ──▶ the route (thin: parse → service → dialect shape)
                     │ raises TidingsError, RequestValidationError, HTTPException, anything
                     ▼
                 failure_of(exc) → Failure(status, kind, detail, errors)
                     ▼
                 the dialect's `ErrorShape` → its JSON body and status

The guard is outside `IdempotentRoute`'s wrapper, so a dialect's send honours
`Idempotency-Key` like a native route, and its refusals are stored in its own shape.
A dialect never sees problem+json: authentication (401), scope (403), absent objects (404),
malformed bodies (400), bodies refused by `api/body.py` (413, 415, invalid input) and the
unexpected (500, logged) all pass through its shape; so do a path under its base URL that
no route serves (404) and a method its path does not take (405, with `Allow`), which
`unrouted(shape)` answers for the app's error handler (`api.problems.install`).

Each dialect declares its error body as a pydantic model (`error_model`), so its OpenAPI
operations document that shape for every error status they answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from tidings.api.body import RefusedBody
from tidings.api.deps import answered_failure
from tidings.api.principal import Principal
from tidings.api.problems import (
    UNAVAILABLE,
    Unrouted,
    field_path,
    path_not_found,
    refusal_of,
    unreadable_body,
)
from tidings.db.availability import RETRY_AFTER_SECONDS, unavailable
from tidings.errors import FieldError, TidingsError
from tidings.idempotency.http import IN_PROGRESS, REUSED, IdempotentRoute
from tidings.keys.schemas import Scope

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed request, before a dialect shapes it. `kind` is the native problem slug
    (`unauthorized`, `forbidden`, `not-found`, `invalid-input`, `conflict`,
    `insufficient-credit`, `too-large`, `unsupported-media-type`, `malformed`,
    `method-not-allowed`, `internal-error`)."""

    status: int
    kind: str
    detail: str
    errors: Sequence[FieldError] = ()


ErrorShape = Callable[[Failure], Response]


_HTTP_KINDS: Final = {404: "not-found", 405: "method-not-allowed"}


def failure_of(exc: Exception, request: Request | None = None) -> Failure:
    """`request`, when there is one, tells a body of the wrong media type (415) from
    invalid input (`api.problems.refusal_of`)."""
    if isinstance(exc, RefusedBody):
        return failure_of(exc.error)
    if isinstance(exc, TidingsError):
        return Failure(exc.status, exc.slug, exc.detail, getattr(exc, "errors", ()))
    if isinstance(exc, RequestValidationError):
        refusal = path_not_found(exc) if request is None else refusal_of(request, exc)
        if refusal is not None:
            return failure_of(refusal)
        errors = []
        for err in exc.errors():
            if err["type"] == "json_invalid":
                errors.append(FieldError("body", "not valid JSON"))
                continue
            field, index = field_path(err["loc"])
            errors.append(FieldError(field, err["msg"], index))
        detail = "; ".join(f"{e.field}: {e.reason}" for e in errors[:5]) or "malformed request"
        return Failure(400, "malformed", detail, errors)
    if isinstance(exc, HTTPException) and (unreadable := unreadable_body(exc)) is not None:
        return failure_of(unreadable)
    if isinstance(exc, HTTPException):
        return Failure(exc.status_code, _HTTP_KINDS.get(exc.status_code, "http"), str(exc.detail))
    if unavailable(exc):
        return Failure(503, UNAVAILABLE, "the database cannot be reached right now; retry shortly")
    return Failure(500, "internal-error", "an unexpected error occurred; it has been logged")


def unrouted(shape: ErrorShape) -> Unrouted:
    """The answer, in the dialect's shape, to a request under its base URL that reaches no
    route: 404, or 405 with the `Allow` header the router gave."""

    async def answer(request: Request, exc: HTTPException) -> Response:
        response = shape(failure_of(exc))
        response.headers.update(exc.headers or {})
        return response

    return answer


UNAVAILABLE_HEADERS: Final = {
    "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
}


def error_answers(
    error_model: type[BaseModel], descriptions: Mapping[int, str]
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses a dialect's route answers, in its shape."""
    answers: dict[int | str, dict[str, Any]] = {
        status: {"model": error_model, "description": description}
        for status, description in descriptions.items()
    }
    if 503 in answers:
        answers[503]["headers"] = UNAVAILABLE_HEADERS
    return answers


COMMON: Final = {
    401: "Missing or invalid credentials",
    403: "The key lacks the scope (or belongs to another org)",
    404: "Not found",
    405: "The path does not take this method (`Allow` lists those it takes)",
    500: "Unexpected error (logged)",
    503: "The database cannot be reached right now: retry after `Retry-After`",
}
"""What every route of every dialect may answer, besides its own (400 or 422 for bad input,
413 and 415 for refused bodies: `api/openapi.py` adds those to each route with a body)."""


def dialect_router(
    shape: ErrorShape,
    *,
    prefix: str,
    tag: str,
    error_model: type[BaseModel],
    errors: Mapping[int, str],
) -> APIRouter:
    """An APIRouter whose routes answer every failure through `shape`, and document the
    statuses of `errors` (plus `COMMON`) with `error_model` as their body."""

    class DialectRoute(IdempotentRoute):
        idempotent_answers: ClassVar[dict[int | str, dict[str, Any]]] = {
            409: {"description": IN_PROGRESS},
            422: {"description": REUSED},
        }

        def refusal(self, request: Request, exc: TidingsError) -> Response:
            return shape(failure_of(exc))  # what an Idempotency-Key replays

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    return await handler(request)
                except Exception as exc:
                    answered_failure(request)  # its write transaction is rolled back
                    failure = failure_of(exc, request)
                    if failure.status == 503:
                        log.warning("%s %s: database unavailable: %r", request.method,
                                    request.url.path, exc)  # fmt: skip
                        answer = shape(failure)
                        answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
                        return answer
                    if failure.status >= 500:
                        log.exception("%s %s failed", request.method, request.url.path)
                    return shape(failure)

            return guarded

    return APIRouter(
        prefix=prefix,
        tags=[tag],
        route_class=DialectRoute,
        responses=error_answers(error_model, {**COMMON, **errors}),
    )


def require_scope(principal: Principal, scope: Scope) -> None:
    """For dialects whose paths name no org: the key's own org is the one acted on."""
    principal.require(org_id=principal.org_id, scope=scope)

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
malformed bodies (400) and the unexpected (500, logged) all pass through its shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from tidings.api.deps import answered_failure
from tidings.api.principal import Principal
from tidings.api.problems import UNAVAILABLE, field_path
from tidings.db.availability import RETRY_AFTER_SECONDS, unavailable
from tidings.errors import FieldError, TidingsError
from tidings.idempotency.http import IN_PROGRESS, REUSED, IdempotentRoute
from tidings.keys.schemas import Scope

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed request, before a dialect shapes it. `kind` is the native problem slug
    (`unauthorized`, `forbidden`, `not-found`, `invalid-input`, `conflict`,
    `insufficient-credit`, `malformed`, `internal-error`)."""

    status: int
    kind: str
    detail: str
    errors: Sequence[FieldError] = ()


ErrorShape = Callable[[Failure], Response]


def failure_of(exc: Exception) -> Failure:
    if isinstance(exc, TidingsError):
        return Failure(exc.status, exc.slug, exc.detail, getattr(exc, "errors", ()))
    if isinstance(exc, RequestValidationError):
        errors = []
        for err in exc.errors():
            if err["type"] == "json_invalid":
                errors.append(FieldError("body", "not valid JSON"))
                continue
            field, index = field_path(err["loc"])
            errors.append(FieldError(field, err["msg"], index))
        detail = "; ".join(f"{e.field}: {e.reason}" for e in errors[:5]) or "malformed request"
        return Failure(400, "malformed", detail, errors)
    if isinstance(exc, HTTPException):
        return Failure(exc.status_code, "http", str(exc.detail))
    if unavailable(exc):
        return Failure(503, UNAVAILABLE, "the database cannot be reached right now; retry shortly")
    return Failure(500, "internal-error", "an unexpected error occurred; it has been logged")


def dialect_router(shape: ErrorShape, *, prefix: str, tag: str) -> APIRouter:
    """An APIRouter whose routes answer every failure through `shape`."""

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
                    failure = failure_of(exc)
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

    return APIRouter(prefix=prefix, tags=[tag], route_class=DialectRoute)


def require_scope(principal: Principal, scope: Scope) -> None:
    """For dialects whose paths name no org: the key's own org is the one acted on."""
    principal.require(org_id=principal.org_id, scope=scope)

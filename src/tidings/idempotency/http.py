"""`Idempotency-Key` over HTTP: one mechanism for every POST that creates or sends.

A route takes part with two declarations: its router's `route_class` is `IdempotentRoute`
(a dialect's `DialectRoute` is one), and the route lists `IDEMPOTENT` in its
`dependencies`. Then, for a request that carries the header:

    IDEMPOTENT (a dependency, after the caller's key, before the write transaction)
        claims the key in a short transaction of its own (`service.begin`):
        a stored answer → Replayed (the wrapper answers it again, `Idempotent-Replayed: true`)
        another request → 422, still running → 409 (a route's own refusal shape)
    the route runs in its write transaction (`WriteSessionDep`)
    IdempotentRoute (around the route's handler, inside that transaction)
        an answer        → stored in the route's write transaction, so it commits with
                           the work or not at all (a route without one: right after)
        a TidingsError   → the work rolled back; the refusal stored alone, in the
                           route's own shape (`refusal`): it is answered again too
                           (401 and 403, about the caller, release the key instead)
        anything else    → the work rolled back; the key released, so a retry runs

A route without the dependency, or a request without the header, passes through.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any, ClassVar

from fastapi import Depends, Header, Request, Response
from fastapi.params import Depends as DependsParam
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from tidings.api.deps import (
    DatabaseDep,
    PrincipalDep,
    SettingsDep,
    committing_session,
    roll_back_now,
)
from tidings.api.problems import PROBLEM_JSON, problem_body
from tidings.db.engine import Database
from tidings.errors import Forbidden, TidingsError, Unauthorized
from tidings.idempotency import service
from tidings.idempotency.service import Claim, Replay

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_CLAIM = "tidings_idempotency_claim"  # request.state: the key this request holds
log = logging.getLogger(__name__)


class Replayed(Exception):
    """The key's stored answer, raised by the dependency so that the route does not run."""

    def __init__(self, replay: Replay) -> None:
        super().__init__("replayed")
        self.replay = replay

    def response(self) -> Response:
        replay = self.replay
        headers = {REPLAYED: "true"}
        if replay.body is None:
            return Response(status_code=replay.status_code, headers=headers)
        return JSONResponse(
            replay.body,
            replay.status_code,
            headers=headers,
            media_type=replay.media_type or "application/json",
        )


async def claim_key(
    request: Request,
    principal: PrincipalDep,
    db: DatabaseDep,
    settings: SettingsDep,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description=(
                "Makes a retry safe: the same key with the same request answers the first "
                "answer again (header `Idempotent-Replayed: true`) instead of doing it twice. "
                "1-255 printable characters, one org's, per route, kept "
                "`TIDINGS_IDEMPOTENCY_KEEP_HOURS` (24 h)."
            ),
        ),
    ] = None,
) -> None:
    if key is None:
        return
    path = request.url.path
    query = request.url.query
    # The API key is part of the request: a stored answer (a new key's secret, say) is
    # given again only to the key that asked for it, never to another key of the org,
    # which may lack the scope (this runs before the route checks it).
    fingerprint = service.request_hash(
        request.method,
        f"{path}?{query}" if query else path,
        await request.body(),
        caller=principal.key_id,
    )
    async with db.transaction() as session:
        outcome = await service.begin(
            session,
            org_id=principal.org_id,
            route=service.route_digest(request.method, path),
            key=key,
            fingerprint=fingerprint,
            keep_for=timedelta(hours=settings.idempotency_keep_hours),
            in_flight_for=timedelta(seconds=settings.idempotency_in_flight_seconds),
        )
    if isinstance(outcome, Replay):
        raise Replayed(outcome)
    setattr(request.state, _CLAIM, outcome)


IDEMPOTENT: DependsParam = Depends(claim_key)
"""The dependency a creating route lists first: it honours `Idempotency-Key`."""

IN_PROGRESS = "A request with the same Idempotency-Key is still in progress"
REUSED = "The Idempotency-Key was used for another request (another body or API key)"


class IdempotentRoute(APIRoute):
    """A route whose answers are stored for its `Idempotency-Key` (module docstring). A
    route that lists `IDEMPOTENT` documents the 409 it may answer."""

    idempotent_answers: ClassVar[dict[int | str, dict[str, Any]]] = {
        409: {"description": IN_PROGRESS, "content": {PROBLEM_JSON: {}}},
    }

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if any(d is IDEMPOTENT for d in kwargs.get("dependencies") or ()):
            kwargs["responses"] = {**self.idempotent_answers, **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)

    def refusal(self, request: Request, exc: TidingsError) -> Response:
        """How this route answers a domain error: problem+json (a dialect: its own shape)."""
        return JSONResponse(problem_body(request, exc), exc.status, media_type=PROBLEM_JSON)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def idempotent(request: Request) -> Response:
            try:
                response = await handler(request)
            except Replayed as replayed:
                return replayed.response()
            except TidingsError as exc:
                claim = _claim_of(request)
                if claim is not None and isinstance(exc, (Unauthorized, Forbidden)):
                    await _release(request, claim)  # about the caller, not the request
                elif claim is not None:
                    await _settle_alone(request, claim, self.refusal(request, exc))
                raise
            except BaseException:
                claim = _claim_of(request)
                if claim is not None:
                    await _release(request, claim)
                raise
            claim = _claim_of(request)
            if claim is not None:
                await _settle(request, claim, response)
            return response

        return idempotent


def _claim_of(request: Request) -> Claim | None:
    claim: Claim | None = getattr(request.state, _CLAIM, None)
    setattr(request.state, _CLAIM, None)
    return claim


def _answer(response: Response) -> tuple[Any, str | None] | None:
    """(JSON body, media type) of an answer that can be stored, else None."""
    body = getattr(response, "body", None)
    if not isinstance(body, bytes):
        return None  # a streamed answer
    media_type = response.headers.get("content-type", "").split(";")[0].strip() or None
    if not body:
        return None, media_type
    try:
        return json.loads(body), media_type
    except ValueError:
        return None


async def _settle(request: Request, claim: Claim, response: Response) -> None:
    """Store the route's answer in its write transaction, or right after it."""
    answer = _answer(response) if response.status_code < 500 else None
    if answer is None:
        await _release(request, claim)
        return
    body, media_type = answer
    session = committing_session(request)
    if session is None:  # no write transaction of the request's: its work has committed
        await _store_alone(request, claim, response.status_code, body, media_type)
        return
    await service.finish(
        session, claim=claim, status_code=response.status_code, body=body, media_type=media_type
    )


async def _settle_alone(request: Request, claim: Claim, response: Response) -> None:
    """Store a refusal: the work's transaction is rolled back, this one is its own."""
    answer = _answer(response)
    if answer is None:
        await _release(request, claim)
        return
    await _store_alone(request, claim, response.status_code, *answer)


async def _store_alone(
    request: Request, claim: Claim, status_code: int, body: Any, media_type: str | None
) -> None:
    db: Database = request.app.state.db
    try:
        await roll_back_now(request)  # a failed work's; none after a route without one
        async with db.transaction() as session:
            await service.finish(
                session, claim=claim, status_code=status_code, body=body, media_type=media_type
            )
    except Exception:  # taken over meanwhile, or the database is away: not stored, and
        # the key expires as an abandoned one would (the answer itself is not changed)
        log.warning("%s %s: Idempotency-Key answer not stored", request.method, request.url.path)


async def _release(request: Request, claim: Claim) -> None:
    """Forget the key: the work did not happen, so a retry runs it."""
    db: Database = request.app.state.db
    try:
        await roll_back_now(request)
        async with db.transaction() as session:
            await service.release(session, claim=claim)
    except Exception:  # the key then expires as if the process had died (in-flight limit)
        log.warning("%s %s: Idempotency-Key not released", request.method, request.url.path)

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from tidings.api.deps import ReadKey, RendererDep, SendKey, SessionDep
from tidings.api.fields import Id
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.api.problems import PROBLEM_JSON, problem_body
from tidings.db.engine import transaction
from tidings.errors import TidingsError
from tidings.idempotency import service as idempotency
from tidings.keys.schemas import KeyKind
from tidings.messages import service
from tidings.messages.schemas import MessageOut, SingleSend, SinkMessageOut

router = APIRouter(prefix="/orgs/{org_id}", tags=["messages"])


@router.get("/messages", summary="List messages, filtered by broadcast, status or contact")
async def list_messages(
    org_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    broadcast_id: Annotated[Id | None, Query()] = None,
    status: Annotated[str | None, Query(description="e.g. sent, failed, skipped")] = None,
    contact_id: Annotated[Id | None, Query()] = None,
) -> Page[MessageOut]:
    rows = await service.list_messages(
        session,
        org_id=key.org_id,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
        broadcast_id=broadcast_id,
        status=status,
        contact_id=contact_id,
    )
    return paged(rows, limit, MessageOut.model_validate)


@router.get("/messages/{message_id}", summary="Read a message and its final state")
async def get_message(org_id: Id, message_id: Id, key: ReadKey, session: SessionDep) -> MessageOut:
    message = await service.get_message(session, org_id=key.org_id, message_id=message_id)
    return MessageOut.model_validate(message)


@router.get("/sink/messages", summary="What the built-in sink received (full MIME, SMS text)")
async def list_sink_messages(
    org_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    message_id: Annotated[Id | None, Query()] = None,
) -> Page[SinkMessageOut]:
    rows = await service.list_sink_messages(
        session,
        org_id=key.org_id,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
        message_id=message_id,
    )
    return paged(rows, limit, SinkMessageOut.model_validate)


@router.post(
    "/messages",
    status_code=201,
    summary="Send one message: by campaign, template or inline content (Idempotency-Key)",
    responses={
        409: {"description": "The same Idempotency-Key is still in progress"},
        422: {"description": "Invalid input, or the Idempotency-Key was used with another body"},
    },
)
async def send_message(
    org_id: Id,
    body: SingleSend,
    request: Request,
    key: SendKey,
    session: SessionDep,
    renderer: RendererDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    # With a key, the claim is a short transaction of its own, so that a concurrent retry
    # sees it in flight (409); the send stores its answer in the send's transaction; a
    # refused send stores its problem, an unexpected error frees the key.
    claim: idempotency.Claim | None = None
    if idempotency_key is not None:
        fingerprint = idempotency.request_hash("POST", request.url.path, await request.body())
        async with transaction(session):
            outcome = await idempotency.begin(
                session, org_id=key.org_id, key=idempotency_key, fingerprint=fingerprint
            )
        if isinstance(outcome, idempotency.Replay):
            return JSONResponse(
                outcome.body,
                outcome.status_code,
                headers={"Idempotent-Replayed": "true"},
                media_type=PROBLEM_JSON if outcome.status_code >= 400 else None,
            )
        claim = outcome
    try:
        async with transaction(session):
            message = await service.send_single(
                session,
                org_id=key.org_id,
                body=body,
                renderer=renderer,
                claim=claim,
                is_test=key.kind is KeyKind.TEST,
            )
    except TidingsError as exc:
        if claim is not None:
            answer = problem_body(request, exc)
            async with transaction(session):
                await idempotency.finish_alone(
                    session, claim=claim, status_code=exc.status, body=answer
                )
        raise
    except BaseException:
        if claim is not None:
            async with transaction(session):
                await idempotency.release(session, claim=claim)
        raise
    return JSONResponse(MessageOut.model_validate(message).model_dump(mode="json"), 201)

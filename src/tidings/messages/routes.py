from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tidings.api.deps import ReadKey, RendererDep, SendKey, SessionDep, WriteSessionDep
from tidings.api.fields import NO_NUL, Id, Moment
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute
from tidings.keys.schemas import KeyKind
from tidings.messages import service
from tidings.messages.schemas import (
    AttemptOut,
    MessageDetail,
    MessageOut,
    SingleSend,
    SinkMessageOut,
)

router = APIRouter(prefix="/orgs/{org_id}", tags=["messages"], route_class=IdempotentRoute)


@router.get(
    "/messages", summary="List messages, filtered by broadcast, status, contact, address or date"
)
async def list_messages(
    org_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    broadcast_id: Annotated[Id | None, Query()] = None,
    status: Annotated[str | None, Query(description="e.g. sent, failed, skipped")] = None,
    contact_id: Annotated[Id | None, Query()] = None,
    address: Annotated[
        str | None,
        Query(
            max_length=320,
            pattern=NO_NUL,
            description="An email or E.164 phone: the messages of its contact",
        ),
    ] = None,
    since: Annotated[Moment | None, Query(description="Created at or after (inclusive)")] = None,
    until: Annotated[Moment | None, Query(description="Created before (exclusive)")] = None,
) -> Page[MessageOut]:
    rows = await service.list_messages(
        session,
        org_id=key.org_id,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
        broadcast_id=broadcast_id,
        status=status,
        contact_id=contact_id,
        address=address,
        since=since,
        until=until,
    )
    return paged(rows, limit, MessageOut.model_validate)


@router.get(
    "/messages/{message_id}", summary="Read a message, its final state and each of its attempts"
)
async def get_message(
    org_id: Id, message_id: Id, key: ReadKey, session: SessionDep
) -> MessageDetail:
    message = await service.get_message(session, org_id=key.org_id, message_id=message_id)
    tried = await service.attempts(session, message=message)
    return MessageDetail.model_validate(message).model_copy(
        update={"attempt_history": [AttemptOut.model_validate(a) for a in tried]}
    )


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
    summary="Send one message: by campaign, template or inline content",
    dependencies=[IDEMPOTENT],
)
async def send_message(
    org_id: Id,
    body: SingleSend,
    key: SendKey,
    session: WriteSessionDep,
    renderer: RendererDep,
) -> MessageOut:
    message = await service.send_single(
        session,
        org_id=key.org_id,
        body=body,
        renderer=renderer,
        is_test=key.kind is KeyKind.TEST,
    )
    return MessageOut.model_validate(message)

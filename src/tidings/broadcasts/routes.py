from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter

from tidings.api.deps import ReadKey, SendKey, SessionDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.api.problems import answers
from tidings.broadcasts import service
from tidings.broadcasts.models import COUNTERS, Broadcast
from tidings.broadcasts.schemas import (
    BroadcastCreate,
    BroadcastCreated,
    BroadcastOut,
    RejectedRecipient,
)
from tidings.broadcasts.status import BroadcastStatus
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute
from tidings.keys.schemas import KeyKind

router = APIRouter(
    prefix="/orgs/{org_id}/broadcasts", tags=["broadcasts"], route_class=IdempotentRoute
)


def broadcast_out(b: Broadcast) -> BroadcastOut:
    return BroadcastOut(
        id=b.id,
        name=b.name,
        campaign_id=b.campaign_id,
        status=BroadcastStatus(b.status),
        list_ids=b.audience.get("list_ids", []),
        segment_ids=b.audience.get("segment_ids", []),
        send_to_all=bool(b.audience.get("send_to_all")),
        test=b.is_test,
        scheduled_at=b.scheduled_at,
        started_at=b.started_at,
        completed_at=b.completed_at,
        error_message=b.error_message,
        created_at=b.created_at,
        updated_at=b.updated_at,
        fallback_count=b.fallback_count,
        **{name: getattr(b, name) for name in COUNTERS},
    )


@router.post(
    "",
    status_code=201,
    summary="Create a broadcast: now, at scheduled_at, or as a draft",
    dependencies=[IDEMPOTENT],
)
async def create_broadcast(
    org_id: Id, body: BroadcastCreate, key: SendKey, session: WriteSessionDep
) -> BroadcastCreated:
    created = await service.create_broadcast(
        session, org_id=key.org_id, body=body, is_test=key.kind is KeyKind.TEST
    )
    rejected = [
        RejectedRecipient(index=e.index or 0, field=e.field, reason=e.reason)
        for e in created.rejected
    ]
    return BroadcastCreated(**broadcast_out(created.broadcast).model_dump(), rejected=rejected)


@router.get("", summary="List broadcasts")
async def list_broadcasts(
    org_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[BroadcastOut]:
    rows = await service.list_broadcasts(
        session, org_id=key.org_id, after_id=decode_cursor(cursor), limit=limit + 1
    )
    return paged(rows, limit, broadcast_out)


@router.get("/{broadcast_id}", summary="Read a broadcast and its counters")
async def get_broadcast(
    org_id: Id, broadcast_id: Id, key: ReadKey, session: SessionDep
) -> BroadcastOut:
    broadcast = await service.get_broadcast(session, org_id=key.org_id, broadcast_id=broadcast_id)
    return broadcast_out(broadcast)


Action = Callable[..., Awaitable[Broadcast]]


def _action(action: Action, path: str, summary: str, *, idempotent: bool = False) -> None:
    async def endpoint(
        org_id: Id, broadcast_id: Id, key: SendKey, session: WriteSessionDep
    ) -> BroadcastOut:
        return broadcast_out(await action(session, org_id=key.org_id, broadcast_id=broadcast_id))

    endpoint.__name__ = f"{path}_broadcast"
    router.add_api_route(
        f"/{{broadcast_id}}/{path}",
        endpoint,
        methods=["POST"],
        summary=summary,
        dependencies=[IDEMPOTENT] if idempotent else None,
        responses=answers(409),  # not in a state this action applies to
    )


# Sending starts what a retry must not start twice; pausing, resuming and cancelling are
# idempotent by nature (a state the status table reaches once).
_action(
    service.send_draft,
    "send",
    "Send a draft broadcast (now, or at its scheduled_at)",
    idempotent=True,
)
_action(service.pause, "pause", "Pause: queued messages are held (409 if not running)")
_action(service.resume, "resume", "Resume a paused broadcast")
_action(service.cancel, "cancel", "Cancel: unsent messages are cancelled")

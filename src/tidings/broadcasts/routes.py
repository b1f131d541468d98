from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response

from tidings.api.deps import ReadKey, SendKey, SessionDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.api.problems import answers
from tidings.broadcasts import preview, service
from tidings.broadcasts.estimate import Figures
from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.schemas import (
    BroadcastCreate,
    BroadcastCreated,
    BroadcastEstimate,
    BroadcastOut,
    DueAt,
    RejectedRecipient,
    broadcast_out,
)
from tidings.credits.schemas import to_credits
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute
from tidings.keys.schemas import KeyKind

router = APIRouter(
    prefix="/orgs/{org_id}/broadcasts", tags=["broadcasts"], route_class=IdempotentRoute
)


def estimate_out(figures: Figures) -> BroadcastEstimate:
    schedule = figures.schedule
    return BroadcastEstimate(
        channel=figures.channel,
        contacts=figures.contacts,
        recipients={figures.channel: figures.recipients}
        | ({figures.fallback_channel: figures.fallbacks} if figures.fallback_channel else {}),
        skipped=figures.skipped,
        sms_segments=figures.sms_segments,
        cost=to_credits(figures.cost),
        reserved=to_credits(figures.reserved),
        balance=to_credits(figures.balance),
        covered=figures.covered,
        first_due_at=schedule[0][0] if schedule else None,
        last_due_at=schedule[-1][0] if schedule else None,
        schedule=[DueAt(due_at=at, messages=n) for at, n in schedule],
    )


@router.post(
    "",
    status_code=201,
    summary="Create a broadcast: now, at scheduled_at, or as a draft (or estimate it: dry_run)",
    dependencies=[IDEMPOTENT],
    responses={
        200: {"model": BroadcastEstimate, "description": "`dry_run`: the estimate, nothing made"},
        **answers(402),  # the balance cannot cover it: refused up front, with the figures
    },
)
async def create_broadcast(
    org_id: Id, body: BroadcastCreate, key: SendKey, session: WriteSessionDep, response: Response
) -> BroadcastCreated | BroadcastEstimate:
    if body.dry_run:
        response.status_code = 200
        figures = await preview.dry_run(
            session, org_id=key.org_id, body=body, is_test=key.kind is KeyKind.TEST
        )
        return estimate_out(figures)
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


@router.post(
    "/{broadcast_id}/estimate",
    summary="Estimate a broadcast that has not started: recipients, skips, cost, last due time",
    responses=answers(409),  # started already: its counters say what it does
)
async def estimate_broadcast(
    org_id: Id, broadcast_id: Id, key: ReadKey, session: SessionDep
) -> BroadcastEstimate:
    figures = await preview.estimate_broadcast(
        session, org_id=key.org_id, broadcast_id=broadcast_id
    )
    return estimate_out(figures)


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
        # 409: not in a state this action applies to; 402: sending what the balance
        # cannot cover (refused up front)
        responses=answers(409, 402) if idempotent else answers(409),
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

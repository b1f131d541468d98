from __future__ import annotations

from fastapi import APIRouter

from tidings.api.deps import SendKey, WriteSessionDep
from tidings.api.fields import Id
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute
from tidings.invites import service
from tidings.invites.schemas import InviteBatchOut, InviteCreate, SkippedRecipient
from tidings.keys.schemas import KeyKind

router = APIRouter(
    prefix="/orgs/{org_id}/campaigns/{campaign_id}/invites",
    tags=["invites"],
    route_class=IdempotentRoute,
)


def batch_out(batch: service.InviteBatch) -> InviteBatchOut:
    return InviteBatchOut(
        batch_id=batch.broadcast_id,
        accepted=batch.accepted,
        skipped=len(batch.skipped),
        skipped_recipients=[
            SkippedRecipient(index=s.index, reason=s.reason) for s in batch.skipped
        ],
    )


@router.post(
    "",
    status_code=202,
    summary="Invite recipients: each gets the campaign's message with their own invite link",
    dependencies=[IDEMPOTENT],
)
async def send_invites(
    org_id: Id, campaign_id: Id, body: InviteCreate, key: SendKey, session: WriteSessionDep
) -> InviteBatchOut:
    batch = await service.send_invites(
        session,
        org_id=key.org_id,
        campaign_id=campaign_id,
        recipients=[r.variables for r in body.recipients],
        send_at=body.send_at,
        is_test=key.kind is KeyKind.TEST,
    )
    return batch_out(batch)

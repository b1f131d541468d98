"""Seed 000, survey invites, under `/compat/walr`.

POST /projects/{projectId}/surveys/{surveyId}/invites
     {"campaignId": str, "recipients": [{"variables": {…}}] | null, "sendTimeUtc": datetime | null}
  → 202 {"batchId" (null: nobody accepted, nothing made), "accepted", "skipped",
         "skippedRecipients": [{"index", "reason"}]}   (accepted + skipped = recipients)
  → 400/401/403/404 {"error": str, "statusCode": int}

`campaignId` is the campaign's `external_id`, or its Tidings id; the campaign must carry
the path's project and survey as `project_ref` and `survey_ref`, or it is not found. The
invites are the native invites service (`tidings.invites`), nothing more.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tidings.api.deps import PrincipalDep, WriteSessionDep
from tidings.api.fields import UtcMoment
from tidings.campaigns.service import find_campaign
from tidings.compat.routing import Failure, dialect_router, error_answers, require_scope
from tidings.idempotency.http import IDEMPOTENT
from tidings.invites import service
from tidings.keys.schemas import KeyKind, Scope


def error_shape(failure: Failure) -> Response:
    status = 400 if failure.kind in ("malformed", "invalid-input") else failure.status
    return JSONResponse({"error": failure.detail, "statusCode": status}, status_code=status)


class WalrError(BaseModel):
    """Every error of this dialect, whatever its status."""

    error: str
    statusCode: int  # noqa: N815 — the dialect's own field names


router = dialect_router(
    error_shape,
    prefix="/compat/walr",
    tag="compat: survey invites (seed 000)",
    error_model=WalrError,
    errors={400: "Bad request: malformed JSON, a missing or invalid field (named in `error`)"},
)


class Recipient(BaseModel):
    variables: dict[str, Any] | None = None


class InviteRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "campaignId": "nps-2026-q4",
                    "recipients": [
                        {"variables": {"email": "ada@example.com", "first_name": "Ada"}},
                    ],
                    "sendTimeUtc": None,
                }
            ]
        }
    )

    campaign_id: str = Field(alias="campaignId", min_length=1, max_length=128)
    recipients: list[Recipient | None] | None = Field(default=None, max_length=10_000)
    # without an offset, UTC: the field's name says so
    send_time_utc: UtcMoment | None = Field(default=None, alias="sendTimeUtc")

    @field_validator("campaign_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class SkippedRow(BaseModel):
    index: int
    reason: str


class InviteAccepted(BaseModel):
    batchId: str | None  # noqa: N815 — the dialect's own field names
    accepted: int
    skipped: int
    skippedRecipients: list[SkippedRow]  # noqa: N815


@router.post(
    "/projects/{projectId}/surveys/{surveyId}/invites",
    dependencies=[IDEMPOTENT],
    status_code=202,
    summary="Send invites (seed 000)",
    responses=error_answers(
        WalrError,
        {402: "The org's balance cannot cover the invites (nothing is made or sent)"},
    ),
)
async def send_invites(
    projectId: str,  # noqa: N803
    surveyId: str,  # noqa: N803
    body: InviteRequest,
    principal: PrincipalDep,
    session: WriteSessionDep,
) -> InviteAccepted:
    require_scope(principal, Scope.SEND)
    campaign = await find_campaign(
        session,
        org_id=principal.org_id,
        reference=body.campaign_id,
        project_ref=projectId,
        survey_ref=surveyId,
    )
    batch = await service.send_invites(
        session,
        org_id=principal.org_id,
        campaign_id=campaign.id,
        recipients=[r.variables if r else None for r in body.recipients or []],
        send_at=body.send_time_utc,
        is_test=principal.kind is KeyKind.TEST,
    )
    return InviteAccepted(
        batchId=None if batch.broadcast_id is None else str(batch.broadcast_id),
        accepted=batch.accepted,
        skipped=len(batch.skipped),
        skippedRecipients=[SkippedRow(index=s.index, reason=s.reason) for s in batch.skipped],
    )

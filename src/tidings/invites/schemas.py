from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tidings.api.fields import Moment

_EXAMPLE: dict[str, Any] = {
    "recipients": [
        {"variables": {"email": "ada@example.com", "first_name": "Ada", "store": "Leeds"}},
        {"variables": {"email": "alan@example.com", "first_name": "Alan", "store": "York"}},
    ],
    "send_at": None,
}


class InviteRecipient(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variables: dict[str, Any] | None = Field(
        default=None,
        description=(
            "`email` (email campaigns) or `phone` (SMS campaigns) is required; "
            "`first_name` and `last_name` fill the contact's fields. Names are free: every "
            "variable is merged into the invitation (`{{ store }}`, or "
            '`{{ vars["Store Name"] }}` for a name that is not an identifier), and those '
            "named like attributes (letters, digits, `_`) into the contact's attributes too."
        ),
    )


class InviteCreate(BaseModel):
    """Invite people to a campaign's target: each gets a message with their own invite
    link (`{{ invite_link }}` in the template), now or at `send_at`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    recipients: list[InviteRecipient] = Field(default_factory=list, max_length=10_000)
    send_at: Moment | None = None


class SkippedRecipient(BaseModel):
    index: int
    reason: str


class InviteBatchOut(BaseModel):
    """`batch_id` is the broadcast that carries the invites: read, pause or cancel it
    through `/v1/orgs/{org_id}/broadcasts/{batch_id}`; null when no recipient was accepted
    (then nothing was made). `accepted + skipped` is the number of recipients: one
    `skipped_recipients` entry per skipped recipient (a repeated address: a duplicate)."""

    batch_id: int | None
    accepted: int
    skipped: int
    skipped_recipients: list[SkippedRecipient]

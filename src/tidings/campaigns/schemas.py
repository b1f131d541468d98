from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tidings.templates.schemas import Channel


class Purpose(StrEnum):
    """`marketing` mail carries unsubscribe links and skips unsubscribed contacts;
    `transactional` (receipts, invitations someone asked for) does neither."""

    TRANSACTIONAL = "transactional"
    MARKETING = "marketing"


_EXAMPLE: dict[str, Any] = {
    "name": "NPS Q3",
    "channel": "email",
    "template_id": 1,
    "purpose": "transactional",
    "from_name": "Acme Research",
    "from_email": "research@acme.example",
}


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    name: str = Field(min_length=1, max_length=255)
    channel: Channel
    template_id: int
    purpose: Purpose = Purpose.TRANSACTIONAL
    from_name: str | None = Field(default=None, max_length=200)
    from_email: str | None = Field(default=None, max_length=320)
    reply_to: str | None = Field(default=None, max_length=320)
    sms_sender: str | None = Field(
        default=None, max_length=16, description="SMS sender id: up to 11 letters or 15 digits"
    )
    connection_id: int | None = Field(
        default=None, description="Null: the org's default connection for the channel."
    )
    list_id: int | None = Field(default=None, description="The campaign's recipient list.")
    track_opens: bool = False
    track_clicks: bool = False
    external_id: str | None = Field(
        default=None,
        max_length=128,
        description="How another system names this campaign (seed 000's campaignId).",
    )
    project_ref: str | None = Field(
        default=None, max_length=128, description="Seed 000: the project it belongs to."
    )
    survey_ref: str | None = Field(
        default=None, max_length=128, description="Seed 000: the survey it belongs to."
    )
    invite_url: str | None = Field(
        default=None,
        max_length=2048,
        description=(
            "Where each recipient's `{{ invite_link }}` leads; may use template variables, "
            "e.g. https://survey.example/s/{{ survey }}?r={{ contact_ref }}"
        ),
    )
    language: str | None = Field(
        default=None,
        description="Of the unsubscribe line on marketing mail: en, fr, de, es, it, nl, pt.",
    )


class CampaignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    channel: Channel
    template_id: int
    purpose: Purpose
    from_name: str | None
    from_email: str | None
    reply_to: str | None
    sms_sender: str | None
    connection_id: int | None
    list_id: int | None
    track_opens: bool
    track_clicks: bool
    single_send: bool = Field(
        validation_alias="is_single_send",
        description="Made for single sends that gave a template or inline content: not listed.",
    )
    external_id: str | None
    project_ref: str | None
    survey_ref: str | None
    invite_url: str | None
    language: str | None
    created_at: datetime
    updated_at: datetime

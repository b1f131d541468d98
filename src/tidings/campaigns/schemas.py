from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidings.api.fields import Id
from tidings.api.patch import refuse_null
from tidings.content.mime import HeaderText
from tidings.orgs.schemas import QuietHours
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


# Each field's shape, once for a new campaign and a change (the rules that need the
# database or other fields are `campaigns.service`'s).
Name = Annotated[str, Field(min_length=1, max_length=255)]
FromName = Annotated[HeaderText | None, Field(max_length=200)]
Address = Annotated[str | None, Field(max_length=320)]
SmsSender = Annotated[
    str | None, Field(max_length=16, description="SMS sender id: up to 11 letters or 15 digits")
]
ConnectionId = Annotated[
    Id | None, Field(description="Null: the org's default connection for the channel.")
]
MAX_CONNECTIONS = 5
ConnectionIds = Annotated[
    list[Id] | None,
    Field(
        max_length=MAX_CONNECTIONS,
        description=(
            "Failover: the connections of the campaign's channel to send through, in order "
            "(the first is `connection_id`). A message whose attempt fails transiently on "
            "one goes to the next for its next attempt, round the list, past connections "
            "whose circuit breaker is open. Null (or one id): `connection_id` alone."
        ),
    ),
]
FallbackCampaignId = Annotated[
    Id | None,
    Field(
        description=(
            "Cross-channel fallback: a campaign of the org on the other channel. A recipient "
            "whose message of this campaign fails permanently, or hard-bounces within "
            "TIDINGS_FALLBACK_BOUNCE_WINDOW_SECONDS of being sent, gets that campaign's "
            "message instead, once."
        )
    ),
]
ListId = Annotated[Id | None, Field(description="The campaign's recipient list.")]
ExternalId = Annotated[
    str | None,
    Field(
        max_length=128,
        description="How another system names this campaign (seed 000's campaignId).",
    ),
]
ProjectRef = Annotated[
    str | None, Field(max_length=128, description="Seed 000: the project it belongs to.")
]
SurveyRef = Annotated[
    str | None, Field(max_length=128, description="Seed 000: the survey it belongs to.")
]
InviteUrl = Annotated[
    str | None,
    Field(
        max_length=2048,
        description=(
            "Where each recipient's `{{ invite_link }}` leads; may use template variables, "
            "e.g. https://survey.example/s/{{ survey }}?r={{ contact_ref }}"
        ),
    ),
]
Language = Annotated[
    str | None,
    Field(description="Of the unsubscribe line on marketing mail: en, fr, de, es, it, nl, pt."),
]

OwnQuietHours = Annotated[
    QuietHours | None,
    Field(
        description="Marketing only: its own quiet hours instead of the org's for its channel "
        "(null); {start: 00:00, end: 00:00} for none at all."
    ),
]


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    name: Name
    channel: Channel
    template_id: Id
    purpose: Purpose = Purpose.TRANSACTIONAL
    from_name: FromName = None
    from_email: Address = None
    reply_to: Address = None
    sms_sender: SmsSender = None
    connection_id: ConnectionId = None
    connection_ids: ConnectionIds = None
    fallback_campaign_id: FallbackCampaignId = None
    list_id: ListId = None
    track_opens: bool = False
    track_clicks: bool = False
    external_id: ExternalId = None
    project_ref: ProjectRef = None
    survey_ref: SurveyRef = None
    invite_url: InviteUrl = None
    language: Language = None
    quiet_hours: OwnQuietHours = None


class CampaignUpdate(BaseModel):
    """What a campaign's creation takes, but its channel. Sends already accepted keep the
    campaign as it was (docs/sending.md)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"from_email": "surveys@acme.example"}]},
    )

    name: Name | None = None
    template_id: Id | None = None
    purpose: Purpose | None = None
    from_name: FromName = None
    from_email: Address = None
    reply_to: Address = None
    sms_sender: SmsSender = None
    connection_id: ConnectionId = None
    connection_ids: ConnectionIds = None
    fallback_campaign_id: FallbackCampaignId = None
    list_id: ListId = None
    track_opens: bool | None = None
    track_clicks: bool | None = None
    external_id: ExternalId = None
    project_ref: ProjectRef = None
    survey_ref: SurveyRef = None
    invite_url: InviteUrl = None
    language: Language = None
    quiet_hours: OwnQuietHours = None

    @model_validator(mode="after")
    def _required_not_null(self) -> CampaignUpdate:
        refuse_null(self, "name", "template_id", "purpose", "track_opens", "track_clicks")
        return self


class CampaignChanges(TypedDict, total=False):
    name: str
    template_id: int
    purpose: Purpose
    from_name: str | None
    from_email: str | None
    reply_to: str | None
    sms_sender: str | None
    connection_id: int | None
    connection_ids: list[int] | None
    fallback_campaign_id: int | None
    list_id: int | None
    track_opens: bool
    track_clicks: bool
    external_id: str | None
    project_ref: str | None
    survey_ref: str | None
    invite_url: str | None
    language: str | None
    quiet_hours: QuietHours | None


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
    connection_ids: list[int] | None
    fallback_campaign_id: int | None
    list_id: int | None
    track_opens: bool
    track_clicks: bool
    external_id: str | None
    project_ref: str | None
    survey_ref: str | None
    invite_url: str | None
    language: str | None
    quiet_hours: QuietHours | None = None
    created_at: datetime
    updated_at: datetime

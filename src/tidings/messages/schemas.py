from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from tidings.api.fields import Id, Moment
from tidings.campaigns.schemas import ConnectionIds, Purpose
from tidings.content.mime import HeaderText
from tidings.templates.schemas import Channel


class MessageOut(BaseModel):
    """One recipient's message. Final statuses: sent, failed, skipped, cancelled (with
    `reason` for the last three); queued, sending and held are on their way."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    broadcast_id: int | None
    campaign_id: int | None
    contact_id: int | None
    channel: str
    recipient: str | None
    status: str
    test: bool = Field(validation_alias="is_test", description="Only ever reaches the sink.")
    reason: str | None
    attempts: int
    provider_id: str | None
    connection_id: int | None = Field(
        description="The connection its last attempt went through (failover may move a "
        "message along its campaign's connections); null before one, and for the sink."
    )
    fallback_of: int | None = Field(
        description="Cross-channel fallback: the message (of the other channel) this one "
        "was sent instead of."
    )
    fell_back_to: int | None = Field(
        description="The message of the other channel sent instead of this one (it failed "
        "or hard-bounced)."
    )
    segments: int | None = Field(
        description="SMS: the segments of the text it was sent with; before that, on an org "
        "with SMS prices, the segments its credit was reserved for."
    )
    created_at: datetime
    due_at: datetime
    sent_at: datetime | None
    finished_at: datetime | None


class AttemptOut(BaseModel):
    """One attempt at sending the message."""

    model_config = ConfigDict(from_attributes=True)

    attempt: int = Field(description="Its number, from 1 (`attempts` counts them).")
    connection_id: int | None = Field(
        description="The connection it went through; null for the sink, or when it ended "
        "before reaching one."
    )
    connection_name: str | None = Field(description="That connection's name.")
    at: datetime | None = Field(description="When it ended.")
    outcome: str = Field(
        description="`retried` (a transient failure, tried again after the retry backoff), "
        "`failed over` (a transient failure, tried again at once through a connection of "
        "its campaign it had not tried yet), or, for the attempt that ended the message, "
        "`sent` or `failed`."
    )
    reason: str | None = Field(description="What the provider answered, when it failed.")


class MessageDetail(MessageOut):
    """A message with each of its attempts."""

    attempt_history: list[AttemptOut] = Field(
        default_factory=list,
        description="Its attempts, oldest first: each one that did not end the message "
        "(with its connection and reason), then the one that did. Empty before the first "
        "ends; one for a message sent at its first attempt.",
    )


class SinkMessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    message_id: int | None
    channel: str
    recipient: str | None
    subject: str | None
    content: str | None = Field(description="The full MIME of an email, the text of an SMS.")
    segments: int | None
    created_at: datetime


_SEND_EXAMPLES: list[JsonValue] = [
    {
        "campaign_id": 1,
        "to": {"email": "ada@example.com", "first_name": "Ada"},
        "variables": {"survey_url": "https://survey.example/s/abc"},
    },
    {
        "template_id": 2,
        "from_email": "receipts@acme.example",
        "from_name": "Acme",
        "contact_id": 7,
        "variables": {"order": "A-1001"},
    },
    {
        "content": {
            "subject": "Your code, {{ first_name or 'there' }}",
            "html": "<p>Your code is <b>{{ code }}</b>.</p>",
            "text": "Your code is {{ code }}.",
        },
        "channel": "email",
        "from_email": "security@acme.example",
        "to": {"email": "ada@example.com", "first_name": "Ada"},
        "variables": {"code": "493 201"},
    },
    {
        "content": {"text": "Acme: your code is {{ code }}"},
        "channel": "sms",
        "sms_sender": "Acme",
        "to": {"phone": "+33612345678"},
        "variables": {"code": "493201"},
    },
]


class InlineContent(BaseModel):
    """A single send's own content, Jinja2 like a template's: for email a `subject` and
    `html` and/or `text`; for SMS `text` only."""

    model_config = ConfigDict(extra="forbid")

    subject: HeaderText | None = Field(default=None, max_length=2_000)
    html: str | None = None
    text: str | None = None


class SingleSend(BaseModel):
    """One message now (or at `send_at`): to a stored contact, or to `to`, which is
    upserted into the org's contacts first (keyed by email and/or phone).

    What is sent is exactly one of: `campaign_id` (the campaign's template and sender);
    `template_id`, or inline `content` with `channel` — each with the sender fields
    (`from_email`… or `sms_sender`), `purpose` and `connection_id`, which a campaign
    would otherwise fix."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": _SEND_EXAMPLES})

    campaign_id: Id | None = None
    template_id: Id | None = Field(default=None, description="A template of the org.")
    content: InlineContent | None = Field(default=None, description="Inline content.")
    channel: Channel | None = Field(
        default=None, description="Required with `content`; with `template_id`, the template's."
    )
    purpose: Purpose | None = Field(
        default=None, description="Without a campaign; `transactional` when left out."
    )
    from_name: HeaderText | None = Field(default=None, max_length=200)
    from_email: str | None = Field(
        default=None, max_length=320, description="Required for email without a campaign."
    )
    reply_to: str | None = Field(default=None, max_length=320)
    sms_sender: str | None = Field(
        default=None, max_length=16, description="SMS sender id: up to 11 letters or 15 digits"
    )
    connection_id: Id | None = Field(
        default=None, description="Without a campaign; null = the org's default for the channel."
    )
    connection_ids: ConnectionIds = None
    contact_id: Id | None = None
    to: dict[str, Any] | None = Field(default=None, description="A contact row (see ContactIn)")
    variables: dict[str, Any] = Field(default_factory=dict)
    send_at: Moment | None = None

    @model_validator(mode="after")
    def _one_recipient(self) -> SingleSend:
        if (self.contact_id is None) == (self.to is None):
            raise ValueError("give exactly one of contact_id and to")
        return self

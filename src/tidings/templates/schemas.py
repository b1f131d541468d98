from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidings.api.fields import Id
from tidings.api.patch import refuse_null
from tidings.content.mime import HeaderText


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


_EXAMPLE: dict[str, Any] = {
    "name": "Survey invitation",
    "channel": "email",
    "subject": "{{ first_name }}, two minutes for us?",
    "html": "<p>Hello {{ first_name | default('there') }},</p><p>Tell us how we did.</p>",
    "text": "Hello {{ first_name | default('there') }}, tell us how we did.",
}


def content_problem(
    channel: str, subject: str | None, html: str | None, text: str | None
) -> tuple[str, str] | None:
    """(the part, what is wrong) when the parts do not fit the channel: email needs a
    subject and html or text; SMS has text only. The one rule for a new template and a
    changed one."""
    if channel == Channel.EMAIL:
        if not subject:
            return "subject", "an email template needs a subject"
        if not (html or text):
            return "html", "an email template needs html or text"
    elif not text:
        return "text", "an SMS template needs text"
    elif subject or html:
        return ("subject" if subject else "html"), "an SMS template has text only"
    return None


class TemplateCreate(BaseModel):
    """Email: `subject` and at least one of `html` / `text`. SMS: `text`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    name: str = Field(min_length=1, max_length=255)
    channel: Channel
    subject: HeaderText | None = Field(default=None, max_length=2_000)
    html: str | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _parts_fit_the_channel(self) -> TemplateCreate:
        problem = content_problem(self.channel, self.subject, self.html, self.text)
        if problem is not None:
            raise ValueError(problem[1])
        return self


class TemplateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    subject: HeaderText | None = Field(default=None, max_length=2_000)
    html: str | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _name_not_null(self) -> TemplateUpdate:
        refuse_null(self, "name")
        return self


class TemplateChanges(TypedDict, total=False):
    name: str
    subject: str | None
    html: str | None
    text: str | None


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    channel: Channel
    subject: str | None
    html: str | None
    text: str | None
    version: int = Field(description="The number of the current version (1, 2, …).")
    created_at: datetime
    updated_at: datetime


class TemplateVersionOut(BaseModel):
    """One content the template has had: never changed. Sends accepted while it was
    current render it, whatever the template became since."""

    model_config = ConfigDict(from_attributes=True)

    template_id: int
    number: int
    channel: Channel
    subject: str | None
    html: str | None
    text: str | None
    created_at: datetime
    created_by: str | None = Field(
        description="Who made it: `key <id>` (an API key), or null (Tidings itself)."
    )


class PreviewRequest(BaseModel):
    """Render for a stored contact, or for `variables` alone (or both: variables win)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"contact_id": 1, "variables": {"survey": "Q3"}}]},
    )

    contact_id: Id | None = None
    variables: dict[str, Any] = Field(default_factory=dict)


class PreviewOut(BaseModel):
    subject: str | None
    html: str | None
    text: str | None
    sms_segments: int | None = Field(description="SMS only: segments the text takes.")
    sms_encoding: str | None = Field(description="SMS only: GSM-7 or UCS-2.")

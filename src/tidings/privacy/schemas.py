"""The API shape of a person's export."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from tidings.contacts.schemas import ContactOut
from tidings.events.schemas import EventOut
from tidings.messages.schemas import MessageOut
from tidings.privacy.service import Export
from tidings.suppressions.schemas import SuppressionOut


class ExportedList(BaseModel):
    id: int
    name: str
    joined_at: datetime


class ExportedSoftBounce(BaseModel):
    address: str
    count: int = Field(description="Soft bounces in a row, without a delivery between them.")
    last_at: datetime


class ExportedContent(BaseModel):
    """What was kept of a message's rendered content: the sink's copy (messages sent
    through the built-in sink or by a test key), for as long as the org's
    `content_retention_days` keeps it."""

    subject: str | None
    content: str | None = Field(description="The full MIME of an email, the text of an SMS.")
    recorded_at: datetime


class ExportedMessage(MessageOut):
    variables: dict[str, Any] | None = Field(
        description="The send's personalisation, until the content retention empties it."
    )
    content: ExportedContent | None = None
    links: list[str] = Field(
        default_factory=list, description="The tracked links of the message, in order."
    )


class ContactExportOut(BaseModel):
    """Everything Tidings holds about one person (GDPR art. 15 and 20)."""

    exported_at: datetime
    contact: ContactOut
    lists: list[ExportedList]
    suppressions: list[SuppressionOut] = Field(
        description="The org's suppressions of the contact's email and phone."
    )
    soft_bounces: list[ExportedSoftBounce]
    messages: list[ExportedMessage]
    events: list[EventOut]

    @classmethod
    def of(cls, export: Export, *, at: datetime) -> ContactExportOut:
        messages = []
        for m in export.messages:
            sunk = export.contents.get(m.id)
            content = (
                ExportedContent(
                    subject=sunk.subject, content=sunk.content, recorded_at=sunk.created_at
                )
                if sunk is not None and (sunk.subject is not None or sunk.content is not None)
                else None
            )
            messages.append(
                ExportedMessage.model_validate(m).model_copy(
                    update={"content": content, "links": export.links.get(m.id, [])}
                )
            )
        return cls(
            exported_at=at,
            contact=ContactOut.of(export.contact),
            lists=[ExportedList(id=i, name=n, joined_at=j) for i, n, j in export.lists],
            suppressions=[SuppressionOut.of(s) for s in export.suppressions],
            soft_bounces=[
                ExportedSoftBounce(address=b.address, count=b.count, last_at=b.last_at)
                for b in export.soft_bounces
            ],
            messages=messages,
            events=[EventOut.model_validate(e) for e in export.events],
        )

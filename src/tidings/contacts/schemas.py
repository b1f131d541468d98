from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tidings.api.fields import Id
from tidings.contacts.models import Contact
from tidings.errors import FieldError

MAX_CONTACTS_PER_REQUEST = 10_000
RECOMMENDED_BATCH = 500


class SubscriptionStatus(StrEnum):
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


class Subscriptions(BaseModel):
    """Per-channel subscription state. New contacts are subscribed on both channels."""

    model_config = ConfigDict(extra="forbid")

    email: SubscriptionStatus | None = None
    sms: SubscriptionStatus | None = None


class ContactIn(BaseModel):
    """One contact row of an upsert. Fields left out are left unchanged on an existing contact."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    attributes: dict[str, Any] | None = Field(
        default=None,
        description="Merged into the stored attributes; a key set to null is removed.",
    )
    locale: str | None = Field(
        default=None, max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"
    )
    timezone: str | None = Field(default=None, max_length=64, description="IANA, e.g. Europe/Paris")
    subscriptions: Subscriptions | None = None


_UPSERT_EXAMPLE: dict[str, Any] = {
    "contacts": [
        {
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "attributes": {"plan": "pro", "seats": 12},
            "locale": "en-GB",
            "timezone": "Europe/London",
        },
        {"phone": "+33612345678", "first_name": "Marie", "subscriptions": {"sms": "subscribed"}},
    ],
    "list_ids": [],
}


class ContactUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_UPSERT_EXAMPLE]})

    contacts: list[Any] = Field(
        min_length=1,
        max_length=MAX_CONTACTS_PER_REQUEST,
        description=(
            "Contact rows (see ContactIn), keyed by email and/or phone. Up to 10,000 per "
            "request; 500 is the recommended batch. Bad rows are reported, good ones stored."
        ),
    )
    list_ids: list[Id] = Field(
        default_factory=list, max_length=100, description="Lists every stored row joins."
    )


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str | None
    phone: str | None
    phone_country: str | None = Field(
        description="The phone's ISO 3166 alpha-2 region (derived); null for numbers of no country"
    )
    first_name: str | None
    last_name: str | None
    attributes: dict[str, Any]
    locale: str | None
    timezone: str | None
    subscriptions: Subscriptions
    created_at: datetime
    updated_at: datetime
    erased_at: datetime | None

    @classmethod
    def of(cls, contact: Contact) -> ContactOut:
        return cls(
            id=contact.id,
            email=contact.email,
            phone=contact.phone,
            phone_country=contact.phone_country,
            first_name=contact.first_name,
            last_name=contact.last_name,
            attributes=contact.attributes,
            locale=contact.locale,
            timezone=contact.timezone,
            subscriptions=Subscriptions(
                email=SubscriptionStatus(contact.email_status),
                sms=SubscriptionStatus(contact.sms_status),
            ),
            created_at=contact.created_at,
            updated_at=contact.updated_at,
            erased_at=contact.erased_at,
        )


class RowResult(BaseModel):
    index: int
    id: int | None
    status: str = Field(description="created, updated or failed")


class FieldErrorOut(BaseModel):
    index: int | None = None
    field: str
    reason: str

    @classmethod
    def of(cls, error: FieldError) -> FieldErrorOut:
        return cls(index=error.index, field=error.field, reason=error.reason)


class UpsertReportOut(BaseModel):
    created: int = Field(description="Contacts created.")
    updated: int = Field(description="Contacts updated (rows naming one contact twice count once).")
    failed: int = Field(description="Rows not stored; each has at least one entry in `errors`.")
    results: list[RowResult]
    errors: list[FieldErrorOut]


class ImportReportOut(BaseModel):
    rows: int
    created: int
    updated: int
    failed: int
    errors: list[FieldErrorOut] = Field(description="The first errors, by 0-based data row index.")
    errors_truncated: bool

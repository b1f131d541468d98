from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tidings.suppressions.models import Suppression

MAX_PER_REQUEST = 1_000
Channel = Literal["email", "sms"]
Reason = Literal[
    "hard_bounce", "complaint", "unsubscribed", "stop_keyword", "soft_bounces", "manual"
]


class SuppressionIn(BaseModel):
    """One address to suppress. `address` is normalised as contacts are (lower-cased
    email; E.164 phone, national numbers read in the org's phone region)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: Channel
    address: str = Field(min_length=1, max_length=320)
    reason: Reason = "manual"
    source: str = Field(default="api", min_length=1, max_length=32)
    note: str | None = Field(default=None, max_length=500)


_EXAMPLE: dict[str, Any] = {
    "suppressions": [
        {"channel": "email", "address": "gone@example.com", "reason": "hard_bounce"},
        {"channel": "sms", "address": "+41791234567", "reason": "manual", "note": "asked by phone"},
    ]
}


class SuppressionAdd(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    suppressions: list[Any] = Field(
        min_length=1,
        max_length=MAX_PER_REQUEST,
        description="Up to 1,000 rows (see SuppressionIn); bad rows are reported by index.",
    )


class SuppressionOut(BaseModel):
    id: int
    channel: str
    address: str
    reason: str
    source: str
    note: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: Suppression) -> SuppressionOut:
        return cls(
            id=row.id,
            channel=row.channel,
            address=row.address,
            reason=row.reason,
            source=row.source,
            note=row.note,
            created_at=row.created_at,
        )


class AddResult(BaseModel):
    index: int
    id: int | None
    status: str = Field(description="created, exists or failed")


class AddErrorOut(BaseModel):
    index: int | None
    field: str
    reason: str


class AddReportOut(BaseModel):
    created: int
    existing: int = Field(description="Rows naming an address already on the list.")
    failed: int
    results: list[AddResult]
    errors: list[AddErrorOut]


class InboundOut(BaseModel):
    action: str = Field(description="unsubscribed, resubscribed or ignored")

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tidings.connections.kinds import kinds_text

_EXAMPLE: dict[str, Any] = {
    "name": "Office relay",
    "channel": "email",
    "kind": "smtp",
    "settings": {"host": "smtp.example.com", "port": 587, "security": "starttls"},
    "credentials": {"username": "tidings", "password": "…"},
    "max_per_second": 50,
    "max_concurrency": 8,
    "is_default": True,
}


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    name: str = Field(min_length=1, max_length=255)
    channel: str = Field(pattern=r"^(email|sms)$")
    kind: str = Field(description=kinds_text())
    settings: dict[str, Any] = Field(default_factory=dict)
    credentials: dict[str, Any] = Field(
        default_factory=dict, description="Write-only: stored and used, never returned."
    )
    max_per_second: float | None = Field(default=None, gt=0, le=100_000)
    max_concurrency: int = Field(default=10, ge=1, le=1_000)
    is_default: bool = Field(default=False, description="The org's default for this channel.")
    email_service: Literal["mailbox", "gateway"] | None = Field(
        default=None,
        description=(
            "Email only: the `emailing_service` of seed 001 (/compat/octopush) this connection "
            "stands for; one connection per org each (marking this one unmarks the other)."
        ),
    )


class ConnectionOut(BaseModel):
    id: int
    name: str
    channel: str
    kind: str
    settings: dict[str, Any]
    credentials_set: list[str] = Field(
        description="Which credentials are stored (not their values)."
    )
    max_per_second: float | None
    max_concurrency: int
    is_default: bool
    email_service: str | None
    created_at: datetime
    updated_at: datetime

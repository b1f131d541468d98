from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidings.api.patch import refuse_null
from tidings.connections.kinds import kinds_text
from tidings.connections.models import Connection

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


# Each field's shape, once for a new connection and a change.
Name = Annotated[str, Field(min_length=1, max_length=255)]
Credentials = Annotated[
    dict[str, Any], Field(description="Write-only: stored and used, never returned.")
]
MaxPerSecond = Annotated[float | None, Field(gt=0, le=100_000)]
MaxConcurrency = Annotated[int, Field(ge=1, le=1_000)]
IsDefault = Annotated[bool, Field(description="The org's default for this channel.")]
EmailService = Annotated[
    Literal["mailbox", "gateway"] | None,
    Field(
        description=(
            "Email only: the `emailing_service` of seed 001 (/compat/octopush) this connection "
            "stands for; one connection per org each (marking this one unmarks the other)."
        ),
    ),
]


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    name: Name
    channel: str = Field(pattern=r"^(email|sms)$")
    kind: str = Field(description=kinds_text())
    settings: dict[str, Any] = Field(default_factory=dict)
    credentials: Credentials = Field(default_factory=dict)
    max_per_second: MaxPerSecond = None
    max_concurrency: MaxConcurrency = 10
    is_default: IsDefault = False
    email_service: EmailService = None


class ConnectionUpdate(BaseModel):
    """What a connection's creation takes, but its channel and kind. `settings` and
    `credentials`, when given, replace the whole document (checked against the kind);
    new credentials apply to every message not handed over yet."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"credentials": {"username": "tidings",
                                                         "password": "…"}}]},
    )  # fmt: skip

    name: Name | None = None
    settings: dict[str, Any] | None = None
    credentials: Credentials | None = None
    max_per_second: MaxPerSecond = None
    max_concurrency: MaxConcurrency | None = None
    is_default: IsDefault | None = None
    email_service: EmailService = None

    @model_validator(mode="after")
    def _required_not_null(self) -> ConnectionUpdate:
        refuse_null(self, "name", "settings", "credentials", "max_concurrency", "is_default")
        return self


class ConnectionChanges(TypedDict, total=False):
    name: str
    settings: dict[str, Any]
    credentials: dict[str, Any]
    max_per_second: float | None
    max_concurrency: int
    is_default: bool
    email_service: str | None


class ConnectionOut(BaseModel):
    id: int
    name: str
    channel: str
    kind: str
    settings: dict[str, Any]
    credentials_set: list[str] = Field(
        description=(
            "Which credentials are stored (not their values), with the settings the kind "
            "declares secret (an http_sms `body`) and the tokens Tidings generated."
        )
    )
    max_per_second: float | None
    max_concurrency: int
    is_default: bool
    email_service: str | None
    created_at: datetime
    updated_at: datetime


def connection_out(c: Connection) -> ConnectionOut:
    """A connection as the API shows it: which credentials are set, never their values."""
    return ConnectionOut(
        id=c.id,
        name=c.name,
        channel=c.channel,
        kind=c.kind,
        settings=c.settings,
        credentials_set=sorted(c.credentials),
        max_per_second=c.max_per_second,
        max_concurrency=c.max_concurrency,
        is_default=c.is_default,
        email_service=c.email_service,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


class ConnectionHealthOut(BaseModel):
    """A connection's circuit breaker as every worker sees it (docs/sending.md#failover)."""

    model_config = ConfigDict(from_attributes=True)

    connection_id: int
    state: Literal["closed", "open", "half_open"] = Field(
        description=(
            "closed: sending; open: every worker skips it until `opened_until`; half_open: "
            "its cool-down is over and a probe goes through, which closes it or opens it again."
        )
    )
    opened_until: datetime | None = Field(description="When an open breaker turns half-open.")
    window_attempts: int = Field(description="Attempts in the sliding window (estimated).")
    window_errors: int = Field(description="Transient errors among them (estimated).")
    error_rate: float | None = Field(description="errors / attempts; null without attempts.")

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from tidings.api.fields import Id

_APP_EXAMPLE: dict[str, Any] = {
    "key": "0F3C3F29829FAB88714BA205BEC6D28F",
    "name": "Support chat",
    "sms_sender": "AcmeHelp",
    "integrations": [{"type": "FACEBOOK", "target_url": "https://m.me/acme.support"}],
}

KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
TYPE_PATTERN = r"^[A-Z][A-Z0-9_]{0,31}$"


class IntegrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(
        pattern=TYPE_PATTERN, description="FACEBOOK, WHATSAPP, TELEGRAM, VIBER, LINE, …"
    )
    target_url: AnyHttpUrl = Field(description="Where this integration's invite links lead.")


class ApplicationCreate(BaseModel):
    """An application that sends SMS invites (seed 003). `key` names it in the invite path."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_APP_EXAMPLE]})

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    sms_sender: str | None = Field(default=None, max_length=16)
    connection_id: Id | None = Field(
        default=None, description="An SMS connection; null: the org's default."
    )
    integrations: list[IntegrationIn] = Field(default_factory=list, max_length=50)


class IntegrationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    type: str
    target_url: str
    created_at: datetime
    updated_at: datetime


class ApplicationOut(BaseModel):
    id: int
    key: str
    name: str
    sms_sender: str | None
    connection_id: int | None
    integrations: list[IntegrationOut]
    created_at: datetime
    updated_at: datetime

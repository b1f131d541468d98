from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class OrgOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    login: str = Field(description="The org's login for `api-login` headers and HTTP Basic.")
    phone_region: str | None = Field(
        description="ISO 3166 region for reading national phone numbers; null = international only."
    )
    created_at: datetime
    updated_at: datetime


class OrgUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "Acme", "phone_region": "FR"}]}
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    phone_region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from tidings.api.principal import ALL_SCOPES as ALL_SCOPES
from tidings.api.principal import KeyKind as KeyKind
from tidings.api.principal import Scope as Scope
from tidings.keys.models import ApiKey


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "survey integration", "scopes": ["send"]}]},
    )

    name: str = Field(min_length=1, max_length=200)
    kind: KeyKind = KeyKind.LIVE
    scopes: list[Scope] = Field(default_factory=lambda: sorted(ALL_SCOPES), min_length=1)


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    name: str
    kind: KeyKind
    scopes: list[Scope]
    prefix: str = Field(description="The key's first characters, to recognise it; not secret.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyOut):
    api_key: str = Field(description="The secret. Shown once, never stored: keep it now.")


def audited(key: ApiKey) -> dict[str, object]:
    """What the audit log shows of a key (route and CLI alike): never its secret or hash."""
    return {
        "name": key.name,
        "kind": key.kind,
        "scopes": key.scopes.split(),
        "prefix": key.prefix,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }

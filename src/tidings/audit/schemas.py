from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

_EXAMPLE: dict[str, JsonValue] = {
    "id": 42,
    "at": "2026-12-07T18:30:00Z",
    "actor": "key 3",
    "key_id": 3,
    "action": "connection.update",
    "target_kind": "connection",
    "target_id": 7,
    "changes": {
        "settings.host": {"from": "smtp.old.example", "to": "smtp.example.com"},
        "credentials.password": {"secret": "changed"},
    },
}


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_EXAMPLE]})

    id: int
    at: datetime
    actor: str = Field(description="Who: `key <id>` for an API key, `cli` for the CLI.")
    key_id: int | None = Field(description="The API key that acted; null for the CLI.")
    action: str = Field(description="`<target kind>.<verb>`, e.g. `connection.update`.")
    target_kind: str
    target_id: int | None = Field(description="Null when the action names no one object.")
    changes: dict[str, Any] = Field(
        description=(
            "Per field `{from, to}` (`from` absent on a creation, `to` on a deletion); a "
            'secret as `{"secret": "set" | "changed" | "removed"}`, never its value. '
            "Bulk actions (contacts, members, suppressions) give counts, never addresses."
        )
    )

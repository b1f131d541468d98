"""Plain factory functions for test data (no framework, no magic)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx

from tidings.db.engine import Database
from tidings.keys import service as keys


@dataclass(frozen=True)
class OrgWithKey:
    id: int
    login: str
    key: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def header_pair(self) -> dict[str, str]:
        return {"api-login": self.login, "api-key": self.key}

    @property
    def basic(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.login}:{self.key}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


async def make_org(
    db: Database, name: str = "Acme", *, phone_region: str | None = None
) -> OrgWithKey:
    async with db.transaction() as session:
        created = await keys.create_org(session, name=name, phone_region=phone_region)
    return OrgWithKey(created.org.id, created.org.login, created.key.secret)


def contact(n: int, **extra: Any) -> dict[str, Any]:
    return {"email": f"person{n}@example.com", "first_name": f"P{n}", **extra}


async def upsert(
    http: httpx.AsyncClient, org: OrgWithKey, rows: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    response = await http.post(
        f"/v1/orgs/{org.id}/contacts", json={"contacts": rows, **extra}, headers=org.bearer
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body

"""How many database transactions one seed-000 invite request costs.

    python bench/transactions.py [--postgres] [--recipients 3]

A fresh database (SQLite in a temporary directory, or a throwaway PostgreSQL database on
127.0.0.1:5432 with --postgres) gets an org (`tidings orgs create`) and, over the API, an
email template and seed 000's campaign. Then `POST /compat/walr/…/invites` is sent twice
through the app in this process: once with the key's first use still to be recorded
(`last_used_at` NULL) and once right after. Every transaction the app's engine begins is
counted (SQLAlchemy's "begin" event: one per BEGIN, whatever the statements), with the
statements of each when `--statements` is given. Issue 12's target: at most 2 per invite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, text

sys.path.insert(0, str(Path(__file__).parent.parent))  # for tests.support

from tests.support import pgdb

from tidings.app import create_app
from tidings.db import migrate
from tidings.settings import Settings

PATH = "/compat/walr/projects/p-1/surveys/s-1/invites"


def prepare(url: str) -> dict[str, Any]:
    """The database migrated and an org made by the CLI; the org's id and key."""
    migrate.upgrade(url)
    env = {**os.environ, "TIDINGS_DATABASE_URL": url, "TIDINGS_AUTO_MIGRATE": "false"}
    made = subprocess.run(
        [sys.executable, "-m", "tidings", "orgs", "create", "Bench", "--json"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    org: dict[str, Any] = json.loads(made.stdout)
    return org


async def measure(
    url: str, org: dict[str, Any], recipients: int, statements: bool
) -> dict[str, Any]:
    base, h = f"/v1/orgs/{org['org_id']}", {"Authorization": f"Bearer {org['api_key']}"}
    settings = Settings(
        database_url=url,
        auto_migrate=False,
        dispatcher=False,
        secret_key="bench-transactions-secret-key-of-32-chars",  # noqa: S106
    )
    app = create_app(settings)
    counts: list[list[str]] = []
    async with app.router.lifespan_context(app):
        engine = app.state.db.engine.sync_engine
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            template = await http.post(f"{base}/templates", headers=h, json={
                "name": "t", "channel": "email", "subject": "Hi {{ first_name }}",
                "text": "Take the survey: {{ invite_link }}"})  # fmt: skip
            template.raise_for_status()
            campaign = await http.post(f"{base}/campaigns", headers=h, json={
                "name": "NPS", "channel": "email", "template_id": template.json()["id"],
                "external_id": "nps", "project_ref": "p-1", "survey_ref": "s-1",
                "invite_url": "https://survey.example/{{ email }}",
                "from_email": "research@acme.example"})  # fmt: skip
            campaign.raise_for_status()
            current: list[str] = []

            def on_begin(_connection: Any) -> None:
                current.append("BEGIN")

            def on_statement(_c: Any, _cu: Any, statement: str, *_: Any) -> None:
                if current:
                    current.append(" ".join(statement.split())[:100])

            for first_use in (True, False):
                if first_use:
                    async with app.state.db.session() as session:
                        await session.execute(text("UPDATE api_keys SET last_used_at = NULL"))
                        await session.commit()
                event.listen(engine, "begin", on_begin)
                event.listen(engine, "before_cursor_execute", on_statement)
                body = {"campaignId": "nps", "recipients": [
                    {"variables": {"email": f"r{first_use}{i}@example.com", "first_name": "R"}}
                    for i in range(recipients)]}  # fmt: skip
                answer = await http.post(PATH, headers=h, json=body)
                event.remove(engine, "begin", on_begin)
                event.remove(engine, "before_cursor_execute", on_statement)
                assert answer.status_code == 202, answer.text
                counts.append(list(current))
                current.clear()
    result: dict[str, Any] = {
        "database": url.split(":", 1)[0],
        "first_use": counts[0].count("BEGIN"),
        "after": counts[1].count("BEGIN"),
    }
    if statements:
        result["statements"] = {"first_use": counts[0], "after": counts[1]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--recipients", type=int, default=3)
    parser.add_argument("--statements", action="store_true", help="print each transaction's")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        if not args.postgres:
            url = f"sqlite+aiosqlite:///{work}/tidings.db"
            org = prepare(url)
            print(json.dumps(asyncio.run(measure(url, org, args.recipients, args.statements))))
            return
        url = asyncio.run(pgdb.create())
        try:
            org = prepare(url)
            print(json.dumps(asyncio.run(measure(url, org, args.recipients, args.statements))))
        finally:
            asyncio.run(pgdb.drop(url))


if __name__ == "__main__":
    main()

"""Secrets at rest in a real database: what is stored is sealed, what is read is
plaintext; `reseal` moves every value to the newest key in batches, after which the old
key can go; a value written before sealing (revision 0015) reads, and is sealed by the
first pass; `tidings secrets rotate` does the same from the command line."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from tests.support.factories import make_org
from tidings.cli import app
from tidings.connections.models import Connection
from tidings.connections.schemas import ConnectionCreate
from tidings.connections.service import create_connection
from tidings.db.engine import Database
from tidings.db.reseal import reseal
from tidings.db.sealed import raw, sealed_columns
from tidings.domains.dkim import Algorithm, generate
from tidings.domains.models import DkimKey
from tidings.domains.schemas import DomainCreate
from tidings.domains.service import create_domain
from tidings.schema import Base
from tidings.settings import Settings
from tidings.vault.keyring import SecretError, new_key
from tidings.webhooks.models import WebhookEndpoint
from tidings.webhooks.schemas import WebhookCreate
from tidings.webhooks.service import create_endpoint

PASSWORDS = [f"smtp-password-{n}-0123456789" for n in range(5)]
COLUMNS = sealed_columns(Base.metadata)


def _with_keys(settings: Settings, keys: str) -> Settings:
    return Settings(**{**settings.model_dump(), "secret_keys": keys})


@pytest.fixture
async def stored(db: Database) -> dict[str, int]:
    """Five smtp connections with a password each, one webhook and one DKIM key, under the
    default keyring (`v0:derived`)."""
    org = await make_org(db)
    async with db.transaction() as session:
        for n, password in enumerate(PASSWORDS):
            body = ConnectionCreate(
                name=f"relay {n}", channel="email", kind="smtp",
                settings={"host": "smtp.example.com"},
                credentials={"username": "u", "password": password},
            )  # fmt: skip
            await create_connection(session, org_id=org.id, body=body)
        hook = WebhookCreate(url="https://hooks.example.com/x", event_types=["delivered"])
        endpoint = await create_endpoint(session, org_id=org.id, body=hook)
        domain = DomainCreate(name="example.com", algorithm=Algorithm.ED25519)
        await create_domain(session, org_id=org.id, body=domain, pair=generate(Algorithm.ED25519))
    return {"org_id": org.id, "webhook_id": endpoint.id}


async def _raw(db: Database) -> list[str]:
    async with db.transaction(write=False) as session:
        values = list(await session.scalars(select(raw(Connection.credentials))))
        values += list(await session.scalars(select(raw(WebhookEndpoint.secret))))
        values += list(await session.scalars(select(raw(DkimKey.private_key))))
    return values


async def _passwords(db: Database) -> list[str]:
    async with db.transaction(write=False) as session:
        rows = await session.scalars(select(Connection).order_by(Connection.id))
        return [row.credentials["password"] for row in rows]


async def test_secrets_are_stored_sealed_and_read_in_plaintext(
    db: Database, stored: dict[str, int]
) -> None:
    values = await _raw(db)
    assert len(values) == 7
    assert all(value.startswith("enc:v0:") for value in values)
    assert not any(password in value for value in values for password in PASSWORDS)
    assert await _passwords(db) == PASSWORDS
    async with db.transaction(write=False) as session:
        endpoint = await session.get(WebhookEndpoint, stored["webhook_id"])
        assert endpoint is not None
        assert endpoint.secret.startswith("whsec_")


async def test_rotation_reseals_everything_in_batches_then_the_old_key_can_go(
    db: Database, settings: Settings, stored: dict[str, int]
) -> None:
    key = new_key()
    both = Database(_with_keys(settings, f"v1:{key},v0:derived"))
    batches: list[int] = []
    try:
        report = await reseal(both, COLUMNS, batch_size=2, progress=batches.append)
        assert sorted(batches) == [1, 1, 1, 2, 2]  # five connections in three batches,
        # one webhook, one DKIM key
        assert report.checked == {
            "connections.credentials": 5, "webhook_endpoints.secret": 1,
            "dkim_keys.private_key": 1,
        }  # fmt: skip
        assert report.resealed == report.checked
        again = await reseal(both, COLUMNS, batch_size=2)
        assert sum(again.resealed.values()) == 0  # nothing left to do
    finally:
        await both.dispose()
    assert all(value.startswith("enc:v1:") for value in await _raw(db))

    alone = Database(_with_keys(settings, f"v1:{key}"))
    try:
        assert await _passwords(alone) == PASSWORDS
    finally:
        await alone.dispose()
    stranger = Database(_with_keys(settings, f"v1:{new_key()}"))
    try:
        with pytest.raises(SecretError):
            await _passwords(stranger)
    finally:
        await stranger.dispose()


async def test_a_secret_written_before_sealing_reads_and_is_sealed_by_the_first_pass(
    db: Database, stored: dict[str, int]
) -> None:
    legacy = json.dumps({"username": "u", "password": "legacy-plaintext-password"})
    async with db.transaction() as session:
        await session.execute(
            text("UPDATE connections SET credentials = :v WHERE id = 1"), {"v": legacy}
        )
    assert (await _passwords(db))[0] == "legacy-plaintext-password"
    report = await reseal(db, COLUMNS, plaintext_only=True)
    assert report.resealed == {
        "connections.credentials": 1, "webhook_endpoints.secret": 0, "dkim_keys.private_key": 0,
    }  # fmt: skip
    assert not any("legacy-plaintext-password" in value for value in await _raw(db))
    assert (await _passwords(db))[0] == "legacy-plaintext-password"


@pytest.mark.usefixtures("cli_env", "stored")
async def test_the_rotate_command_reports_what_it_did(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDINGS_SECRET_KEYS", f"v7:{new_key()},v0:derived")
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["secrets", "rotate", "--batch-size", "4", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "version": "v7", "checked": 7, "resealed": 7,
        "columns": {"connections.credentials": {"checked": 5, "resealed": 5},
                    "webhook_endpoints.secret": {"checked": 1, "resealed": 1},
                    "dkim_keys.private_key": {"checked": 1, "resealed": 1}},
    }  # fmt: skip
    assert all(value.startswith("enc:v7:") for value in await _raw(db))

    monkeypatch.setenv("TIDINGS_SECRET_KEYS", f"v8:{new_key()}")  # v7 forgotten: refused
    refused = await asyncio.to_thread(CliRunner().invoke, app, ["secrets", "rotate"])
    assert refused.exit_code == 1
    assert "v7" in refused.output

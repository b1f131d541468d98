"""The CLI through typer's runner, on the test's database; keys it prints must work over HTTP."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tidings.app import create_app
from tidings.cli import app
from tidings.settings import Settings

runner = CliRunner()


def _json(*args: str) -> object:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def _get(settings: Settings, path: str, key: str) -> httpx.Response:
    api = create_app(settings)
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get(path, headers={"Authorization": f"Bearer {key}"})


@pytest.mark.usefixtures("cli_env")
def test_orgs_create_json_prints_one_object_with_a_working_key(settings: Settings) -> None:
    created = _json("orgs", "create", "Acme Corp")
    assert isinstance(created, dict)
    assert {"org_id", "login", "api_key"} <= set(created)
    assert created["login"] == "acme-corp"
    response = asyncio.run(_get(settings, f"/v1/orgs/{created['org_id']}", created["api_key"]))
    assert response.status_code == 200
    assert response.json()["name"] == "Acme Corp"

    duplicate = runner.invoke(app, ["orgs", "create", "Acme Corp"])
    assert duplicate.exit_code == 2
    assert "taken" in duplicate.output


@pytest.mark.usefixtures("cli_env")
def test_keys_create_list_revoke(settings: Settings) -> None:
    created = _json("orgs", "create", "acme")
    issued = _json("keys", "create", "--org", "acme", "--name", "ci", "--scope", "read")
    assert isinstance(issued, dict)
    assert issued["scopes"] == ["read"]
    listed = _json("keys", "list", "--org", str(created["org_id"]))  # type: ignore[index]
    assert isinstance(listed, list)
    assert [k["name"] for k in listed] == ["first key", "ci"]
    assert all(issued["api_key"] not in json.dumps(k) for k in listed)

    revoked = _json("keys", "revoke", "--org", "acme", str(issued["key_id"]))
    assert isinstance(revoked, dict)
    assert revoked["revoked_at"]
    response = asyncio.run(_get(settings, f"/v1/orgs/{issued['org_id']}", issued["api_key"]))
    assert response.status_code == 401

    unknown = runner.invoke(app, ["keys", "list", "--org", "nobody"])
    assert unknown.exit_code == 2
    assert "no org" in unknown.output


@pytest.mark.usefixtures("cli_env")
def test_contacts_import_reports_rows_and_errors(tmp_path: Path) -> None:
    _json("orgs", "create", "acme")
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(
        "email,first_name,city\n"
        + "".join(f"u{i}@example.com,U{i},Paris\n" for i in range(30))
        + "not-an-email,Bad,Nowhere\n",
        encoding="utf-8",
    )
    report = _json("contacts", "import", str(csv_file), "--org", "acme")
    assert isinstance(report, dict)
    assert (report["rows"], report["created"], report["failed"]) == (31, 30, 1)
    assert report["errors"][0]["index"] == 30
    assert report["errors"][0]["field"] == "email"

    human = runner.invoke(app, ["contacts", "import", str(csv_file), "--org", "acme"])
    assert human.exit_code == 0, human.output
    assert "31 rows: 0 created, 30 updated, 1 failed" in human.output


def test_db_upgrade_creates_and_migrates_a_fresh_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "nested" / "fresh.db"
    monkeypatch.setenv("TIDINGS_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert path.exists()
    created = _json("orgs", "create", "first")
    assert created["org_id"] == 1  # type: ignore[index]


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "db", "orgs", "keys", "contacts"):
        assert command in result.output


@pytest.mark.usefixtures("cli_env")
def test_first_start_creates_an_org_and_prints_its_key_once(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from tidings.cli import _bootstrap

    _bootstrap(settings, base_url="http://t")
    first = capsys.readouterr().err
    _bootstrap(settings, base_url="http://t")
    second = capsys.readouterr().err

    [secret] = [word for word in first.split() if word.startswith("tdg_live_")][:1]
    assert "tdg_live_" not in second
    assert "First start" not in second
    assert "database: " in second  # said every time
    response = asyncio.run(_get(settings, "/v1/orgs/1", secret))
    assert response.status_code == 200
    assert response.json()["login"] == "default"


def test_a_bad_setting_is_named_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDINGS_PORT", "http")
    result = runner.invoke(app, ["orgs", "list"])
    assert result.exit_code == 2
    assert "TIDINGS_PORT" in result.output
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("cli_env")
def test_json_output_stays_clean_with_sql_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDINGS_DATABASE_ECHO", "true")
    created = _json("orgs", "create", "echoed")
    assert isinstance(created, dict)
    assert created["login"] == "echoed"


def test_serve_refuses_several_workers_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDINGS_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    result = runner.invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "--workers above 1 needs PostgreSQL" in result.output
    assert not (tmp_path / "one.db").exists()  # refused before migrating anything


@pytest.mark.usefixtures("cli_env")
def test_cli_writes_are_audited_as_cli(settings: Settings, tmp_path: Path) -> None:
    created = _json("orgs", "create", "acme")
    assert isinstance(created, dict)
    issued = _json("keys", "create", "--org", "acme", "--name", "ci")
    assert isinstance(issued, dict)
    _json("keys", "revoke", "--org", "acme", str(issued["key_id"]))
    _json("credits", "top-up", "--org", "acme", "12.5")
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text("email\nu@example.com\nbad\n", encoding="utf-8")
    _json("contacts", "import", str(csv_file), "--org", "acme")

    path = f"/v1/orgs/{created['org_id']}/audit?limit=100"
    response = asyncio.run(_get(settings, path, created["api_key"]))
    entries = response.json()["data"]
    assert [(e["action"], e["actor"], e["key_id"]) for e in reversed(entries)] == [
        ("org.create", "cli", None),
        ("key.create", "cli", None),  # the org's first key
        ("key.create", "cli", None),
        ("key.revoke", "cli", None),
        ("credits.top_up", "cli", None),
        ("contact.import", "cli", None),
    ]
    assert entries[0]["changes"] == {"created": 1, "updated": 0, "failed": 1}
    assert entries[1]["changes"]["amount"] == {"to": 12.5}
    assert entries[3]["target_id"] == issued["key_id"]
    assert entries[3]["changes"]["name"] == {"to": "ci"}
    assert entries[5]["changes"]["name"] == {"to": "acme"}
    assert issued["api_key"] not in response.text
    assert created["api_key"] not in response.text


def test_a_missing_sqlite_file_is_named_never_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIDINGS_DATABASE_URL", raising=False)  # the default: ./var/tidings.db
    monkeypatch.chdir(tmp_path)
    for command in (
        ("broadcasts", "list", "--org", "1"),
        ("orgs", "list"),
        ("messages", "show", "1", "--org", "1"),
        ("worker",),
    ):
        result = runner.invoke(app, list(command))
        assert result.exit_code == 1, (command, result.output)
        assert str(tmp_path / "var" / "tidings.db") in result.stderr
        assert "TIDINGS_DATABASE_URL" in result.stderr
    assert not (tmp_path / "var" / "tidings.db").exists()
    assert runner.invoke(app, ["secrets", "new-key"]).exit_code == 0  # needs no database


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tidings {version('tidings')}"
    for command in ("broadcasts", "messages", "sink", "templates", "campaigns", "connections"):
        helped = runner.invoke(app, [command, "--help"])
        assert helped.exit_code == 0, helped.output
        assert "list" in helped.stdout
    watch = runner.invoke(app, ["broadcasts", "watch", "--help"])
    assert "Exit code 0 when the broadcast ends SENT" in " ".join(watch.stdout.split())

"""Schemathesis over the whole OpenAPI document, against the app served on loopback.

Every operation, native and dialect, gets generated requests (examples, boundary and
negative values, random ones); the run fails on any server error (5xx), any status code
or media type the document does not declare for the operation, and any response whose
body does not match its declared schema. It is bounded (`MAX_EXAMPLES` per operation and
random phase, no stateful phase, an unexpected method tried once per path: TRACE) so that
it costs about 50 s, on one database (`database_url` below); the generation is seeded,
so a run is repeatable (`SEED`). The coverage phase is exhaustive by design: every boundary and
negative value each schema defines (ids past 2⁶³−1, years past 9999, wrong types, …).

The key is a fresh org's own key with every scope, and `org_id` is pinned to that org:
otherwise nearly every request would stop at 403 and nothing behind it would be reached.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.support.factories import make_org
from tidings.app import create_app
from tidings.db.engine import Database
from tidings.settings import Settings

MAX_EXAMPLES = 2
SEED = 20261207
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database per run, not both: the document is the same on each, and the run is
    CI's longest step. PostgreSQL when the suite has one (where NUL in a string and ids
    past 64 bits used to break requests, and SQLite forgave), else SQLite."""
    if os.environ.get("TIDINGS_TEST_DATABASE_URL"):
        url: str = request.getfixturevalue("postgres_url")
        return url
    path = tmp_path / "tidings.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return f"sqlite+aiosqlite:///{path}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def served(settings: Settings, db: Database) -> AsyncIterator[str]:
    """The app on a loopback port (its own thread and event loop), as `tidings serve`."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="served-app", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert (await http.get(f"{base}/healthz")).status_code == 200
    yield base
    server.should_exit = True
    await asyncio.to_thread(thread.join, 30)


async def test_no_server_error_and_nothing_undeclared(
    served: str, db: Database, tmp_path: Path
) -> None:
    org = await make_org(db)
    # The key that signs must survive the run: `key_id` is pinned to the org's first key,
    # which the generated DELETE …/keys/{key_id} may revoke, and the run signs with another.
    async with httpx.AsyncClient(base_url=served, headers=org.bearer) as http:
        [first] = (await http.get(f"/v1/orgs/{org.id}/keys")).json()
        made = await http.post(f"/v1/orgs/{org.id}/keys", json={"name": "schemathesis"})
        assert made.status_code == 201, made.text
        key = made.json()["api_key"]
        await _one_of_each(http, org.id)
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'[parameters]\n"org_id" = {org.id}\n"key_id" = {first["id"]}\n\n'
        '[phases.coverage]\nunexpected-methods = ["trace"]\n'
    )
    command = [
        *_schemathesis(),
        "--config-file",
        str(config),
        "run",
        f"{served}/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",  # two worker threads can break hypothesis (concurrent ast.parse on 3.11)
        "--no-color",
        "--suppress-health-check",
        "all",
    ]
    done = await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,  # its cache (.schemathesis/) stays out of the work tree
    )
    report = done.stdout + done.stderr
    print(report[report.find("SUMMARY") - 40 :])  # shown with -s, and on failure
    assert done.returncode == 0, report[-20_000:]
    assert "No issues found" in report or " passed" in report, report[-5_000:]


async def _one_of_each(http: httpx.AsyncClient, org_id: int) -> None:
    """An object of each main kind, so that generated ids (1 first) reach past the lookup."""
    base = f"/v1/orgs/{org_id}"
    listed = (await http.post(f"{base}/lists", json={"name": "L"})).json()
    await http.post(
        f"{base}/contacts",
        json={"contacts": [{"email": "ada@example.com"}], "list_ids": [listed["id"]]},
    )
    template = (
        await http.post(
            f"{base}/templates",
            json={"name": "t", "channel": "email", "subject": "Hi", "text": "Hello"},
        )
    ).json()
    campaign = await http.post(
        f"{base}/campaigns",
        json={
            "name": "c",
            "channel": "email",
            "template_id": template["id"],
            "from_email": "news@acme.example",
        },
    )
    assert campaign.status_code == 201, campaign.text
    segment = await http.post(
        f"{base}/segments", json={"name": "s", "filter": {"in_list": listed["id"]}}
    )
    assert segment.status_code == 201, segment.text
    draft = await http.post(
        f"{base}/broadcasts",
        json={
            "name": "b",
            "campaign_id": campaign.json()["id"],
            "send_to_all": True,
            "draft": True,
        },
    )
    assert draft.status_code == 201, draft.text


def _schemathesis() -> list[str]:
    """The `st` command beside this interpreter (`make install` puts it in .venv/bin)."""
    beside = Path(sys.executable).with_name("st")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("st")
    assert found is not None, "schemathesis is a dev dependency: run `make install`"
    return [found]


async def test_the_document_declares_each_error_shape(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            answers = operation["responses"]
            errors = {code: a for code, a in answers.items() if code[0] in "45"}
            where = f"{method.upper()} {path}"
            if path.startswith("/v1/"):
                assert {"401", "403", "404", "503"} <= errors.keys(), where
                for code, answer in errors.items():
                    assert answer.get("content") == problem, (where, code)
            if "requestBody" in operation:
                assert {"413", "415"} <= errors.keys(), where
    dialects = {"walr": "WalrError", "octopush": "OctopushError", "invent": "InventError",
                "infobip": "InfobipError"}  # fmt: skip
    for name, model in dialects.items():
        operations = [
            operation
            for path, item in spec["paths"].items()
            if path.startswith(f"/compat/{name}/")
            for operation in item.values()
        ]
        assert operations, name
        for operation in operations:
            for code, answer in operation["responses"].items():
                if code[0] in "45":
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": f"#/components/schemas/{model}"}, (name, code)
            # Their bad input is a 400; a 422 is only an Idempotency-Key used for another body.
            reused = operation["responses"].get("422", {}).get("description", "Idempotency-Key")
            assert "Idempotency-Key" in reused, name
    octopush = spec["paths"]["/compat/octopush/email/campaign/send"]["post"]
    body = octopush["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["recipients", "email_from"]

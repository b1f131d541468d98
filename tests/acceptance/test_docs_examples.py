"""Every shell example in docs/ runs as written: bash and curl against Tidings served on
loopback, each HTTP call required to succeed.

The database is a used one first (another org's objects, and this org's own, including
the hidden campaign and template of a single send), so an example that hard-coded an id
instead of keeping the one its own call returned would name the wrong object, or none.
The examples run in the reverse of their order in the docs, on the same database: none
relies on another having run before it. Only the base URL is changed (to the test
server's); `$ORG`, `$LOGIN` and `$KEY` are what `make run` prints.

README's "Try it" is a walk-through instead: its blocks run in order as one script (each
uses what the ones before made), against a server that sends, with `.venv/bin/tidings`
the CLI on the same database.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.conftest import _Apps
from tests.support.debian import ensure_command
from tests.support.factories import OrgWithKey, make_org
from tests.support.sending import email_campaign
from tidings.db.engine import Database
from tidings.settings import Settings

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```(?:sh|bash)\n(.*?)^```", re.S | re.M)
DOCUMENTED_BASE = "127.0.0.1:8000"
# Run under bash: any failed call (an HTTP error included) fails the example.
PROLOGUE = """set -euo pipefail
curl() { command curl --silent --show-error --fail-with-body "$@"; }
"""


def examples() -> Iterator[tuple[str, str]]:
    """(file:line, script) of every shell block that calls the API; a block that starts
    the server (`make run`) is a setup step, not an example."""
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text()
        for block in BLOCK.finditer(text):
            script = block.group(1)
            if "curl " in script and "make run" not in script:
                yield f"{path.name}:{text[: block.start()].count(chr(10)) + 2}", script


def contacts_csv() -> str:
    """The contacts.csv that cli.md shows (api.md's import example reads it)."""
    text = (DOCS / "cli.md").read_text()
    shown = text.split("$ cat contacts.csv\n", 1)[1]
    return shown.split("\n\n", 1)[0] + "\n"


def readme_walkthrough() -> str:
    """README's "Try it": its shell blocks in order, as one script, but the first, which
    sets ORG and KEY to what `make run` printed (the test's environment sets them)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    blocks = [block.group(1) for block in BLOCK.finditer(section)]
    assert "ORG=" in blocks[0]
    assert "KEY=" in blocks[0]
    assert "curl" not in blocks[0]
    return "\n".join(blocks[1:])


@asynccontextmanager
async def _serving(app: FastAPI) -> AsyncIterator[str]:
    """`app` on loopback, as `tidings serve` runs it: its host:port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 — uvicorn's Server has no event for it
            await asyncio.sleep(0.01)
        yield f"127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def served(settings: Settings, db: Database, apps: _Apps) -> AsyncIterator[str]:
    async with _serving(apps.for_settings(settings)) as base:
        yield base


async def _used(db: Database, base: str, org: OrgWithKey) -> None:
    """Objects before the examples': another org's campaign, this org's lists, and a
    single send's hidden campaign and inline template, which take the low ids."""
    await email_campaign(db, await make_org(db, "Someone else"))
    async with httpx.AsyncClient(base_url=f"http://{base}", headers=org.bearer) as http:
        for name in ("old list", "older list", "oldest list"):
            made = await http.post(f"/v1/orgs/{org.id}/lists", json={"name": name})
            assert made.status_code == 201, made.text
        sent = await http.post(
            f"/v1/orgs/{org.id}/messages",
            json={
                "channel": "email",
                "from_email": "ops@acme.example",
                "content": {"subject": "Your code", "text": "Your code is {{ code }}."},
                "to": {"email": "ops@example.com"},
            },
        )
        assert sent.status_code == 201, sent.text


async def _run(script: str, *, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        PROLOGUE + script,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


def test_the_docs_have_examples_and_hard_code_no_org() -> None:
    found = dict(examples())
    assert {where.split(":")[0] for where in found} >= {"api.md", "compat.md", "segments.md"}
    for where, script in found.items():
        assert "/orgs/1" not in script, where


async def test_every_example_runs_on_a_used_database_in_any_order(
    served: str, db: Database, tmp_path: Path
) -> None:
    try:  # what the docs' examples are written with
        for command in ("bash", "curl", "jq"):
            ensure_command(command, package=command)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    org = await make_org(db)
    await _used(db, served, org)
    (tmp_path / "contacts.csv").write_text(contacts_csv())
    env = {"PATH": os.environ["PATH"], "ORG": str(org.id), "LOGIN": org.login, "KEY": org.key}
    ran = []
    for where, script in reversed(list(examples())):
        code, output = await _run(script.replace(DOCUMENTED_BASE, served), cwd=tmp_path, env=env)
        assert code == 0, f"{where} failed ({code}):\n{script}\n--- output ---\n{output}"
        ran.append(where)
    assert len(ran) >= 10


def _cli_in(directory: Path, database_url: str) -> dict[str, str]:
    """`.venv/bin/tidings` in `directory`, this interpreter's Tidings, as README calls it;
    the environment that points it at the test's database."""
    command = directory / ".venv" / "bin" / "tidings"
    command.parent.mkdir(parents=True)
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tidings "$@"\n')
    command.chmod(0o755)
    python_path = os.environ.get("PYTHONPATH", "")  # src:. when run from a work tree
    return {
        "PATH": os.environ["PATH"],
        "TIDINGS_DATABASE_URL": database_url,
        "PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in python_path.split(":") if p),
    }


async def test_readme_try_it_sends_to_the_sink_by_curl_then_watches_with_the_cli(
    settings: Settings, db: Database, apps: _Apps, tmp_path: Path
) -> None:
    if settings.database_url.startswith("postgresql"):
        pytest.skip("README's walk-through is what `make run` does: on SQLite (CI time)")
    try:
        for command in ("bash", "curl", "jq"):
            ensure_command(command, package=command)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    script = readme_walkthrough()
    assert "/orgs/1" not in script
    env = _cli_in(tmp_path, settings.database_url)
    sending = settings.model_copy(update={"dispatcher": True})  # as make run serves
    async with _serving(apps.for_settings(sending)) as base:
        org = await make_org(db, "Default")
        await _used(db, base, org)
        env |= {"ORG": str(org.id), "KEY": org.key}
        code, output = await _run(script.replace(DOCUMENTED_BASE, base), cwd=tmp_path, env=env)
    assert code == 0, f"README failed ({code}):\n--- output ---\n{output}"
    assert '"status":"SENT"' in output  # the progress read by curl reached SENT
    assert "From: Acme <hello@acme.example>" in output  # the sink's copy, as received
    assert "Subject: Welcome," in output
    assert len(re.findall(r"^broadcast \d+ SENT: \d+ sent", output, re.M)) == 2  # watched
    assert "database: " in output  # the CLI said which one

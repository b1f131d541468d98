"""`tidings serve --workers N` as an operator runs it: a real process tree on PostgreSQL.

Each API process has its own SO_REUSEPORT socket (tidings/api/processes.py), so a burst of
keep-alive connections is spread over the processes instead of landing in whichever
accepted first; a signal stops them all; one process dying stops the set.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tidings.settings import Settings

pytestmark = [
    pytest.mark.usefixtures("db"),  # the test's database, migrated
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),  # SQLite: exit 2
]

WORKERS = 2
CONNECTIONS = 16  # all on one of two processes by chance: 2 × 2⁻¹⁶
METRICS_TOKEN = "metrics-token-of-the-processes"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _established(pid: int, port: int) -> int:
    """How many TCP connections to `port` the process `pid` holds (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


@contextmanager
def _serving(database_url: str, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = _free_port()
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": database_url,
        "TIDINGS_AUTO_MIGRATE": "false",
        "TIDINGS_SECRET_KEY": "workers-secret-key-of-at-least-32-characters",
        "TIDINGS_METRICS_TOKEN": METRICS_TOKEN,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # serve makes its own
    with log.open("w") as output:
        command = ["serve", "--workers", str(WORKERS), "--no-dispatcher", "--port", str(port)]
        server = subprocess.Popen(
            [sys.executable, "-m", "tidings", *command],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("Application startup complete") < WORKERS:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield server, port
    finally:
        for child in _children(server.pid) if server.poll() is None else []:
            os.kill(child, signal.SIGKILL)
        server.kill()
        server.wait(timeout=30)


@pytest.fixture
def served(settings: Settings, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A set of the test's own, for a test that stops it."""
    with _serving(settings.database_url, tmp_path / "serve.log") as set_:
        yield set_


@pytest.fixture(scope="module")
def running(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """One set for the tests that leave it running (starting one costs seconds: three
    processes import Tidings), on the database every test here empties (`db`)."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with _serving(postgres_url, log) as set_:
        yield set_


def test_a_burst_of_connections_is_spread_over_the_processes(
    running: tuple[subprocess.Popen[bytes], int],
) -> None:
    """All connected before any is served, as a client pool opens them: with one shared
    socket the process that wakes first accepts the whole backlog (uvicorn's --workers)."""
    server, port = running
    children = _children(server.pid)
    assert len(children) == WORKERS
    connections = [
        socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CONNECTIONS)
    ]
    try:
        for connection in connections:  # answered: a process has accepted each one
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        for connection in connections:
            assert connection.recv(4096).startswith(b"HTTP/1.1 200")
        held = {child: _established(child, port) for child in children}
        assert sum(held.values()) == CONNECTIONS, held
        assert all(count > 0 for count in held.values()), held
    finally:
        for connection in connections:
            connection.close()


def test_metrics_count_the_requests_of_every_process(
    running: tuple[subprocess.Popen[bytes], int],
) -> None:
    """Each scrape reaches one process (whichever took its connection); each shows what
    all of them counted, not its own share (the set may have served other tests before:
    the count is read first, then must grow by this test's requests on every scrape)."""
    server, port = running
    before = _healthz_count(port)
    connections = [
        socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CONNECTIONS)
    ]
    try:
        for connection in connections:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        for connection in connections:
            assert connection.recv(4096).startswith(b"HTTP/1.1 200")
        held = {child: _established(child, port) for child in _children(server.pid)}
        assert all(count > 0 for count in held.values()), held  # both served some
    finally:
        for connection in connections:
            connection.close()
    for _ in range(2 * WORKERS):  # new connections: the scrapes reach either process
        assert _healthz_count(port) == before + CONNECTIONS


def _healthz_count(port: int) -> float:
    """The /healthz requests counted, as a scrape of /metrics shows them."""
    scraped = httpx.get(
        f"http://127.0.0.1:{port}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=10,
    )
    assert scraped.status_code == 200
    healthz = 'tidings_http_request_seconds_count{method="GET",route="/healthz",status="2xx"} '
    found = [line for line in scraped.text.splitlines() if line.startswith(healthz)]
    return float(found[0].removeprefix(healthz)) if found else 0.0


def test_sigterm_stops_every_process(served: tuple[subprocess.Popen[bytes], int]) -> None:
    server, _ = served
    children = _children(server.pid)
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    deadline = time.monotonic() + 10
    while any(_alive(child) for child in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(child) for child in children)


def test_one_process_dying_stops_the_set_with_status_1(
    served: tuple[subprocess.Popen[bytes], int],
) -> None:
    server, port = served
    first, *others = _children(server.pid)
    os.kill(first, signal.SIGKILL)
    assert server.wait(timeout=30) == 1
    assert not any(_alive(child) for child in others)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_a_taken_port_is_one_clear_error_before_any_process_starts(settings: Settings) -> None:
    with socket.socket() as taken:  # no SO_REUSEPORT: nobody may share it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "TIDINGS_DATABASE_URL": settings.database_url,
               "TIDINGS_AUTO_MIGRATE": "false"}  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "tidings", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr + result.stdout

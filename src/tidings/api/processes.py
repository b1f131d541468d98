"""`tidings serve --workers N`: N API processes on one port, each with its own socket.

uvicorn's own workers share one listening socket, and the process whose event loop wakes
first accepts a whole burst of new connections: the intake benchmark's eight keep-alive
clients all went to one of two processes (`ss -tnp`), and the other stayed idle. Here
each process has a listening socket of its own, bound to the port with SO_REUSEPORT, and
Linux spreads new connections over the sockets by a hash of their addresses: evenly on
average, each connection staying with the process that took it. The parent binds all of
them before it starts a process, and hands each one its socket: connections that arrive
while a process is still starting wait in its socket's backlog, and a taken port is one
error, at once.

The processes count for `/metrics` together: unless the operator named a directory in
PROMETHEUS_MULTIPROC_DIR, the parent makes a temporary one and gives it to them
(prometheus-client's multiprocess mode, `tidings.metrics`), so a scrape that reaches any
process shows the counts of all; the directory is removed when the set stops.

The parent only supervises. SIGTERM or SIGINT is passed on to every process as SIGTERM
(uvicorn finishes the requests in flight, then stops). When one process ends without
being asked, the parent stops the others and exits with status 1, so that the service
manager restarts the set; it does not restart processes itself.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import FrameType

from tidings.metrics import MULTIPROCESS_DIR

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 30.0


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on host:port with SO_REUSEPORT. OSError when the port is
    taken by a socket without SO_REUSEPORT, or the address is not this machine's."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def supervise(*, host: str, port: int, workers: int) -> int:
    """Run `workers` API processes on host:port until a signal stops them (0) or one of
    them ends unasked (1). The processes read the same TIDINGS_* environment. OSError,
    before any process starts, when the port cannot be listened on."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(workers):
            sockets.append(listening_socket(host, port))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    children: list[subprocess.Popen[bytes]] = []
    asked = False
    env = dict(os.environ)
    counts_dir = None
    if not env.get(MULTIPROCESS_DIR):
        counts_dir = tempfile.mkdtemp(prefix="tidings-metrics-")
        env[MULTIPROCESS_DIR] = counts_dir

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal asked
        asked = True
        _stop(children)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            for sock in sockets:
                # Their own session: a terminal's Ctrl-C reaches the parent only, which
                # passes one SIGTERM on (a second makes uvicorn drop requests in flight).
                command = [sys.executable, "-m", "tidings", "serve-process"]
                children.append(
                    subprocess.Popen(  # noqa: S603 — this interpreter, fixed arguments
                        [*command, "--fd", str(sock.fileno())],
                        pass_fds=[sock.fileno()],
                        start_new_session=True,
                        env=env,
                    )
                )
        finally:
            for sock in sockets:
                sock.close()  # each process holds its own now
        while not asked and all(child.poll() is None for child in children):
            time.sleep(0.2)
        if not asked:
            ended = next(child for child in children if child.poll() is not None)
            log.error(
                "API process %d ended with status %s: stopping the others",
                ended.pid,
                ended.returncode,
            )
    finally:
        _stop(children, wait=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if counts_dir is not None:
            shutil.rmtree(counts_dir, ignore_errors=True)
    return 0 if asked else 1


def _stop(children: list[subprocess.Popen[bytes]], *, wait: bool = False) -> None:
    """SIGTERM to those still running; with `wait`, each gets STOP_GRACE_SECONDS to end,
    then SIGKILL."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children if wait else ():
        try:
            child.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

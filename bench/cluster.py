"""Tidings as an operator runs it: `tidings serve` and `tidings worker` processes.

    with Cluster(url, workers=2, embedded=False, name="email-postgres-2") as cluster:
        cluster.api_url, cluster.processes, cluster.measure()

`embedded=True` is the one-process deployment (SQLite): `tidings serve` with its
dispatcher. Otherwise `tidings serve --no-dispatcher` answers the API and `workers`
`tidings worker` processes send. Each process is the real CLI (`python -m tidings`),
configured by TIDINGS_* variables only: the secret key every process shares, the public
URL links point at, log level warning (uvicorn's access log off), no bounce polling, no
migration at start (the seed is migrated). Their output goes to <work dir>/<name>-*.log.
`measure()` reads each live process's peak RSS (VmHWM) and CPU time from /proc. With
`profile=True`, `start_profiling()` attaches py-spy to every process (100 samples a
second, non-blocking) and `stop_profiling()` writes one speedscope profile each to
<work dir>/profiles/ (open them at speedscope.app or with `py-spy`'s viewer).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from bench import support

SECRET_KEY = support.SECRET_KEY


class Cluster:
    def __init__(
        self,
        url: str,
        *,
        name: str,
        workers: int = 0,
        api_workers: int = 1,
        embedded: bool = False,
        batch: int | None = None,
        extra_env: dict[str, str] | None = None,
        profile: bool = False,
    ) -> None:
        self.url = url
        self.profile = profile
        self.profilers: dict[str, subprocess.Popen[bytes]] = {}
        self.profiles: dict[str, str] = {}
        self.name = name
        self.workers = workers
        self.api_workers = api_workers
        self.embedded = embedded
        self.port = support.free_port()
        self.api_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "TIDINGS_DATABASE_URL": url,
            "TIDINGS_SECRET_KEY": SECRET_KEY,
            "TIDINGS_PUBLIC_URL": self.api_url,
            "TIDINGS_AUTO_MIGRATE": "false",
            "TIDINGS_LOG_LEVEL": "warning",
            "TIDINGS_BOUNCE_POLL_SECONDS": "0",
            "TIDINGS_OUTBOUND_ALLOW": support.OUTBOUND_ALLOW,
            **({"TIDINGS_DISPATCHER_BATCH_SIZE": str(batch)} if batch else {}),
            **(extra_env or {}),
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def _start(self, label: str, *arguments: str, append: bool = False) -> subprocess.Popen[bytes]:
        log = support.WORK / f"{self.name}-{label}.log"
        with log.open("ab" if append else "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "tidings", *arguments],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=support.WORK,
            )
        self.processes[label] = process
        self.logs[label] = log
        return process

    def __enter__(self) -> Cluster:
        try:
            dispatcher = "--dispatcher" if self.embedded else "--no-dispatcher"
            several = ("--workers", str(self.api_workers)) if self.api_workers > 1 else ()
            serve = self._start("serve", "serve", "--port", str(self.port), dispatcher, *several)
            for number in range(1, self.workers + 1):
                self._start(f"worker{number}", "worker")
            support.wait_for_port(
                self.port, process=serve, what="tidings serve", log=self.logs["serve"]
            )
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        answer = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            ready = httpx.get(f"{self.api_url}/readyz", timeout=5)
            if ready.status_code == 200:
                time.sleep(0.5)  # workers past their imports and first idle tick
                return
            answer = f"{ready.status_code} {ready.text[:300]}"
            time.sleep(0.1)
        # 503 when the database is not at this code's head revision: the seed was migrated
        # when the run began, so a migration added to the tree meanwhile shows here.
        raise SystemExit(f"{self.name}: /readyz never answered 200 (last: {answer})")

    def kill_worker(self, label: str) -> None:
        """SIGKILL the worker `label` ("worker1", …) and start it again at once, as a
        service manager would; its log goes on in the same file."""
        process = self.processes[label]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        self._start(label, "worker", append=True)

    def check_alive(self) -> None:
        for label, process in self.processes.items():
            if process.poll() is not None:
                log = self.logs[label].read_text(errors="replace")[-3000:]
                raise SystemExit(f"{self.name}: {label} exited ({process.returncode}):\n{log}")

    def start_profiling(self) -> None:
        """py-spy on every process (when `profile`), until `stop_profiling`."""
        if not self.profile:
            return
        py_spy = support.ensure_py_spy()
        profiles = support.WORK / "profiles"
        profiles.mkdir(exist_ok=True)
        for label, pid in self.running().items():
            output = profiles / f"{self.name}-{label}.speedscope.json"
            command = [py_spy, "record", "--pid", str(pid), "--rate", "100"]
            command += ["--nonblocking", "--format", "speedscope", "--output", str(output)]
            log = (support.WORK / f"{self.name}-{label}.py-spy.log").open("wb")
            self.profilers[label] = subprocess.Popen(command, stdout=log, stderr=log)
            self.profiles[label] = str(output)

    def stop_profiling(self) -> dict[str, str]:
        """Stop py-spy (SIGINT: it writes its profile); the profiles' paths by process."""
        for profiler in self.profilers.values():
            profiler.send_signal(signal.SIGINT)
        for profiler in self.profilers.values():
            try:
                profiler.wait(timeout=60)
            except subprocess.TimeoutExpired:
                profiler.kill()
        self.profilers.clear()
        return self.profiles

    def running(self) -> dict[str, int]:
        """The pids of the processes still running, by label; with api_workers > 1, each
        of `tidings serve`'s API processes too ("serve-<pid>")."""
        running = {
            label: process.pid
            for label, process in self.processes.items()
            if process.poll() is None
        }
        if self.api_workers > 1 and "serve" in running:
            children = Path(f"/proc/{running['serve']}/task/{running['serve']}/children")
            if children.exists():
                running |= {f"serve-{pid}": int(pid) for pid in children.read_text().split()}
        return running

    def measure(self) -> dict[str, dict[str, Any]]:
        """Peak RSS (MB) and CPU seconds of every process (`running`), read while they
        still run."""
        return {
            label: {
                "pid": pid,
                "peak_rss_mb": support.peak_rss_mb(pid),
                "cpu_seconds": round(support.process_cpu_seconds(pid), 2),
            }
            for label, pid in self.running().items()
        }

    def stop(self) -> None:
        self.stop_profiling()
        for process in self.processes.values():
            support.stop_process(process, timeout=30)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

"""Debian packages the tests need, installed when missing (as root, with apt-get), once per
machine: CI starts from a fresh machine, and a test that skips there tests nothing.

    path = ensure_command("jq", package="jq")

Tests started together (several pytest processes) install once: the others wait on a file
lock, then find it installed. Only the package's files are wanted, not a system service:
when the machine has no `policy-rc.d`, one that forbids starting services is put in place
for the install (the Docker convention) and removed after.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


def _installed(command: str, paths: Sequence[str]) -> str | None:
    return shutil.which(command) or next((p for p in paths if os.access(p, os.X_OK)), None)


def ensure_command(command: str, *, package: str, paths: Sequence[str] = ()) -> str:
    """The path of `command` (on PATH, or one of `paths`), installing Debian's `package`
    if needed. RuntimeError, saying why, when it is missing and cannot be installed."""
    found = _installed(command, paths)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            f"{command} is not installed and cannot be installed here (needs root and "
            f"apt-get): apt-get install {package}"
        )
    lock_path = Path(tempfile.gettempdir()) / f"tidings-{package}-install.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _installed(command, paths)
        if found:  # another test process installed it while this one waited
            return found
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", package]
        own_policy = not POLICY_RC_D.exists()
        if own_policy:
            POLICY_RC_D.write_text("#!/bin/sh\n# tidings tests: install, do not start\nexit 101\n")
            POLICY_RC_D.chmod(0o755)
        try:
            for step in (["apt-get", "update"], install):
                done = subprocess.run(step, env=env, text=True, capture_output=True)
                if done.returncode != 0:
                    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
                    raise RuntimeError(f"could not install {package}: {' '.join(step)}\n{tail}")
        finally:
            if own_policy:
                POLICY_RC_D.unlink(missing_ok=True)
    found = _installed(command, paths)
    if not found:
        raise RuntimeError(f"{package} installed, but there is no {command}")
    return found

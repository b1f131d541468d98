"""A real IMAP server on loopback for tests: Dovecot (Debian `dovecot-imapd`) started from a
tiny config in a scratch directory, one passwd-file user and a Maildir the test fills.

When Dovecot is missing, `ensure_dovecot()` installs Debian's `dovecot-imapd` (as root,
with apt-get; the way `bench/quick.py` installs Postfix), once per machine: CI starts from
a fresh machine, and an IMAP test that skips there tests nothing. `dovecot_server()` skips
the test, saying why, only when that is impossible (not root, no apt-get, no network).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DOVECOT = "/usr/sbin/dovecot"
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
INSTALL_LOCK = Path(tempfile.gettempdir()) / "tidings-dovecot-install.lock"
USER = "bounces"
PASSWORD = "imap-password-for-tests"


@dataclass(frozen=True)
class ImapServer:
    port: int
    maildir: Path
    uid: int
    gid: int

    def deliver(self, raw: bytes, name: str) -> None:
        """Drop a message into the Maildir's new/ (unseen), as a local delivery agent would."""
        path = self.maildir / "new" / f"{time.time_ns()}.{name}.localhost"
        path.write_bytes(raw)
        os.chown(path, self.uid, self.gid)

    def seen(self) -> int:
        """How many messages carry the S (seen) flag."""
        return sum(1 for p in (self.maildir / "cur").iterdir() if ":2," in p.name and "S" in
                   p.name.rpartition(":2,")[2])  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _installed() -> str | None:
    return shutil.which("dovecot") or (DOVECOT if os.access(DOVECOT, os.X_OK) else None)


def ensure_dovecot() -> str:
    """The path of `dovecot`, installing `dovecot-imapd` with apt-get if needed. Raises
    RuntimeError, saying why, when it is missing and cannot be installed.

    Tests started together (several pytest processes) install once: the others wait on
    a file lock, then find it installed. Only the package's files are wanted, not a
    system IMAP server: when the machine has no `policy-rc.d`, one that forbids starting
    services is put in place for the install (the Docker convention) and removed after.
    """
    found = _installed()
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            "Dovecot is not installed and cannot be installed here (needs root and apt-get): "
            "apt-get install dovecot-imapd"
        )
    with INSTALL_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _installed()
        if found:  # another test process installed it while this one waited
            return found
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "dovecot-imapd"]
        own_policy = not POLICY_RC_D.exists()
        if own_policy:
            POLICY_RC_D.write_text("#!/bin/sh\n# tidings tests: install, do not start\nexit 101\n")
            POLICY_RC_D.chmod(0o755)
        try:
            for command in (["apt-get", "update"], install):
                done = subprocess.run(command, env=env, text=True, capture_output=True)
                if done.returncode != 0:
                    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
                    raise RuntimeError(f"could not install Dovecot: {' '.join(command)}\n{tail}")
        finally:
            if own_policy:
                POLICY_RC_D.unlink(missing_ok=True)
    found = _installed()
    if not found:
        raise RuntimeError("dovecot-imapd installed, but there is no dovecot binary")
    return found


@contextlib.contextmanager
def dovecot_server() -> Iterator[ImapServer]:
    try:
        dovecot = ensure_dovecot()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    root = Path(tempfile.mkdtemp(prefix="tidings-imap-"))
    root.chmod(0o755)  # the mail user reads its home below it
    if os.getuid() == 0:  # Dovecot refuses mail access as root: use an unprivileged user
        nobody = pwd.getpwnam("nobody")
        uid, gid, login, internal = nobody.pw_uid, nobody.pw_gid, "dovenull", "dovecot"
    else:
        uid, gid = os.getuid(), os.getgid()
        login = internal = pwd.getpwuid(uid).pw_name
    home = root / "home"
    maildir = home / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for path in (home, maildir, *(maildir / s for s in ("cur", "new", "tmp"))):
        os.chown(path, uid, gid)
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    port = _free_port()
    config = root / "dovecot.conf"
    config.write_text(f"""\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login}
default_internal_user = {internal}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{maildir}
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""")
    process = subprocess.Popen(
        [dovecot, "-F", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"dovecot did not start: {output}\n{log}")
            time.sleep(0.05)
        yield ImapServer(port, maildir, uid, gid)
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
        shutil.rmtree(root, ignore_errors=True)

"""A real IMAP server on loopback for tests: Dovecot (Debian `dovecot-imapd`) started from a
tiny config in a scratch directory, one passwd-file user and a Maildir the test fills.

When Dovecot is missing, `ensure_dovecot()` installs Debian's `dovecot-imapd`
(`tests/support/debian.py`). `dovecot_server()` skips
the test, saying why, only when that is impossible (not root, no apt-get, no network).
"""

from __future__ import annotations

import contextlib
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

from tests.support.debian import ensure_command

DOVECOT = "/usr/sbin/dovecot"
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


def ensure_dovecot() -> str:
    """The path of `dovecot`, installing `dovecot-imapd` if needed (`support.debian`)."""
    return ensure_command("dovecot", package="dovecot-imapd", paths=[DOVECOT])


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

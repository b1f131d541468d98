"""A scriptable SMTP server on loopback, for the SMTP channel's wire-level tests.

`SmtpServer` is an `asyncio.start_server` on 127.0.0.1 and a free port that speaks just
enough SMTP: EHLO (offering `extensions`, and AUTH PLAIN LOGIN when it has
`credentials`), HELO, AUTH PLAIN and LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT. It
records every command line with the number of the connection it came on, every message
it accepted both as written on the wire (dot-stuffed, "." included) and as content, and
the `turns` each connection took: the reads that held at least one complete command or
the end of a message. A client that pipelines needs about one turn per message; one
that does not needs four.

By default it behaves as Postfix does, pipelining included: a command out of sequence
gets 503, DATA without an accepted recipient gets 554. `refuse[address]` is the reply to
that address's RCPT; `script[verb]` ("EHLO", "MAIL", "RCPT", "DATA" or "." for the end
of a message) holds replies to give instead of the default, in turn (None: the default). A
reply may span lines ("550-a\\r\\n550 b"); DROP closes the connection without a reply;
after a 421 the server closes the connection, as RFC 5321 §3.8 has it. It runs on the
test's event loop: stop it after closing the channels that talk to it.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field

HOST = "127.0.0.1"
DROP = "<drop>"
COMMANDS = frozenset({"EHLO", "HELO", "AUTH", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT"})


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    connection: int
    mail_from: str
    rcpt_tos: tuple[str, ...]
    wire: bytes  # as sent after DATA's 354: dot-stuffed, ending with CRLF "." CRLF
    content: bytes  # with the dot-stuffing undone, without the final "."
    queue_id: str


@dataclass
class _Session:
    connection: int
    mail_from: str | None = None
    rcpt_tos: list[str] = field(default_factory=list)
    authenticated: bool = False
    in_data: bool = False
    wire: bytearray = field(default_factory=bytearray)
    content: bytearray = field(default_factory=bytearray)
    auth: list[str] = field(default_factory=list)  # an AUTH exchange under way

    def reset(self) -> None:
        self.mail_from = None
        self.rcpt_tos = []
        self.in_data = False
        self.wire = bytearray()
        self.content = bytearray()


class _Closed(Exception):
    """The session ends here."""


class SmtpServer:
    def __init__(
        self,
        *,
        extensions: Iterable[str] = ("PIPELINING", "8BITMIME"),
        credentials: tuple[str, str] | None = None,
        mechanisms: str = "PLAIN LOGIN",
    ) -> None:
        self.extensions = list(extensions)
        self.credentials = credentials
        self.mechanisms = mechanisms
        self.script: defaultdict[str, deque[str | None]] = defaultdict(deque)
        self.refuse: dict[str, str] = {}
        self.commands: list[tuple[int, str]] = []
        self.received: list[Received] = []
        self.data_sections: list[bytes] = []  # every one, as on the wire, accepted or not
        self.logins: list[tuple[str, str, bool]] = []  # mechanism, username, accepted
        self.turns: Counter[int] = Counter()
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._sessions):
            task.cancel()
        for task in list(self._sessions):
            with suppress(asyncio.CancelledError):
                await task
        await self._server.wait_closed()

    def verbs(self, connection: int | None = None) -> list[str]:
        """The commands received (on one connection), as their first word."""
        return [
            line.split(" ", 1)[0].split(":", 1)[0].upper()
            for number, line in self.commands
            if connection is None or number == connection
        ]

    def by_recipient(self) -> dict[str, Received]:
        return {message.rcpt_tos[0]: message for message in self.received}

    # --- one connection -----------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        self.connections += 1
        session = _Session(self.connections)
        buffer = b""
        try:
            writer.write(b"220 mx.test ESMTP scripted\r\n")
            while chunk := await reader.read(65536):
                buffer += chunk
                turn = False
                while (end := buffer.find(b"\r\n")) >= 0:
                    line, buffer = buffer[:end], buffer[end + 2 :]
                    turn = self._line(session, line, writer) or turn
                if turn:
                    self.turns[session.connection] += 1
                await writer.drain()
        except (_Closed, ConnectionError):
            pass
        finally:
            writer.close()
            self._sessions.discard(task)

    def _line(self, session: _Session, line: bytes, writer: asyncio.StreamWriter) -> bool:
        """Handle one line; True when it was a command or the end of a message."""
        if session.in_data:
            if line != b".":
                session.wire += line + b"\r\n"
                session.content += (line[1:] if line.startswith(b".") else line) + b"\r\n"
                return False
            session.wire += b".\r\n"
            self.data_sections.append(bytes(session.wire))
            self._reply(writer, self._end_of_data(session))
            session.reset()
            return True
        text = line.decode("utf-8", "replace")
        self.commands.append((session.connection, text))
        if session.auth:
            self._reply(writer, self._auth_step(session, text))
            return True
        verb, _, argument = text.partition(" ")
        verb = verb.upper()
        if verb in COMMANDS:
            self._reply(writer, getattr(self, f"_{verb.lower()}")(session, argument))
        else:
            self._reply(writer, "500 5.5.2 Command unrecognized")
        return True

    def _reply(self, writer: asyncio.StreamWriter, reply: str | None) -> None:
        if reply is None:
            return
        if reply == DROP:
            writer.transport.abort()
            raise _Closed
        writer.write(reply.encode() + b"\r\n")
        if reply.startswith(("421", "221")):
            writer.close()
            raise _Closed

    def _scripted(self, verb: str) -> str | None:
        queue = self.script[verb]
        return queue.popleft() if queue else None

    # --- commands ------------------------------------------------------------------------

    def _ehlo(self, session: _Session, argument: str) -> str:
        if (scripted := self._scripted("EHLO")) is not None:
            return scripted
        lines = ["mx.test", *self.extensions]
        if self.credentials is not None:
            lines.append(f"AUTH {self.mechanisms}")
        return "\r\n".join(
            f"250{'-' if i < len(lines) - 1 else ' '}{line}" for i, line in enumerate(lines)
        )

    def _helo(self, session: _Session, argument: str) -> str:
        return "250 mx.test"

    def _noop(self, session: _Session, argument: str) -> str:
        return "250 2.0.0 Ok"

    def _rset(self, session: _Session, argument: str) -> str:
        session.reset()
        return "250 2.0.0 Ok"

    def _quit(self, session: _Session, argument: str) -> str:
        return "221 2.0.0 Bye"

    def _auth(self, session: _Session, argument: str) -> str:
        mechanism, _, initial = argument.partition(" ")
        mechanism = mechanism.upper()
        if self.credentials is None or mechanism not in self.mechanisms.split():
            return "504 5.5.4 Unrecognized authentication type"
        session.auth = [mechanism]
        if mechanism == "PLAIN" and initial:
            return self._auth_step(session, initial)
        return "334 VXNlcm5hbWU6" if mechanism == "LOGIN" else "334 "

    def _auth_step(self, session: _Session, text: str) -> str:
        session.auth.append(base64.b64decode(text).decode())
        mechanism = session.auth[0]
        if mechanism == "LOGIN" and len(session.auth) == 2:
            return "334 UGFzc3dvcmQ6"
        if mechanism == "PLAIN":
            _, username, password = session.auth[1].split("\0")
        else:
            username, password = session.auth[1:]
        session.auth = []
        accepted = (username, password) == self.credentials
        self.logins.append((mechanism, username, accepted))
        session.authenticated = accepted
        if accepted:
            return "235 2.7.0 Authentication successful"
        return "535 5.7.8 Error: authentication failed"

    def _mail(self, session: _Session, argument: str) -> str:
        if (scripted := self._scripted("MAIL")) is not None:
            return scripted
        if self.credentials is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if session.mail_from is not None:
            return "503 5.5.1 Error: nested MAIL command"
        session.mail_from = _address(argument)
        return "250 2.1.0 Ok"

    def _rcpt(self, session: _Session, argument: str) -> str:
        address = _address(argument)
        if (scripted := self._scripted("RCPT")) is not None:
            return scripted
        if session.mail_from is None:
            return "503 5.5.1 Error: need MAIL command"
        if address in self.refuse:
            return self.refuse[address]
        session.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    def _data(self, session: _Session, argument: str) -> str:
        reply = self._scripted("DATA")
        if reply is None:
            if session.mail_from is None:
                reply = "503 5.5.1 Error: need RCPT command"
            elif not session.rcpt_tos:
                reply = "554 5.5.1 Error: no valid recipients"
            else:
                reply = "354 End data with <CR><LF>.<CR><LF>"
        session.in_data = reply.startswith("3")
        return reply

    def _end_of_data(self, session: _Session) -> str:
        if (scripted := self._scripted(".")) is not None:
            return scripted
        if session.mail_from is None or not session.rcpt_tos:
            return "554 5.5.1 Error: no valid recipients"
        queue_id = f"S{len(self.received) + 1:04d}"
        self.received.append(
            Received(
                connection=session.connection,
                mail_from=session.mail_from,
                rcpt_tos=tuple(session.rcpt_tos),
                wire=bytes(session.wire),
                content=bytes(session.content),
                queue_id=queue_id,
            )
        )
        return f"250 2.0.0 Ok: queued as {queue_id}"


def _address(argument: str) -> str:
    """The address between < and > of "FROM:<a@b> SIZE=1" or "TO:<a@b>"."""
    start, end = argument.find("<"), argument.find(">")
    return argument[start + 1 : end] if 0 <= start < end else argument.strip()

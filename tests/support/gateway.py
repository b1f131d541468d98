"""A scriptable HTTP/1.1 gateway on loopback, for the HTTP SMS channels' tests.

`Gateway` is an `asyncio.start_server` on 127.0.0.1 and a free port that parses every
request (method, path, query, headers, body), records it with the number of the TCP
connection it came on, and answers per its `plan`. Start a fresh one per test, so that
recorded requests and connection counts are the test's own; starting it costs about a
millisecond. It runs on the test's event loop: stop it after closing the channels that
talk to it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Recorded:
    """One request as the gateway read it off the wire."""

    method: str
    target: str  # the raw request target, query string and all
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    connection: int

    def param(self, name: str) -> str:
        (value,) = self.query[name]
        return value

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        fields = parse_qs(self.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        assert all(len(values) == 1 for values in fields.values())
        return {name: values[0] for name, values in fields.items()}


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = b""  # bytes as they are, str as text/plain, anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)


Plan = Callable[[Recorded], Reply | Awaitable[Reply]]


class Gateway:
    """A scriptable HTTP/1.1 server with keep-alive that counts its connections."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.connections = 0
        self.plan: Plan = lambda _: Reply()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        handlers = list(self._handlers)  # a request still waiting on its plan, say
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        connection = self.connections
        try:
            while (request := await _read_request(reader, connection)) is not None:
                self.requests.append(request)
                reply = self.plan(request)
                if inspect.isawaitable(reply):
                    reply = await reply
                writer.write(_encode(reply))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # `stop` cancels what is still open. Ending quietly rather than cancelled keeps
            # asyncio (3.11) from logging each such connection as an error at teardown.
            pass
        finally:
            writer.close()
            with suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            self._handlers.discard(task)


async def _read_request(reader: asyncio.StreamReader, connection: int) -> Recorded | None:
    line = await reader.readline()
    if not line:
        return None  # the client closed an idle keep-alive connection
    method, target, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    assert "chunked" not in headers.get("transfer-encoding", "")
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    return Recorded(method, target, url.path, query, headers, body, connection)


def _encode(reply: Reply) -> bytes:
    if isinstance(reply.body, bytes):
        body, kind = reply.body, "application/octet-stream"
    elif isinstance(reply.body, str):
        body, kind = reply.body.encode(), "text/plain; charset=utf-8"
    else:
        body, kind = json.dumps(reply.body).encode(), "application/json"
    headers = {"Content-Type": kind, "Content-Length": str(len(body))} | reply.headers
    head = f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (head + "\r\n").encode("latin-1") + body

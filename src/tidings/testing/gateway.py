"""A scriptable HTTP/1.1 gateway: stands in for a provider's HTTP API in tests.

`Gateway` records every request (method, target, path, query, headers, body) and answers
it per its `plan`, a function of the `Recorded` request (`tidings.testing.providers` has
each provider's answers). It is reached in one of two ways:

    await gateway.start(); gateway.url     a real server on 127.0.0.1 and a free port,
                                           with keep-alive; `connections` counts the TCP
                                           connections, each request carries its number
    gateway.transport()                    an httpx transport answering in process, for
                                           a client passed to a channel (connection 0)

Make a fresh one per test, so that recorded requests and connection counts are the test's
own; starting it costs about a millisecond. The server runs on the current event loop:
stop it after closing the channels that talk to it.
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

import httpx


@dataclass(frozen=True)
class Recorded:
    """One request as the gateway read it."""

    method: str
    target: str  # the raw request target, query string and all
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    connection: int  # the TCP connection's number, from 1; 0 through `transport()`

    def param(self, name: str) -> str:
        """The query parameter `name`, which must occur once."""
        (value,) = self.query[name]
        return value

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The urlencoded body; every field must occur once."""
        fields = parse_qs(self.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        repeated = sorted(name for name, values in fields.items() if len(values) > 1)
        if repeated:
            raise ValueError(f"form fields given more than once: {repeated}")
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
        if self._server is None:
            raise RuntimeError("the gateway has no URL before start()")
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        handlers = list(self._handlers)  # a request still waiting on its plan, say
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await self._server.wait_closed()

    def transport(self) -> httpx.MockTransport:
        """The same gateway without a server: requests are recorded and answered in process."""

        async def handle(request: httpx.Request) -> httpx.Response:
            url = request.url
            recorded = Recorded(
                method=request.method,
                target=url.raw_path.decode("ascii"),
                path=url.path,
                query=parse_qs(url.query.decode("ascii"), keep_blank_values=True),
                headers={name.lower(): value for name, value in request.headers.items()},
                body=request.content,
                connection=0,
            )
            status, headers, body = _parts(await self._answer(recorded))
            return httpx.Response(status, headers=headers, content=body)

        return httpx.MockTransport(handle)

    async def _answer(self, request: Recorded) -> Reply:
        self.requests.append(request)
        reply = self.plan(request)
        if inspect.isawaitable(reply):
            reply = await reply
        return reply

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # a stream handler always runs as a task
        self._handlers.add(task)
        self.connections += 1
        connection = self.connections
        try:
            while (request := await _read_request(reader, connection)) is not None:
                writer.write(_encode(await self._answer(request)))
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
    if "chunked" in headers.get("transfer-encoding", ""):
        # Tidings' channels send whole bodies; reading chunks is not worth having here.
        raise NotImplementedError("the gateway reads Content-Length bodies only")
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    return Recorded(method, target, url.path, query, headers, body, connection)


def _parts(reply: Reply) -> tuple[int, dict[str, str], bytes]:
    if isinstance(reply.body, bytes):
        body, kind = reply.body, "application/octet-stream"
    elif isinstance(reply.body, str):
        body, kind = reply.body.encode(), "text/plain; charset=utf-8"
    else:
        body, kind = json.dumps(reply.body).encode(), "application/json"
    headers = {"Content-Type": kind, "Content-Length": str(len(body))} | reply.headers
    return reply.status, headers, body


def _encode(reply: Reply) -> bytes:
    status, headers, body = _parts(reply)
    head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (head + "\r\n").encode("latin-1") + body

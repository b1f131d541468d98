"""A fast local Infobip SMS gateway for the SMS benchmark, and a probe of its capacity.

    python bench/gateway.py serve --port 8100 [--processes 1]
    python bench/gateway.py probe --port 8100 [--seconds 3] [--connections 8] [--batch 1000]

`serve` answers `POST /sms/2/text/advanced` as Infobip does (200, every destination
PENDING_ACCEPTED under its own messageId) on 127.0.0.1, HTTP/1.1 with keep-alive. It is an
asyncio Protocol under uvloop that reads the destinations with one regular expression
rather than parsing the JSON, so it is not the bottleneck: `probe` measures how many
messages a second it answers. With --processes N, N processes share the port
(SO_REUSEPORT). `GET /stats` answers {"requests": …, "messages": …} (of the process that
took the connection: use one process when counting), and on SIGTERM each process prints
the same as one JSON line to stdout.

`probe` sends one pre-built request of --batch messages over each of --connections
keep-alive connections, again and again for --seconds, and prints one JSON line:
{"requests_per_second": …, "messages_per_second": …}. The probe shares the machine with
the gateway, so the figure is a lower bound of the gateway's capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import sys
import time
from typing import Final, cast

PATH: Final = b"/sms/2/text/advanced"
DESTINATION = re.compile(rb'"to":\s*"([^"]*)",\s*"messageId":\s*"([^"]*)"')
MESSAGE_IDS = re.compile(rb'"messageId"')
STATUS: Final = (
    b'"status": {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED",'
    b' "description": "Message sent to next instance"}'
)
HEAD_END: Final = b"\r\n\r\n"


def answer(status: int, body: bytes) -> bytes:
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}[status]
    return b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        status,
        reason,
        len(body),
        body,
    )


def reply(body: bytes, serial: int) -> tuple[bytes, int]:
    """Infobip's answer to one request, and how many messages it reported."""
    found = DESTINATION.findall(body)
    if len(found) != len(MESSAGE_IDS.findall(body)):
        # Not the shape the regular expression knows (keys reordered, say): parse it.
        document = json.loads(body)
        found = [
            (d["to"].encode(), d["messageId"].encode())
            for m in document["messages"]
            for d in m["destinations"]
        ]
    entries = b", ".join(
        b'{"to": "%s", "messageId": "%s", "smsCount": 1, %s}' % (to, message_id, STATUS)
        for to, message_id in found
    )
    document = b'{"bulkId": "bench-%d", "messages": [%s]}' % (serial, entries)
    return answer(200, document), len(found)


class Stats:
    requests = 0
    messages = 0


class InfobipProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(HEAD_END)
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, target = head.split(b" ", 2)[:2]
            assert self.transport is not None
            if method == b"GET" and target == b"/stats":
                stats = {"requests": Stats.requests, "messages": Stats.messages}
                self.transport.write(answer(200, json.dumps(stats).encode()))
                continue
            if method != b"POST" or target.split(b"?")[0] != PATH:
                self.transport.write(answer(404, b'{"error": "not found"}'))
                continue
            Stats.requests += 1
            try:
                response, count = reply(body, Stats.requests)
            except (ValueError, KeyError, TypeError):
                self.transport.write(answer(400, b'{"error": "bad request"}'))
                continue
            Stats.messages += count
            self.transport.write(response)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    server = await loop.create_server(InfobipProtocol, sock=sock, backlog=1024)
    await stop.wait()
    server.close()
    print(json.dumps({"requests": Stats.requests, "messages": Stats.messages}), flush=True)


def request(port: int, batch: int) -> bytes:
    """One Infobip request of `batch` messages, as the channel writes it."""
    messages = [
        {
            "destinations": [{"to": f"4179{i:07d}", "messageId": str(i)}],
            "text": f"Ada{i}, your pro plan renews 2026-01-01: 12 seats.",
            "from": "Acme",
        }
        for i in range(batch)
    ]
    body = json.dumps({"bulkId": "probe", "messages": messages}).encode()
    head = (
        f"POST /sms/2/text/advanced HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: App probe\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def probe(port: int, *, seconds: float, connections: int, batch: int) -> dict[str, float]:
    payload = request(port, batch)
    done = 0
    deadline = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                writer.write(payload)
                head = await reader.readuntil(HEAD_END)
                length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
                done += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return {
        "requests_per_second": round(done / elapsed, 1),
        "messages_per_second": round(done * batch / elapsed),
        "batch": batch,
        "connections": connections,
        "seconds": round(elapsed, 2),
    }


def run(coroutine: object) -> object:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)  # type: ignore[arg-type]
    return uvloop.run(coroutine)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["serve", "probe"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    if args.mode == "probe":
        result = run(
            probe(args.port, seconds=args.seconds, connections=args.connections, batch=args.batch)
        )
        print(json.dumps(result), flush=True)
        return
    children = []
    for _ in range(args.processes - 1):
        pid = os.fork()
        if pid == 0:
            run(serve(args.port))
            os._exit(0)
        children.append(pid)
    try:
        run(serve(args.port))
    finally:
        for pid in children:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

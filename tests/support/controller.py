"""aiosmtpd's Controller for tests, stopping cleanly.

`Controller.stop` stops the server's loop in its thread; a session still open then (a
TLS session awaiting the peer's close_notify, a client that has not closed yet) leaves
its socket to the garbage collector, which warns about it in whichever test runs next
(`-W error` makes that a failure). This `stop` first aborts the sessions still open and
lets their sockets close.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.controller import Controller


class AbortingController(Controller):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[Any] = []

    def factory(self) -> Any:
        session = super().factory()  # type: ignore[no-untyped-call]
        self.sessions.append(session)
        return session

    def stop(self, no_assert: bool = False) -> None:
        async def abort() -> None:
            for session in self.sessions:
                if session.transport is not None:
                    session.transport.abort()
            for _ in range(3):  # connection_lost, which closes the socket, runs soon after
                await asyncio.sleep(0)

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(abort(), self.loop).result(timeout=5)
        super().stop(no_assert)


@contextmanager
def serving(handler: object) -> Iterator[int]:
    """An aiosmtpd server of `handler` on a free port of 127.0.0.1 while inside; yields
    the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    controller = AbortingController(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()

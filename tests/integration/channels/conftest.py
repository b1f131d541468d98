"""Fixtures of the channel tests.

The SMTP channel's tests run on both event loops Tidings runs on: asyncio's own and
uvloop's (which `tidings worker` uses when it is installed): their transports differ.
The HTTP SMS channels' tests run on asyncio's, and close the channels they open (`opened`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import pytest

from tests.support.sms_channels import AnyChannel
from tidings.testing import Gateway

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
    pass
else:
    LOOPS["uvloop"] = uvloop.new_event_loop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]] | None:
    if not item.path.name.startswith("test_smtp"):
        return {"asyncio": asyncio.new_event_loop}  # None is not an answer this hook may give
    return LOOPS


@pytest.fixture
async def opened(gateway: Gateway) -> AsyncIterator[list[AnyChannel]]:
    """Channels to close after the test (before the gateway stops: it depends on it)."""
    channels: list[AnyChannel] = []
    yield channels
    for channel in channels:
        await channel.close()

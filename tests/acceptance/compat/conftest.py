"""What the dialect tests share: a dispatcher that links like the app does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.links.secret import load_secret
from tidings.links.tokens import TokenSigner
from tidings.settings import Settings


@pytest.fixture
def drain(db: Database, settings: Settings) -> Callable[[], Awaitable[None]]:
    """Run the dispatcher until nothing is due (the sink receives everything)."""

    async def run() -> None:
        dispatcher = Dispatcher(
            db,
            renderer=Renderer(),
            signer=TokenSigner(load_secret(settings)),
            config=DispatcherConfig(public_url=settings.public_url),
        )
        await dispatcher.drain()

    return run

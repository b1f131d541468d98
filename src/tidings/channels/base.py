"""What a channel (a provider) is to the dispatcher.

A channel sends a batch of rendered messages and says, per message, what happened:
a provider id, or an error it has classified. The dispatcher owns everything else —
retries and their backoff, timing, logging, counters.

    SendError
    ├── TransientSendError   try again later (4xx SMTP reply, HTTP 429/5xx, timeout);
    │                        `retry_after` seconds when the provider said so
    └── PermanentSendError   never retry (5xx SMTP reply, invalid number, rejected)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class SendError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientSendError(SendError):
    """`attempted=False`: the message was never handed to the provider (the batch was
    stopped by push-back before it was its turn), so its attempt does not count."""

    def __init__(
        self, reason: str, *, retry_after: float | None = None, attempted: bool = True
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.attempted = attempted


class PermanentSendError(SendError):
    pass


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One rendered message. `content` is the full MIME for email, the text for SMS."""

    message_id: int
    org_id: int
    channel: str
    sender: str | None
    recipient: str
    subject: str | None
    content: bytes | str
    segments: int | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    provider_id: str


Result = Sent | SendError


class Channel(Protocol):
    """A provider connection. `send` answers one Result per message, in order."""

    async def send(self, batch: Sequence[Outgoing]) -> Sequence[Result]: ...

    async def close(self) -> None: ...

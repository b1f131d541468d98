"""What a channel (a provider) is to the dispatcher.

A channel sends a batch of rendered messages and says, per message, what happened:
a provider id, or an error it has classified. The dispatcher owns everything else —
retries and their backoff, timing, logging, counters.

    SendError
    ├── TransientSendError   try again later (4xx SMTP reply, HTTP 429/5xx, timeout);
    │                        `retry_after` seconds when the provider said so
    └── PermanentSendError   never retry (5xx SMTP reply, invalid number, rejected)
        └── RecipientRefused the address itself refused: also a hard bounce

A reason and a provider id are shown to the org whose message it is, and they hold words
of a server the org chose: each is one printable line of bounded length (`excerpt`), so
a provider — or whatever answers at its address — cannot make them a channel for a
whole document, nor put control characters in a tenant's answers and our logs
(`tidings.net.answers`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from tidings.net.answers import excerpt

REASON_CHARS: Final = 500  # a message's `reason` column
PROVIDER_ID_CHARS: Final = 128  # a message's `provider_id` column


class SendError(Exception):
    """`reason` is bounded and printable (see the module docstring)."""

    def __init__(self, reason: str) -> None:
        reason = excerpt(reason, REASON_CHARS)
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


class RecipientRefused(PermanentSendError):
    """The provider refused the recipient's address itself, for good (an SMTP server's
    550 5.1.1 at RCPT TO, or after the content): a hard bounce, which suppresses the
    address as a bounce report would (`suppressions.service.suppress_hard_bounce`)."""


def internal_error(exc: BaseException) -> str:
    """The reason a message gets for an exception nobody expected (a bug, not a
    provider's answer): `internal error: <type>: <text>`."""
    return f"internal error: {type(exc).__name__}: {exc}"[:REASON_CHARS]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One rendered message. `content` is the full MIME for email, the text for SMS;
    `email_message_id` is an email's Message-ID (stored with it when it is sent)."""

    message_id: int
    org_id: int
    channel: str
    sender: str | None
    recipient: str
    subject: str | None
    content: bytes | str
    segments: int | None = None
    email_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    """Handed over; `provider_id` is bounded and printable (see the module docstring)."""

    provider_id: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "provider_id", excerpt(self.provider_id, PROVIDER_ID_CHARS))


Result = Sent | SendError

Report = Callable[[int, Result], None]
"""Told a message's result the moment a channel knows it: its position in the batch, and
the result (see `Channel.send`)."""


class Channel(Protocol):
    """A provider connection: the whole interface the dispatcher needs of a provider, and
    all it knows of one (listmonk's `Messenger`). `send` answers one Result per message,
    in order; the two capabilities tell the dispatcher how to fit a batch to the
    connection's cluster-wide limits. Every channel states both.
    """

    @property
    def parallelism(self) -> int | None:
        """How many sends the channel runs at once at most, whatever the batch (an SMTP
        pool's connections), or None when it has no such number of its own. With a
        number, the dispatcher asks the connection's `max_concurrency` for no more slots
        than that and, holding that many, hands the whole grant over in one `send` for
        the channel to stream; without, it hands over as many sends at a time as it
        holds slots."""
        ...

    @property
    def messages_per_request(self) -> int:
        """How many messages one send (one provider request) carries at most: 1 for a
        provider called once per message, Infobip's `batch_size` for one that takes many.
        The dispatcher counts a send, not a message, against `max_concurrency`."""
        ...

    async def send(
        self, batch: Sequence[Outgoing], *, report: Report | None = None
    ) -> Sequence[Result]:
        """One result per message of `batch`, in order: the whole truth. A channel that
        learns results one at a time while the call goes on (an SMTP pool streaming a
        batch) also tells `report` each as it learns it, so that the dispatcher writes
        it down then, not when the call returns: what a killed worker sends twice is only
        what it had not written down. A channel that learns them all at once (one request)
        may never call it."""
        ...

    async def close(self) -> None: ...

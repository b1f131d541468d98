"""A channel that delivers nothing: it records what it was given and answers per a rule.

    channel = RecordingChannel()                                  every message Sent
    channel = RecordingChannel(answers({"b@example.com": PermanentSendError("550 …")}))
    channel = RecordingChannel(raising(OSError("reset"), recipient="c@example.com"))
    channel = RecordingChannel(raising(TransientSendError("down")))   every batch fails

A `Rule` gives each message its `Result`. A rule that raises makes `send` raise, so the
whole batch fails: with a `SendError`, the way a channel says every message of the batch
failed alike; with anything else, the way a broken connection or a bug surfaces.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from tidings.channels.base import Channel, Outgoing, Report, Result, Sent

Rule = Callable[[Outgoing], Result]


def sent(message: Outgoing) -> Sent:
    """The default rule: Sent, with the provider id "recorded-<message id>"."""
    return Sent(f"recorded-{message.message_id}")


def answers(by_recipient: Mapping[str, Result], *, otherwise: Rule = sent) -> Rule:
    """`by_recipient[recipient]` for the recipients it names, `otherwise` for the rest."""

    def rule(message: Outgoing) -> Result:
        found = by_recipient.get(message.recipient)
        return otherwise(message) if found is None else found

    return rule


def raising(error: Exception, *, recipient: str | None = None, otherwise: Rule = sent) -> Rule:
    """Raise `error` for a batch holding `recipient` (any batch when None), else `otherwise`."""

    def rule(message: Outgoing) -> Result:
        if recipient is None or message.recipient == recipient:
            raise error
        return otherwise(message)

    return rule


class RecordingChannel:
    """A `Channel` that records every message it is given, in `messages` (and each call's
    batch in `batches`), and answers each per `rule`. `closed` says whether `close` ran.

    `parallelism` and `messages_per_request` are what a real channel tells the dispatcher
    about itself (an SMTP pool's connections; Infobip's messages per request): set them
    to make the recording channel look like one.
    """

    parallelism: int | None = None
    messages_per_request: int = 1

    def __init__(
        self,
        rule: Rule = sent,
        *,
        parallelism: int | None = None,
        messages_per_request: int = 1,
    ) -> None:
        self.rule = rule
        self.parallelism = parallelism
        self.messages_per_request = messages_per_request
        self.messages: list[Outgoing] = []
        self.batches: list[list[Outgoing]] = []
        self.closed = False

    async def send(
        self, batch: Sequence[Outgoing], *, report: Report | None = None
    ) -> Sequence[Result]:
        # Recorded before the rule runs: a batch that fails was still handed over.
        self.batches.append(list(batch))
        self.messages.extend(batch)
        return [self.rule(message) for message in batch]

    async def close(self) -> None:
        self.closed = True


if TYPE_CHECKING:
    _conforms: type[Channel] = RecordingChannel  # mypy holds it to the protocol

"""`call_provider`: every provider call timed and logged in one place, without content."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from tidings.channels.base import (
    Outgoing,
    PermanentSendError,
    Report,
    Result,
    SendError,
    Sent,
    TransientSendError,
)
from tidings.channels.registry import ConnectionSpec
from tidings.dispatcher.deliverer import call_provider

SPEC = ConnectionSpec(7, "kannel", {}, {"password": "hunter2"}, 10, None)


class Scripted:
    """A channel answering what it is told to, or raising it for the whole batch."""

    parallelism: int | None = None
    messages_per_request: int = 1

    def __init__(self, answer: Sequence[Result] | SendError) -> None:
        self.answer = answer

    async def send(
        self, batch: Sequence[Outgoing], *, report: Report | None = None
    ) -> Sequence[Result]:
        if isinstance(self.answer, SendError):
            raise self.answer
        return self.answer

    async def close(self) -> None:
        return None


def sms(message_id: int) -> Outgoing:
    return Outgoing(message_id, 1, "sms", "Acme", "+41793026727", None, "your code is 4711")


async def test_one_info_line_per_call_and_one_warning_per_failed_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer: list[Result] = [
        Sent("p-1"),
        PermanentSendError("invalid number"),
        TransientSendError("gateway busy"),
        TransientSendError("held back", retry_after=60.0, attempted=False),
    ]
    caplog.set_level(logging.INFO, logger="tidings.dispatcher.deliverer")

    broadcasts = {1: 9, 2: 9, 3: None, 4: 9}  # message 3: a single send
    results = await call_provider(
        Scripted(answer), [sms(n) for n in (1, 2, 3, 4)], spec=SPEC, broadcasts=broadcasts
    )

    assert list(results) == answer
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(infos) == 1
    assert infos[0].startswith("provider call: connection 7 (kannel), 4 messages: ")
    assert "1 sent, 2 failed, 1 unsent in " in infos[0]
    assert warnings == [
        "message 2 (org 1, broadcast 9) not sent on connection 7 (kannel), permanent: "
        "invalid number",
        "message 3 (org 1, no broadcast) not sent on connection 7 (kannel), transient: "
        "gateway busy",
    ]
    fields = [
        (r.message_id, r.org_id, r.broadcast_id, r.connection_id)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.levelno == logging.WARNING
    ]
    assert fields == [(2, 1, 9, 7), (3, 1, None, 7)]
    for secret_or_content in ("+41793026727", "4711", "hunter2"):  # recipient, text, credential
        assert secret_or_content not in caplog.text


async def test_an_error_raised_for_the_whole_batch_is_each_messages_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = TransientSendError("connection refused")
    caplog.set_level(logging.INFO, logger="tidings.dispatcher.deliverer")

    results = await call_provider(Scripted(error), [sms(1), sms(2)], spec=SPEC)

    assert list(results) == [error, error]
    assert "0 sent, 2 failed, 0 unsent" in caplog.text

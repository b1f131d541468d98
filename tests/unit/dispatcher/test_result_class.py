"""A provider's result as metric labels: a bounded class of its reason, never its text."""

from __future__ import annotations

import pytest

from tidings.channels.base import PermanentSendError, Result, Sent, TransientSendError
from tidings.dispatcher.deliverer import result_class


@pytest.mark.parametrize(
    ("result", "labels"),
    [
        (Sent("q1"), ("sent", "ok")),
        (TransientSendError("held back", attempted=False), ("unsent", "held")),
        (TransientSendError("421 4.7.0 slow down", retry_after=60), ("retried", "pushback")),
        (TransientSendError("HTTP 429", retry_after=5), ("retried", "pushback")),
        (TransientSendError("internal error: ValueError: x 550"), ("retried", "internal")),
        (PermanentSendError("RCPT TO: 550 5.1.1 <a@b.example>: no such user"), ("failed", "5xx")),
        (TransientSendError("MAIL FROM: 451 4.3.0 try later"), ("retried", "4xx")),
        (TransientSendError("HTTP 503"), ("retried", "5xx")),
        (TransientSendError("DATA: connection lost: reset"), ("retried", "connection")),
        (TransientSendError("reply timed out after 30.0 s"), ("retried", "connection")),
        (PermanentSendError("the server does not offer SMTPUTF8"), ("failed", "other")),
        (PermanentSendError("version 1.550.2 of nothing"), ("failed", "other")),
    ],
)
def test_each_result_gets_a_bounded_class(result: Result, labels: tuple[str, str]) -> None:
    assert result_class(result) == labels

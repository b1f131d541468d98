"""The fakes of `tidings.testing` themselves: other tests trust them to behave as said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tidings.channels.base import (
    Channel,
    Outgoing,
    PermanentSendError,
    Sent,
    TransientSendError,
)
from tidings.db.base import utcnow
from tidings.testing import Clock, RecordingChannel, answers, raising

T0 = datetime(2027, 1, 15, 8, tzinfo=UTC)


# ── Clock ───────────────────────────────────────────────────────────────────────────


def test_a_clock_stands_still_until_moved() -> None:
    clock = Clock(T0)

    assert clock() == clock() == clock.now == clock.start == T0
    assert clock.epoch() == 1_800_000_000.0
    assert clock.elapsed == 0.0


def test_a_clock_moves_by_advance_now_and_elapsed() -> None:
    clock = Clock(T0)

    clock.advance(1.5)
    assert clock() == T0 + timedelta(seconds=1.5)
    clock.advance(timedelta(minutes=1))
    assert clock.elapsed == 61.5
    assert clock.epoch() == 1_800_000_061.5
    clock.now = T0 + timedelta(hours=1)
    assert clock.elapsed == 3600.0
    clock.elapsed = 0.0625
    assert clock() == T0 + timedelta(microseconds=62_500)
    assert clock.start == T0


def test_a_clock_starts_at_the_wall_clock_by_default() -> None:
    before = utcnow()
    clock = Clock()
    assert before <= clock() <= utcnow()
    assert clock().tzinfo is not None


def test_a_clock_keeps_the_instant_it_is_given_in_any_zone() -> None:
    zurich = datetime(2027, 1, 15, 9, tzinfo=timezone(timedelta(hours=1)))
    assert Clock(zurich).epoch() == Clock(T0).epoch()


def test_a_clock_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        Clock(datetime(2027, 1, 15, 8))
    clock = Clock(T0)
    with pytest.raises(ValueError, match="naive"):
        clock.now = datetime(2027, 1, 15, 9)
    assert clock() == T0


# ── RecordingChannel ────────────────────────────────────────────────────────────────


def _email(message_id: int, to: str) -> Outgoing:
    return Outgoing(message_id, 1, "email", "a@acme.example", to, "Hi", b"MIME")


BATCH = [_email(1, "a@example.com"), _email(2, "b@example.com"), _email(3, "c@example.com")]


async def test_a_recording_channel_records_and_sends_by_default() -> None:
    channel: Channel = RecordingChannel()
    assert isinstance(channel, RecordingChannel)

    assert await channel.send(BATCH[:2]) == [Sent("recorded-1"), Sent("recorded-2")]
    assert await channel.send(BATCH[2:]) == [Sent("recorded-3")]
    assert await channel.send([]) == []

    assert channel.messages == BATCH
    assert channel.batches == [BATCH[:2], BATCH[2:], []]
    assert not channel.closed
    await channel.close()
    assert channel.closed


async def test_a_recording_channel_answers_per_recipient() -> None:
    bounced = PermanentSendError("550 5.1.1 no such user")
    later = TransientSendError("421 try later", retry_after=30)
    channel = RecordingChannel(answers({"b@example.com": bounced, "c@example.com": later}))

    assert await channel.send(BATCH) == [Sent("recorded-1"), bounced, later]


async def test_a_recording_channel_raises_for_one_recipient_or_every_batch() -> None:
    reset = ConnectionResetError("reset by peer")
    channel = RecordingChannel(raising(reset, recipient="c@example.com"))
    assert await channel.send(BATCH[:2]) == [Sent("recorded-1"), Sent("recorded-2")]
    with pytest.raises(ConnectionResetError):
        await channel.send(BATCH)
    assert channel.messages == BATCH[:2] + BATCH  # a failed batch was still handed over

    down = TransientSendError("connection refused")
    everything = RecordingChannel(raising(down))
    with pytest.raises(TransientSendError):
        await everything.send(BATCH[:1])
    assert everything.messages == BATCH[:1]


async def test_a_recording_channel_rule_may_be_any_function() -> None:
    channel = RecordingChannel(lambda m: Sent(f"id-{m.recipient}"))
    assert await channel.send(BATCH[:1]) == [Sent("id-a@example.com")]


def test_a_recording_channel_says_what_a_real_one_would() -> None:
    assert (RecordingChannel.parallelism, RecordingChannel.messages_per_request) == (None, 1)
    assert (RecordingChannel().parallelism, RecordingChannel().messages_per_request) == (None, 1)
    like_infobip = RecordingChannel(messages_per_request=100)
    like_smtp = RecordingChannel(parallelism=4)
    assert (like_infobip.messages_per_request, like_smtp.parallelism) == (100, 4)

"""The message transition table, every pair of statuses, and the groups derived from it."""

from __future__ import annotations

import itertools

import pytest

from tidings.errors import Conflict
from tidings.outbox.status import (
    CREATED,
    HANDED_OVER,
    RESERVED,
    UNFINISHED,
    UNSENT,
    MessageStatus,
    can_move,
    sources,
    transition,
)

S = MessageStatus
ALLOWED = {
    (S.QUEUED, S.SENDING), (S.QUEUED, S.HELD), (S.QUEUED, S.CANCELLED),
    (S.HELD, S.QUEUED), (S.HELD, S.CANCELLED),
    (S.SENDING, S.SENT), (S.SENDING, S.FAILED), (S.SENDING, S.QUEUED), (S.SENDING, S.SKIPPED),
    (S.SENT, S.DELIVERED), (S.SENT, S.BOUNCED), (S.SENT, S.COMPLAINED),
    (S.DELIVERED, S.BOUNCED), (S.DELIVERED, S.COMPLAINED),
}  # fmt: skip
PAIRS = list(itertools.product(MessageStatus, repeat=2))


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_pair(current: MessageStatus, target: MessageStatus) -> None:
    assert can_move(current, target) is ((current, target) in ALLOWED)
    if (current, target) in ALLOWED:
        assert transition(current, target) is target
    else:
        with pytest.raises(Conflict, match=f"{current}.*{target}"):
            transition(current, target)


def test_final_statuses_have_no_way_out() -> None:
    final = {s for s in MessageStatus if not any(can_move(s, t) for t in MessageStatus)}
    assert final == {S.BOUNCED, S.COMPLAINED, S.FAILED, S.SKIPPED, S.CANCELLED}


def test_groups() -> None:
    assert {S.QUEUED, S.HELD, S.SKIPPED} == CREATED
    assert {S.QUEUED, S.HELD, S.SENDING} == UNFINISHED
    assert {S.QUEUED, S.SENDING} == UNSENT
    assert {S.QUEUED, S.HELD} == RESERVED
    assert {S.SENT, S.DELIVERED, S.BOUNCED, S.COMPLAINED} == HANDED_OVER
    # Every message can reach an end from where it is created.
    ends = {s for s in MessageStatus if not any(can_move(s, t) for t in MessageStatus)}
    reachable, frontier = set(CREATED), set(CREATED)
    while frontier:
        frontier = {t for s in frontier for t in MessageStatus if can_move(s, t)} - reachable
        reachable |= frontier
    assert ends <= reachable
    assert reachable == set(MessageStatus)


def test_sources_reads_the_table_backwards() -> None:
    assert sources(S.DELIVERED) == {S.SENT}
    assert sources(S.BOUNCED) == {S.SENT, S.DELIVERED}
    assert sources(S.QUEUED) == {S.HELD, S.SENDING}

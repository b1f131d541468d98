"""The transition table, every pair of statuses."""

from __future__ import annotations

import itertools

import pytest

from tidings.broadcasts.status import FINAL, BroadcastStatus, transition
from tidings.errors import Conflict

S = BroadcastStatus
ALLOWED = {
    (S.DRAFT, S.SCHEDULED), (S.DRAFT, S.SENDING), (S.DRAFT, S.CANCELLED),
    (S.SCHEDULED, S.SENDING), (S.SCHEDULED, S.PAUSED), (S.SCHEDULED, S.CANCELLED),
    (S.SCHEDULED, S.DRAFT), (S.SCHEDULED, S.FAILED),
    (S.SENDING, S.SENT), (S.SENDING, S.PAUSED), (S.SENDING, S.CANCELLED), (S.SENDING, S.FAILED),
    (S.PAUSED, S.SCHEDULED), (S.PAUSED, S.SENDING), (S.PAUSED, S.CANCELLED),
}  # fmt: skip
PAIRS = list(itertools.product(BroadcastStatus, repeat=2))


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_pair(current: BroadcastStatus, target: BroadcastStatus) -> None:
    if (current, target) in ALLOWED:
        assert transition(current, target) is target
    else:
        with pytest.raises(Conflict, match=f"{current}.*{target}"):
            transition(current, target)


def test_final_statuses_are_exactly_the_ends() -> None:
    assert {S.SENT, S.CANCELLED, S.FAILED} == FINAL

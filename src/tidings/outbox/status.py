"""Message statuses and the one table of moves between them.

    (new) ──▶ QUEUED ──claim──▶ SENDING ──▶ SENT ──report──▶ DELIVERED ──▶ BOUNCED
      │        ▲  │               │  │  │     │                  └──────▶ COMPLAINED
      │        │  │ pause         │  │  │     └──▶ BOUNCED, COMPLAINED
      ├──▶ HELD┘  ▼               │  │  └──▶ FAILED
      │      ▲  HELD              │  └──▶ SKIPPED (suppressed since it was queued)
      │      └──resume            └──▶ QUEUED (a retry, a deferral, an expired lease)
      └──▶ SKIPPED          QUEUED, HELD ──cancel──▶ CANCELLED

A message is created QUEUED (due now or later), HELD (an explicit recipient of a
broadcast that has not started) or SKIPPED (with the reason; see `outbox.rules`).
SENDING is leased to one worker. FAILED, SKIPPED and CANCELLED are final, and so are
BOUNCED and COMPLAINED; SENT and DELIVERED move only on a report. Every status is one
of these values, in Python and in SQL: nothing outside this module spells one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from tidings.errors import Conflict


class MessageStatus(StrEnum):
    QUEUED = "queued"
    HELD = "held"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


M = MessageStatus
CREATED: Final = frozenset({M.QUEUED, M.HELD, M.SKIPPED})
"""The statuses a message row may be created in."""

TRANSITIONS: Final[dict[MessageStatus, frozenset[MessageStatus]]] = {
    M.QUEUED: frozenset({M.SENDING, M.HELD, M.CANCELLED}),
    M.HELD: frozenset({M.QUEUED, M.CANCELLED}),
    M.SENDING: frozenset({M.SENT, M.FAILED, M.QUEUED, M.SKIPPED}),
    M.SENT: frozenset({M.DELIVERED, M.BOUNCED, M.COMPLAINED}),
    M.DELIVERED: frozenset({M.BOUNCED, M.COMPLAINED}),
    M.BOUNCED: frozenset(),
    M.COMPLAINED: frozenset(),
    M.FAILED: frozenset(),
    M.SKIPPED: frozenset(),
    M.CANCELLED: frozenset(),
}

UNFINISHED: Final = frozenset({M.QUEUED, M.HELD, M.SENDING})
"""Not yet at an outcome: a broadcast with any of these is still sending."""
UNSENT: Final = frozenset({M.QUEUED, M.SENDING})
"""Not yet handed over for sure: a delivery report about one waits for its outcome."""
RESERVED: Final = frozenset({M.QUEUED, M.HELD})
"""Their cost stays reserved until they end (sent keeps it; failed, skipped or
cancelled release it)."""
HANDED_OVER: Final = frozenset({M.SENT, M.DELIVERED, M.BOUNCED, M.COMPLAINED})
"""Handed to the provider: the sent counter counts them."""


def can_move(current: MessageStatus, target: MessageStatus) -> bool:
    return target in TRANSITIONS[current]


def transition(current: MessageStatus, target: MessageStatus) -> MessageStatus:
    """`target` if the table allows the move, else Conflict (409) naming both."""
    if not can_move(current, target):
        raise Conflict(f"a {current} message cannot become {target}")
    return target


def sources(target: MessageStatus) -> frozenset[MessageStatus]:
    """Every status a message may move to `target` from (for a set-based UPDATE's WHERE)."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)

"""DKIM key statuses and the one table of moves between them.

    PENDING ──activate──▶ ACTIVE ──another key of its algorithm activated──▶ RETIRED
                            ▲                                                   │
                            └──────────────activate (roll back)─────────────────┘

A key signs while ACTIVE only; a domain has at most one ACTIVE key per algorithm, so that
it may sign with RSA and Ed25519 side by side (RFC 8463 §4 advises both). Deleting a key
is possible in any status (an ACTIVE one: that algorithm stops signing).
"""

from __future__ import annotations

from enum import StrEnum

from tidings.errors import Conflict


class KeyStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    RETIRED = "retired"


K = KeyStatus
TRANSITIONS: dict[KeyStatus, frozenset[KeyStatus]] = {
    K.PENDING: frozenset({K.ACTIVE}),
    K.ACTIVE: frozenset({K.RETIRED}),
    K.RETIRED: frozenset({K.ACTIVE}),
}


def transition(current: KeyStatus, target: KeyStatus) -> KeyStatus:
    """`target` if the table allows the move, else Conflict (409) naming both."""
    if target not in TRANSITIONS[current]:
        raise Conflict(f"a {current} key cannot become {target}")
    return target

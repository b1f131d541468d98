"""Domain names and selectors as they are stored, and the key status table."""

from __future__ import annotations

import pytest

from tidings.domains.schemas import domain_name, selector_name
from tidings.domains.status import TRANSITIONS, KeyStatus, transition
from tidings.errors import Conflict


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Mail.Example.COM.", "mail.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        (" a-b.example ", "a-b.example"),
    ],
)
def test_domain_names_are_stored_lower_case_as_a_labels(given: str, stored: str) -> None:
    assert domain_name(given) == stored


@pytest.mark.parametrize(
    "bad", ["localhost", "example..com", "-a.example", "a-.example", "10.0.0.1", "a_b.example",
            "x" * 64 + ".example", ".example"],
)  # fmt: skip
def test_what_is_not_a_domain_name_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="domain"):
        domain_name(bad)


def test_selectors() -> None:
    assert selector_name("S2026.eu") == "s2026.eu"
    for bad in ("", "a/b", "x" * 64, "-a"):
        with pytest.raises(ValueError, match="letters"):
            selector_name(bad)


@pytest.mark.parametrize("current", list(KeyStatus))
@pytest.mark.parametrize("target", list(KeyStatus))
def test_every_move_follows_the_table(current: KeyStatus, target: KeyStatus) -> None:
    if target in TRANSITIONS[current]:
        assert transition(current, target) is target
    else:
        with pytest.raises(Conflict):
            transition(current, target)


def test_a_pending_key_cannot_be_retired_without_having_signed() -> None:
    assert KeyStatus.RETIRED not in TRANSITIONS[KeyStatus.PENDING]

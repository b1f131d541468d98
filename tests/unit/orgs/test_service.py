from __future__ import annotations

import pytest

from tidings.errors import InvalidInput
from tidings.orgs.service import _LOGIN, check_region, login_from_name


@pytest.mark.parametrize(
    ("name", "login"),
    [
        ("Acme Corp.", "acme-corp"),
        ("ACME", "acme"),
        ("  Hello,  World!  ", "hello-world"),
        ("R2-D2 & C-3PO", "r2-d2-c-3po"),
        ("Café Müller", "caf-m-ller"),
        ("x" * 100, "x" * 60),
        ("2024", "org-2024"),
        ("a" * 59 + "-b", "a" * 59),
        ("!!!", "org"),
        ("", "org"),
        ("日本", "org"),
    ],
    ids=[
        "punctuation",
        "upper",
        "padded",
        "digits",
        "non-ascii-letters",
        "too-long",
        "all-digits-get-a-prefix",
        "no-trailing-hyphen-after-cut",
        "symbols-only",
        "empty",
        "no-ascii",
    ],
)
def test_login_from_name(name: str, login: str) -> None:
    assert login_from_name(name) == login


@pytest.mark.parametrize(
    "name", ["Acme Corp.", "-Leading", "a" * 63 + " b", "...", "Ünïcödé Ltd", "x" * 300]
)
def test_login_from_name_is_always_a_valid_login(name: str) -> None:
    assert _LOGIN.match(login_from_name(name))


def test_check_region_none_is_none() -> None:
    assert check_region(None) is None


@pytest.mark.parametrize(("raw", "region"), [("FR", "FR"), ("fr", "FR"), ("Gb", "GB")])
def test_check_region_upper_cases_known_regions(raw: str, region: str) -> None:
    assert check_region(raw) == region


@pytest.mark.parametrize("raw", ["XX", "FRA", "", "001", "UK"])
def test_check_region_rejects_unknown_regions(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_region(raw)
    assert [e.field for e in caught.value.errors] == ["phone_region"]


def test_check_region_names_the_given_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_region("ZZ", field="phone_region")
    assert [e.field for e in caught.value.errors] == ["phone_region"]
    assert "'ZZ'" in caught.value.errors[0].reason

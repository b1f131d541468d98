from __future__ import annotations

import base64

import pytest
from starlette.datastructures import Headers

from tidings.api.deps import credentials_from
from tidings.errors import Unauthorized

KEY = "tdg_live_" + "k" * 43


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {KEY}", f"bearer {KEY}", f"BEARER   {KEY}  "],
    ids=["canonical", "lower-case-scheme", "padded"],
)
def test_bearer(authorization: str) -> None:
    assert credentials_from({"authorization": authorization}) == (KEY, None)


def test_headers_are_read_case_insensitively() -> None:
    headers = Headers({"Authorization": f"Bearer {KEY}"})
    assert credentials_from(headers) == (KEY, None)


def test_basic_is_login_and_key() -> None:
    assert credentials_from({"authorization": basic(f"acme:{KEY}".encode())}) == (KEY, "acme")


def test_basic_password_may_hold_a_colon() -> None:
    assert credentials_from({"authorization": basic(b"acme:a:b")}) == ("a:b", "acme")


def test_api_login_and_api_key_pair() -> None:
    headers = Headers({"api-login": " acme ", "API-Key": f" {KEY} "})
    assert credentials_from(headers) == (KEY, "acme")


def test_api_key_without_api_login_is_unauthorized() -> None:
    with pytest.raises(Unauthorized, match="api-login"):
        credentials_from({"api-key": KEY})


def test_bearer_wins_over_the_header_pair() -> None:
    headers = {"authorization": f"Bearer {KEY}", "api-key": "other", "api-login": "acme"}
    assert credentials_from(headers) == (KEY, None)


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic !!!not-base64!!!",
        "Basic YWNtZQ",  # "acme" without its padding
        basic(b"acme-and-no-colon"),
        basic(b"\xff\xfe:key"),
    ],
    ids=["not-base64", "bad-padding", "no-colon", "not-utf8"],
)
def test_malformed_basic_is_unauthorized(authorization: str) -> None:
    with pytest.raises(Unauthorized, match="malformed Basic"):
        credentials_from({"authorization": authorization})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": ""},
        {"authorization": "Bearer "},
        {"authorization": "Basic   "},
        {"authorization": f"Token {KEY}"},
        {"api-login": "acme"},
    ],
    ids=["none", "empty", "bearer-without-key", "basic-without-value", "unknown-scheme", "login"],
)
def test_no_credentials(headers: dict[str, str]) -> None:
    assert credentials_from(headers) is None

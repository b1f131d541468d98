from __future__ import annotations

import re

import pytest

from tidings.keys.secrets import DISPLAY_LENGTH, PREFIX, digest, display_prefix, generate
from tidings.keys.secrets import looks_like_key as looks_like

BODY = re.compile(r"^[0-9A-Za-z]{43}$")


@pytest.mark.parametrize("kind", ["live", "test"])
def test_generate_has_prefix_kind_and_a_base62_body(kind: str) -> None:
    secret = generate(kind)
    assert secret.startswith(f"tdg_{kind}_")
    assert BODY.match(secret.removeprefix(f"tdg_{kind}_"))


def test_generate_is_unique() -> None:
    secrets = {generate("live") for _ in range(2_000)}
    assert len(secrets) == 2_000


def test_generate_uses_the_whole_alphabet() -> None:
    # 200 keys hold 8,600 random characters: every one of the 62 should turn up.
    seen = set("".join(generate("test").removeprefix("tdg_test_") for _ in range(200)))
    assert len(seen) == 62


@pytest.mark.parametrize("kind", ["live", "test"])
def test_looks_like_key_accepts_generated_keys(kind: str) -> None:
    assert looks_like(generate(kind))


VALID_BODY = "A" * 43


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "tdg_",
        "tdg_live",
        "tdg_live_",
        f"tdx_live_{VALID_BODY}",
        f"TDG_live_{VALID_BODY}",
        f"live_{VALID_BODY}",
        f"tdg_prod_{VALID_BODY}",
        f"tdg_LIVE_{VALID_BODY}",
        f"tdg_live{VALID_BODY}",
        f"tdg_live_{VALID_BODY[:-1]}",
        f"tdg_live_{VALID_BODY}A",
        f"tdg_live_{VALID_BODY * 2}",
        f"Bearer tdg_live_{VALID_BODY}",
    ],
    ids=[
        "empty",
        "prefix-only",
        "no-body",
        "empty-body",
        "wrong-prefix",
        "upper-prefix",
        "no-prefix",
        "unknown-kind",
        "upper-kind",
        "no-separator",
        "body-too-short",
        "body-too-long",
        "far-too-long",
        "with-scheme",
    ],
)
def test_looks_like_key_rejects(secret: str) -> None:
    assert not looks_like(secret)


def test_looks_like_key_accepts_the_exact_shape() -> None:
    assert looks_like(f"tdg_live_{VALID_BODY}")


def test_digest_is_sha256_hex() -> None:
    assert digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_digest_differs_per_secret_and_hides_it() -> None:
    a, b = generate("live"), generate("live")
    assert re.fullmatch(r"[0-9a-f]{64}", digest(a))
    assert digest(a) != digest(b)
    assert a.removeprefix(PREFIX) not in digest(a)


def test_display_prefix_keeps_kind_and_the_first_characters() -> None:
    secret = generate("live")
    shown = display_prefix(secret)
    assert shown == secret[: len("tdg_live_") + DISPLAY_LENGTH]
    assert shown.startswith("tdg_live_")


def test_display_prefix_does_not_reveal_the_secret() -> None:
    secret = generate("test")
    shown = display_prefix(secret)
    hidden = len(secret) - len(shown)
    assert hidden >= 31  # characters of the random part never shown: still > 180 bits
    assert not looks_like(shown)

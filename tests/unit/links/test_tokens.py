from __future__ import annotations

import base64
import hashlib
import hmac
import random
import string

import pytest

from tidings.links.tokens import MAX_TOKEN_LENGTH, TokenSigner

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))
URLSAFE = string.ascii_letters + string.digits + "-_"
NOT_URLSAFE = "+/=.~ !$%\n\x00Ж"
U64_MAX = 2**64 - 1


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(SECRET)


def forge(purpose: str, payload: bytes, secret: bytes = SECRET) -> str:
    """A token built by hand from the documented layout, whatever its payload."""
    key = hmac.new(secret, b"tidings:" + purpose.encode(), hashlib.sha256).digest()
    tag = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(payload + tag).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "values",
    [
        (),
        (0,),
        (1,),
        (127,),
        (128,),
        (16_383, 16_384),
        (10**9, 99),
        (2**63 - 1,),
        (2**63 - 1, 0, 2**63 - 1),
        (U64_MAX,),
        (5, 4, 3, 2, 1),
    ],
    ids=lambda values: f"arity-{len(values)}-{'-'.join(map(str, values)) or 'none'}",
)
def test_round_trip(signer: TokenSigner, values: tuple[int, ...]) -> None:
    token = signer.sign("click", *values)
    assert signer.verify("click", token, arity=len(values)) == values


def test_token_follows_the_documented_layout(signer: TokenSigner) -> None:
    # 300 = 0b10_0101100: low seven bits first, with the continuation bit set.
    assert signer.sign("click", 300, 1) == forge("click", bytes([0b1010_1100, 0b10, 1]))


def test_signing_is_deterministic(signer: TokenSigner) -> None:
    assert signer.sign("open", 7) == signer.sign("open", 7) == TokenSigner(SECRET).sign("open", 7)


def test_a_token_verifies_only_for_its_purpose(signer: TokenSigner) -> None:
    click = signer.sign("click", 42, 3)
    unsubscribe = signer.sign("unsubscribe", 42, 3)
    assert click != unsubscribe
    assert signer.verify("click", click, arity=2) == (42, 3)
    assert signer.verify("unsubscribe", click, arity=2) is None
    assert signer.verify("unsubscribe", unsubscribe, arity=2) == (42, 3)
    assert signer.verify("click", unsubscribe, arity=2) is None


def test_purposes_that_share_a_prefix_are_separate(signer: TokenSigner) -> None:
    assert signer.verify("click2", signer.sign("click", 1), arity=1) is None
    assert signer.verify("", signer.sign("click", 1), arity=1) is None


def test_every_single_character_change_fails(signer: TokenSigner) -> None:
    token = signer.sign("click", 10**9, 99)
    for position, original in enumerate(token):
        for replacement in URLSAFE + NOT_URLSAFE:
            if replacement == original:
                continue
            changed = token[:position] + replacement + token[position + 1 :]
            assert signer.verify("click", changed, arity=2) is None, (position, replacement)


def test_every_truncation_fails(signer: TokenSigner) -> None:
    token = signer.sign("click", 10**9, 99)
    for length in range(len(token)):
        assert signer.verify("click", token[:length], arity=2) is None, length


@pytest.mark.parametrize(
    "suffix", ["A", "AA", "AAA", "AAAA", "=", "==", "\n", " "], ids=lambda s: repr(s)
)
def test_extended_token_fails(signer: TokenSigner, suffix: str) -> None:
    token = signer.sign("click", 10**9, 99)
    assert signer.verify("click", token + suffix, arity=2) is None


@pytest.mark.parametrize(
    "token",
    ["", "!", "====", "abc$def", "Ж" * 30, "A", "AAAAA", "A" * 22],
    ids=["empty", "bang", "padding-only", "dollar", "cyrillic", "one-char", "five-chars", "zeros"],
)
def test_malformed_token_fails(signer: TokenSigner, token: str) -> None:
    assert signer.verify("click", token, arity=1) is None


def test_standard_base64_alphabet_is_refused(signer: TokenSigner) -> None:
    # Find a token using "-" or "_", and spell it with "+" and "/" as standard base64 does.
    token = next(t for t in (signer.sign("click", n) for n in range(1_000)) if "-" in t or "_" in t)
    standard = token.replace("-", "+").replace("_", "/")
    assert signer.verify("click", standard, arity=1) is None


@pytest.mark.parametrize("arity", [0, 1, 3, -1], ids=lambda a: f"arity-{a}")
def test_wrong_arity_fails(signer: TokenSigner, arity: int) -> None:
    assert signer.verify("click", signer.sign("click", 10, 2), arity=arity) is None


def test_tokens_of_another_secret_fail(signer: TokenSigner) -> None:
    other = TokenSigner(OTHER_SECRET)
    assert other.verify("click", signer.sign("click", 1, 2), arity=2) is None
    assert signer.verify("click", other.sign("click", 1, 2), arity=2) is None


@pytest.mark.parametrize("length", [0, 16, 31], ids=lambda n: f"{n}-bytes")
def test_short_secret_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TokenSigner(b"k" * length)


def test_32_byte_secret_is_enough() -> None:
    signer = TokenSigner(b"k" * 32)
    assert signer.verify("click", signer.sign("click", 1), arity=1) == (1,)


@pytest.mark.parametrize("value", [-1, U64_MAX + 1], ids=["negative", "over-64-bits"])
def test_sign_refuses_values_out_of_range(signer: TokenSigner, value: int) -> None:
    with pytest.raises(ValueError, match="0 to 2\\*\\*64 - 1"):
        signer.sign("click", value)


def test_sign_refuses_a_token_verify_would_refuse(signer: TokenSigner) -> None:
    longest = signer.sign("click", *[U64_MAX] * 13)  # 13 * 10 + 16 bytes: 195 chars
    assert len(longest) <= MAX_TOKEN_LENGTH
    assert signer.verify("click", longest, arity=13) == (U64_MAX,) * 13
    with pytest.raises(ValueError, match="over 200"):
        signer.sign("click", *[U64_MAX] * 14)


def test_over_long_token_fails_even_with_a_valid_tag(signer: TokenSigner) -> None:
    token = forge("click", bytes(140))  # 140 one-byte zeros: a 208-char token
    assert len(token) > MAX_TOKEN_LENGTH
    assert signer.verify("click", token, arity=140) is None
    assert signer.verify("click", "A" * (MAX_TOKEN_LENGTH + 1), arity=1) is None


@pytest.mark.parametrize(
    "payload",
    [
        b"\x80\x00",  # zero, padded to two bytes
        b"\x81\x80\x00",  # one, padded to three bytes
        b"\x80",  # continuation bit on the last byte
        b"\xff" * 10 + b"\x01",  # eleven bytes
        b"\x80" * 9 + b"\x02",  # 2**64, one past the largest value
    ],
    ids=["padded-zero", "padded-one", "unterminated", "eleven-bytes", "2**64"],
)
def test_payload_sign_never_makes_fails_even_with_a_valid_tag(
    signer: TokenSigner, payload: bytes
) -> None:
    assert signer.verify("click", forge("click", payload), arity=1) is None


@pytest.mark.parametrize(
    ("message_id", "link_index"),
    [(0, 0), (10**9, 99), (10**9 - 1, 99)],
    ids=["smallest", "billion", "just-under-billion"],
)
def test_link_tokens_stay_short(signer: TokenSigner, message_id: int, link_index: int) -> None:
    assert len(signer.sign("click", message_id, link_index)) < 40


def test_verify_never_raises_on_garbage(signer: TokenSigner) -> None:
    rng = random.Random(2024)
    alphabet = URLSAFE + NOT_URLSAFE
    for _ in range(5_000):
        token = "".join(rng.choices(alphabet, k=rng.randrange(MAX_TOKEN_LENGTH + 10)))
        assert signer.verify("click", token, arity=rng.randrange(-1, 4)) is None

"""DKIM signing: relaxed canonicalisation (RFC 6376 §3.4), which headers are signed, and
signatures an independent verifier (dkimpy) accepts, for RSA and Ed25519 keys."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import dkim as dkimpy
import pytest

from tidings.content.mime import Address, Email, build
from tidings.domains.dkim import (
    SIGNED,
    Algorithm,
    KeyPair,
    SigningKey,
    dkim_record,
    generate,
    relaxed_body,
    relaxed_header,
    selected,
    sign,
    split,
    txt_strings,
)
from tidings.domains.signing import ActiveKey, KeyCache

NOW = 1_796_680_000


@cache
def pair(algorithm: Algorithm) -> KeyPair:
    return generate(algorithm)


def key(algorithm: Algorithm, domain: str = "example.com", selector: str = "s1") -> SigningKey:
    return SigningKey.load(
        domain=domain,
        selector=selector,
        algorithm=algorithm,
        private_pem=pair(algorithm).private_pem,
    )


def dns_of(records: dict[str, str]):  # type: ignore[no-untyped-def]
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        found = records.get(name.decode().rstrip("."))
        return found.encode() if found is not None else None

    return lookup


def published(*keys: SigningKey) -> dict[str, str]:
    return {
        f"{k.selector}._domainkey.{k.domain}": dkim_record(k.algorithm, pair(k.algorithm).public)
        for k in keys
    }


def message(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "sender": Address("news@example.com", "Éditions Tidings"),
        "to": Address("ann@example.org", "Ann  Lee"),
        "subject": "Hello   there,  a subject long enough to be folded over two lines of text",
        "text": "Hi Ann,  \n\nsee you  soon.\t\n\n\n",
        "html": "<p>Hi Ann</p>   \n",
        "message_id": "abc.1@example.com",
        "date": datetime(2026, 12, 7, 21, 0, tzinfo=UTC),
        "headers": (
            ("List-Unsubscribe", "<https://tidings.example/u/abc>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
    }
    fields.update(overrides)
    return build(Email(**fields))  # type: ignore[arg-type]


# --- canonicalisation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "canonical"),
    [
        (b"", b""),
        (b"\r\n\r\n", b""),
        (b"a  b\t c \r\n", b"a b c\r\n"),
        (b"a\r\n\r\n\r\n", b"a\r\n"),
        (b"a\r\n \r\nb", b"a\r\n\r\nb\r\n"),  # an inner empty line stays; a CRLF ends it
        (b" lead\r\n", b" lead\r\n"),  # leading whitespace is one space, not none
    ],
)
def test_relaxed_body(body: bytes, canonical: bytes) -> None:
    assert relaxed_body(body) == canonical


def test_relaxed_header_unfolds_lowercases_and_squeezes() -> None:
    assert relaxed_header(b"SubJect ", b"  Hello \r\n\t world  ") == b"subject:Hello world"


def test_split_keeps_folded_values_whole() -> None:
    fields, body = split(b"A: 1\r\nB: x\r\n y\r\n\r\nbody\r\n")
    assert fields == [(b"A", b" 1"), (b"B", b" x\r\n y")]
    assert body == b"body\r\n"


def test_only_the_headers_that_matter_are_signed_in_their_order() -> None:
    fields, _ = split(message(reply_to=Address("help@example.com")))
    names = [name for name, _ in selected(fields)]
    assert names == [
        "from", "to", "subject", "date", "message-id", "mime-version", "content-type",
        "list-unsubscribe", "list-unsubscribe-post",
    ]  # fmt: skip
    assert "reply-to" not in names  # present, but not one of SIGNED
    assert "list-id" in SIGNED  # signed when present


def test_a_repeated_header_is_signed_from_the_bottom_up() -> None:
    fields = [(b"To", b" first"), (b"Subject", b" s"), (b"To", b" second")]
    assert selected(fields) == [
        ("to", b"to:second"),
        ("to", b"to:first"),
        ("subject", b"subject:s"),
    ]


def test_txt_strings_are_at_most_255_octets() -> None:
    value = dkim_record(Algorithm.RSA, pair(Algorithm.RSA).public)
    strings = txt_strings(value)
    assert len(strings) == 2
    assert all(len(s) <= 255 for s in strings)
    assert "".join(strings) == value


# --- signatures, verified by dkimpy ----------------------------------------------------------


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_an_independent_verifier_accepts_the_signature(algorithm: Algorithm) -> None:
    signer = key(algorithm)
    signed = sign(message(), [signer], timestamp=NOW)
    assert signed.startswith(b"DKIM-Signature: v=1; a=" + algorithm.tag.encode())
    assert dkimpy.verify(signed, dnsfunc=dns_of(published(signer)))


def test_rsa_and_ed25519_side_by_side_both_verify() -> None:
    keys = [key(Algorithm.RSA, selector="r1"), key(Algorithm.ED25519, selector="e1")]
    signed = sign(message(), keys, timestamp=NOW)
    verifier = dkimpy.DKIM(signed)
    records = dns_of(published(*keys))
    assert signed.count(b"DKIM-Signature:") == 2
    assert all(verifier.verify(idx=i, dnsfunc=records) for i in range(2))


def test_a_changed_body_or_subject_fails_verification() -> None:
    signer = key(Algorithm.RSA)
    signed = sign(message(), [signer], timestamp=NOW)
    records = dns_of(published(signer))
    assert not dkimpy.verify(signed.replace(b"soon", b"late"), dnsfunc=records)
    assert not dkimpy.verify(signed.replace(b"Hello", b"Howdy", 1), dnsfunc=records)
    # Relaxed canonicalisation tolerates what relays do to whitespace.
    assert dkimpy.verify(signed.replace(b"Subject: Hello", b"Subject:  Hello"), dnsfunc=records)


def test_a_wrong_published_key_fails_verification() -> None:
    signer = key(Algorithm.ED25519)
    other = generate(Algorithm.ED25519)
    signed = sign(message(), [signer], timestamp=NOW)
    wrong = {"s1._domainkey.example.com": dkim_record(Algorithm.ED25519, other.public)}
    assert not dkimpy.verify(signed, dnsfunc=dns_of(wrong))


def test_no_keys_leaves_the_message_as_it_was() -> None:
    built = message()
    assert sign(built, [], timestamp=NOW) == built


def test_a_text_only_message_verifies() -> None:
    signer = key(Algorithm.RSA)
    signed = sign(message(html=None), [signer], timestamp=NOW)
    assert dkimpy.verify(signed, dnsfunc=dns_of(published(signer)))


# --- which keys sign which From domain -------------------------------------------------------


def _cache_with(*active: ActiveKey) -> KeyCache:
    cache = KeyCache()
    cache.load(active, {a.id: pair(Algorithm(a.algorithm)).private_pem for a in active})
    return cache


def test_the_from_domain_or_a_parent_covering_subdomains_chooses_the_keys() -> None:
    exact = ActiveKey(1, 7, "example.com", False, "s1", "rsa")
    parent = ActiveKey(2, 7, "corp.example", True, "s2", "ed25519")
    signer = _cache_with(exact, parent).signer([exact, parent], orgs={7}, timestamp=NOW)
    assert [k.selector for k in signer.keys_for(7, "news@Example.COM")] == ["s1"]
    assert signer.keys_for(7, "news@mail.example.com") == ()  # example.com covers no subdomain
    assert [k.domain for k in signer.keys_for(7, "a@eu.mail.corp.example")] == ["corp.example"]
    assert signer.keys_for(8, "news@example.com") == ()  # another org's domain
    assert signer.keys_for(7, "a@other.example") == ()


def test_a_key_no_longer_active_stops_signing_and_leaves_the_cache() -> None:
    old = ActiveKey(1, 7, "example.com", False, "old", "rsa")
    cache = _cache_with(old)
    assert cache.signer([old], orgs={7}, timestamp=NOW).keys_for(7, "a@example.com")
    cache.signer([], orgs={8}, timestamp=NOW)  # a batch of another org: kept
    assert cache.missing([old]) == set()
    assert cache.signer([], orgs={7}, timestamp=NOW).keys_for(7, "a@example.com") == ()
    assert cache.missing([old]) == {1}  # dropped: loaded again if it comes back


def test_a_broken_key_is_left_out_not_fatal() -> None:
    broken = ActiveKey(1, 7, "example.com", False, "s1", "rsa")
    cache = KeyCache()
    cache.load([broken], {1: pair(Algorithm.ED25519).private_pem})  # not an RSA key
    assert cache.signer([broken], orgs={7}, timestamp=NOW).keys_for(7, "a@example.com") == ()
    assert cache.missing([broken]) == set()  # not read again each batch


def test_the_signature_header_folds_within_78_columns_and_covers_list_id() -> None:
    signer = key(Algorithm.RSA)
    headers = (
        ("List-Unsubscribe", "<https://tidings.example/u/abc>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("List-Id", "News <news.example.com>"),
    )
    signed = sign(message(headers=headers), [signer], timestamp=NOW)
    header = signed.split(b"\r\nFrom:")[0]
    assert max(len(line) for line in header.split(b"\r\n")) <= 78
    assert b"list-id;" in header
    assert dkimpy.verify(signed, dnsfunc=dns_of(published(signer)))
    assert not dkimpy.verify(
        signed.replace(b"List-Id: News", b"List-Id: Spam"), dnsfunc=dns_of(published(signer))
    )

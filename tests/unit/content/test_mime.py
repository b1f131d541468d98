from __future__ import annotations

import base64
import binascii
import dataclasses
import email
import email.policy
import os
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import pytest

from tidings.content import mime
from tidings.content.mime import Address, Email, HeaderInjection, build

DATE = datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
ENCODED_WORD = re.compile(rb"=\?([^?]+)\?([bqBQ])\?([^?]*)\?=")


def make_email(**overrides: Any) -> Email:
    fields: dict[str, Any] = {
        "sender": Address("news@mail.example.com", "Tidings News"),
        "to": Address("ada@example.com", "Ada Lovelace"),
        "subject": "Your invitation",
        "text": "Hello Ada\n",
        "html": "<p>Hello Ada</p>\n",
        "message_id": "123.abc@mail.example.com",
        "date": DATE,
    }
    fields.update(overrides)
    return Email(**fields)


def parse(data: bytes) -> EmailMessage:
    """The message as the standard library reads it, failing on any defect it reports."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    for part in msg.walk():
        assert part.defects == [], part.defects
        for name, value in part.items():
            assert not getattr(value, "defects", ()), (name, value.defects)
    return msg


def header_block(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0] + b"\r\n"


def lines(data: bytes) -> list[bytes]:
    assert data.endswith(b"\r\n")
    return data[:-2].split(b"\r\n")


def decoded_words(data: bytes) -> list[str]:
    """Every encoded-word in `data`, each decoded on its own: strict UTF-8 fails when a
    word ends inside a multibyte character."""
    out = []
    for match in ENCODED_WORD.finditer(header_block(data)):
        assert len(match[0]) <= 75, match[0]
        charset, kind, payload = match.groups()
        assert charset.lower() == b"utf-8"
        if kind.lower() == b"b":
            raw = base64.b64decode(payload, validate=True)
        else:
            raw = binascii.a2b_qp(payload, header=True)
        out.append(raw.decode("utf-8"))
    return out


def rfc2047_decoded(data: bytes, name: str) -> str:
    """Header `name` decoded by the standard library's older RFC 2047 decoder.

    The newer parser behind `policy.default` wrongly keeps the space between adjacent
    encoded-words inside a display name (CPython gh-128110, fixed after 3.11), although
    RFC 2047 §6.2 says to drop it; this decoder drops it, as mail clients do.
    """
    raw = email.message_from_bytes(data, policy=email.policy.compat32)[name]
    assert isinstance(raw, str)
    return str(make_header(decode_header(raw)))


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


# --- headers round-trip ------------------------------------------------------------------


SUBJECTS = {
    "ascii": "Your invitation to the launch",
    "latin": "Café — 🎉 votre invitation",
    "cjk": "ご招待：新製品発表会のお知らせ 🎉",
    "long-ascii": " ".join(f"word{i}" for i in range(40)),
    "long-unicode": ("Café — 🎉 votre invitation à la soirée, " * 6)[:200],
    "long-word": "See https://example.com/" + "a" * 150,
    "double-spaces": "Spaced  out   subject " * 5,
    "looks-encoded": "=?utf-8?q?not_an_encoded_word?=",
    "control-char": "Bell\x07 and tab\there",
    "empty": "",
}


@pytest.mark.parametrize("subject", SUBJECTS.values(), ids=SUBJECTS.keys())
def test_subject_round_trips(subject: str) -> None:
    msg = parse(build(make_email(subject=subject)))
    assert msg["Subject"] == subject


def test_a_200_character_subject_has_200_characters() -> None:
    subject = SUBJECTS["long-unicode"]
    assert len(subject) == 200
    data = build(make_email(subject=subject))
    assert parse(data)["Subject"] == subject
    assert "".join(decoded_words(data)) == subject


@pytest.mark.parametrize("lead", range(12))
@pytest.mark.parametrize(
    "chars", ["abcdefghijklmé", "abcdefghijklmnopqrstuvwxyz中", "abcdefghijklmnopqrstuvwxyzABCD🎉"]
)
def test_q_encoded_words_never_split_a_character_or_an_escape(lead: int, chars: str) -> None:
    text = "x" * lead + chars * 12
    data = build(make_email(subject=text, sender=Address("a@example.com", text)))
    assert b"=?utf-8?q?" in data
    assert len(decoded_words(data)) > 4
    assert parse(data)["Subject"] == text
    assert rfc2047_decoded(data, "From") == f"{text} <a@example.com>"


def test_mostly_latin_text_stays_legible_in_q_encoding() -> None:
    data = build(make_email(subject="Café — votre invitation"))
    assert b"=?utf-8?q?Caf=C3=A9_" in data


@pytest.mark.parametrize("lead", range(6))
@pytest.mark.parametrize("chars", ["é", "中", "🎉", "aé中🎉", "é " * 3])
def test_encoded_words_never_split_a_character(lead: int, chars: str) -> None:
    # Every lead length shifts the cut points across the 1- to 4-byte sequences.
    text = "x" * lead + chars * 40
    data = build(make_email(subject=text, sender=Address("a@example.com", text)))
    words = decoded_words(data)
    assert len(words) > 2
    assert parse(data)["Subject"] == text
    assert rfc2047_decoded(data, "From") == f"{text} <a@example.com>"


NAMES = {
    "atoms": "Ada Lovelace",
    "latin": "Zoë Ñúñez-Éluard",
    "cjk": "山田 太郎",
    "emoji": "Ada 🎉",
    "quotes": 'Ada "the Countess" Lovelace',
    "comma": "Lovelace, Ada",
    "backslash": "Ada \\ Lovelace",
    "dot": "Dr. A. Lovelace",
    "specials": "Ada (x) <y> @ ; : [z]",
    "non-ascii-specials": 'Zoë, "la comtesse"',
    "long-ascii": "Lovelace, Augusta Ada, Countess of Lovelace; nee Byron " * 3,
    "looks-encoded": "=?utf-8?q?Eve?=",
}
LONG_NAMES = {
    "latin": "Zoë Ñúñez " * 12,
    "cjk": "山田太郎" * 10,
    "emoji": "🎉" * 30,
    "one-long-word": "A" * 120,
}


@pytest.mark.parametrize("name", NAMES.values(), ids=NAMES.keys())
@pytest.mark.parametrize("field", ["sender", "to", "reply_to"])
def test_display_names_round_trip(field: str, name: str) -> None:
    address = Address("someone@example.com", name)
    msg = parse(build(make_email(**{field: address})))
    header = {"sender": "From", "to": "To", "reply_to": "Reply-To"}[field]
    [parsed] = msg[header].addresses
    assert parsed.display_name == name
    assert parsed.addr_spec == "someone@example.com"


@pytest.mark.parametrize("name", LONG_NAMES.values(), ids=LONG_NAMES.keys())
def test_names_longer_than_one_encoded_word_round_trip(name: str) -> None:
    data = build(make_email(to=Address("someone@example.com", name)))
    assert len(decoded_words(data)) > 1
    assert rfc2047_decoded(data, "To") == f"{name} <someone@example.com>"
    assert parse(data)["To"].addresses[0].addr_spec == "someone@example.com"


def test_plain_names_are_written_as_is_and_specials_quoted() -> None:
    data = build(
        make_email(
            to=Address("ada@example.com", "Ada Lovelace"),
            sender=Address("news@example.com", 'Lovelace, "Ada"'),
        )
    )
    assert b"\r\nTo: Ada Lovelace <ada@example.com>\r\n" in data
    assert data.startswith(b'From: "Lovelace, \\"Ada\\"" <news@example.com>\r\n')


@pytest.mark.parametrize("name", [None, ""])
def test_address_without_a_name_is_the_bare_address(name: str | None) -> None:
    data = build(make_email(to=Address("ada@example.com", name)))
    assert b"\r\nTo: ada@example.com\r\n" in data
    assert parse(data)["To"].addresses[0].addr_spec == "ada@example.com"


def test_idn_domains_are_written_as_punycode() -> None:
    data = build(
        make_email(
            sender=Address("news@bücher.example", "Bücher"),
            to=Address("ada@münchen.example", "Ada"),
        )
    )
    assert b"<news@xn--bcher-kva.example>" in data
    assert b"<ada@xn--mnchen-3ya.example>" in data
    assert data.isascii()
    assert parse(data)["To"].addresses[0].addr_spec == "ada@xn--mnchen-3ya.example"


def test_a_non_ascii_local_part_is_written_in_utf8_for_smtputf8() -> None:
    data = build(make_email(to=Address("jösé@bücher.example", "José")))

    assert "<jösé@xn--bcher-kva.example>\r\n".encode() in data
    # Python's parser reads bytes as ASCII; a UTF-8 header is read from text.
    message = email.message_from_string(data.decode(), policy=email.policy.SMTPUTF8)
    assert message["To"].addresses[0].addr_spec == "jösé@xn--bcher-kva.example"
    assert message["To"].addresses[0].display_name == "José"
    head, _, body = data.partition(b"\r\n\r\n")
    assert body.isascii()  # only the address is 8-bit
    assert head.replace("jösé".encode(), b"").isascii()


def test_invalid_idn_domain_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^To: domain is not a valid IDN"):
        build(make_email(to=Address("ada@xn--é.example")))


def test_reply_to_is_written_only_when_set() -> None:
    assert "Reply-To" not in parse(build(make_email()))
    msg = parse(build(make_email(reply_to=Address("help@example.com", "Help Desk"))))
    assert msg["Reply-To"] == "Help Desk <help@example.com>"


@pytest.mark.parametrize(
    "date",
    [
        DATE,
        datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2026, 1, 1, 0, 0, 0, tzinfo=timezone(timedelta(hours=14))),
        datetime(2026, 6, 7, 8, 9, 1, tzinfo=timezone(timedelta(minutes=-45))),
    ],
    ids=["utc", "minus-0530", "plus-1400", "minus-0045"],
)
def test_date_is_written_as_the_standard_library_would(date: datetime) -> None:
    msg = parse(build(make_email(date=date)))
    assert msg["Date"] == format_datetime(date)
    assert msg["Date"].datetime == date.replace(microsecond=0)


def test_identity_headers_round_trip_in_order() -> None:
    msg = parse(
        build(
            make_email(
                reply_to=Address("help@example.com"),
                headers=(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),),
            )
        )
    )
    assert msg["Message-ID"] == "<123.abc@mail.example.com>"
    assert msg["MIME-Version"] == "1.0"
    assert msg.keys() == [
        "From",
        "To",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "List-Unsubscribe-Post",
        "Content-Type",
    ]


def test_extra_headers_appear_verbatim() -> None:
    unsubscribe = (
        "<https://example.com/unsubscribe/" + "k" * 24 + ">, <mailto:unsubscribe@example.com>"
    )
    data = build(
        make_email(
            headers=(
                ("List-Unsubscribe", unsubscribe),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                ("Feedback-ID", "c42:org7:tidings"),
            )
        )
    )
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in data
    assert b"\r\nFeedback-ID: c42:org7:tidings\r\n" in data
    assert b">,\r\n <mailto:unsubscribe@example.com>\r\n" in data  # folded at its space
    assert parse(data)["List-Unsubscribe"] == unsubscribe
    assert all(len(line) <= 78 for line in lines(header_block(data)))


# --- bodies ------------------------------------------------------------------------------


BODIES = {
    "ascii": "Hello Ada,\nSee you soon.\n",
    "non-ascii": "Bonjour Zoë — 🎉 ご招待\nÀ bientôt\n",
    "long-line": "x" * 2000 + "\n" + "é" * 1500,
    "long-line-with-spaces": "word " * 600,
    "dot-lines": ".\n.leading dot\n..\nend",
    "from-lines": "From the team\nhello\nFrom here on\n>From quoted\n",
    "from-after-soft-break": "x" * 75 + "From me\n" + "y" * 74 + "é" + "From you",
    "trailing-whitespace": "spaces   \ntab\t\nend ",
    "equals-and-underscores": "a=b =?utf-8?q?x?= _ --=_ boundary-like\n",
    "no-final-newline": "last line",
    "blank-lines": "\n\n\nmiddle\n\n",
    "empty": "",
    "nul-and-controls": "a\x00b\x1bc\x7f",
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_text_only_body_decodes_exactly(body: str) -> None:
    data = build(make_email(text=body, html=None))
    assert data.endswith(b"\r\n")
    msg = parse(data)
    assert not msg.is_multipart()
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content() == crlf(body)


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_html_only_body_decodes_exactly(body: str) -> None:
    msg = parse(build(make_email(text=None, html=body)))
    assert not msg.is_multipart()
    assert msg.get_content_type() == "text/html"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content() == crlf(body)


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_alternative_parts_are_text_then_html_and_decode_exactly(body: str) -> None:
    html = f"<p>{body}</p>"
    msg = parse(build(make_email(text=body, html=html)))
    assert msg.get_content_type() == "multipart/alternative"
    text_part, html_part = msg.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    assert text_part.get_content_charset() == html_part.get_content_charset() == "utf-8"
    assert text_part.get_content() == crlf(body)
    assert html_part.get_content() == crlf(html)


@pytest.mark.parametrize("body", ["a\nb\n", "a\r\nb\r\n", "a\rb\r"], ids=["lf", "crlf", "cr"])
def test_line_endings_of_the_input_do_not_change_the_output(body: str) -> None:
    assert build(make_email(text=body, html=None)) == build(make_email(text="a\nb\n", html=None))


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_no_body_line_starts_with_from(body: str) -> None:
    data = build(make_email(text=body, html=body))
    assert not any(line.startswith(b"From ") for line in lines(data))


def test_boundary_cannot_occur_in_a_quoted_printable_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With the randomness pinned, the boundary is known before building, so the bodies
    # can hold it as delimiter lines: the encoding alone has to keep them apart.
    monkeypatch.setattr(mime, "_new_boundary", lambda: "=_" + "0" * 16 + ".0")
    boundary = parse(build(make_email())).get_boundary()
    body = f"--{boundary}\n--{boundary}--\nafter\n"
    data = build(make_email(text=body, html=body))
    assert parse(data).get_boundary() == boundary
    text_part, html_part = parse(data).iter_parts()
    assert text_part.get_content() == html_part.get_content() == crlf(body)


def test_each_message_gets_its_own_boundary() -> None:
    first, second = (parse(build(make_email())) for _ in range(2))
    assert first.get_boundary() != second.get_boundary()


# --- line discipline ---------------------------------------------------------------------


def stress_email() -> Email:
    return make_email(
        sender=Address("news@bücher.example", "Éditions " + "Zoë " * 30),
        to=Address("ada@example.com", 'Lovelace, "Ada" ' * 8),
        reply_to=Address("help@example.com", "山田 " * 25),
        subject=SUBJECTS["long-unicode"],
        text=BODIES["long-line"] + BODIES["from-lines"],
        html="<p>" + "é" * 3000 + "</p>\r\n" + "<br>" * 400,
        headers=(("List-Unsubscribe", "<https://example.com/u/x>, " * 8 + "<mailto:u@x.io>"),),
    )


def test_every_line_ends_with_crlf_and_fits_998_octets() -> None:
    data = build(stress_email())
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in lines(data))
    assert data.isascii()


def test_header_lines_fold_at_78_and_encoded_word_lines_at_76() -> None:
    data = build(stress_email())
    head = lines(header_block(data))
    assert len(head) > 15  # it did fold
    for line in head:
        assert len(line) <= (76 if b"=?" in line else 78), line


def test_body_lines_fit_quoted_printable_limit() -> None:
    data = build(stress_email())
    body = data.split(b"\r\n\r\n", 1)[1]
    assert all(len(line) <= 76 for line in lines(body))


def test_folding_never_leaves_a_whitespace_only_line() -> None:
    # The first line is full when the run of spaces comes, and the next word cannot
    # share a line with it.
    value = "x" * 70 + "  " + "y" * 100
    data = build(make_email(headers=(("X-Long", value),)))
    assert all(line.strip() for line in lines(header_block(data)))
    assert parse(data)["X-Long"] == value


def test_unfoldable_header_content_still_fits_998_octets() -> None:
    data = build(make_email(subject="x" * 2000, to=Address("ada@example.com", "y" * 2000)))
    assert all(len(line) <= 998 for line in lines(data))
    assert parse(data)["Subject"] == "x" * 2000
    assert rfc2047_decoded(data, "To") == "y" * 2000 + " <ada@example.com>"


# --- rejected input ----------------------------------------------------------------------


def injected(field: str, bad: str) -> Email:
    if field == "subject":
        return make_email(subject=f"Hi{bad}Bcc: eve@example.com")
    if field == "message_id":
        return make_email(message_id=f"1.a@example.com{bad}")
    if field in {"header-value", "header-name"}:
        name, value = "List-Unsubscribe", "<https://example.com/u>"
        if field == "header-value":
            value += bad
        else:
            name += bad
        return make_email(headers=(("Feedback-ID", "c42"), (name, value)))
    which, part = field.split(".")
    address = Address("ada@example.com", "Ada")
    if part == "name":
        address = dataclasses.replace(address, name=f"Ada{bad}Bcc: eve@example.com")
    else:
        address = dataclasses.replace(address, email=f"ada@example.com{bad}")
    return make_email(**{which: address})


@pytest.mark.parametrize("bad", ["\r", "\n", "\r\n", "\0"], ids=["cr", "lf", "crlf", "nul"])
@pytest.mark.parametrize(
    ("field", "header"),
    [
        ("subject", "Subject"),
        ("sender.name", "From"),
        ("sender.email", "From"),
        ("to.name", "To"),
        ("to.email", "To"),
        ("reply_to.name", "Reply-To"),
        ("reply_to.email", "Reply-To"),
        ("message_id", "Message-ID"),
        ("header-value", "List-Unsubscribe"),
        ("header-name", "List-Unsubscribe"),
    ],
)
def test_cr_lf_or_nul_in_any_header_input_is_rejected_naming_the_header(
    field: str, header: str, bad: str
) -> None:
    with pytest.raises(HeaderInjection) as caught:
        build(injected(field, bad))
    assert header in caught.value.header
    assert str(caught.value).startswith(caught.value.header)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "name",
    ["Bad Name", "X:Colon", "X-Zoë", "", "X-\x7f"],
    ids=["space", "colon", "non-ascii", "empty", "del"],
)
def test_malformed_extra_header_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="header name must be printable ASCII"):
        build(make_email(headers=((name, "v"),)))


@pytest.mark.parametrize("name", ["Subject", "content-type", "MESSAGE-ID", "From"])
def test_extra_headers_cannot_repeat_ours(name: str) -> None:
    with pytest.raises(ValueError, match="not allowed as an extra header"):
        build(make_email(headers=((name, "v"),)))


@pytest.mark.parametrize("value", ["Zoë", "bell\x07"], ids=["non-ascii", "control"])
def test_extra_header_values_must_be_printable_ascii(value: str) -> None:
    with pytest.raises(ValueError, match=r"^X-Note: extra header values must be printable ASCII"):
        build(make_email(headers=(("X-Note", value),)))


def test_extra_header_word_too_long_to_fold_is_rejected() -> None:
    with pytest.raises(ValueError, match="too long to fold"):
        build(make_email(headers=(("List-Unsubscribe", "<https://e.com/" + "a" * 990 + ">"),)))


def test_a_body_is_required() -> None:
    with pytest.raises(ValueError, match="text or an html body"):
        build(make_email(text=None, html=None))


def test_naive_date_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build(make_email(date=datetime(2026, 3, 14, 9, 26)))


@pytest.mark.parametrize(
    "message_id",
    ["<1.a@example.com>", "no-at-sign", "has space@example.com", "@example.com", ""],
)
def test_malformed_message_id_is_rejected(message_id: str) -> None:
    with pytest.raises(ValueError, match=r"^Message-ID:"):
        build(make_email(message_id=message_id))


# Every way a line can end near RFC 2045's 76-octet limit: the character that ends it
# (whitespace, which must be escaped at a line's end; one escaped byte; a multibyte
# character; "="), what follows it (another line, CRLF, nothing), and every length from
# well below to well above the limit. b2a_qp alone wrote 77 or 78 octets for a line of 75
# or 76 characters ending in a space or a tab.
_ENDINGS = (" ", "\t", "  ", " \t", "x", "=", "é", "€", "x ", "= ", "é ")
_AFTER = ("", "\n", "\r\n", "\nnext", "\nFrom here", "\n.")


@pytest.mark.parametrize("ending", _ENDINGS)
@pytest.mark.parametrize("after", _AFTER)
def test_no_quoted_printable_line_passes_76_octets_at_any_length(ending: str, after: str) -> None:
    for length in range(60, 240):
        for filler in ("a", "=", "é", "a b"):
            head = (filler * length)[: max(0, length - len(ending))]
            text = head + ending + after
            encoded = mime._quoted_printable(text)
            for line in encoded.split(b"\r\n"):
                assert len(line) <= 76, (length, filler, ending, after, line)
                # Whitespace at the end of an encoded line is dropped by decoders
                # (RFC 2045 §6.7 rule 3): it must be escaped or followed by a soft break.
                assert not line.endswith((b" ", b"\t")), (length, ending, line)
            expected = text.replace("\r\n", "\n").replace("\n", "\r\n")
            assert binascii.a2b_qp(encoded).decode("utf-8") == expected, (length, ending)


def test_message_ids_are_random_and_ascend_in_time() -> None:
    ids = [mime.new_message_id("news.example.com") for _ in range(200)]
    for one in ids:
        assert re.fullmatch(r"[0-9a-f]{14}\.[0-9a-f]{32}@news\.example\.com", one)
    # Each id goes at the end of the stored ids' index: their times ascend (two made in
    # one microsecond share it).
    times = [one.split(".")[0] for one in ids]
    assert times == sorted(times)
    assert times[0] < times[-1]
    # The random part is fresh for each: 128 bits, never repeated.
    assert len({one.split(".")[1] for one in ids}) == len(ids)


def test_a_forked_child_never_hands_out_its_parents_random_bytes() -> None:
    # The pool holds bytes drawn before the fork: a child using them would give its
    # messages the Message-IDs the parent gives its own next.
    mime.new_message_id("news.example.com")  # the pool is filled
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        os.close(reader)
        os.write(writer, mime.new_message_id("news.example.com").encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        from_child = pipe.read().decode()
    os.waitpid(child, 0)
    mine = mime.new_message_id("news.example.com")
    assert from_child.split(".")[1] != mine.split(".")[1]


def test_random_bytes_are_handed_out_once_across_threads() -> None:
    pool = mime._RandomPool(size=64)  # refilled every 4 takes: refills race too

    def take(_: int) -> bytes:
        return pool.take(16)

    with ThreadPoolExecutor(max_workers=8) as threads:
        taken = list(threads.map(take, range(4000)))
    assert len(set(taken)) == len(taken)

from __future__ import annotations

import pytest

from tidings.content.sms import SmsShape, is_gsm7, shape

# The tables of 3GPP TS 23.038 §6.2.1 as code points, written out independently of the
# module's string so a slip in either shows up. 0x1B (the escape) has no character.
GSM7_BASIC_CODE_POINTS = {
    0x00: 0x0040, 0x01: 0x00A3, 0x02: 0x0024, 0x03: 0x00A5, 0x04: 0x00E8, 0x05: 0x00E9,
    0x06: 0x00F9, 0x07: 0x00EC, 0x08: 0x00F2, 0x09: 0x00C7, 0x0A: 0x000A, 0x0B: 0x00D8,
    0x0C: 0x00F8, 0x0D: 0x000D, 0x0E: 0x00C5, 0x0F: 0x00E5, 0x10: 0x0394, 0x11: 0x005F,
    0x12: 0x03A6, 0x13: 0x0393, 0x14: 0x039B, 0x15: 0x03A9, 0x16: 0x03A0, 0x17: 0x03A8,
    0x18: 0x03A3, 0x19: 0x0398, 0x1A: 0x039E, 0x1C: 0x00C6, 0x1D: 0x00E6, 0x1E: 0x00DF,
    0x1F: 0x00C9, 0x20: 0x0020, 0x21: 0x0021, 0x22: 0x0022, 0x23: 0x0023, 0x24: 0x00A4,
    **{code: code for code in range(0x25, 0x40)},  # % & ' ( ) * + , - . / 0-9 : ; < = > ?
    0x40: 0x00A1,
    **{code: code for code in range(0x41, 0x5B)},  # A-Z
    0x5B: 0x00C4, 0x5C: 0x00D6, 0x5D: 0x00D1, 0x5E: 0x00DC, 0x5F: 0x00A7, 0x60: 0x00BF,
    **{code: code for code in range(0x61, 0x7B)},  # a-z
    0x7B: 0x00E4, 0x7C: 0x00F6, 0x7D: 0x00F1, 0x7E: 0x00FC, 0x7F: 0x00E0,
}  # fmt: skip
GSM7_EXTENSION_CODE_POINTS = {
    0x0A: 0x000C, 0x14: 0x005E, 0x28: 0x007B, 0x29: 0x007D, 0x2F: 0x005C,
    0x3C: 0x005B, 0x3D: 0x007E, 0x3E: 0x005D, 0x40: 0x007C, 0x65: 0x20AC,
}  # fmt: skip
BASIC = [chr(c) for c in GSM7_BASIC_CODE_POINTS.values()]
EXTENSION = [chr(c) for c in GSM7_EXTENSION_CODE_POINTS.values()]

CYRILLIC = "Ж"
EMOJI = "😀"  # U+1F600, a surrogate pair in UTF-16


def gsm(units: int, segments: int, per_segment: int) -> SmsShape:
    return SmsShape(encoding="GSM-7", units=units, segments=segments, per_segment=per_segment)


def ucs2(units: int, segments: int, per_segment: int) -> SmsShape:
    return SmsShape(encoding="UCS-2", units=units, segments=segments, per_segment=per_segment)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", gsm(0, 1, 160)),
        ("a", gsm(1, 1, 160)),
        ("a" * 160, gsm(160, 1, 160)),
        ("a" * 161, gsm(161, 2, 153)),
        ("a" * 306, gsm(306, 2, 153)),
        ("a" * 307, gsm(307, 3, 153)),
        ("é" * 160, gsm(160, 1, 160)),
        ("€", gsm(2, 1, 160)),
        ("a" * 158 + "€", gsm(160, 1, 160)),
        ("a" * 159 + "€", gsm(161, 2, 153)),
        # The first part has one septet left when "€" comes: it starts the second part,
        # whose last septet overflows into a third (a split would fit 306 septets in two).
        ("a" * 152 + "€" + "a" * 152, gsm(306, 3, 153)),
        # The same character ending a part exactly is not pushed.
        ("a" * 151 + "€" + "a" * 153, gsm(306, 2, 153)),
        ("[" * 153, gsm(306, 3, 153)),
        ("\r\n" * 80, gsm(160, 1, 160)),
        (CYRILLIC, ucs2(1, 1, 70)),
        (CYRILLIC * 70, ucs2(70, 1, 70)),
        (CYRILLIC * 71, ucs2(71, 2, 67)),
        (CYRILLIC * 134, ucs2(134, 2, 67)),
        (CYRILLIC * 135, ucs2(135, 3, 67)),
        (EMOJI, ucs2(2, 1, 70)),
        (EMOJI * 35, ucs2(70, 1, 70)),
        (CYRILLIC * 69 + EMOJI, ucs2(71, 2, 67)),
        # 66 units used when the emoji comes: it starts the second part, not straddles it.
        (CYRILLIC * 66 + EMOJI + CYRILLIC * 66, ucs2(134, 3, 67)),
        (CYRILLIC * 65 + EMOJI + CYRILLIC * 67, ucs2(134, 2, 67)),
        # In UCS-2 the extension characters cost one unit like any other.
        ("€" * 69 + CYRILLIC, ucs2(70, 1, 70)),
    ],
    ids=[
        "empty",
        "one-char",
        "160-plain-one-segment",
        "161-plain-two-segments",
        "306-plain-two-segments",
        "307-plain-three-segments",
        "160-e-acute-is-gsm",
        "extension-char-costs-two",
        "158-plus-euro-fills-one-message",
        "159-plus-euro-is-161-septets",
        "extension-char-pushed-past-boundary",
        "extension-char-ending-a-part-exactly",
        "153-brackets-are-306-septets-in-three",
        "crlf-counts-two",
        "one-cyrillic",
        "70-cyrillic-one-segment",
        "71-cyrillic-two-segments",
        "134-cyrillic-two-segments",
        "135-cyrillic-three-segments",
        "emoji-is-two-units",
        "35-emoji-fill-one-message",
        "emoji-tips-single-into-two",
        "emoji-pushed-past-boundary",
        "emoji-ending-a-part-exactly",
        "euro-costs-one-in-ucs2",
    ],
)
def test_shape(text: str, expected: SmsShape) -> None:
    assert shape(text) == expected


@pytest.mark.parametrize("position", [0, 80, 160], ids=["start", "middle", "end"])
def test_one_non_gsm_character_anywhere_makes_the_whole_text_ucs2(position: int) -> None:
    text = "a" * position + CYRILLIC + "a" * (160 - position)
    assert not is_gsm7(text)
    assert shape(text) == ucs2(161, 3, 67)


@pytest.mark.parametrize("char", BASIC, ids=[f"0x{c:02X}" for c in GSM7_BASIC_CODE_POINTS])
def test_every_basic_table_character_is_one_septet(char: str) -> None:
    assert is_gsm7(char)
    assert shape(char) == gsm(1, 1, 160)


@pytest.mark.parametrize(
    "char", EXTENSION, ids=[f"0x1B{c:02X}" for c in GSM7_EXTENSION_CODE_POINTS]
)
def test_every_extension_table_character_is_two_septets(char: str) -> None:
    assert is_gsm7(char)
    assert shape(char) == gsm(2, 1, 160)


def test_the_tables_are_complete() -> None:
    assert len(BASIC) == 127
    assert len(EXTENSION) == 10
    everything = "".join(BASIC + EXTENSION)
    assert shape(everything) == gsm(127 + 2 * 10, 1, 160)


def test_no_other_code_point_is_gsm7() -> None:
    accepted = {chr(c) for c in range(0x110000) if is_gsm7(chr(c))}
    assert accepted == set(BASIC) | set(EXTENSION)


@pytest.mark.parametrize(
    "char",
    [
        "\x1b",  # the escape itself is not a character
        "`",
        "ç",  # the standard has the capital at 0x09
        "\u2206",  # INCREMENT, a look-alike of Δ
        "\u2126",  # OHM SIGN, a look-alike of Ω
        "\u00a0",  # NO-BREAK SPACE
        "\t",
        "\u2019",  # RIGHT SINGLE QUOTATION MARK, what word processors put for '
        "\u2013",  # EN DASH
        "e\u0301",  # é decomposed
    ],
    ids=[
        "escape",
        "backtick",
        "small-c-cedilla",
        "increment",
        "ohm",
        "nbsp",
        "tab",
        "curly-apostrophe",
        "en-dash",
        "decomposed-e-acute",
    ],
)
def test_look_alikes_are_not_gsm7(char: str) -> None:
    assert not is_gsm7(char)
    assert shape(char).encoding == "UCS-2"


def test_empty_text_is_gsm7() -> None:
    assert is_gsm7("")

"""SMS encoding and segment count, as carriers bill them (3GPP TS 23.038 and 23.040).

A text that uses only the GSM 7-bit default alphabet and its extension table goes as
GSM-7: one septet per character, two for an extension character (an escape, 0x1B, then
the character's code). Any other character switches the whole text to UCS-2, which
phones and gateways treat as UTF-16: one code unit per BMP character, two (a surrogate
pair) for anything beyond it.

One message holds 140 octets: 160 septets or 70 UTF-16 code units. A longer text is sent
as concatenated parts, each carrying a 6-octet user data header, which leaves 153 septets
or 67 code units per part. A character is never split across parts: an extension
character's escape and code, or a surrogate pair's two halves, travel in one part, so a
part may end one unit short and the character starts the next.

National language shift tables (Turkish, Spanish, Portuguese, Indic) are not considered:
gateways do not use them unless asked to, and a text that needs one goes as UCS-2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

Encoding = Literal["GSM-7", "UCS-2"]

# The default alphabet, indexed by septet value (TS 23.038 §6.2.1). 0x1B is the escape
# to the extension table, not a character, so it is left out of the set below; 0x02 is
# the dollar sign and 0x24 the currency sign, and 0x09 is the capital C cedilla (the
# Unicode consortium's GSM0338.TXT maps it to the small one, the standard does not).
_BASIC_TABLE: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# The extension table (TS 23.038 §6.2.1.1): form feed, ^ { } \ [ ~ ] | and the euro sign.
_EXTENSION: Final = frozenset("\f^{}\\[~]|€")
_GSM7: Final = frozenset(_BASIC_TABLE.replace("\x1b", "")) | _EXTENSION

GSM7_SINGLE: Final = 160
GSM7_PART: Final = 153
UCS2_SINGLE: Final = 70
UCS2_PART: Final = 67
_LAST_BMP: Final = 0xFFFF
_LAST_BMP_CHAR: Final = chr(_LAST_BMP)


@dataclass(frozen=True, slots=True)
class SmsShape:
    """How a text goes out as SMS.

    `units` counts septets for GSM-7 and UTF-16 code units for UCS-2, for the whole text.
    `segments` is the number of messages billed, 1 for an empty text. `per_segment` is the
    limit that applied: the single-message limit (160 or 70) when the text fits one
    message, else the per-part limit of a concatenated message (153 or 67).
    """

    encoding: Encoding
    units: int
    segments: int
    per_segment: int


def is_gsm7(text: str) -> bool:
    """Whether every character of `text` is in the GSM 7-bit default or extension table."""
    return _GSM7.issuperset(text)


def shape(text: str) -> SmsShape:
    """The encoding, length and segment count a carrier will apply to `text`.

    The text is taken as is: no transliteration (curly quotes, dashes and non-breaking
    spaces are not GSM characters and make the text UCS-2) and no normalisation (a
    decomposed "é" is "e" plus a combining accent, which is not GSM either).
    """
    # Counted with str methods (C loops) rather than a Python loop over the characters:
    # the dispatcher shapes every SMS it sends. Only a text that needs parts and holds a
    # two-unit character is walked character by character, in `_parts`.
    encoding: Encoding
    if is_gsm7(text):
        encoding, single, part = "GSM-7", GSM7_SINGLE, GSM7_PART
        doubled = 0 if _EXTENSION.isdisjoint(text) else sum(map(text.count, _EXTENSION))
    else:
        encoding, single, part = "UCS-2", UCS2_SINGLE, UCS2_PART
        doubled = 0 if max(text) <= _LAST_BMP_CHAR else sum(ord(c) > _LAST_BMP for c in text)
    units = len(text) + doubled
    if units <= single:
        return SmsShape(encoding=encoding, units=units, segments=1, per_segment=single)
    if not doubled:
        segments = -(-units // part)
    elif encoding == "GSM-7":
        segments = _parts([2 if char in _EXTENSION else 1 for char in text], units, part)
    else:
        segments = _parts([2 if ord(char) > _LAST_BMP else 1 for char in text], units, part)
    return SmsShape(encoding=encoding, units=units, segments=segments, per_segment=part)


def _parts(costs: Sequence[int], units: int, per_part: int) -> int:
    """Parts needed to carry characters of these unit costs, never splitting one."""
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts += 1
            used = 0
        used += cost
    return parts

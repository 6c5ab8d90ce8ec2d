"""How many SMS segments a text costs, as a gateway counts them (legal-rules.md §9).

A text that uses only the GSM 03.38 alphabet is sent in 7-bit units: 160 in a single SMS, 153
per part once it is split (the part header takes the rest). The extension table's
characters (€ ^ { } [ ] ~ \\ | and form feed) are sent as an escape plus a code and count
twice, and an escape pair is never split across parts. One character outside both tables
(a Vietnamese ầ, a French œ, a typographic ’, an emoji) switches the whole message to UCS-2:
70 UTF-16 units alone, 67 per part, where a character outside the Basic Multilingual Plane
(most emoji) takes two units that are never split.

    >>> count_segments("Invoice NS-0104: EUR 1,430.00 is due.").encoding
    'GSM-7'
    >>> count_segments("Hóa đơn NS-0104 đến hạn").encoding
    'UCS-2'
    >>> count_segments("€" * 80).segments   # 160 units: one SMS
    1
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

__all__ = ["SegmentCount", "count_segments", "to_gsm7"]

# GSM 03.38 default alphabet (unicode.org GSM0338.TXT), as one string of the 128 code points.
_GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = "\f^{}\\[~]|€"
_BASIC = frozenset(_GSM7_BASIC) - {"\x1b"}
_EXTENSION = frozenset(_GSM7_EXTENSION)

# Typography that has a plain GSM-7 equivalent, for gateways that take GSM-7 only.
_TYPOGRAPHY = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "\u202f": " ",
    "\u2009": " ",
    "\u2007": " ",
    "\u0110": "D",
    "\u0111": "d",
    "\u0153": "oe",
    "\u0152": "OE",
    "\u00b7": ".",
    "\u2022": "-",
    "\u20ab": "VND",
}


@dataclass(frozen=True, slots=True)
class SegmentCount:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    per_segment: int  # the capacity of each segment at this length

    def fits(self, limit: int) -> bool:
        """Within a provider's limit as it states it: 160 is one SMS, 320 two parts.

        In UCS-2 one SMS holds 70 units, so "160" still means one SMS, not 160 letters.
        """
        return self.segments <= max(1, limit // 160)


def _segments(unit_sizes: list[int], single: int, part: int) -> int:
    total = sum(unit_sizes)
    if total <= single:
        return 1
    segments, filled = 1, 0
    for size in unit_sizes:
        # An escape pair or a surrogate pair stays in one part.
        if filled + size > part:
            segments += 1
            filled = 0
        filled += size
    return segments


def count_segments(text: str) -> SegmentCount:
    if all(char in _BASIC or char in _EXTENSION for char in text):
        sizes = [2 if char in _EXTENSION else 1 for char in text]
        segments = _segments(sizes, 160, 153)
        return SegmentCount("GSM-7", sum(sizes), segments, 160 if segments == 1 else 153)
    sizes = [2 if ord(char) > 0xFFFF else 1 for char in text]
    segments = _segments(sizes, 70, 67)
    return SegmentCount("UCS-2", sum(sizes), segments, 70 if segments == 1 else 67)


def to_gsm7(text: str, *, all_accents: bool = False) -> str:
    """The closest GSM-7 text: typography made plain, then accents dropped where needed.

    Letters GSM-7 has (é, è, ø, å, ä, ö, ü, ñ, à, ù, ì, ò, Ç) are kept, unless
    ``all_accents`` asks for plain letters throughout: Vietnamese written half with and half
    without its tone marks reads worse than without any, as gateways in Vietnam send it.
    """
    if all_accents or all(char in _BASIC or char in _EXTENSION for char in text):
        return _plain_letters(text, all_accents=all_accents)
    return "".join(_plain_letters(part, all_accents=plain) for part, plain in _names_plain(text))


def _plain_letters(text: str, *, all_accents: bool) -> str:
    result = []
    for index, char in enumerate(text):
        if char == "\u20ab" and text[index + 1 : index + 2].isdigit():
            result.append("VND ")  # "₫86,500,000" as "VND 86,500,000", as "NOK 850.88"
            continue
        if (char in _BASIC or char in _EXTENSION) and not (
            all_accents and char.isalpha() and not char.isascii()
        ):
            result.append(char)
            continue
        if char in _TYPOGRAPHY:
            result.append(_TYPOGRAPHY[char])
            continue
        if all_accents and char in "ØøÆæßÅå":
            result.append(
                {"Ø": "O", "ø": "o", "Æ": "AE", "æ": "ae", "ß": "ss", "Å": "A", "å": "a"}[char]
            )
            continue
        decomposed = unicodedata.normalize("NFD", char)
        base = "".join(c for c in decomposed if not unicodedata.combining(c))
        composed = unicodedata.normalize("NFC", base)
        if not all_accents and composed and all(c in _BASIC or c in _EXTENSION for c in composed):
            result.append(composed)
        elif base and all(c in _BASIC or c in _EXTENSION for c in base):
            result.append(base)
        else:
            result.append("?")
    return "".join(result)


#: Marks no other language Kindly writes puts on a letter: Vietnamese's hook above, dot
#: below, horn and breve (ả ạ ơ ư ă), and its đ.
_VIETNAMESE_MARKS = frozenset("\u0309\u0323\u031b\u0306")


def _vietnamese(char: str) -> bool:
    if char in "đĐ":
        return True
    return any(mark in _VIETNAMESE_MARKS for mark in unicodedata.normalize("NFD", char))


def _names_plain(text: str) -> list[tuple[str, bool]]:
    """``text`` cut into words, each with whether to drop all its accents: the words of a
    name with a letter GSM-7 lacks, and any word with a letter only Vietnamese has.

    A name loses its accents as a whole ("Cong ty TNHH Hoa Binh"), not only where GSM-7
    lacks the letter ("Cong ty TNHH Hòa Bình", the native check of issue 17): a name
    half with and half without its marks reads worse than one without. The words around
    it keep the é and ø their language writes.
    """
    import re

    parts = re.split(r"(\s+)", text)
    # A name's words: capitalised, or short and lowercase inside it ("Công ty TNHH").
    in_name = [
        part[:1].isupper() or (part.isascii() and part.isalpha() and len(part) <= 3)
        for part in parts
    ]
    plain = [
        any(_vietnamese(char) for char in part)
        or (in_name[index] and any(c not in _BASIC and c not in _EXTENSION for c in part))
        for index, part in enumerate(parts)
    ]
    changed = True
    while changed:
        changed = False
        for index, part in enumerate(parts):
            if plain[index] or not in_name[index] or part.isspace():
                continue
            # Across one space only: the neighbouring word in the same name.
            if any(0 <= n < len(parts) and plain[n] for n in (index - 2, index + 2)):
                plain[index] = True
                changed = True
    return list(zip(parts, plain, strict=True))

"""SMS segments as gateways count them (legal-rules.md §9)."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

import plugin.compose.sms_text
from plugin.compose.sms_text import count_segments, to_gsm7


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters count twice
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 152 + "€" + "a" * 10, "GSM-7", 164, 2),  # the escape pair moves whole
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),  # ... so 306 units need 3 parts
        ("æøå ÄÖÜß éèàùìòñ Ç", "GSM-7", 18, 1),
        ("x" * 70 + "ê", "UCS-2", 71, 2),
        ("ê" * 70, "UCS-2", 70, 1),
        ("ê" * 134, "UCS-2", 134, 2),
        ("ê" * 135, "UCS-2", 135, 3),
        ("it’s", "UCS-2", 4, 1),  # a typographic apostrophe forces UCS-2
        ("😀" * 35, "UCS-2", 70, 1),  # surrogate pairs count two
        ("a" * 66 + "😀" + "a" * 67, "UCS-2", 135, 3),  # a pair is never split
    ],
)
def test_counts(text: str, encoding: str, units: int, segments: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)


def test_limits() -> None:
    assert count_segments("a" * 160).fits(160)
    assert not count_segments("a" * 161).fits(160)
    assert count_segments("a" * 306).fits(320)
    assert not count_segments("ê" * 71).fits(160)
    assert count_segments("ê" * 134).fits(320)


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("Hóa đơn số NS-0104 đã quá hạn", "Hoa don so NS-0104 da qua han"),
        ("Nhắc thanh toán: còn 1.234.567 ₫", "Nhac thanh toan: còn 1.234.567 VND"),
        ("Faktura forfaller – betal nå", "Faktura forfaller - betal nå"),
        ("l’échéance « bientôt »", 'l\'échéance " bientot "'),
        ("Œuvre… 5\u202f000 €", "OEuvre... 5 000 €"),
        # A name loses its marks as a whole, not only where GSM-7 lacks the letter (the
        # native check: "Cong ty TNHH Hòa Bình"); the words around it keep theirs.
        (
            "Công ty TNHH Hòa Bình : dernière relance, facture impayée",
            "Cong ty TNHH Hoa Binh : dernière relance, facture impayée",
        ),
        ("Nguyễn Văn Hòa - 2. påminnelse", "Nguyen Van Hoa - 2. påminnelse"),
        ("Hélène Côté - rappel à régler", "Helene Cote - rappel à régler"),
        ("Hòa Bình - rappel à régler", "Hòa Bình - rappel à régler"),
    ],
)
def test_transliteration_to_gsm7(text: str, plain: str) -> None:
    result = to_gsm7(text)
    assert result == plain
    assert count_segments(result).encoding == "GSM-7"


@given(st.text(max_size=400))
def test_segments_follow_the_unit_count(text: str) -> None:
    count = count_segments(text)
    single, part = (160, 153) if count.encoding == "GSM-7" else (70, 67)
    if count.units <= single:
        assert count.segments == 1
    else:
        # Never fewer parts than the units need; at most one more for pairs kept whole.
        needed = -(-count.units // part)
        assert needed <= count.segments <= needed + count.units // part
    assert count_segments(to_gsm7(text)).encoding == "GSM-7"


def test_doctests() -> None:
    assert doctest.testmod(plugin.compose.sms_text).failed == 0

"""The note marker: written exactly as notes in accounting systems carry it today, and
read back from any note text into the same key, stage and channel."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import integrations.notes
from integrations.notes import NoteMarker, note_text_with_marker, read_marker
from plugin.core.model import Note

WRITTEN = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
KEY = "0123456789abcdef"
LONG_KEY = "f" * 64


def note(
    note_id: str, text: str = "Reminder sent.", stage: str | None = None, channel: str | None = None
) -> Note:
    return Note(note_id, WRITTEN, text, "C1", ("I1",), KEY, stage, channel)


def test_the_worked_example_in_the_docstring_holds() -> None:
    result = doctest.testmod(integrations.notes)
    assert result.attempted >= 3 and result.failed == 0


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (
            note(f"kindly-{KEY}", "  First reminder sent by e-mail.\n", "first", "email"),
            f"First reminder sent by e-mail.\n[kindly {KEY} first email]",
        ),
        (
            note(f"kindly-{KEY}-failed", "The text message could not be sent.", "final", "sms"),
            f"The text message could not be sent.\n[kindly {KEY}-failed final sms]",
        ),
        (
            note(f"kindly-{LONG_KEY}", "Line one.\nLine two.", "second_notice", "letter"),
            f"Line one.\nLine two.\n[kindly {LONG_KEY} second_notice letter]",
        ),
        # Stage and channel go together: with one of them missing, neither is written.
        (note(f"kindly-{KEY}", "Sent."), f"Sent.\n[kindly {KEY}]"),
        (note(f"kindly-{KEY}", "Sent.", stage="first"), f"Sent.\n[kindly {KEY}]"),
        (note(f"kindly-{KEY}", "Sent.", channel="email"), f"Sent.\n[kindly {KEY}]"),
    ],
)
def test_the_marker_is_written_as_notes_carry_it(written: Note, expected: str) -> None:
    assert note_text_with_marker(written) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"First reminder sent by e-mail.\n[kindly {KEY} first email]",
            NoteMarker(KEY, False, "first", "email", "First reminder sent by e-mail."),
        ),
        (
            f"Could not be sent.\n[kindly {KEY}-failed final sms]",
            NoteMarker(KEY, True, "final", "sms", "Could not be sent."),
        ),
        # Notes from before the marker named the stage and the channel.
        (f"Reminder sent.\n[kindly {KEY}]", NoteMarker(KEY, False, None, None, "Reminder sent.")),
        (f"Failed.\n[kindly {KEY}-failed]", NoteMarker(KEY, True, None, None, "Failed.")),
        # What a platform adds after the marker (a newline, spaces) does not hide it.
        (
            f"Sent.\r\n[kindly {KEY} first email] \r\n",
            NoteMarker(KEY, False, "first", "email", "Sent."),
        ),
        (f"[kindly {LONG_KEY} first email]", NoteMarker(LONG_KEY, False, "first", "email", "")),
        (
            f"Part one.\n\nPart two.  [kindly {KEY} courtesy task]",
            NoteMarker(KEY, False, "courtesy", "task", "Part one.\n\nPart two."),
        ),
    ],
)
def test_a_marker_is_read(text: str, expected: NoteMarker) -> None:
    assert read_marker(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Invoice approved by Anna.",
        # Not at the end: a note quoting a marker is not Kindly's note.
        f"[kindly {KEY} first email]\nAnswered by phone.",
        f"Sent.\n[kindly {KEY.upper()} first email]",
        f"Sent.\n[kindly {KEY[:15]} first email]",
        f"Sent.\n[kindly {LONG_KEY}0 first email]",
        f"Sent.\n[kindly {KEY} first]",
        f"Sent.\n[kindly {KEY}-sent first email]",
        f"Sent.\n[Kindly {KEY} first email]",
        f"Sent.\n[kindly {KEY} first email",
    ],
)
def test_text_without_a_marker_at_its_end_is_not_a_kindly_note(text: str) -> None:
    assert read_marker(text) is None


@pytest.mark.parametrize(
    ("marker", "note_id"),
    [
        (NoteMarker(KEY, False, "first", "email", "x"), f"kindly-{KEY}"),
        (NoteMarker(KEY, True, None, None, "x"), f"kindly-{KEY}-failed"),
    ],
)
def test_the_note_id_is_the_one_kindly_gave_the_note(marker: NoteMarker, note_id: str) -> None:
    assert marker.note_id == note_id


keys = st.from_regex(r"[0-9a-f]{16,64}", fullmatch=True)
# Stage and channel names as kindly.toml allows them.
names = st.from_regex(r"[a-z][a-z0-9_]*", fullmatch=True)
texts = st.text(min_size=1).filter(lambda text: text.strip() != "")


@given(
    text=texts,
    key=keys,
    failed=st.booleans(),
    stage_and_channel=st.none() | st.tuples(names, names),
)
def test_writing_then_reading_gives_back_what_was_written(
    text: str, key: str, failed: bool, stage_and_channel: tuple[str, str] | None
) -> None:
    stage, channel = stage_and_channel or (None, None)
    written = Note(
        f"kindly-{key}-failed" if failed else f"kindly-{key}",
        WRITTEN,
        text,
        "C1",
        ("I1",),
        key,
        stage,
        channel,
    )
    marker = read_marker(note_text_with_marker(written))
    assert marker == NoteMarker(key, failed, stage, channel, text.strip())
    assert marker is not None and marker.note_id == written.id


@given(text=texts, key=keys, trailing=st.text(alphabet=" \t\r\n"))
def test_blank_space_after_the_marker_is_ignored(text: str, key: str, trailing: str) -> None:
    written = note(f"kindly-{key}", text, "first", "email")
    marker = read_marker(note_text_with_marker(written) + trailing)
    assert marker == NoteMarker(key, False, "first", "email", text.strip())


@given(text=texts, key=keys, after=texts)
def test_a_marker_followed_by_more_text_is_not_read(text: str, key: str, after: str) -> None:
    assume(read_marker(after) is None)
    written = note(f"kindly-{key}", text, "first", "email")
    assert read_marker(f"{note_text_with_marker(written)}\n{after}") is None


def test_a_stage_named_with_a_digit_is_read_back() -> None:
    """kindly.toml allows stage names like "stage2"; their notes must be found again."""
    note = Note("kindly-" + "ab" * 16, WRITTEN, "Sent.", "C1", ("I1",), "ab" * 16, "stage2", "sms")
    marker = read_marker(note_text_with_marker(note))
    assert marker is not None and (marker.stage, marker.channel) == ("stage2", "sms")

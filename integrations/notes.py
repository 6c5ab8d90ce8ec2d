"""The marker on the last line of every note Kindly writes into an accounting system.

After a reminder, Kindly leaves a note on the invoice; its last line says which reminder
it was, ``[kindly <key>[-failed] <stage> <channel>]``, so that the reminder log can be
rebuilt from the platform alone (``kindly history --rebuild``) and a note already there
is not written twice. Every platform writes and reads the marker here, the same way.

    >>> from datetime import UTC, datetime
    >>> note = Note("kindly-0123456789abcdef", datetime(2026, 1, 5, tzinfo=UTC),
    ...             "Reminder sent by e-mail.", "C1", stage="first", channel="email")
    >>> text = note_text_with_marker(note)
    >>> text
    'Reminder sent by e-mail.\\n[kindly 0123456789abcdef first email]'
    >>> marker = read_marker(text)
    >>> marker.note_id, marker.stage, marker.channel, marker.text
    ('kindly-0123456789abcdef', 'first', 'email', 'Reminder sent by e-mail.')

Notes written before the marker named a stage and a channel end in ``[kindly <key>]``;
they still read, with neither.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from plugin.core.model import Invoice, InvoiceStatus, Note

__all__ = [
    "MARKER",
    "NoteMarker",
    "held_note_ids",
    "note_from_marker",
    "note_text_with_marker",
    "notes_across_invoices",
    "read_marker",
]

#: The marker at the end of a note; stage and channel come together or not at all.
# Stage and channel as kindly.toml may name them ([a-z][a-z0-9_]*): "stage2" too.
MARKER = re.compile(
    r"\[kindly ([0-9a-f]{16,64})(-failed)?(?: ([a-z][a-z0-9_]*) ([a-z][a-z0-9_]*))?\]\s*$"
)
NOTE_ID_PREFIX = "kindly-"
FAILED_SUFFIX = "-failed"


@dataclass(frozen=True, slots=True)
class NoteMarker:
    """What a note's marker says, and the note's text before it."""

    key: str
    failed: bool
    stage: str | None
    channel: str | None
    #: The note without its marker; empty when the note was nothing but the marker.
    text: str

    @property
    def note_id(self) -> str:
        """The id of the note the marker is on, as Kindly made it when writing it."""
        return f"{NOTE_ID_PREFIX}{self.key}{FAILED_SUFFIX if self.failed else ''}"


def note_text_with_marker(note: Note) -> str:
    """The note's text, then its marker on a line of its own.

    A note with a stage but no channel (or the reverse) gets the old marker without
    either, since the marker is only read back with both.
    """
    marker = f"[kindly {note.id.removeprefix(NOTE_ID_PREFIX)}"
    if note.stage and note.channel:
        marker += f" {note.stage} {note.channel}"
    return f"{note.text.strip()}\n{marker}]"


def read_marker(text: str) -> NoteMarker | None:
    """The marker at the end of ``text``, or None when the note is not Kindly's."""
    found = MARKER.search(text)
    if found is None:
        return None
    key, failed, stage, channel = found.groups()
    return NoteMarker(
        key=key,
        failed=failed is not None,
        stage=stage,
        channel=channel,
        text=text[: found.start()].rstrip(),
    )


def note_from_marker(
    text: str, *, created_at: datetime, customer_id: str, invoice_id: str
) -> Note | None:
    """Kindly's note in a platform's note text on an invoice, or None if it is not ours."""
    marker = read_marker(text)
    if marker is None:
        return None
    return Note(
        id=marker.note_id,
        created_at=created_at,
        text=marker.text or text,
        customer_id=customer_id or "?",
        invoice_ids=(invoice_id,),
        reminder_key=marker.key,
        stage=marker.stage,
        channel=marker.channel,
    )


def held_note_ids(notes: Iterable[Note], notes_on: Callable[[str], Iterable[Note]]) -> set[str]:
    """Which of ``notes`` a platform holds, asking ``notes_on(invoice id)`` once for each
    note's first invoice (a note goes on every invoice it names)."""
    wanted = list(notes)
    first_invoices = {note.invoice_ids[0] for note in wanted if note.invoice_ids}
    held = {held.id for invoice_id in first_invoices for held in notes_on(invoice_id)}
    return {note.id for note in wanted if note.id in held}


def notes_across_invoices(
    invoices: Iterable[Invoice], notes_on: Callable[[Invoice], Iterable[Note]]
) -> tuple[Note, ...]:
    """Kindly's notes read back invoice by invoice, one note with every invoice it is on.

    For rebuilding history only: one call per open or paid invoice."""
    found: dict[str, Note] = {}
    for invoice in invoices:
        if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.PAID):
            continue
        for note in notes_on(invoice):
            earlier = found.get(note.id)
            found[note.id] = replace(
                note,
                customer_id=invoice.customer_id,
                invoice_ids=(earlier.invoice_ids if earlier else ()) + note.invoice_ids,
            )
    return tuple(found.values())

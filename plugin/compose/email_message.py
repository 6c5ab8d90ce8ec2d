"""Write the e-mail for a reminder as MIME text, directly.

A reminder's message is always the same few shapes: a text part, its HTML alternative with
the SEPA QR code beside it, and files attached. Kindly writes those shapes itself instead
of building the standard library's ``email`` objects and serialising them: that was four
fifths of the time it took to compose a reminder (docs/performance.md). Everything written
is 7-bit: header text beyond ASCII as RFC 2047 encoded words, bodies as quoted-printable
or base64, so any server takes it. Tests read every message back with the standard
library's parser, which finds no defect in it.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formataddr, quote
from urllib.parse import quote as percent_encoded

from plugin.compose.formatting import without_bidi_controls
from plugin.compose.render import QR_CID, Attachment, RenderedMessage
from plugin.config.settings import Settings
from plugin.core.addresses import plainly_an_address
from plugin.core.decisions import PlannedReminder

__all__ = ["ReminderEmail", "build_email", "mailbox", "message_bytes", "message_id_for"]

# Header lines are folded to 76 characters, so that an encoded word on a line of its own
# keeps within RFC 2047's 75; RFC 5322's hard limit is 998.
_FOLD_AT = 76
_HARD_LIMIT = 998
# "=?utf-8?b?" and "?=" around the base64 text of an encoded word.
_WORD_OVERHEAD = 12
_LONGEST_WORD = 75
# An encoded word with less room than this starts a line of its own.
_SHORTEST_WORD = _WORD_OVERHEAD + 8


@dataclass(frozen=True, slots=True)
class ReminderEmail:
    """A complete message, its lines ending in ``\\n`` as a file's do."""

    data: bytes

    def as_bytes(self, linesep: str = "\n") -> bytes:
        """As it goes into a file (``\\n``) or over SMTP (``\\r\\n``).

        Every line ending in ``data`` is one Kindly wrote: bodies are encoded, and a line
        break in header text is refused, so the replacement touches nothing else.
        """
        return self.data if linesep == "\n" else self.data.replace(b"\n", linesep.encode())


def message_bytes(message: ReminderEmail, linesep: str = "\n") -> bytes:
    """The message as it goes into a file (``\\n``) or over SMTP (``\\r\\n``)."""
    return message.as_bytes(linesep)


def message_id_for(reminder: PlannedReminder, settings: Settings) -> str:
    """The same reminder always carries the same Message-ID, so receivers can drop a repeat."""
    domain = settings.company.email.rpartition("@")[2]
    return f"<kindly.{reminder.key}@{domain}>"


def build_email(
    reminder: PlannedReminder, rendered: RenderedMessage, settings: Settings, at: datetime
) -> ReminderEmail:
    """The complete message: text and HTML alternatives, the QR code inline, attachments."""
    company = settings.company
    body = _text_part(rendered.text, "plain")
    if rendered.html is not None:
        html = _text_part(rendered.html, "html")
        if rendered.qr_png is not None:
            image = _base64_part(
                "image/png",
                rendered.qr_png,
                f"Content-ID: <{QR_CID}>\n"
                + _parameters("Content-Disposition", "inline", "sepa-qr.png"),
            )
            html = _multipart("related", html, image)
        body = _multipart("alternative", body, html)
    if rendered.attachments:
        body = _multipart("mixed", body, *map(_attachment_part, rendered.attachments))
    head = "".join(
        (
            _addresses("From", [(company.name, company.email)]),
            _addresses(
                "To",
                [
                    (reminder.customer.greeting_name if i == 0 else "", address)
                    for i, address in enumerate(reminder.recipients)
                ],
            ),
            _addresses("Reply-To", [("", company.reply_to or company.email)]),
            _unstructured("Subject", without_bidi_controls(rendered.subject)),
            f"Date: {format_datetime(at)}\n",
            _unstructured("Message-ID", message_id_for(reminder, settings)),
            _unstructured("X-Kindly-Reminder", f"{reminder.stage}; key={reminder.key}"),
            _unstructured("Content-Language", rendered.language),
            "MIME-Version: 1.0\n",
        )
    )
    # A text part ends in a line end of its own; a multipart ends with its last boundary.
    tail = "" if body.endswith("\n") else "\n"
    return ReminderEmail((head + body + tail).encode("ascii"))


# Not only CR and LF: mail programs built on Python's email package split header text
# with str.splitlines, which also breaks at VT, FF, FS, GS, RS, NEL and the Unicode line
# and paragraph separators, so a name holding one of those could end the headers early or
# start a header of its own there. The other control characters have no business in a
# header either.
_LINE_BREAK_OR_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _refuse_line_breaks(what: str, value: str) -> None:
    # A customer's name or a subject holding a line break would otherwise add a header of
    # its own (a Bcc, say).
    if _LINE_BREAK_OR_CONTROL.search(value) is not None:
        raise ValueError(f"{what} holds a line break or control character: {value!r}")


def mailbox(address: str, where: str) -> str:
    """``address`` if it is one e-mail address, else ValueError saying why.

    Parsed by email-validator, not by hand: "a@x.example,b@evil.example" would become two
    recipients in a header, and quoting, comments and a display name are not an address.
    """
    if plainly_an_address(address):
        return address
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise ValueError(f"{where}: {address!r} is not one e-mail address ({exc})") from None
    return address


class _HeaderLines:
    """One header field, folded at spaces to lines of 76 characters where it can be."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.line = f"{name}:"
        self.empty = True  # nothing but the name, or a folded line's white space, yet

    def add(self, token: str) -> None:
        """``token`` starts with the white space the line may be folded at."""
        if not self.empty and len(self.line) + len(token) > _FOLD_AT:
            self.lines.append(self.line)
            self.line = ""
        self.line += token
        self.empty = self.line.isspace()

    def add_encoded(self, text: str) -> None:
        """``text`` as base64 encoded words, each fitting its line, none over 75."""
        data = text.encode("utf-8")
        start = 0
        while start < len(data):
            room = min(_FOLD_AT - len(self.line) - 1, _LONGEST_WORD)
            if room < _SHORTEST_WORD and not self.empty:
                self.lines.append(self.line)
                self.line = ""
                room = _LONGEST_WORD
            end = _word_end(data, start, (room - _WORD_OVERHEAD) // 4 * 3)
            word = base64.b64encode(data[start:end]).decode("ascii")
            self.line += f" =?utf-8?b?{word}?="
            self.empty = False
            start = end

    def written(self) -> str:
        lines = [*self.lines, self.line]
        if max(map(len, lines)) > _HARD_LIMIT:
            raise ValueError(
                f"the {self.name} header has a word too long for a line of {_HARD_LIMIT} characters"
            )
        return "\n".join(lines) + "\n"


def _word_end(data: bytes, start: int, most: int) -> int:
    """Where the encoded word from ``start`` ends: at most ``most`` bytes, whole letters."""
    end = min(start + max(most, 4), len(data))
    # A UTF-8 continuation byte (10xxxxxx) would cut a letter in two: step back to its start.
    while end < len(data) and data[end] & 0xC0 == 0x80:
        end -= 1
    return end


def _spaced(text: str) -> list[str]:
    """``text`` in pieces that each start with a space, where a line may be folded."""
    pieces = text.split(" ")
    return [" " + piece for piece in pieces]


def _unstructured(name: str, value: str) -> str:
    _refuse_line_breaks(f"the {name} header", value)
    header = _HeaderLines(name)
    # ASCII text that holds "=?" could be read as an encoded word; encoded, it is shown
    # as written.
    if value.isascii() and "=?" not in value:
        for piece in _spaced(value):
            header.add(piece)
        try:
            return header.written()
        except ValueError:
            header = _HeaderLines(name)  # one word over the hard limit: encoded words split it
    header.add_encoded(value)
    return header.written()


def _addresses(name: str, named: Sequence[tuple[str, str]]) -> str:
    """``Name <address>, ...`` for a From, To or Reply-To header.

    A display name beyond ASCII goes in as encoded words, none over 75 characters as RFC
    2047 asks: ``formataddr`` writes one word however long the name, 140 characters for a
    Vietnamese company's.
    """
    for display_name, address in named:
        # Checked before the name is encoded, which would hide a line separator in it.
        _refuse_line_breaks(f"the {name} header", display_name)
        _refuse_line_breaks(f"the {name} header", address)
        mailbox(address, f"the {name} header")
        if not address.isascii():
            # RFC 6531 lets such an address through only where every server on the way
            # speaks SMTPUTF8; Kindly writes 7-bit headers, and says so rather than fail
            # on an encoding error.
            raise ValueError(
                f"the {name} header: {address!r} has letters beyond ASCII; Kindly cannot "
                "send to such an address yet (it needs SMTPUTF8): give the client an "
                "address in ASCII letters"
            )
    header = _HeaderLines(name)
    for position, (display_name, address) in enumerate(named):
        last = position == len(named) - 1
        comma = "" if last else ","
        if display_name and (not display_name.isascii() or "=?" in display_name):
            header.add_encoded(display_name)
            header.add(f" <{address}>{comma}")
            continue
        pieces = _spaced(formataddr((display_name, address)) + comma)
        for piece in pieces:
            header.add(piece)
    return header.written()


def _parameters(name: str, value: str, filename: str) -> str:
    """A Content-Disposition with the file's name: RFC 2231's form where it is not ASCII.

    A name too long for a line is split into RFC 2231's numbered pieces.
    """
    _refuse_line_breaks("the file name", filename)
    header = _HeaderLines(name)
    header.add(f" {value};")
    if filename.isascii() and len(filename) <= _FOLD_AT - len(' filename=""'):
        header.add(f' filename="{quote(filename)}"')
        return header.written()
    encoded = percent_encoded(filename, safe="")
    if len(encoded) <= _FOLD_AT - len(" filename*=utf-8''"):
        header.add(f" filename*=utf-8''{encoded}")
        return header.written()
    pieces = _percent_pieces(encoded, _FOLD_AT - len(" filename*99*=;"))
    for number, piece in enumerate(pieces):
        charset = "utf-8''" if number == 0 else ""
        end = "" if number == len(pieces) - 1 else ";"
        header.add(f" filename*{number}*={charset}{piece}{end}")
    return header.written()


def _percent_pieces(encoded: str, most: int) -> list[str]:
    """``encoded`` in pieces of at most ``most`` characters, each of whole letters.

    Mail programs decode each piece on its own, so a piece never ends inside a ``%XX``
    or between the bytes of one UTF-8 letter.
    """
    pieces = []
    while len(encoded) > most:
        end = most
        while not _letter_starts(encoded, end):
            end -= 1
        pieces.append(encoded[:end])
        encoded = encoded[end:]
    return [*pieces, encoded]


def _letter_starts(encoded: str, at: int) -> bool:
    if "%" in encoded[max(at - 2, 0) : at]:
        return False  # inside a %XX
    # A continuation byte, 10xxxxxx, is %8X, %9X, %AX or %BX.
    return not (encoded[at] == "%" and encoded[at + 1] in "89AB")


_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", re.IGNORECASE)


def _attachment_part(attachment: Attachment) -> str:
    if _MEDIA_TYPE.fullmatch(attachment.mime_type) is None:
        raise ValueError(f"{attachment.filename}: {attachment.mime_type!r} is not a media type")
    return _base64_part(
        attachment.mime_type,
        attachment.content,
        _parameters("Content-Disposition", "attachment", attachment.filename),
    )


def _text_part(text: str, subtype: str) -> str:
    # Quoted-printable keeps the source readable and every line short; binascii does it
    # in C. Line ends are made "\n" first, so that only Kindly's line ends are in the text.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")
    if not encoded.endswith("\n"):
        # Every part ends its last line; a soft line break there adds nothing to the text.
        encoded += "=\n"
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\n'
        f"Content-Transfer-Encoding: quoted-printable\n\n{encoded}"
    )


def _base64_part(media_type: str, content: bytes, headers: str) -> str:
    encoded = base64.encodebytes(content).decode("ascii").rstrip("\n")
    return f"Content-Type: {media_type}\nContent-Transfer-Encoding: base64\n{headers}\n{encoded}"


def _multipart(subtype: str, *parts: str) -> str:
    # A boundary of our own: "=_" cannot occur in quoted-printable or base64 text, which
    # is all the parts hold, so no part needs searching for a collision.
    boundary = f"=_kindly_{secrets.token_hex(12)}"
    return (
        f'Content-Type: multipart/{subtype};\n boundary="{boundary}"\n\n'
        + "".join(f"--{boundary}\n{part}\n" for part in parts)
        + f"--{boundary}--"
    )

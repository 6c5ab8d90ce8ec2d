"""Build the e-mail for a reminder and deliver it; for now to an outbox folder of .eml files.

The outbox is the demo's default channel and a safe one for a first real run: each message
is a complete RFC 5322 file a mail client opens as is. A message's file name comes from the
reminder's key, and files are written atomically (temporary file, then rename), so a retry
after a crash replaces the same file instead of adding a second copy.
"""

from __future__ import annotations

import binascii
import io
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from email.charset import BASE64, Charset
from email.encoders import encode_base64
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import format_datetime, formataddr

from plugin.compose.formatting import without_bidi_controls
from plugin.compose.render import QR_CID, RenderedMessage
from plugin.config.settings import Settings
from plugin.core.decisions import PlannedReminder

__all__ = ["build_email", "message_bytes", "message_id_for"]


class _ReminderPolicy(Compat32):
    """The legacy policy, writing a short ASCII header line as it is.

    Compat32 runs every header through ``email.header.Header`` to fold it, a third of the
    time it takes to serialise a reminder. A value that is ASCII, holds no line break
    (``_header_value`` refuses those) and fits in a line needs no folding; anything else
    still goes the long way.
    """

    def fold(self, name: str, value: str) -> str:
        line = self._unfolded(name, value)
        return line if line is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        line = self._unfolded(name, value)
        return line.encode("ascii") if line is not None else super().fold_binary(name, value)

    def _unfolded(self, name: str, value: object) -> str | None:
        if not isinstance(value, str) or not value.isascii() or _breaks_lines(value):
            return None
        line = f"{name}: {value}"
        return line + self.linesep if len(line) <= (self.max_line_length or 998) else None


# Lines of 76: Header splits encoded words to fit the line, and a continuation line's
# word then keeps within RFC 2047's 75 characters (at 78 it may take 76).
POLICY = _ReminderPolicy(max_line_length=76)

# UTF-8 header text as base64 encoded words. The default for UTF-8, the shorter of base64
# and quoted-printable, measures the quoted-printable length anew for every character it
# adds to a line: most of the time spent on a Vietnamese or French subject.
_UTF8_HEADER = Charset("utf-8")
_UTF8_HEADER.header_encoding = BASE64


def message_id_for(reminder: PlannedReminder, settings: Settings) -> str:
    """The same reminder always carries the same Message-ID, so receivers can drop a repeat."""
    domain = settings.company.email.rpartition("@")[2]
    return f"<kindly.{reminder.key}@{domain}>"


def build_email(
    reminder: PlannedReminder, rendered: RenderedMessage, settings: Settings, at: datetime
) -> Message:
    """The complete message: text and HTML alternatives, the QR code inline, attachments.

    Built on the standard library's ``email.mime`` classes rather than ``EmailMessage``:
    the newer API parses every header through its header registry, which made building a
    reminder four times slower than rendering it (docs/performance.md).
    """
    company = settings.company
    body: Message = _text_part(rendered.text, "plain")
    if rendered.html is not None:
        html: Message = _text_part(rendered.html, "html")
        if rendered.qr_png is not None:
            image = MIMEImage(rendered.qr_png, "png", policy=POLICY)
            image["Content-ID"] = f"<{QR_CID}>"
            image.add_header("Content-Disposition", "inline", filename="sepa-qr.png")
            html = _multipart("related", html, image)
        body = _multipart("alternative", body, html)
    if rendered.attachments:
        files = []
        for attachment in rendered.attachments:
            maintype, subtype = attachment.mime_type.split("/", 1)
            part = MIMEBase(maintype, subtype, policy=POLICY)
            part.set_payload(attachment.content)
            encode_base64(part)
            part.add_header(
                "Content-Disposition", "attachment", filename=_param(attachment.filename)
            )
            files.append(part)
        body = _multipart("mixed", body, *files)
    message = body
    del message["MIME-Version"]
    headers: dict[str, str | Header] = {
        "From": _addresses("From", [(company.name, company.email)]),
        "To": _addresses(
            "To",
            [
                (reminder.customer.greeting_name if i == 0 else "", address)
                for i, address in enumerate(reminder.recipients)
            ],
        ),
        "Reply-To": company.reply_to or company.email,
        "Subject": without_bidi_controls(rendered.subject),
        "Date": format_datetime(at),
        "Message-ID": message_id_for(reminder, settings),
        "X-Kindly-Reminder": f"{reminder.stage}; key={reminder.key}",
        "Content-Language": rendered.language,
        "MIME-Version": "1.0",
    }
    # Headers go first in the file, in this order; the body's Content-* headers follow.
    content_headers = message.items()
    for name in list(message.keys()):
        del message[name]
    for name, value in headers.items():
        # compat32 takes a Header as a value and encodes it when written; typeshed's
        # Message[str, str] does not say so.
        message[name] = value if isinstance(value, Header) else _header_value(name, value)  # type: ignore[assignment]
    for name, value in content_headers:
        message[name] = value
    return message


def message_bytes(message: Message, linesep: str = "\n") -> bytes:
    """The message as it goes into a file (``\n``) or over SMTP (``\r\n``)."""
    buffer = io.BytesIO()
    policy = message.policy.clone(linesep=linesep)
    _WholeTextGenerator(buffer, mangle_from_=False, policy=policy).flatten(message)
    return buffer.getvalue()


class _WholeTextGenerator(BytesGenerator):
    """Writes a body part's text in one piece when its lines already end in ``\n``.

    The stock generator writes each line and each line ending on its own, to turn any
    mix of ``\r\n``, ``\r`` and ``\n`` into the policy's: half the time it takes to
    serialise a reminder. The quoted-printable text of our parts has only ``\n``, and
    replacing that gives the same bytes in one write; anything else goes the stock way.
    """

    def _write_lines(self, lines: str) -> None:
        if "\r" in lines:
            super()._write_lines(lines)  # type: ignore[misc]
        elif lines:
            self.write(lines if self._NL == "\n" else lines.replace("\n", self._NL))  # type: ignore[attr-defined]


# Not only CR and LF: the email package splits header text with str.splitlines, which
# also breaks at VT, FF, FS, GS, RS, NEL and the Unicode line and paragraph separators,
# so a name holding one of those could end the headers early or start a header of its own.
# The other control characters have no business in a header either.
_LINE_BREAK_OR_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _breaks_lines(value: str) -> bool:
    return _LINE_BREAK_OR_CONTROL.search(value) is not None


def _refuse_line_breaks(what: str, value: str) -> None:
    # A customer's name or a subject holding a line break would otherwise add a header of
    # its own (a Bcc, say); the legacy email classes do not refuse it themselves.
    if _breaks_lines(value):
        raise ValueError(f"{what} holds a line break or control character: {value!r}")


def _header_value(name: str, value: str) -> str | Header:
    _refuse_line_breaks(f"the {name} header", value)
    if value.isascii():
        return value
    # Encoded when the message is written: encoding it here too gave the generator a
    # string of encoded words it parsed and folded all over again.
    return Header(value, _UTF8_HEADER, header_name=name)


def mailbox(address: str, where: str) -> str:
    """``address`` if it is one e-mail address, else ValueError saying why.

    Parsed by email-validator, not by hand: "a@x.example,b@evil.example" would become two
    recipients in a header, and quoting, comments and a display name are not an address.
    """
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise ValueError(f"{where}: {address!r} is not one e-mail address ({exc})") from None
    return address


def _addresses(header: str, named: Sequence[tuple[str, str]]) -> str | Header:
    """``Name <address>, ...`` for a From or To header.

    A name in more than ASCII goes in as encoded words that the header's folding splits,
    none over 75 characters as RFC 2047 asks: ``formataddr`` writes one word however long
    the name, 140 characters for a Vietnamese company's.
    """
    # Checked before the name is encoded, which would hide a line separator in it.
    for display_name, address in named:
        _refuse_line_breaks(f"the {header} header", display_name)
        _refuse_line_breaks(f"the {header} header", address)
        mailbox(address, f"the {header} header")
        if not address.isascii():
            # RFC 6531 lets such an address through only where every server on the way
            # speaks SMTPUTF8; Kindly writes 7-bit headers, and says so rather than fail
            # on an encoding error.
            raise ValueError(
                f"the {header} header: {address!r} has letters beyond ASCII; Kindly cannot "
                "send to such an address yet (it needs SMTPUTF8): give the client an "
                "address in ASCII letters"
            )
    if all(name.isascii() for name, _ in named) or not all(a.isascii() for _, a in named):
        return ", ".join(formataddr(pair, charset="utf-8") for pair in named)
    value = Header(header_name=header)
    ascii_text = ""
    for position, (display_name, address) in enumerate(named):
        separator = ", " if position else ""
        if display_name.isascii():
            ascii_text += separator + formataddr((display_name, address))
            continue
        if ascii_text or separator:
            value.append(ascii_text + separator.rstrip(), "us-ascii")
        value.append(display_name, _UTF8_HEADER)
        ascii_text = f" <{address}>"
    value.append(ascii_text, "us-ascii")
    return value


def _param(value: str) -> str | tuple[str, str, str]:
    # An attachment's file name comes from an invoice number, which the customer's
    # bookkeeping platform decides.
    _refuse_line_breaks("the file name", value)
    return value if value.isascii() else ("utf-8", "", value)


def _text_part(text: str, subtype: str) -> Message:
    part = MIMENonMultipart("text", subtype, policy=POLICY, charset="utf-8")
    del part["MIME-Version"]
    # Quoted-printable keeps the source readable and every line short; binascii does it in C.
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii"))
    return part


def _multipart(subtype: str, *parts: Message) -> Message:
    # A boundary of our own spares the generator searching every part for a collision:
    # "=_" cannot occur in quoted-printable or base64 text, which is all the parts hold.
    container = MIMEMultipart(subtype, boundary=f"=_kindly_{secrets.token_hex(12)}", policy=POLICY)
    del container["MIME-Version"]
    for part in parts:
        del part["MIME-Version"]
        container.attach(part)
    return container

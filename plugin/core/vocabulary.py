"""Kindly's words, each defined once: languages, tones, channels, forms of address, the
built-in stages, and the statuses a reminder passes through.

Values that come from users and platforms (a language, a tone, a channel) are ``Literal``
types: free of cost at run time, checked by mypy, and listed once for validation and for
the CLI's choices. Statuses Kindly itself sets are ``StrEnum``s, equal to their text so
the store keeps plain text.
"""

from __future__ import annotations

import enum
from typing import Literal, TypeVar, get_args

__all__ = [
    "APPOINTMENT_STAGE",
    "CHANNELS",
    "FORMALITIES",
    "GONE_OUT",
    "LANGUAGES",
    "SALUTATIONS",
    "TONES",
    "ChannelName",
    "DeliveryStatus",
    "EmailVia",
    "Formality",
    "Language",
    "LogStatus",
    "Salutation",
    "Settlement",
    "StageName",
    "Tone",
    "one_of",
]

#: The languages Kindly writes in (ISO 639-1; Norwegian is bokmål).
Language = Literal["en", "nl", "fr", "nb", "de", "vi"]
LANGUAGES: tuple[Language, ...] = get_args(Language)

Tone = Literal["friendly", "neutral", "firm"]
TONES: tuple[Tone, ...] = get_args(Tone)

#: "task" is a note for a person (a phone call, a collection agency), never a message.
ChannelName = Literal["email", "sms", "letter", "phone", "task"]
CHANNELS: tuple[ChannelName, ...] = get_args(ChannelName)

#: "formal" (u, Sie, De, Quý khách) or "informal" (je, du, anh/chị).
Formality = Literal["formal", "informal"]
FORMALITIES: tuple[Formality, ...] = get_args(Formality)

#: How the contact person is addressed: "Mr Hughes", "mevrouw Van Dijk", "Frau Müller".
#: Unknown (None), a greeting uses the name alone.
Salutation = Literal["mr", "ms"]
SALUTATIONS: tuple[Salutation, ...] = get_args(Salutation)


class StageName(enum.StrEnum):
    """The stages of the default policy, which Kindly has words for; a policy of the
    user's own may name its stages otherwise."""

    COURTESY = "courtesy"
    FIRST = "first"
    SECOND = "second"
    FINAL = "final"
    HANDOFF = "handoff"


#: The stage of an appointment reminder in the log: not an invoice's, never noted in the
#: accounting system.
APPOINTMENT_STAGE = "appointment"


class DeliveryStatus(enum.StrEnum):
    """What became of one message on one channel."""

    SENT = "sent"
    #: This way will not work for this client: fall back to the next channel (R24).
    PERMANENT = "permanent"
    #: Try again on the next run.
    TEMPORARY = "temporary"
    #: Handed over, then the line dropped: most likely delivered, never sent twice.
    UNCONFIRMED = "unconfirmed"


class Settlement(enum.StrEnum):
    """After a crash that came after the hand-over: what the channel says happened."""

    SENT = "sent"
    RESEND = "resend"
    UNCONFIRMED = "unconfirmed"


class LogStatus(enum.StrEnum):
    """A reminder's entry in the log."""

    #: Claimed by a sender; nothing has left yet.
    SENDING = "sending"
    #: The content is leaving now (for SMTP: the final dot); the answer is not in yet.
    HANDING_OVER = "handing_over"
    SENT = "sent"
    #: Handed over, and the answer never came: counted as sent (never sent twice by
    #: itself), shown as unconfirmed; `kindly resend` sends it again on request.
    UNCONFIRMED = "unconfirmed"
    DEFERRED = "deferred"
    FAILED = "failed"


#: Entries that count as gone out: the planner never sends them again by itself.
GONE_OUT = (LogStatus.SENT, LogStatus.UNCONFIRMED)


class EmailVia(enum.StrEnum):
    """How e-mail leaves: .eml files in the outbox, SMTP, or the accounting platform."""

    OUTBOX = "outbox"
    SMTP = "smtp"
    PLATFORM = "platform"


_Word = TypeVar("_Word", bound=str)


def one_of(words: tuple[_Word, ...], value: object, what: str) -> _Word:
    """``value`` as one of ``words``; ValueError naming them when it is not."""
    for word in words:
        if value == word:
            return word
    raise ValueError(f"{value!r} is not a {what}: choose from {', '.join(words)}")

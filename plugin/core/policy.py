"""Reminder policies: named, ordered stages, and how each client's settings resolve.

The default policy follows what careful credit controllers do (R13, R22):

=========  =====================================  =========================  ========
stage      when                                   channels                   tone
=========  =====================================  =========================  ========
courtesy   3 days before the due date (off)       the client's               friendly
first      3 business days after the due date     the client's               client's
second     14 days after the first, or at once     the client's               client's
           when a promise to pay is broken
final      14 days after the second               the client's               firm
handoff    14 days after the final                a task for a person        -
=========  =====================================  =========================  ========

After the hand-off no more automatic mail goes out: a person calls, or passes the debt on.

Settings resolve from the most specific to the most general: the invoice, the client
(``kindly clients set`` over ``[clients.ID]``), the client's groups (``[groups.TAG]``, by the
client's tags in the ledger), then the company default (``[policy]``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Protocol

from plugin.core.businessdays import SendWindow
from plugin.core.model import CustomerKind
from plugin.core.money import Money
from plugin.core.vocabulary import (
    CHANNELS,
    TONES,
    ChannelName,
    Formality,
    Language,
    StageName,
    Tone,
    one_of,
)

__all__ = [
    "CHANNELS",
    "DEFAULT_POLICY",
    "TONES",
    "Anchor",
    "Behaviour",
    "BehaviourRules",
    "Overrides",
    "Policy",
    "Resolved",
    "Stage",
    "default_formality",
    "resolve",
]


class Anchor(enum.StrEnum):
    DUE_DATE = "due"  # days relative to the invoice's due date
    PREVIOUS = "previous"  # days after the previous stage was actually sent


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    anchor: Anchor
    days: int
    business_days: bool = False
    channels: tuple[ChannelName, ...] | None = None  # None: the client's channels
    tone: Tone | None = None  # None: the client's tone
    template: str | None = None  # None: the stage's name
    charges: bool = False
    enabled: bool = True
    #: A broken promise to pay makes this stage due at once (R22).
    on_broken_promise: bool = False

    def __post_init__(self) -> None:
        if self.anchor is Anchor.PREVIOUS and self.days < 0:
            raise ValueError(f"stage {self.name}: days after the previous stage must be >= 0")
        if self.tone is not None and self.tone not in TONES:
            raise ValueError(f"stage {self.name}: tone must be one of {', '.join(TONES)}")
        for channel in self.channels or ():
            if channel not in CHANNELS:
                raise ValueError(f"stage {self.name}: unknown channel {channel!r}")

    @property
    def worded(self) -> bool:
        """Whether Kindly's own templates have words for this stage (a task needs none;
        "handoff" has words for the task only, none for a message to the client)."""
        return self.is_handoff or self.template_name in WORDED_STAGES

    @property
    def template_name(self) -> str:
        return self.template or self.name

    @property
    def is_handoff(self) -> bool:
        return self.channels == ("task",)


#: The stages Kindly's templates have a message to the client for.
WORDED_STAGES = frozenset({StageName.COURTESY, StageName.FIRST, StageName.SECOND, StageName.FINAL})


@dataclass(frozen=True, slots=True)
class BehaviourRules:
    """How payment behaviour (R25) shifts the first reminder and the tone."""

    #: A client who pays late on at most this share of invoices, and on average no more
    #: than ``reliable_max_days_late`` days late, counts as reliable.
    reliable_max_share_late: float = 0.2
    reliable_max_days_late: int = 7
    reliable_extra_days: int = 4  # a later first reminder
    #: A client who pays late on at least this share, or this many days late on average,
    #: counts as a chronic late payer.
    chronic_min_share_late: float = 0.5
    chronic_min_days_late: int = 30
    chronic_fewer_days: int = 2  # an earlier first reminder
    chronic_tone: Tone = "firm"
    #: Fewer paid invoices than this say nothing about a client.
    min_history: int = 3


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    stages: tuple[Stage, ...]
    gap_days: int = 5  # at most one message per client and channel in this many days
    promise_grace_days: int = 3
    send_window: SendWindow = field(default_factory=SendWindow)
    behaviour: BehaviourRules = field(default_factory=BehaviourRules)

    def __post_init__(self) -> None:
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"policy {self.name}: stage names must be unique")
        if not any(stage.enabled for stage in self.stages):
            raise ValueError(f"policy {self.name}: at least one stage must be enabled")

    @property
    def active_stages(self) -> tuple[Stage, ...]:
        return tuple(stage for stage in self.stages if stage.enabled)

    def with_courtesy(self, enabled: bool) -> Policy:
        return replace(
            self,
            stages=tuple(
                replace(stage, enabled=enabled) if stage.name == "courtesy" else stage
                for stage in self.stages
            ),
        )


DEFAULT_POLICY = Policy(
    name="default",
    stages=(
        Stage("courtesy", Anchor.DUE_DATE, -3, tone="friendly", enabled=False),
        Stage("first", Anchor.DUE_DATE, 3, business_days=True),
        Stage("second", Anchor.PREVIOUS, 14, on_broken_promise=True),
        Stage("final", Anchor.PREVIOUS, 14, tone="firm", charges=True, on_broken_promise=True),
        Stage("handoff", Anchor.PREVIOUS, 14, channels=("task",)),
    ),
)


#: Totals below these are not worth a reminder, unless [policy] minimum says otherwise
#: (docs/configuration.md): about five euros in each currency Kindly's clients use most.
DEFAULT_MINIMUM: Mapping[str, Money] = {
    code: Money.of(amount, code)
    for code, amount in {
        "EUR": "5.00", "GBP": "5.00", "USD": "5.00", "CHF": "5.00",
        "NOK": "50", "SEK": "50", "DKK": "40", "VND": "100000",
    }.items()
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Defaults:
    """The company-wide defaults every client starts from."""

    tone: Tone = "friendly"
    channels: tuple[ChannelName, ...] = ("email",)
    minimum: Mapping[str, Money] = field(default_factory=lambda: dict(DEFAULT_MINIMUM))
    policy: str = "default"
    charges: bool = False  # claim statutory charges (the company opts in)


@dataclass(frozen=True, slots=True)
class ChargeSettings:
    """Which law's charges apply, and what Kindly needs to compute them."""

    jurisdiction: str | None = None  # None: from the company's country
    contract_rate: Decimal | None = None
    vat_on_costs: Decimal | None = None


class Creditor(Protocol):
    @property
    def country(self) -> str: ...


class PlanningSettings(Protocol):
    """What planning reads of the settings; :class:`plugin.config.settings.Settings` has it."""

    @property
    def company(self) -> Creditor: ...
    @property
    def defaults(self) -> Defaults: ...
    @property
    def policies(self) -> Mapping[str, Policy]: ...
    @property
    def groups(self) -> Mapping[str, Overrides]: ...
    @property
    def clients(self) -> Mapping[str, Overrides]: ...
    @property
    def invoices(self) -> Mapping[str, Overrides]: ...
    @property
    def charges(self) -> ChargeSettings: ...
    def client(self, client_id: str) -> Overrides: ...


class Behaviour(enum.StrEnum):
    UNKNOWN = "unknown"
    RELIABLE = "reliable"
    USUAL = "usual"
    CHRONIC = "chronic"


@dataclass(frozen=True, slots=True)
class Overrides:
    """One level of settings; None means "not set here, ask the next level"."""

    tone: Tone | None = None
    language: Language | None = None
    channels: tuple[ChannelName, ...] | None = None
    policy: str | None = None
    pause_until: date | None = None
    pause_reason: str | None = None
    excluded: bool | None = None
    kind: CustomerKind | None = None
    consolidate: bool | None = None
    minimum: Mapping[str, Money] | None = None
    #: "formal" (u, Sie, De, Quý khách) or "informal" (je, du, anh/chị).
    formality: Formality | None = None
    #: Whether statutory charges are claimed (only where the company opted in).
    charges: bool | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


_OVERRIDE_FIELDS = tuple(item.name for item in fields(Overrides))


@dataclass(frozen=True, slots=True)
class Resolved:
    """A client's (or an invoice's) effective settings, and where each came from."""

    tone: Tone
    language: Language
    channels: tuple[ChannelName, ...]
    policy: str
    pause_until: date | None
    pause_reason: str | None
    excluded: bool
    kind: CustomerKind
    consolidate: bool
    minimum: Mapping[str, Money]
    formality: Formality = "formal"
    charges: bool = False
    sources: Mapping[str, str] = field(default_factory=dict)


def default_formality(language: str) -> Formality:
    """How a business addresses a client it has not been told about, in each language.

    Norwegian business writing says "du" to everyone; "De" reads as old-fashioned. Dutch,
    German and Vietnamese keep the formal "u", "Sie" and "Quý khách"; English and French
    have no choice to make (French always says "vous").
    """
    return "informal" if language == "nb" else "formal"


def resolve(
    levels: Sequence[tuple[str, Overrides]],
    *,
    language: Language,
    kind: CustomerKind,
    default_tone: Tone,
    default_channels: tuple[ChannelName, ...],
    default_minimum: Mapping[str, Money],
    default_charges: bool = False,
) -> Resolved:
    """Take each setting from the first level that sets it, most specific first."""
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for level_name, overrides in levels:
        for name in _OVERRIDE_FIELDS:
            value = getattr(overrides, name)
            if value is not None and name not in values:
                values[name] = value
                sources[name] = level_name
    # A pause's reason belongs to the level that set the pause.
    if "pause_until" in values and sources.get("pause_reason") != sources["pause_until"]:
        level = dict(levels)[sources["pause_until"]]
        values["pause_reason"] = level.pause_reason
    defaults: dict[str, object] = {
        "tone": default_tone,
        "language": language,
        "channels": default_channels,
        "policy": DEFAULT_POLICY.name,
        "pause_until": None,
        "pause_reason": None,
        "excluded": False,
        "kind": kind,
        "consolidate": True,
        "minimum": default_minimum,
        "formality": default_formality(str(values.get("language", language))),
        "charges": default_charges,
    }
    for name, value in defaults.items():
        if name not in values:
            values[name] = value
            sources[name] = "ledger" if name in ("language", "kind") else "default"
    return Resolved(**values, sources=sources)  # type: ignore[arg-type]


# -- appointments ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppointmentRule:
    before: timedelta
    channel: ChannelName  # "email" or "sms"

    @property
    def label(self) -> str:
        hours = self.before.total_seconds() / 3600
        amount = f"{hours:g}h" if hours < 48 or hours % 24 else f"{hours / 24:g}d"
        return f"{amount} {self.channel}"


@dataclass(frozen=True, slots=True)
class AppointmentPolicy:
    rules: tuple[AppointmentRule, ...] = (
        AppointmentRule(timedelta(hours=24), "email"),
        AppointmentRule(timedelta(hours=2), "sms"),
    )
    #: No messages between these times on the attendee's clock (start after end: overnight).
    quiet_start: time | None = time(21, 0)
    quiet_end: time | None = time(8, 0)


DEFAULT_APPOINTMENT_POLICY = AppointmentPolicy()

#: The earliest an appointment reminder may go: a year ahead.
MOST_AHEAD_DAYS = 366
_RULE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)\s+(email|sms)\s*$")


def parse_rule(text: str) -> AppointmentRule:
    """ "24h email", "90m sms", "2d email" -> a rule; ValueError for anything else."""
    match = _RULE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a rule like '24h email' or '2h sms'")
    amount, unit, channel = float(match.group(1)), match.group(2), match.group(3)
    minutes = {"m": 1, "min": 1, "h": 60, "d": 1440}[unit] * amount
    if minutes > MOST_AHEAD_DAYS * 1440:
        # A date that far before an appointment is no reminder, and far enough it is
        # before the calendar's first day (D15c).
        raise ValueError(f"{text!r} is more than {MOST_AHEAD_DAYS} days before the appointment")
    return AppointmentRule(timedelta(minutes=minutes), one_of(CHANNELS, channel, "channel"))

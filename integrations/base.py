"""The small bases every connector implements, and what they declare about themselves.

A connector is the unit of extension. Its class says, as class attributes:

- ``name`` and ``title``; its ``kind`` (bookkeeping, calendar or SMS);
- its settings: a frozen dataclass (``settings_type``, a :class:`ConnectorSettings`)
  parsed from its own section of kindly.toml, whose JSON Schema is generated from the
  dataclass (:meth:`ConnectorSettings.json_schema`) into the settings schema and the
  manifest;
- its ``auth``, OAuth scopes, and ``webhook`` route and key variable, if any;
- its ``capabilities`` (:class:`Capability`): what it can do beyond reading.

and, as class methods, how the app opens it for a workspace (:meth:`Connector.open`), and
how ``kindly connect`` and ``kindly disconnect`` connect and disconnect it. The registry
(:mod:`integrations.registry`) lists the classes; everything in the app is driven by it.
A connector maps one platform's records onto :mod:`plugin.core.model`; ``manifest.json``
and ``docs/connectors.md`` are generated from these declarations, and tests fail when
they drift.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import json
import types
import typing
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Self

from integrations.workspace import ConnectorState, ConnectRequest, SettingsTransaction, Workspace
from plugin.config.settings import Settings
from plugin.core.model import Appointment, Invoice, LedgerSnapshot, Note
from plugin.core.policy import Overrides
from plugin.core.vocabulary import DeliveryStatus
from plugin.errors import ConfigError
from plugin.ports import CalendarSync, Outcome, SyncResult

if typing.TYPE_CHECKING:
    from integrations.http import HttpClient
    from integrations.oauth import OAuthApp, Token

#: The one bookmark a calendar keeps: its state, as JSON.
CALENDAR_STATE = "state"

__all__ = [
    "BookkeepingConnector",
    "CalendarConnector",
    "Capability",
    "ConnectRequest",
    "Connector",
    "ConnectorKind",
    "ConnectorSettings",
    "ConnectorState",
    "NoSettings",
    "SettingsTransaction",
    "SmsGatewayConnector",
    "SyncResult",
    "Webhook",
    "Workspace",
]


class ConnectorKind(enum.StrEnum):
    BOOKKEEPING = "bookkeeping"
    CALENDAR = "calendar"
    SMS = "sms"


class Capability(enum.StrEnum):
    """What a connector can do beyond reading. A capability it lacks is *unsupported*:
    Kindly never pretends (see docs/adding-a-connector.md)."""

    INCREMENTAL = "incremental_sync"
    NOTES = "notes"
    MAILER = "mailer"
    ONLINE_LINK = "online_link"
    PDF = "pdf"
    GROUPS = "client_groups"
    WEBHOOKS = "webhooks"

    @property
    def label(self) -> str:
        """How the docs name it."""
        return _CAPABILITY_LABELS[self]


_CAPABILITY_LABELS = {
    Capability.INCREMENTAL: "incremental sync",
    Capability.NOTES: "notes written back",
    Capability.MAILER: "platform e-mails invoices",
    Capability.ONLINE_LINK: "online invoice link",
    Capability.PDF: "invoice PDF",
    Capability.GROUPS: "per-client groups",
    Capability.WEBHOOKS: "webhooks",
}


@dataclass(frozen=True)
class Webhook:
    """Where `kindly serve` takes the platform's webhooks, and the variable holding the key."""

    path: str
    key_variable: str
    #: Where the user finds the key, for the error when it is not set.
    key_hint: str = ""
    #: The header with the HMAC-SHA256 of the raw body, and how it is written.
    signature_header: str = ""
    signature_encoding: str = "base64"  # or "hex"
    #: The platform hands the key out when Kindly subscribes, and Kindly keeps it in its
    #: store (encrypted); the variable then only overrides it.
    kept_in_store: bool = False


_SCHEMA_TYPES: dict[object, str] = {str: "string", int: "integer", bool: "boolean"}


@dataclass(frozen=True)
class ConnectorSettings:
    """A connector's own section of kindly.toml, as a frozen dataclass.

    Each field's JSON Schema comes from its type; ``field(metadata={"schema": {...}})``
    adds constraints and a description. A field without a default is required.
    """

    @classmethod
    def from_section(cls, data: Mapping[str, Any], *, base: Path) -> Self:
        """Parse the (already schema-checked) section; lists become tuples."""
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            if item.name not in data:
                continue
            value = data[item.name]
            if isinstance(value, list):
                value = tuple(value)
            elif isinstance(value, dict) and item.default_factory is not dataclasses.MISSING:
                # A partial table keeps the defaults of the keys it leaves out.
                value = {**item.default_factory(), **value}
            if item.metadata.get("path") and isinstance(value, str):
                # Relative to kindly.toml, not to wherever Kindly runs.
                value = (base / value).resolve()
            if item.metadata.get("base_url") and isinstance(value, str):
                value = value.rstrip("/")
            values[item.name] = value
        missing = [
            item.name
            for item in dataclasses.fields(cls)
            if item.name not in values
            and item.default is dataclasses.MISSING
            and item.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise KeyError(missing[0])  # named with its file and section by settings_of
        return cls(**values)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of this section (``additionalProperties: false``)."""
        hints = typing.get_type_hints(cls)
        properties: dict[str, Any] = {}
        required = []
        for item in dataclasses.fields(cls):
            schema = _schema_of(hints[item.name])
            schema.update(item.metadata.get("schema", {}))
            properties[item.name] = schema
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                required.append(item.name)
        section: dict[str, Any] = {"type": "object", "additionalProperties": False}
        if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):
            section["description"] = " ".join(cls.__doc__.split())
        section["properties"] = properties
        if required:
            section["required"] = required
        return section


def _schema_of(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _schema_of(options[0])
    if origin is tuple:
        return {"type": "array", "items": {**_schema_of(typing.get_args(hint)[0]), "minLength": 1}}
    if origin in (dict, Mapping, typing.get_origin(Mapping[str, str])):
        return {"type": "object"}
    if hint is Path:
        return {"type": "string", "minLength": 1}
    if hint in _SCHEMA_TYPES:
        return {"type": _SCHEMA_TYPES[hint]}
    raise TypeError(f"no JSON Schema for the setting type {hint!r}")


@dataclass(frozen=True)
class NoSettings(ConnectorSettings):
    """This connector has no settings of its own."""


class Connector(abc.ABC):
    #: Short name used on the command line and in settings (``kindly connect NAME``).
    name: ClassVar[str]
    #: Human name shown by the host.
    title: ClassVar[str]
    kind: ClassVar[ConnectorKind]
    #: The dataclass its section of kindly.toml is parsed into.
    settings_type: ClassVar[type[ConnectorSettings]] = NoSettings
    #: "none" for local sources, "oauth2" for platforms, "basic" or "api_key".
    auth: ClassVar[str] = "none"
    oauth_scopes: ClassVar[tuple[str, ...]] = ()
    webhook: ClassVar[Webhook | None] = None
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: Environment variables it reads secrets from (never kindly.toml): name -> what.
    secret_variables: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def section(cls) -> str:
        """Its section in kindly.toml: its name; calendars and SMS gateways share one."""
        return cls.name

    @classmethod
    def connection_scope(cls) -> str:
        """Where `kindly connect` keeps what it learnt (a folder, the organisations)."""
        return f"connection:{cls.name}"

    @classmethod
    def settings_of(cls, settings: Settings) -> ConnectorSettings:
        base = settings.source.parent if settings.source else Path.cwd()
        try:
            return cls.settings_type.from_section(
                settings.sections.get(cls.section(), {}), base=base
            )
        except KeyError as missing:
            where = settings.where
            raise ConfigError(
                f"{where}: field '{cls.section()}.{missing.args[0]}' is required but missing"
            ) from None

    @classmethod
    def connect(cls, workspace: Workspace, request: ConnectRequest) -> str:
        """`kindly connect NAME`: sign in or point at the data; what to tell the user."""
        return f"{cls.title} needs no connecting: its settings in kindly.toml are all it takes."

    @classmethod
    def disconnect(cls, workspace: Workspace) -> str:
        """`kindly disconnect NAME`: revoke where the platform allows it, forget the rest."""
        return f"{cls.title} keeps nothing to disconnect."

    # -- connecting from the web app: the OAuth round trip in the user's browser ----------

    @classmethod
    def web_sign_in(cls, workspace: Workspace) -> OAuthApp | None:
        """The OAuth app the web app's connect button signs in with; None where connecting
        takes no sign-in in a browser (a ledger folder, a CalDAV password)."""
        return None

    @classmethod
    def signed_in(
        cls, workspace: Workspace, token: Token, http: HttpClient
    ) -> list[tuple[str, str]]:
        """The web sign-in's end: keep ``token``; the organisations (id, name) it reaches,
        for the user to choose from (none: there is nothing to choose)."""
        raise ConfigError(f"{cls.title} is not connected by signing in")

    @classmethod
    def keep_organisations(cls, workspace: Workspace, chosen: Sequence[tuple[str, str]]) -> str:
        """Keep the organisations chosen after :meth:`signed_in`; what to tell the user."""
        return f"Connected {cls.title}."

    @classmethod
    def connected(cls, workspace: Workspace) -> list[str] | None:
        """What is connected (organisation names; empty for one without organisations),
        or None when it is not connected. Never calls the platform."""
        return None


class BookkeepingConnector(Connector):
    """An accounting system: invoices, payments, credit notes and clients in; notes out."""

    kind: ClassVar[ConnectorKind] = ConnectorKind.BOOKKEEPING

    @classmethod
    @abc.abstractmethod
    def open(cls, workspace: Workspace) -> list[Self]:
        """The sources this workspace reads: one, or one per connected organisation."""

    #: Told (resource, records read so far) during a long sync, for a progress display.
    progress: Callable[[str, int], None] | None = None

    @property
    def source_id(self) -> str:
        """Names this source in the store; one per organisation for multi-tenant platforms."""
        return self.name

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the data comes from, for messages (a folder, an organisation name)."""

    @abc.abstractmethod
    def read_snapshot(self) -> LedgerSnapshot:
        """Read and validate everything; raise before returning anything half-read."""

    @abc.abstractmethod
    def write_note(self, note: Note) -> None:
        """Record in the accounting system that a reminder went out."""

    @abc.abstractmethod
    def read_notes(self, among: Sequence[Invoice] | None = None) -> tuple[Note, ...]:
        """The notes Kindly wrote earlier, so history can be rebuilt from the source of
        truth; with ``among``, only those on these invoices."""

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        """The invoice as a PDF to attach to its reminder (R6, R20), if the platform has it."""
        return None

    def put_in_group(self, customer_id: str, group: str, leaving: Collection[str] = ()) -> None:
        """Put a client in the platform's client group ``group`` (made where missing) and
        take it out of ``leaving``: how a setting the platform holds as a group (see
        :meth:`group_settings`, "Reminders: firm") is written there. The next sync reads
        it back. Sources without client groups refuse."""
        raise ConfigError(f"{self.title} holds no client groups: the setting stays in Kindly")

    def platform_reminders(self) -> list[str]:
        """The payment reminders the platform sends by itself, as it is set up now: one
        sentence each, naming where to turn them off. Empty when it sends none, or cannot
        say (a ledger folder). Kindly sends nothing beside them unless the user chose to
        ([delivery] beside_platform_reminders), so that no client is chased twice."""
        return []

    def allowance(self) -> Mapping[str, int] | None:
        """What the platform's last answer said is left of its call allowance: calls left
        this ``minute`` and this ``day`` (either may be missing). None where it says nothing
        (a ledger folder) or nothing was called yet."""
        return None

    def sync(self, previous: LedgerSnapshot | None, bookmarks: Mapping[str, str]) -> SyncResult:
        """Bring ``previous`` up to date. Sources without change tracking read it all."""
        return SyncResult(self.read_snapshot())

    def read_invoices(self, invoice_ids: Sequence[str]) -> tuple[Invoice, ...]:
        """These invoices read fresh from the source, right before a reminder goes out (R3)."""
        wanted = set(invoice_ids)
        return tuple(i for i in self.read_snapshot().invoices if i.id in wanted)

    def write_notes(
        self, notes: Sequence[Note], *, check: Collection[str] = ()
    ) -> Mapping[str, str | None]:
        """Write a batch of notes (see plugin.ports.LedgerSource.write_notes).

        This default writes one note a call, after asking which of those in ``check`` are
        there; a connector whose platform takes several at once, or puts a note on several
        records, overrides it.
        """
        from plugin.errors import KindlyError

        doubtful = [note for note in notes if note.id in check]
        held = self.existing_note_ids(doubtful) if doubtful else set()
        results: dict[str, str | None] = {}
        for note in notes:
            if note.id in held:
                results[note.id] = None
                continue
            try:
                self.write_note(note)
            except (OSError, KindlyError) as exc:
                results[note.id] = str(exc)
            else:
                results[note.id] = None
        return results

    def existing_note_ids(self, notes: Iterable[Note]) -> set[str]:
        """Which of these notes the source holds already (a crash may have left some)."""
        held = {note.id for note in self.read_notes()}
        return {note.id for note in notes if note.id in held}

    def online_invoice_url(self, invoice: Invoice) -> str | None:
        """The link where the client sees and pays the invoice."""
        return invoice.online_url

    def group_settings(self) -> Mapping[str, Overrides]:
        """Settings by client group that the platform itself holds (D6), if it can."""
        return {}

    @property
    def writes_notes(self) -> bool:
        """Whether the platform keeps Kindly's notes (without it, the history stays in
        Kindly alone)."""
        return Capability.NOTES in self.capabilities

    @property
    def has_mailer(self) -> bool:
        """Whether the platform can e-mail an invoice itself (`email_invoice`)."""
        return Capability.MAILER in self.capabilities

    def email_invoice(self, invoice: Invoice, reference: str | None = None) -> Outcome:
        """Have the platform e-mail the invoice with its own template; how that went.

        ``reference`` (the reminder's key) lets the platform drop a repeat of the same
        request. Connectors implement :meth:`send_invoice_email`.
        """
        from integrations.http import AuthError, HttpError, delivery_status

        try:
            self.send_invoice_email(invoice, reference)
        except AuthError:
            raise  # every invoice would be refused alike: the batch stops
        except HttpError as exc:
            status = delivery_status(exc, repeatable=self.mailer_idempotent)
            return Outcome(status, f"{self.title} could not e-mail {invoice.number}: {exc}")
        return Outcome(DeliveryStatus.SENT, f"e-mailed by {self.title}")

    def email_holdup(self, invoices: Sequence[Invoice]) -> Outcome | None:
        """Why the platform cannot e-mail all of these invoices now, as an outcome for the
        reminder; None when it can. Asked before the first is sent: a reminder of several
        invoices must not go out in part, then in full on the next run."""
        from integrations.http import AuthError, HttpError

        try:
            waiting = self.not_ready_to_email(invoices)
        except AuthError:
            raise
        except HttpError as exc:
            # Nothing was sent, nor refused: the next run asks again.
            return Outcome(
                DeliveryStatus.TEMPORARY,
                f"{self.title} could not be asked about the invoices: {exc}",
            )
        if not waiting:
            return None
        return Outcome(
            DeliveryStatus.TEMPORARY,
            f"{self.title} cannot e-mail {', '.join(waiting)} yet; the next run tries again",
        )

    def not_ready_to_email(self, invoices: Sequence[Invoice]) -> list[str]:
        """The numbers of the invoices the platform's mailer would refuse for now (say
        while it still makes their PDF); by default none."""
        return []

    #: Whether the platform's mailer takes an idempotency key (QuickBooks' requestid,
    #: Xero's Idempotency-Key): then asking again after a lost answer cannot e-mail twice.
    mailer_idempotent: ClassVar[bool] = True

    def send_invoice_email(self, invoice: Invoice, reference: str | None) -> None:
        """The platform's call that e-mails an invoice (with ``has_mailer``)."""
        raise NotImplementedError(f"{self.title} cannot e-mail invoices itself")

    def verify_webhook(self, body: bytes, headers: Mapping[str, str], key: str) -> bool:
        """Whether a webhook request really comes from the platform: by default, the HMAC
        of the body in the header the connector's :class:`Webhook` names."""
        from integrations.webhooks import hmac_sha256_base64_matches, hmac_sha256_hex_matches

        if self.webhook is None or not self.webhook.signature_header:
            return False
        wanted = self.webhook.signature_header.lower()
        signature = next((v for k, v in headers.items() if k.lower() == wanted), None)
        if self.webhook.signature_encoding == "hex":
            return hmac_sha256_hex_matches(body, signature, key)
        return hmac_sha256_base64_matches(body, signature, key)

    def webhook_records(self, body: bytes) -> list[tuple[str, str]]:
        """The (kind, id) of each record a verified webhook names."""
        return []

    def is_handshake(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Whether a request is the platform checking that the address answers (before it
        subscribes it): answered 200, and nothing is synced. None by default."""
        return False

    @classmethod
    def webhook_key(cls, store: Any) -> str | None:
        """What `kindly serve` checks webhooks with: the variable the connector's
        :class:`Webhook` names; a platform that hands out the key when Kindly subscribes
        keeps it in ``store`` instead."""
        import os

        return os.environ.get(cls.webhook.key_variable) if cls.webhook else None

    def webhook_event_ids(self, body: bytes, headers: Mapping[str, str] | None = None) -> list[str]:
        """What identifies each of this organisation's events in a verified webhook (its
        body, and the request's ``headers`` with lower-case names), so a replayed or
        repeated delivery starts no second sync. Empty: no such identity."""
        return []


class CalendarConnector(Connector):
    """A calendar the appointments come from; chosen by ``[calendar] type``."""

    kind: ClassVar[ConnectorKind] = ConnectorKind.CALENDAR

    @classmethod
    def section(cls) -> str:
        return "calendar"

    @classmethod
    @abc.abstractmethod
    def open(cls, workspace: Workspace) -> Self:
        """The calendar [calendar] names, ready to read."""

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Which calendar, for messages."""

    @property
    @abc.abstractmethod
    def source_id(self) -> str:
        """Names it in the store, where its bookmarks are kept."""

    @abc.abstractmethod
    def read(
        self, now: datetime, state: Mapping[str, Any]
    ) -> tuple[tuple[Appointment, ...], dict[str, Any]]:
        """The events from a day ago to the horizon, read on from ``state`` (what the last
        read returned: sync tokens, links, the events known so far), and the new state."""

    def skip(self, why: str) -> None:
        """An event that could not be read, left out of this read (named in ``why``)."""
        if not hasattr(self, "skipped"):
            self.skipped: list[str] = []
        self.skipped.append(why)

    def sync(self, now: datetime, bookmarks: Mapping[str, str]) -> CalendarSync:
        """A read kept as one bookmark, saved with the snapshot like a ledger's bookmarks."""
        state = json.loads(bookmarks.get(CALENDAR_STATE) or "{}")
        self.skipped = []
        appointments, new_state = self.read(now, state)
        text = json.dumps(new_state, ensure_ascii=False, sort_keys=True)
        return CalendarSync(appointments, {CALENDAR_STATE: text}, tuple(self.skipped))

    def appointments(self, now: datetime) -> tuple[Appointment, ...]:
        """A read from nothing, keeping nothing: every event ahead."""
        return self.sync(now, {}).appointments


class SmsGatewayConnector(Connector):
    """Sends SMS; chosen by ``[sms] gateway``."""

    kind: ClassVar[ConnectorKind] = ConnectorKind.SMS

    @classmethod
    def section(cls) -> str:
        return "sms"

    @classmethod
    @abc.abstractmethod
    def open(cls, workspace: Workspace) -> Self:
        """The gateway, with its token from the environment."""

    @abc.abstractmethod
    def send(
        self, number: str, text: str, reference: str, hand_over: Callable[[], None]
    ) -> Outcome: ...

    @abc.abstractmethod
    def close(self) -> None: ...

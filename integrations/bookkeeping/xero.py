"""Xero: sales invoices, credit notes, payments and contacts in; History notes out.

One connector per organisation (Xero's "tenant"). What it does with the Accounting API
(../shared/reference/platform-apis.md §2):

- **Sync** reads contacts, ``ACCREC`` invoices, ``ACCRECCREDIT`` credit notes with their
  allocations and ``ACCRECPAYMENT`` payments, 1,000 to a page. After the first sync each
  resource is asked only for what changed since its bookmark (``If-Modified-Since``, from
  the newest ``UpdatedDateUTC`` Xero showed us, never our own clock): an unchanged
  organisation costs four calls. Deleted and voided records replace what we had.
- **Fresh re-check**: the invoices a reminder names are read again, by id, in one call.
- **Write-back**: a History note on each invoice and on the contact, with an
  ``Idempotency-Key``; the note's last line carries the reminder's key so history can be
  rebuilt from Xero (D4).
- **Per-client settings inside Xero** (D6): contact groups named "Reminders: firm",
  "Reminders: off", "Language: nl", "Kind: consumer" (prefixes configurable).
- **Webhooks**: :func:`verify_webhook` checks ``x-xero-signature``.

Money is read as Decimal straight from the JSON, never through float.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Self

from rich.markup import escape

from integrations.base import (
    BookkeepingConnector,
    Capability,
    ConnectorSettings,
    ConnectRequest,
    Webhook,
    Workspace,
)
from integrations.http import CallBudget, FatalError, HttpClient, HttpError, Response, paged
from integrations.notes import note_text_with_marker, read_marker
from integrations.oauth import BearerAuth, OAuthApp, TokenVault, secret_key, sign_in
from integrations.webhooks import hmac_sha256_base64_matches
from plugin.config.locales import default_language, default_timezone
from plugin.core.model import (
    LANGUAGES,
    CreditAllocation,
    CreditNote,
    Customer,
    CustomerKind,
    Invoice,
    InvoiceStatus,
    LedgerSnapshot,
    Note,
    Payment,
    PromiseToPay,
)
from plugin.core.money import Money
from plugin.core.policy import Overrides
from plugin.errors import ConfigError, KindlyError
from plugin.ports import SyncResult

__all__ = ["XeroConnector", "verify_webhook", "xero_app"]

log = logging.getLogger("kindly.xero")

PAGE_SIZE = 1000
#: How many invoice ids go in one fresh read (the URL stays well under 8 KB).
IDS_PER_CALL = 40
RATE_HEADERS = ("X-MinLimit-Remaining", "X-DayLimit-Remaining")
TONES = ("friendly", "neutral", "firm")
STATUS = {
    "DRAFT": InvoiceStatus.DRAFT,
    "SUBMITTED": InvoiceStatus.DRAFT,  # awaiting approval: not sent to the client yet
    "AUTHORISED": InvoiceStatus.OPEN,
    "PAID": InvoiceStatus.PAID,
    "VOIDED": InvoiceStatus.VOIDED,
}


AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
TOKEN_URL = "https://identity.xero.com/connect/token"  # noqa: S105 (a URL)
REVOKE_URL = "https://identity.xero.com/connect/revocation"
CONNECTIONS_URL = "https://api.xero.com/connections"
API_URL = "https://api.xero.com/api.xro/2.0"
CLIENT_SECRET = "KINDLY_XERO_CLIENT_SECRET"  # noqa: S105 (a variable name)
REFRESH_TOKEN = "KINDLY_XERO_REFRESH_TOKEN"  # noqa: S105 (a variable name)
#: Where `kindly connect xero` keeps the organisations chosen.
CONNECTION_SCOPE = "connection:xero"


def _url(description: str, base: bool = False) -> dict[str, Any]:
    return {
        "base_url": base,
        "schema": {"pattern": "^https?://", "minLength": 8, "description": description},
    }


@dataclass(frozen=True)
class XeroSettings(ConnectorSettings):
    """Connecting to Xero: the app's client id (the secret, if any, only in
    KINDLY_XERO_CLIENT_SECRET), the organisations, and where Xero's endpoints are (for a
    sandbox or a local test server)"""

    client_id: str | None = field(
        default=None,
        metadata={
            "schema": {
                "minLength": 1,
                "description": "The Xero app's client id (a PKCE app needs no secret)",
            }
        },
    )
    tenants: tuple[str, ...] = field(
        default=(),
        metadata={
            "schema": {
                "description": "Organisation (tenant) ids to sync; kindly connect xero fills "
                "this in the store"
            }
        },
    )
    #: Register http://127.0.0.1:PORT/callback as the app's redirect URI at Xero.
    redirect_port: int = field(
        default=8719,
        metadata={
            "schema": {
                "minimum": 0,
                "maximum": 65535,
                "description": "Loopback port for the sign-in redirect (0: any free port; "
                "Xero needs the exact URI registered)",
            }
        },
    )
    authorize_url: str = field(
        default=AUTHORIZE_URL, metadata=_url("Xero's authorization endpoint")
    )
    token_url: str = field(default=TOKEN_URL, metadata=_url("Xero's token endpoint"))
    revoke_url: str = field(default=REVOKE_URL, metadata=_url("Xero's revocation endpoint"))
    connections_url: str = field(
        default=CONNECTIONS_URL, metadata=_url("Xero's connections endpoint")
    )
    api_url: str = field(default=API_URL, metadata=_url("The Accounting API's base address", True))
    group_prefixes: Mapping[str, str] = field(
        default_factory=lambda: {"reminders": "Reminders", "language": "Language", "kind": "Kind"},
        metadata={
            "schema": {
                "additionalProperties": False,
                "description": "Contact group names that set a client's tone, language, kind "
                "or pause inside Xero, e.g. 'Reminders: firm', 'Language: nl', "
                "'Kind: consumer', 'Reminders: off'",
                "properties": {
                    "reminders": {"type": "string", "minLength": 1},
                    "language": {"type": "string", "minLength": 1},
                    "kind": {"type": "string", "minLength": 1},
                },
            }
        },
    )
    #: OAuth scopes to ask for; empty: offline_access, accounting.transactions and
    #: accounting.contacts (apps made since March 2026 need the granular ones).
    scopes: tuple[str, ...] = field(
        default=(),
        metadata={
            "schema": {
                "description": "OAuth scopes; default offline_access, accounting.transactions, "
                "accounting.contacts. Apps made since 2 March 2026: e.g. offline_access, "
                "accounting.invoices, accounting.payments, accounting.contacts"
            }
        },
    )


def xero_app(settings: XeroSettings, client_secret: str | None = None) -> OAuthApp:
    if not settings.client_id:
        raise KindlyError(
            "no Xero app is set up: [xero] client_id is missing in kindly.toml",
            hint="Create an app at developer.xero.com (auth code with PKCE), and put its "
            "client id under [xero].",
        )
    return OAuthApp(
        platform="Xero",
        client_id=settings.client_id,
        authorize_url=settings.authorize_url,
        token_url=settings.token_url,
        revoke_url=settings.revoke_url,
        # Apps made since 2 March 2026 get granular scopes instead of
        # accounting.transactions: [xero] scopes sets them.
        scopes=settings.scopes or XeroConnector.oauth_scopes,
        client_secret=client_secret,
    )


def verify_webhook(body: bytes, signature: str | None, key: str) -> bool:
    """Whether ``x-xero-signature`` is base64(HMAC-SHA256(raw body, webhook key))."""
    return hmac_sha256_base64_matches(body, signature, key)


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str


class XeroConnector(BookkeepingConnector):
    name: ClassVar[str] = "xero"
    title: ClassVar[str] = "Xero"
    auth: ClassVar[str] = "oauth2"
    oauth_scopes: ClassVar[tuple[str, ...]] = (
        "offline_access",
        "accounting.transactions",
        "accounting.contacts",
    )
    settings_type: ClassVar[type[ConnectorSettings]] = XeroSettings
    webhook: ClassVar[Webhook | None] = Webhook(
        "/webhooks/xero",
        "KINDLY_XERO_WEBHOOK_KEY",
        "Copy the webhook key from your app at developer.xero.com into it.",
    )
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    secret_variables: ClassVar[Mapping[str, str]] = {
        CLIENT_SECRET: "the app's client secret, if it has one",
        REFRESH_TOKEN: "a refresh token for `kindly connect xero` without a browser",
    }

    # -- connecting ------------------------------------------------------------------------

    @classmethod
    def open(cls, workspace: Workspace) -> list[Self]:
        """One connector per organisation chosen at `kindly connect xero` (or --org)."""
        settings = cls.settings_of(workspace.settings)
        assert isinstance(settings, XeroSettings)
        tenants = _chosen(cls.tenants(workspace), workspace.organisation, settings.tenants)
        vault = cls.token_vault(workspace)
        return [
            cls(
                settings,
                vault,
                tenant,
                company_country=workspace.settings.company.country,
                client_secret=os.environ.get(CLIENT_SECRET),
                clock=workspace.now,
            )
            for tenant in tenants
        ]

    @classmethod
    def token_vault(cls, workspace: Workspace) -> TokenVault:
        # One token covers every organisation: Xero rotates it on every refresh, and two
        # copies would soon hold a dead one.
        return TokenVault(workspace.store, cls.name, secret_key(), clock=workspace.now)

    @classmethod
    def tenants(cls, workspace: Workspace) -> list[Tenant]:
        saved = workspace.store.get_setting(CONNECTION_SCOPE, "tenants") or []
        return [Tenant(item["id"], item["name"]) for item in saved]

    @classmethod
    def connect(cls, workspace: Workspace, request: ConnectRequest) -> str:
        """Sign in (or take a refresh token), list the organisations, keep the chosen ones."""
        settings = cls.settings_of(workspace.settings)
        assert isinstance(settings, XeroSettings)
        vault = cls.token_vault(workspace)
        app = xero_app(settings, os.environ.get(CLIENT_SECRET))
        refresh_token = request.refresh_token or os.environ.get(REFRESH_TOKEN)
        http = HttpClient("Xero", secrets=lambda: [refresh_token or ""])
        token = sign_in(
            app,
            http,
            redirect_port=settings.redirect_port,
            refresh_token=refresh_token,
            open_browser=request.open_browser,
            say=request.say,
            what="Xero invoices",
            now=workspace.now,
        )
        # Kept before anything else is done with it: Xero has already retired the old one.
        vault.save(token)
        response = http.request(
            "GET",
            settings.connections_url,
            headers={"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"},
        )
        listed = response.json()
        tenants = tenants_from(listed if isinstance(listed, list) else [])
        organisation = workspace.organisation
        if organisation is not None:
            tenants = [t for t in tenants if organisation in (t.tenant_id, t.name)]
        if not tenants:
            raise KindlyError(
                "Xero granted access to no organisation"
                + (f" called {organisation!r}" if organisation else ""),
                hint="Run `kindly connect xero` again and tick the organisation to connect.",
            )
        workspace.store.set_setting(
            CONNECTION_SCOPE,
            "tenants",
            [{"id": t.tenant_id, "name": t.name} for t in tenants],
            workspace.now(),
        )
        names = ", ".join(f"[bold]{escape(t.name)}[/]" for t in tenants)
        message = f"Connected Xero: {names}."
        if workspace.settings.connector != cls.name:
            where = workspace.settings.source or "kindly.toml"
            message += f'\n[yellow]Note:[/] set connector = "xero" in {where} to sync from Xero.'
        return message

    @classmethod
    def disconnect(cls, workspace: Workspace) -> str:
        """Revoke the token at Xero, forget it and the organisations."""
        settings = cls.settings_of(workspace.settings)
        assert isinstance(settings, XeroSettings)
        tenants = cls.tenants(workspace)
        vault = cls.token_vault(workspace)
        token = vault.load()
        if token is not None:
            app = xero_app(settings, os.environ.get(CLIENT_SECRET))
            # Forgotten here even if Xero cannot be reached: an unused token dies in 60 days.
            with contextlib.suppress(HttpError):
                app.revoke(HttpClient("Xero", secrets=lambda: [token.refresh_token]), token)
            vault.forget()
        workspace.store.delete_setting(CONNECTION_SCOPE, "tenants")
        return f"Disconnected Xero ({len(tenants)} organisation(s)); Kindly's access is revoked."

    def __init__(
        self,
        settings: XeroSettings,
        vault: TokenVault,
        tenant: Tenant,
        *,
        company_country: str = "NL",
        client_secret: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        budget: CallBudget | None = None,
    ) -> None:
        self.settings = settings
        self.vault = vault
        self.tenant = tenant
        self.company_country = company_country
        self.clock = clock
        self.app = xero_app(settings, client_secret)
        self.warnings = []
        self.bearer = BearerAuth(
            vault, lambda current: self.app.refresh(self.identity, current, self.clock())
        )
        # The refresh runs under a lock in the store that holds up every other writer:
        # one try, with a deadline inside the store's 10-second busy timeout.
        self.identity = HttpClient(
            "Xero", secrets=self.bearer.secrets, sleep=sleep, attempts=1, timeout=(3.0, 6.0)
        )
        # Xero allows 60 calls a minute and 5,000 a day per organisation.
        self.http = self.bearer.client(
            "Xero",
            {"xero-tenant-id": tenant.tenant_id, "Accept": "application/json"},
            budget=budget or CallBudget(per_minute=60, sleep=sleep),
            rate_headers=RATE_HEADERS,
            sleep=sleep,
        )

    #: Records the last sync could not read, one sentence each.
    warnings: list[str]

    def __repr__(self) -> str:
        return f"XeroConnector({self.tenant.name!r}, tenant={self.tenant.tenant_id!r})"

    @property
    def source_id(self) -> str:
        return f"xero:{self.tenant.tenant_id}"

    @property
    def location(self) -> str:
        return f"Xero organisation {self.tenant.name}"

    # -- reading ---------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Response:
        return self.http.request("GET", f"{self.settings.api_url}/{path}", params=params, **kw)

    def _list(
        self, resource: str, where: str | None, since: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Every record of ``resource`` changed since ``since``, and the new bookmark."""
        # A second earlier than the newest change seen: a record changed in that same
        # second after our read is not missed (the overlap is merged away by id).
        headers = {"If-Modified-Since": _second_before(since)} if since else None
        newest = since
        started: list[str] = []

        def page(number: int) -> list[dict[str, Any]]:
            params: dict[str, Any] = {"page": number, "pageSize": PAGE_SIZE}
            if where:
                params["where"] = where
            if resource == "Contacts":
                params["includeArchived"] = "true"
            data = self._get(resource, params, headers=headers).json()
            items = data.get(resource) if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise FatalError(f"Xero: {resource} answered without a {resource} list")
            if number == 1 and (stamp := _iso_moment(data.get("DateTimeUTC"))):
                started.append(stamp)
            if self.progress is not None:
                self.progress(resource, (number - 1) * PAGE_SIZE + len(items))
            return items

        records = list(paged(page, PAGE_SIZE))
        for record in records:
            stamp = _iso_moment(record.get("UpdatedDateUTC"))
            if stamp and (newest is None or stamp > newest):
                newest = stamp
        # Paging by page number while records change can shift a record past a page
        # boundary unseen, while a later page moves the bookmark beyond it: the bookmark
        # never goes past a minute before Xero's own clock at the first page, so the next
        # sync asks for that minute again (merged by id).
        if started and newest is not None:
            ceiling = _second_before(started[0], seconds=60)
            if newest > ceiling:
                newest = max(ceiling, since) if since else ceiling
        return records, newest

    def read_snapshot(self) -> LedgerSnapshot:
        return self.sync(None, {}).snapshot

    def sync(self, previous: LedgerSnapshot | None, bookmarks: Mapping[str, str]) -> SyncResult:
        marks = dict(bookmarks) if previous is not None else {}
        queries = {
            "Contacts": None,
            "Invoices": 'Type=="ACCREC"',
            "CreditNotes": 'Type=="ACCRECCREDIT"',
            "Payments": 'PaymentType=="ACCRECPAYMENT"',
        }
        fetched: dict[str, list[dict[str, Any]]] = {}
        for resource, where in queries.items():
            records, newest = self._list(resource, where, marks.get(resource))
            fetched[resource] = records
            if newest:
                marks[resource] = newest
        snapshot = self._merge(previous, fetched)
        return SyncResult(snapshot, marks, tuple(self.warnings))

    def _merge(
        self, previous: LedgerSnapshot | None, fetched: Mapping[str, list[dict[str, Any]]]
    ) -> LedgerSnapshot:
        """The previous snapshot with the records that changed. A record Kindly cannot read
        keeps its previous version (or stays out), with a warning naming it: one odd
        record must not stop the whole organisation's sync."""
        base = previous or LedgerSnapshot()
        self.warnings = []

        def mapped(kind: str, record: Mapping[str, Any], id_field: str, read: Any) -> Any:
            try:
                return read(record)
            except (ValueError, ArithmeticError, KeyError, TypeError, FatalError) as exc:
                self.warnings.append(
                    f"Xero {kind} {record.get(id_field, '?')}: {exc}; kept as it was"
                )
                return None

        customers = {c.id: c for c in base.customers}
        for record in fetched["Contacts"]:
            customer = mapped("contact", record, "ContactID", self._customer)
            if customer is not None:
                customers[customer.id] = customer
        invoices = {i.id: i for i in base.invoices}
        promises = {p.invoice_id: p for p in base.promises}
        for record in fetched["Invoices"]:
            invoice_id = str(record.get("InvoiceID") or "")
            if record.get("Status") == "DELETED":
                invoices.pop(invoice_id, None)
                promises.pop(invoice_id, None)
                continue
            invoice = mapped("invoice", record, "InvoiceID", self._invoice)
            if invoice is None:
                continue
            invoices[invoice.id] = invoice
            promises.pop(invoice.id, None)
            promise = mapped("invoice", record, "InvoiceID", self._promise)
            if promise is not None:
                promises[invoice.id] = promise
        credit_notes = {n.id: n for n in base.credit_notes}
        for record in fetched["CreditNotes"]:
            note_id = str(record.get("CreditNoteID") or "")
            total = _decimal(record, "Total")
            if record.get("Status") not in ("AUTHORISED", "PAID") or total <= 0:
                credit_notes.pop(note_id, None)  # voided, deleted, draft or empty
                continue
            note = mapped("credit note", record, "CreditNoteID", self._credit_note)
            if note is not None:
                credit_notes[note.id] = note
        # Payments stay even when their invoice is not (yet) in the snapshot: one made
        # between reading invoices and reading payments would otherwise be lost for good.
        payments = {p.id: p for p in base.payments}
        for record in fetched["Payments"]:
            payment_id = str(record.get("PaymentID") or "")
            if record.get("Status") == "DELETED":
                payments.pop(payment_id, None)
                continue
            payment = mapped("payment", record, "PaymentID", self._payment)
            if payment is not None:
                payments[payment.id] = payment
        # An invoice whose contact did not come with the contacts still has a client to
        # remind: the name on the invoice, the company's country.
        for record in fetched["Invoices"]:
            contact = record.get("Contact") or {}
            contact_id = str(contact.get("ContactID") or "")
            if contact_id and contact_id not in customers and record.get("Status") != "DELETED":
                customer = mapped("contact", contact, "ContactID", self._customer)
                if customer is not None:
                    customers[contact_id] = customer
        for message in self.warnings:
            log.warning("%s", message)
        return LedgerSnapshot(
            customers=tuple(customers.values()),
            invoices=tuple(invoices.values()),
            payments=tuple(payments.values()),
            credit_notes=tuple(credit_notes.values()),
            promises=tuple(promises.values()),
        )

    def read_invoices(self, invoice_ids: Sequence[str]) -> tuple[Invoice, ...]:
        found: list[Invoice] = []
        for start in range(0, len(invoice_ids), IDS_PER_CALL):
            chunk = invoice_ids[start : start + IDS_PER_CALL]
            data = self._get("Invoices", {"IDs": ",".join(chunk), "pageSize": PAGE_SIZE}).json()
            for record in data.get("Invoices", []):
                if record.get("Status") != "DELETED":
                    found.append(self._invoice(record))
        return tuple(found)

    def online_invoice_url(self, invoice: Invoice) -> str | None:
        if invoice.online_url:
            return invoice.online_url
        try:
            data = self._get(f"Invoices/{invoice.id}/OnlineInvoice").json()
        except FatalError as exc:
            if exc.status in (400, 404):  # drafts and some invoice kinds have no link
                return None
            raise
        links = data.get("OnlineInvoices") or []
        return str(links[0]["OnlineInvoiceUrl"]) if links else None

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        response = self._get(f"Invoices/{invoice.id}", headers={"Accept": "application/pdf"})
        return response.body if response.body.startswith(b"%PDF") else None

    # -- writing ---------------------------------------------------------------------------

    def write_note(self, note: Note) -> None:
        details = note_text_with_marker(note)
        body = {"HistoryRecords": [{"Details": details}]}
        targets = [f"Invoices/{invoice_id}" for invoice_id in note.invoice_ids]
        targets.append(f"Contacts/{note.customer_id}")
        for target in targets:
            self.http.request(
                "PUT",
                f"{self.settings.api_url}/{target}/History",
                json=body,
                # The same note twice is one note, even if our answer got lost.
                headers={"Idempotency-Key": f"{note.id}:{target.split('/')[1]}"[:128]},
            )

    def existing_note_ids(self, notes: Iterable[Note]) -> set[str]:
        wanted = list(notes)
        by_invoice: dict[str, set[str]] = {}
        for note in wanted:
            if note.invoice_ids:
                by_invoice.setdefault(note.invoice_ids[0], set()).add(note.id)
        held: set[str] = set()
        for invoice_id in by_invoice:
            held |= {n.id for n in self._notes_on(invoice_id, "")}
        return {note.id for note in wanted if note.id in held}

    def _notes_on(self, invoice_id: str, customer_id: str) -> list[Note]:
        data = self._get(f"Invoices/{invoice_id}/History").json()
        notes = []
        for record in data.get("HistoryRecords", []):
            details = str(record.get("Details") or "")
            marker = read_marker(details)
            if marker is None:
                continue
            notes.append(
                Note(
                    id=marker.note_id,
                    created_at=_moment(record.get("DateUTC")) or self.clock(),
                    text=marker.text or details,
                    customer_id=customer_id or "?",
                    invoice_ids=(invoice_id,),
                    reminder_key=marker.key,
                    stage=marker.stage,
                    channel=marker.channel,
                )
            )
        return notes

    def read_notes(self) -> tuple[Note, ...]:
        """Kindly's notes on every invoice that has been reminded, read back from History.

        One call per open or recently paid invoice: used to rebuild history, not per run.
        """
        snapshot = self.read_snapshot()
        notes: dict[str, Note] = {}
        for invoice in snapshot.invoices:
            if invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.PAID):
                for note in self._notes_on(invoice.id, invoice.customer_id):
                    previous = notes.get(note.id)
                    ids = (previous.invoice_ids if previous else ()) + note.invoice_ids
                    notes[note.id] = Note(
                        note.id,
                        note.created_at,
                        note.text,
                        invoice.customer_id,
                        ids,
                        note.reminder_key,
                        note.stage,
                        note.channel,
                    )
        return tuple(notes.values())

    def send_invoice_email(self, invoice: Invoice, reference: str | None = None) -> None:
        """Have Xero send the invoice e-mail itself, to the contact's address in Xero.

        ``reference`` (the reminder's key) becomes the Idempotency-Key: a retry after a
        lost answer does not e-mail the client twice.
        """
        key = f"kindly-email-{reference or invoice.id}-{invoice.id}"[:128]
        self.http.request(
            "POST",
            f"{self.settings.api_url}/Invoices/{invoice.id}/Email",
            json={},
            headers={"Idempotency-Key": key},
        )

    def verify_webhook(self, body: bytes, headers: Mapping[str, str], key: str) -> bool:
        lowered = {name.lower(): value for name, value in headers.items()}
        return verify_webhook(body, lowered.get("x-xero-signature"), key)

    def webhook_records(self, body: bytes) -> list[tuple[str, str]]:
        import json

        try:
            events = json.loads(body or b"{}").get("events") or []
        except (ValueError, AttributeError):
            return []
        return [
            (str(e.get("eventCategory")), str(e.get("resourceId")))
            for e in events
            if isinstance(e, dict) and e.get("tenantId") == self.tenant.tenant_id
        ]

    # -- settings from contact groups ----------------------------------------------------

    def group_settings(self) -> Mapping[str, Overrides]:
        prefixes = self.settings.group_prefixes
        groups: dict[str, Overrides] = {}
        reminders = prefixes.get("reminders", "Reminders")
        for tone in TONES:
            groups[f"{reminders}: {tone}"] = Overrides(tone=tone)
        groups[f"{reminders}: off"] = Overrides(excluded=True)
        language = prefixes.get("language", "Language")
        for code in LANGUAGES:
            groups[f"{language}: {code}"] = Overrides(language=code)
        kind = prefixes.get("kind", "Kind")
        for value in CustomerKind:
            groups[f"{kind}: {value.value}"] = Overrides(kind=value)
        return groups

    # -- mapping ---------------------------------------------------------------------------

    def _customer(self, record: Mapping[str, Any]) -> Customer:
        contact_id = _text(record, "ContactID")
        country = _country(record.get("Addresses") or []) or self.company_country
        emails = [str(record.get("EmailAddress") or "").strip()]
        people = record.get("ContactPersons") or []
        emails += [
            str(p.get("EmailAddress") or "").strip() for p in people if p.get("IncludeInEmails")
        ]
        first = " ".join(
            part for part in (record.get("FirstName"), record.get("LastName")) if part
        ).strip()
        groups = frozenset(
            str(g.get("Name")) for g in record.get("ContactGroups") or [] if g.get("Name")
        )
        language = default_language(country)
        return Customer(
            id=contact_id,
            name=str(record.get("Name") or contact_id),
            contact_name=first or None,
            emails=tuple(dict.fromkeys(e for e in emails if _looks_like_email(e))),
            phones=_phones(record.get("Phones") or []),
            language=language if language in LANGUAGES else "en",
            country=country,
            timezone=default_timezone(country) or "UTC",
            tags=groups,
            address=_address(record.get("Addresses") or []),
        )

    def _invoice(self, record: Mapping[str, Any]) -> Invoice:
        invoice_id = _text(record, "InvoiceID")
        currency = str(record.get("CurrencyCode") or "EUR")
        issued = _day(record, "Date")
        try:
            return Invoice(
                id=invoice_id,
                number=str(record.get("InvoiceNumber") or invoice_id[:8]),
                customer_id=_text(record.get("Contact") or {}, "ContactID"),
                issue_date=issued,
                due_date=_day(record, "DueDate", default=issued),
                total=Money.of(_decimal(record, "Total"), currency),
                amount_due=Money.of(_decimal(record, "AmountDue"), currency),
                status=STATUS.get(str(record.get("Status")), InvoiceStatus.VOIDED),
                reference=str(record.get("Reference") or "") or None,
            )
        except ValueError as exc:
            raise FatalError(f"Xero invoice {invoice_id}: {exc}") from None

    def _promise(self, record: Mapping[str, Any]) -> PromiseToPay | None:
        # Xero's "expected payment date" is where a bookkeeper notes a promise to pay (R22).
        if not record.get("ExpectedPaymentDate"):
            return None
        updated = _moment(record.get("UpdatedDateUTC"))
        return PromiseToPay(
            invoice_id=_text(record, "InvoiceID"),
            promised_date=_day(record, "ExpectedPaymentDate"),
            recorded_on=updated.date() if updated else _day(record, "Date"),
        )

    def _credit_note(self, record: Mapping[str, Any]) -> CreditNote:
        currency = str(record.get("CurrencyCode") or "EUR")
        allocations = tuple(
            CreditAllocation(
                invoice_id=_text(item.get("Invoice") or {}, "InvoiceID"),
                amount=Money.of(_decimal(item, "Amount"), currency),
                date=_day(item, "Date") if item.get("Date") else None,
            )
            for item in record.get("Allocations") or []
            if Decimal(str(item.get("Amount") or 0)) > 0 and not item.get("IsDeleted")
        )
        return CreditNote(
            id=_text(record, "CreditNoteID"),
            number=str(record.get("CreditNoteNumber") or record["CreditNoteID"][:8]),
            customer_id=_text(record.get("Contact") or {}, "ContactID"),
            date=_day(record, "Date"),
            total=Money.of(_decimal(record, "Total"), currency),
            allocations=allocations,
        )

    def _payment(self, record: Mapping[str, Any]) -> Payment:
        invoice = record.get("Invoice") or {}
        currency = str(invoice.get("CurrencyCode") or record.get("CurrencyCode") or "EUR")
        return Payment(
            id=_text(record, "PaymentID"),
            invoice_id=_text(invoice, "InvoiceID"),
            date=_day(record, "Date"),
            amount=Money.of(_decimal(record, "Amount"), currency),
            reference=str(record.get("Reference") or "") or None,
        )


# -- helpers -------------------------------------------------------------------------------

_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


def _moment(value: Any) -> datetime | None:
    """Xero writes times as MS-JSON ``/Date(1550793549320+0000)/`` or as ISO 8601."""
    if not value:
        return None
    text = str(value)
    match = _MS_DATE.fullmatch(text)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso_moment(value: Any) -> str | None:
    moment = _moment(value)
    # RFC 3339 with its offset, as the API description asks of If-Modified-Since.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _second_before(stamp: str, seconds: int = 1) -> str:
    moment = _moment(stamp)
    if moment is None:
        return stamp
    return (moment - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(record: Mapping[str, Any], field: str, default: date | None = None) -> date:
    # Xero's dates are calendar days sent as midnight UTC; the *String twin is plain ISO.
    value = record.get(f"{field}String") or record.get(field)
    moment = _moment(value)
    if moment is None:
        if default is not None:
            return default
        raise FatalError(f"Xero record: field {field!r} holds no date ({value!r})")
    return moment.date()


def _decimal(record: Mapping[str, Any], field: str) -> Decimal:
    value = record.get(field)
    try:
        return Decimal(str(value if value is not None else 0))
    except ArithmeticError:
        raise FatalError(f"Xero record: field {field!r} is not an amount ({value!r})") from None


def _text(record: Mapping[str, Any], field: str) -> str:
    value = record.get(field)
    if not value:
        raise FatalError(f"Xero record: field {field!r} is missing")
    return str(value)


def _looks_like_email(value: str) -> bool:
    return "@" in value and not any(c in value for c in " \r\n")


def _phones(phones: list[Mapping[str, Any]]) -> tuple[str, ...]:
    found = []
    for phone in sorted(phones, key=lambda p: p.get("PhoneType") != "MOBILE"):
        number = str(phone.get("PhoneNumber") or "").strip()
        if not number:
            continue
        parts = [phone.get("PhoneCountryCode"), phone.get("PhoneAreaCode"), number]
        text = " ".join(str(p).strip() for p in parts if p)
        if phone.get("PhoneCountryCode") and not text.startswith("+"):
            text = "+" + text
        found.append(" ".join(text.replace("\r", " ").replace("\n", " ").split()))
    return tuple(dict.fromkeys(found))


def _postal(addresses: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    usable = [a for a in addresses if a.get("AddressLine1") or a.get("City") or a.get("Country")]
    usable.sort(key=lambda a: a.get("AddressType") != "POBOX")
    return usable[0] if usable else None


def _address(addresses: list[Mapping[str, Any]]) -> tuple[str, ...]:
    postal = _postal(addresses)
    if postal is None:
        return ()
    lines = [str(postal.get(f"AddressLine{n}") or "").strip() for n in range(1, 5)]
    city = " ".join(str(postal.get(k) or "").strip() for k in ("PostalCode", "City")).strip()
    return tuple(line for line in (*lines, city, str(postal.get("Country") or "").strip()) if line)


def _country(addresses: list[Mapping[str, Any]]) -> str | None:
    """An ISO code from Xero's free-text country ("Netherlands", "NL", "Nederland")."""
    postal = _postal(addresses)
    text = str(postal.get("Country") or "").strip() if postal else ""
    if not text:
        return None
    if len(text) == 2 and text.isalpha():
        # "UK" is what people write; ISO 3166 says GB.
        return "GB" if text.upper() == "UK" else text.upper()
    return _country_names().get(text.casefold())


def _country_names() -> dict[str, str]:
    if not _COUNTRY_NAMES:
        from babel import Locale

        for language in ("en", *LANGUAGES):
            for code, name in Locale.parse(language).territories.items():
                if len(code) == 2 and code.isalpha():
                    _COUNTRY_NAMES.setdefault(name.casefold(), code)
    return _COUNTRY_NAMES


_COUNTRY_NAMES: dict[str, str] = {}


def _chosen(
    tenants: list[Tenant], organisation: str | None, configured: tuple[str, ...]
) -> list[Tenant]:
    if not tenants:
        raise ConfigError(
            "Xero is not connected", hint="Run `kindly connect xero` (it opens the browser)."
        )
    if configured:
        tenants = [t for t in tenants if t.tenant_id in configured or t.name in configured]
    if organisation is not None:
        tenants = [t for t in tenants if organisation in (t.tenant_id, t.name)]
        if not tenants:
            raise ConfigError(
                f"no connected Xero organisation is called {organisation!r}",
                hint="`kindly connect xero` lists the organisations it connected.",
            )
    return tenants


def tenants_from(connections: list[Mapping[str, Any]]) -> list[Tenant]:
    return [
        Tenant(str(c["tenantId"]), str(c.get("tenantName") or c["tenantId"]))
        for c in connections
        if c.get("tenantType", "ORGANISATION") == "ORGANISATION" and c.get("tenantId")
    ]

"""Fiken (Norway): contacts, invoices with their payments, and credit notes in; Fiken's
own invoice sending out. No notes: Fiken has nowhere to keep them (see below).

One connector per company, on the OAuth platform base
(:mod:`integrations.bookkeeping.oauth_platform`); what its records mean is in
:mod:`integrations.bookkeeping.fiken_records`. What it does with API v2
(../shared/reference/platform-apis.md §6):

- **Connect**: OAuth 2 for a confidential app: the token endpoint takes the app's id and
  secret as HTTP Basic, and a refresh may hand out a new refresh token, which the vault
  always keeps. Revoking names the grant by a bearer access token, not a token in a form
  (:class:`FikenOAuthApp`). The companies are the slugs of ``GET /companies``.
- **Sync**: customers (``contacts?customer=true``), ``invoices`` and ``creditNotes``, 100 a
  call, following ``Fiken-Api-Page-Count`` so that no page past the end is asked for.
  After the first sync each list is filtered with ``lastModifiedGe``, which is a DAY:
  every sync reads again the day the last one started (Norwegian time) and merges by
  id, so a change made later that day is never missed. The payments come inside each
  invoice's sale (``salePayments``); ``sales/{saleId}/payments`` is asked, one call per
  sale, only for an invoice read in this sync whose sale shows money paid without
  listing it. An unchanged company costs three calls.
- **Fresh re-check**: one invoice is read by id; several are looked for in the list of
  unsettled invoices (100 a call), and those not on it (paid since) by id.
- **Notes**: none. Fiken has no notes on invoices, and a contact's notes are read-only.
  Kindly could attach a small PDF to each invoice instead, but Fiken keeps attachments as
  part of the accounts with no way to remove them, and sends an invoice's attachments
  along with it by default (``includeDocumentAttachments``): a client would receive
  Kindly's notes. So the notes stay in Kindly's history (``Capability.NOTES`` is not
  declared) and ``kindly history --rebuild`` cannot restore it from Fiken.
- **Extras**: the invoice PDF (``invoicePdf.downloadUrl``, with the bearer token, which
  goes to Fiken's own hosts only), and Fiken's own sending (``invoices/send`` by e-mail),
  which takes no idempotency key: a lost answer leaves it in doubt.
- **Rate limits**: ONE request at a time per user (more may be answered 429, and Fiken
  may ban the app), and no more than four a second. Every request of every Fiken
  connector in the process goes through one lock, then a mutex of the store that every
  Kindly process using it shares (PostgreSQL's advisory lock, a file lock beside an
  SQLite file), held until a quarter of a second after the call began; and
  :class:`FikenBudget` keeps this process's calls a quarter of a second apart. A 429 is
  waited out by the HTTP client. Fiken sends no quota headers.
- **Webhooks**: Fiken has none. Nor does its API show its own payment reminders
  ("purring"): :meth:`FikenConnector.platform_reminders` cannot tell.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, ClassVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from integrations.base import Capability, ConnectorSettings
from integrations.bookkeeping import fiken_records as records
from integrations.bookkeeping.oauth_platform import (
    OAuthPlatform,
    OAuthPlatformSettings,
    Tenant,
    endpoint,
)
from integrations.http import AuthError, CallBudget, FatalError, HttpClient, Limit, Response
from integrations.oauth import OAuthApp, Token, TokenVault
from integrations.pagination import Page, PageNumber, paginate
from integrations.sync import Merge, each_readable
from plugin.core.model import Invoice, LedgerSnapshot, Note
from plugin.ports import SyncResult

__all__ = ["FikenBudget", "FikenConnector", "FikenOAuthApp", "FikenSettings"]

#: Fiken's largest page.
PAGE_SIZE = 100
PAGE_COUNT_HEADER = "Fiken-Api-Page-Count"
#: The day Fiken writes in ``lastModifiedDate`` is Norway's.
OSLO = ZoneInfo("Europe/Oslo")
#: Our clock may run ahead of Fiken's: the day a sync re-reads from is the day this long
#: before it started, so the last minutes of a day are never skipped.
CLOCK_MARGIN = timedelta(minutes=15)
#: Hosts that may receive the bearer token besides the API's own: Fiken's description
#: shows file links on fiken.no.
FIKEN_HOSTS = frozenset({"fiken.no", "api.fiken.no"})

#: One request at a time in this process, whichever company's connector makes it: Fiken's
#: limit is per user, and the companies of one connection are the same user.
ONE_AT_A_TIME = threading.RLock()
#: When this process last called Fiken (on the budgets' clock), for the spacing.
_LAST_CALL: list[float] = []


@dataclass(frozen=True)
class FikenSettings(OAuthPlatformSettings):
    """Connecting to Fiken: the app's client id (its secret only in
    KINDLY_FIKEN_CLIENT_SECRET), the companies, and where the endpoints are"""

    authorize_url: str = field(
        default="https://fiken.no/oauth/authorize",
        metadata=endpoint("Fiken's authorization endpoint"),
    )
    token_url: str = field(
        default="https://fiken.no/oauth/token", metadata=endpoint("Fiken's token endpoint")
    )
    revoke_url: str = field(
        default="https://fiken.no/oauth/revoke", metadata=endpoint("Fiken's revocation endpoint")
    )
    api_url: str = field(
        default="https://api.fiken.no/api/v2",
        metadata=endpoint("The API up to /api/v2", base=True),
    )
    send_methods: tuple[str, ...] = field(
        default=("email",),
        metadata={
            "schema": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"enum": ["auto", "email", "ehf", "efaktura", "sms", "letter"]},
                "description": "How Fiken sends an invoice when Kindly asks it to ([delivery] "
                'email_via = "platform"), in order: email, ehf (e-invoice to a business), '
                "efaktura (to a person's online bank), sms, letter, or auto (Fiken chooses "
                "EHF, eFaktura, SMS, then e-mail)",
            }
        },
    )


@dataclass(frozen=True, repr=False)  # the base's repr, which leaves the secret out
class FikenOAuthApp(OAuthApp):
    """Fiken's OAuth app: revoking takes the grant's access token as a bearer token."""

    def revoke(self, http: HttpClient, token: Token) -> None:
        """End the grant: its refresh token and every access token it gave. An access token
        past its day is renewed first, once, since only a live one names the grant."""
        if not self.revoke_url:
            return
        try:
            self._revoke_with(http, token)
        except AuthError:
            self._revoke_with(http, self.refresh(http, token, datetime.now(UTC)))

    def _revoke_with(self, http: HttpClient, token: Token) -> None:
        assert self.revoke_url is not None
        http.request(
            "POST", self.revoke_url, headers={"Authorization": f"Bearer {token.access_token}"}
        )


@dataclass
class FikenBudget(CallBudget):
    """The calls a minute of :class:`CallBudget`, and never two calls within ``spacing``
    seconds: Fiken slows a user who asks more than four times a second."""

    spacing: float = 0.25
    #: When the last call went out, on ``clock``: one record for every budget sharing it
    #: (by default the process's, since the companies of one connection are one user).
    last_call: list[float] = field(default_factory=lambda: _LAST_CALL)

    def before_call(self, method: str = "GET") -> None:
        if self.last_call:
            wait = self.last_call[0] + self.spacing - self.clock()
            if wait > 0:
                self.sleep(wait)
        super().before_call(method)
        self.last_call[:] = [self.clock()]


class FikenConnector(OAuthPlatform):
    name: ClassVar[str] = "fiken"
    title: ClassVar[str] = "Fiken"
    # Fiken's OAuth has no scopes: an app reads what the user's companies allow.
    oauth_scopes: ClassVar[tuple[str, ...]] = ()
    settings_type: ClassVar[type[ConnectorSettings]] = FikenSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.INCREMENTAL, Capability.MAILER, Capability.PDF}
    )
    client_secret_variable: ClassVar[str] = "KINDLY_FIKEN_CLIENT_SECRET"  # noqa: S105
    refresh_token_variable: ClassVar[str] = "KINDLY_FIKEN_REFRESH_TOKEN"  # noqa: S105
    secret_variables: ClassVar[Mapping[str, str]] = {
        "KINDLY_FIKEN_CLIENT_SECRET": "the app's client secret (Fiken's token endpoint needs it)",
        "KINDLY_FIKEN_REFRESH_TOKEN": "a refresh token for `kindly connect fiken` without "
        "a browser",
    }
    app_hint: ClassVar[str] = (
        "In Fiken, tick that you are a developer (Rediger konto, Profil, Andre innstillinger), "
        "create an app under the API tab with the redirect URI, put its client id under "
        "[fiken] and its secret in KINDLY_FIKEN_CLIENT_SECRET."
    )
    # Four a second is Fiken's own figure; FikenBudget keeps any one second within it.
    calls_per_minute: ClassVar[int] = 240
    # Fiken counts per user, whose token is one workspace's connection.
    call_limits: ClassVar[tuple[Limit, ...]] = (Limit(4, 1, scope="token"),)
    mailer_idempotent: ClassVar[bool] = False
    settings: FikenSettings

    def __init__(
        self,
        settings: OAuthPlatformSettings,
        vault: TokenVault,
        tenant: Tenant,
        *,
        company_country: str = "NO",
        client_secret: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        budget: CallBudget | None = None,
    ) -> None:
        super().__init__(
            settings,
            vault,
            tenant,
            company_country=company_country,
            client_secret=client_secret,
            clock=clock,
            sleep=sleep,
            budget=budget,
        )
        #: Each invoice's PDF link, as the last read of it gave it.
        self._pdf_links: dict[str, str] = {}

    @classmethod
    def new_budget(cls, sleep: Callable[[float], None] = time.sleep) -> CallBudget:
        return FikenBudget(per_minute=cls.calls_per_minute, sleep=sleep)

    @classmethod
    def oauth_app(cls, settings: OAuthPlatformSettings, client_secret: str | None) -> OAuthApp:
        app = super().oauth_app(settings, client_secret)
        return FikenOAuthApp(**{item.name: getattr(app, item.name) for item in fields(app)})

    @classmethod
    def list_tenants(
        cls, settings: OAuthPlatformSettings, http: HttpClient, token: Token
    ) -> list[Tenant]:
        def fetch(page: int) -> Page[Any]:
            with ONE_AT_A_TIME:
                response = http.request(
                    "GET",
                    f"{settings.api_url}/companies",
                    params={"page": page, "pageSize": PAGE_SIZE},
                    headers={
                        "Authorization": f"Bearer {token.access_token}",
                        "Accept": "application/json",
                    },
                )
            rows = response.json()
            if not isinstance(rows, list):
                raise FatalError("Fiken did not list the companies")
            return Page.of(response, rows, rows)

        return [
            Tenant(str(row["slug"]), str(row.get("name") or row["slug"]))
            for row in paginate(_pages_of(), fetch)
            if isinstance(row, dict) and row.get("slug")
        ]

    # -- calling -----------------------------------------------------------------------------

    @property
    def company(self) -> str:
        return self.tenant.tenant_id

    def _url(self, path: str) -> str:
        return f"{self.settings.api_url}/companies/{self.company}/{path}"

    def _call(self, method: str, path: str, **options: Any) -> Response:
        return self._request(method, self._url(path), **options)

    def _request(
        self, method: str, url: str, headers: Mapping[str, str] | None = None, **options: Any
    ) -> Response:
        # Fiken recommends a request id on every call, to trace it on its side.
        marked = {"X-Request-ID": str(uuid.uuid4()), **(headers or {})}
        # One at a time in this process, then among every Kindly process on this store
        # (two workers syncing two companies of one Fiken user).
        with ONE_AT_A_TIME, self.vault.store.mutex(f"{self.name}:requests"):
            try:
                return self.http.request(method, url, headers=marked, **options)
            finally:
                self._keep_apart()

    def _keep_apart(self) -> None:
        """Hold on until a quarter of a second after this call began, so that the next
        process's call, which waits for this one, keeps to Fiken's four a second too."""
        # On a worker the budget is wrapped in the limits shared with the others.
        budget = getattr(self.http.budget, "local", self.http.budget)
        if isinstance(budget, FikenBudget) and budget.last_call:
            wait = budget.last_call[0] + budget.spacing - budget.clock()
            if wait > 0:
                budget.sleep(wait)

    def _pages(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every record of a list, 100 a call, up to the page count Fiken gives."""

        def fetch(page: int) -> Page[Any]:
            response = self._call(
                "GET", path, params={**params, "page": page, "pageSize": PAGE_SIZE}
            )
            rows = response.json()
            if not isinstance(rows, list):
                raise FatalError(f"Fiken answered {path} without a list")
            return Page.of(response, rows, rows)

        return (row for row in paginate(_pages_of(), fetch) if isinstance(row, dict))

    def _today(self) -> date:
        """The day a sync re-reads from: Norway's, or UTC's when that is still the day
        before (Fiken does not say in which zone it dates a change; an extra day read
        costs records, a day skipped would lose changes)."""
        moment = self.clock() - CLOCK_MARGIN
        return min(moment.astimezone(OSLO).date(), moment.astimezone(UTC).date())

    # -- reading -----------------------------------------------------------------------------

    def sync(self, previous: LedgerSnapshot | None, bookmarks: Mapping[str, str]) -> SyncResult:
        since = _since_from(bookmarks) if previous is not None else None
        if since is None:
            previous = None
        # Taken before reading: what changes while the lists are read is read again next time.
        started = self._today()
        changed = {} if since is None else {"lastModifiedGe": since.isoformat()}
        contacts = list(self._pages("contacts", {"customer": "true", **changed}))
        invoices = list(self._pages("invoices", changed))
        credit_notes = list(self._pages("creditNotes", changed))
        if self.progress is not None:
            self.progress("contacts", len(contacts))
            self.progress("invoices", len(invoices))
            self.progress("creditNotes", len(credit_notes))
        merge = Merge("Fiken", previous)
        self._merge_invoices(merge, invoices, self._listed_payments(invoices, merge))
        read_customer = partial(records.customer, company_country=self.company_country)
        merge.apply("contact", merge.customers, contacts, id_field="contactId", read=read_customer)
        # A contact not marked as a customer, whose invoice names it: its copy in the invoice.
        embedded = [record.get("customer") for record in invoices]
        missing = [
            contact
            for contact in embedded
            if isinstance(contact, dict)
            and contact.get("contactId") is not None
            and str(contact["contactId"]) not in merge.customers
        ]
        merge.apply("contact", merge.customers, missing, id_field="contactId", read=read_customer)
        merge.apply(
            "credit note",
            merge.credit_notes,
            credit_notes,
            id_field="creditNoteId",
            read=records.credit_note,
        )
        return SyncResult(merge.snapshot(), {"since": started.isoformat()}, tuple(merge.warnings))

    def _listed_payments(
        self, invoices: Iterable[Mapping[str, Any]], merge: Merge
    ) -> dict[str, list[dict[str, Any]]]:
        """The payments of each invoice whose sale shows money paid without listing it:
        one call per sale, for the invoices read in this sync only."""
        listed: dict[str, list[dict[str, Any]]] = {}
        for record in invoices:
            invoice_id = str(record.get("invoiceId") or "?")
            if records.is_deleted(record) or not merge.read(
                "invoice", invoice_id, partial(records.payments_missing, record)
            ):
                continue
            try:
                rows = self._call("GET", f"sales/{records.sale_id(record)}/payments").json()
            except (FatalError, ValueError, KeyError, TypeError) as exc:
                if isinstance(exc, AuthError):
                    raise  # every call would be refused alike: not this invoice's problem
                # One odd sale must not stop the company's sync: its payments wait.
                merge.warnings.append(f"Fiken invoice {invoice_id}: payments not read: {exc}")
                continue
            if not isinstance(rows, list):
                merge.warnings.append(f"Fiken invoice {invoice_id}: payments answered oddly")
                continue
            listed[invoice_id] = [row for row in rows if isinstance(row, dict)]
        return listed

    def _merge_invoices(
        self,
        merge: Merge,
        rows: Iterable[Mapping[str, Any]],
        listed: Mapping[str, Sequence[Mapping[str, Any]]],
    ) -> None:
        for record in rows:
            invoice_id = str(record.get("invoiceId") or "?")
            self._remember_pdf(record)
            held = [p.id for p in merge.payments.values() if p.invoice_id == invoice_id]
            if records.is_deleted(record):
                merge.invoices.pop(invoice_id, None)
                for payment_id in held:
                    del merge.payments[payment_id]
                continue
            read = merge.read("invoice", invoice_id, partial(records.invoice, record))
            if read is None:
                continue
            # Put in place, not popped and added: a record read again on its day keeps its
            # position, and an unchanged company syncs to an equal snapshot.
            merge.invoices[read.id] = read
            paid = merge.read(
                "payment", invoice_id, partial(records.payments, record, listed.get(invoice_id))
            )
            if paid is None:
                continue
            # A sale read again lists all its payments: one no longer there was removed.
            kept = {payment.id for payment in paid}
            for payment_id in held:
                if payment_id not in kept:
                    del merge.payments[payment_id]
            for payment in paid:
                merge.payments[payment.id] = payment

    def _remember_pdf(self, record: Mapping[str, Any]) -> None:
        link = records.pdf_link(record)
        if link and record.get("invoiceId") is not None:
            self._pdf_links[str(record["invoiceId"])] = link

    def read_invoices(self, invoice_ids: Sequence[str]) -> tuple[Invoice, ...]:
        """These invoices as Fiken has them now. One is read by id (one call). Several are
        looked for among the unsettled invoices, 100 a call, and those not there (paid
        since the sync, or on a later page than is worth reading) by id."""
        wanted = list(dict.fromkeys(i for i in invoice_ids if i.isdigit()))
        rows = self._unsettled(set(wanted)) if len(wanted) > 1 else {}
        for invoice_id in wanted:
            if invoice_id in rows:
                continue
            try:
                row = self._call("GET", f"invoices/{invoice_id}").json()
            except FatalError as exc:
                if exc.status == 404:
                    continue  # not an invoice of this company
                raise
            if isinstance(row, dict):
                rows[invoice_id] = row
        kept = [row for i in wanted if (row := rows.get(i)) is not None]

        def invoice_of(row: Mapping[str, Any]) -> Invoice | None:
            if records.is_deleted(row):
                return None
            self._remember_pdf(row)
            return records.invoice(row)

        return tuple(each_readable("Fiken", "invoice", kept, invoice_of, id_field="invoiceId"))

    def _unsettled(self, wanted: Collection[str]) -> dict[str, dict[str, Any]]:
        """The wanted invoices found among the unsettled ones. Paging stops once each is
        found, or once the pages left are as many as the invoices still missing (reading
        those one by one then costs no more)."""
        found: dict[str, dict[str, Any]] = {}
        page = 0
        while True:
            response = self._call(
                "GET", "invoices", params={"settled": "false", "page": page, "pageSize": PAGE_SIZE}
            )
            rows = response.json()
            if not isinstance(rows, list):
                raise FatalError("Fiken answered invoices without a list")
            for row in rows:
                if isinstance(row, dict) and str(row.get("invoiceId")) in wanted:
                    found[str(row["invoiceId"])] = row
            missing = len(wanted) - len(found)
            count = (Page.of(response, rows).header(PAGE_COUNT_HEADER) or "").strip()
            left = int(count) - page - 1 if count.isdigit() else 1
            if not missing or len(rows) < PAGE_SIZE or left <= 0 or left >= missing:
                return found
            page += 1

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        """The invoice's own PDF, from the link the last read of it gave (else the invoice
        is read for it first). The bearer token goes with it to Fiken's hosts only."""
        if not invoice.id.isdigit():
            return None
        link = self._pdf_links.get(invoice.id)
        if link is None:
            row = self._call("GET", f"invoices/{invoice.id}").json()
            link = records.pdf_link(row) if isinstance(row, dict) else None
        if not link or not self._fikens(link):
            return None
        response = self._request("GET", link, headers={"Accept": "application/pdf"})
        return response.body if response.body.startswith(b"%PDF") else None

    def _fikens(self, link: str) -> bool:
        api = urlsplit(self.settings.api_url)
        where = urlsplit(link)
        if (where.scheme, where.netloc) == (api.scheme, api.netloc):
            return True
        return where.scheme == "https" and (where.hostname or "") in FIKEN_HOSTS

    def platform_reminders(self) -> list[str]:
        """Fiken's API shows no setting for its own payment reminders ("purring"), but a
        reminder Fiken sent stays on the invoice as a document of type ``reminder``. An
        unsettled invoice holding one is chased by Fiken already, whether automatically
        or by hand: Kindly says so and holds back until the user chooses. One call per
        100 unsettled invoices."""
        reminded = [
            str(row.get("invoiceNumber") or row.get("invoiceId"))
            for row in self._pages("invoices", {"settled": "false"})
            if any(
                isinstance(document, dict) and document.get("type") == "reminder"
                for document in row.get("attachments") or []
            )
        ]
        if not reminded:
            return []
        shown = ", ".join(reminded[:5]) + (
            f" and {len(reminded) - 5} more" if len(reminded) > 5 else ""
        )
        return [
            f"Fiken has sent payment reminders of its own for unpaid invoices ({shown}). If "
            "Fiken's automatic reminders are on, turn them off in Fiken (Innstillinger, "
            "Faktura, Purring); if you sent these by hand, choose to send Kindly's beside "
            "them."
        ]

    # -- writing -----------------------------------------------------------------------------

    def write_notes(
        self, notes: Sequence[Note], *, check: Collection[str] = ()
    ) -> Mapping[str, str | None]:
        """Nothing is written, and nothing is asked: Fiken keeps no notes (see the module's
        description). Each note counts as done, since Kindly's history holds it and no later
        run could put it anywhere else; an answer of "not written" would leave it pending
        in every run."""
        return {note.id: None for note in notes}

    def existing_note_ids(self, notes: Iterable[Note]) -> set[str]:
        return set()

    def read_notes(self, among: Sequence[Invoice] | None = None) -> tuple[Note, ...]:
        """None: Fiken keeps no notes of Kindly's to read back."""
        return ()

    def send_invoice_email(self, invoice: Invoice, reference: str | None) -> None:
        """Fiken sends the invoice itself (``invoices/send``), by the first of ``[fiken]
        send_methods`` the client can receive (e-mail by default; EHF, eFaktura, SMS or a
        letter are valued in Norway), without the documents attached to the invoice. A
        method no client's record allows is refused by Fiken: the reminder falls back to
        the client's next channel. No idempotency key: a lost answer leaves it in doubt."""
        if not invoice.id.isdigit():
            raise FatalError(f"{invoice.number} is not a Fiken invoice")
        self._call(
            "POST",
            "invoices/send",
            json={
                "invoiceId": int(invoice.id),
                "method": list(self.settings.send_methods),
                "includeDocumentAttachments": False,
            },
        )


def _pages_of() -> PageNumber:
    """Fiken's paging: from page 0, and the page count in a header, so a full last page
    costs no call for an empty one after it."""
    return PageNumber(PAGE_SIZE, first=0, count_header=PAGE_COUNT_HEADER)


def _since_from(bookmarks: Mapping[str, str]) -> date | None:
    """The day the last sync started, which this one reads again from."""
    try:
        return date.fromisoformat(bookmarks["since"])
    except (KeyError, ValueError):
        return None

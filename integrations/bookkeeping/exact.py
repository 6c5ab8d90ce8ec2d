"""Exact Online: accounts, sales invoices and credit notes in, with what is still open of
each; communication notes out.

One connector per division (Exact's administration), on the OAuth platform base
(:mod:`integrations.bookkeeping.oauth_platform`); what the records mean is in
:mod:`integrations.bookkeeping.exact_records`. What it does with the REST API
(../shared/reference/platform-apis.md §5):

- **Connect** on the user's own Exact site (nl, be, de, co.uk, com, es, fr): the division
  is chosen among those the user may see (``current/Me``, ``system/Divisions``). Access
  tokens last ten minutes and Exact allows about one renewal per 9.5 minutes, so a token
  is renewed only in its last 30 seconds; the refresh token rotates and the previous one
  stops working at once, so renewals are serialised across processes (the base's lock).
- **Sync** reads the ``sync/`` endpoints, 1,000 rows a call, from each bookmark
  (``Timestamp gt …L``): accounts, sales invoices (and credit notes), and after the first
  sync what was deleted (``sync/Deleted``). What is still open comes from the receivables
  list, read whole each sync (60 rows a call): Exact changes no invoice when it is paid.
- **Fresh re-check**: the invoices a reminder names, by id, and the receivables list.
- **Write-back**: a communication note on the account for each reminder, its subject
  naming the invoices. Exact has no idempotency key: a note in doubt after a crash is
  looked for on the account before it is written again.
- **Rate limits**: 60 calls a minute and 5,000 a day per division, read from Exact's
  ``X-RateLimit-*`` headers; a sync stops before the day's allowance, keeping a reserve
  for the notes.
- **Webhooks**: ``HashCode`` in the body is the upper-case hex HMAC-SHA256 of the
  ``Content`` object's text exactly as it arrived, under the app's webhook secret.

Money is read as Decimal straight from the JSON, never through float.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar
from urllib.parse import urlsplit

from integrations.base import Capability, ConnectorSettings, Webhook
from integrations.bookkeeping import exact_records as records
from integrations.bookkeeping.oauth_platform import (
    OAuthPlatform,
    OAuthPlatformSettings,
    Tenant,
    endpoint,
)
from integrations.fields import group_prefixes_field, group_settings, moment
from integrations.http import AuthError, FatalError, HttpClient, HttpError, Limit, Response
from integrations.notes import note_from_marker, note_text_with_marker
from integrations.oauth import Token
from integrations.pagination import ODataNext, Page, paginate
from integrations.sync import Merge, each_readable
from integrations.webhooks import hmac_sha256_hex_matches
from integrations.workspace import Workspace
from plugin.core.model import Invoice, InvoiceStatus, LedgerSnapshot, Note
from plugin.core.money import Money
from plugin.core.policy import Overrides
from plugin.errors import KindlyError
from plugin.ports import SyncResult

__all__ = ["ExactOnlineConnector", "ExactOnlineSettings"]

SITES = ("nl", "be", "de", "co.uk", "com", "es", "fr")
#: Invoice ids in one fresh re-read (the filter stays short).
IDS_PER_CALL = 20
#: An account's eight classification slots: each holds one classification (a GUID) of the
#: classification name (category) with that sequence number.
CLASSIFICATION_SLOTS = tuple(f"Classification{n}" for n in range(1, 9))
ACCOUNT_FIELDS = (
    "ID,Name,Email,Language,Status,IsSales,Phone,AddressLine1,AddressLine2,AddressLine3,"
    "City,Postcode,State,Country,Timestamp," + ",".join(CLASSIFICATION_SLOTS)
)
CLASSIFICATION_FIELDS = "ID,Code,Description,AccountClassificationName"
#: The sales invoice fields read; the sync endpoint adds its Timestamp.
INVOICE_FIELDS = (
    "InvoiceID,InvoiceNumber,Type,Status,InvoiceDate,DueDate,Currency,AmountFC,InvoiceTo,"
    "YourRef,PaymentReference"
)
#: What a webhook subscription follows: an account or an invoice changed, and a financial
#: transaction (a payment booked, which changes no invoice in Exact).
WEBHOOK_TOPICS = ("Accounts", "SalesInvoices", "FinancialTransactions")
#: ``sync/Deleted``'s entity types Kindly follows. [unverified against Exact's reference:
#: the numbers the fake uses too; a wrong one only leaves a deleted record until the next
#: full read.]
DELETED_ACCOUNT, DELETED_INVOICE = 2, 13
#: Exact keeps deleted records' log two months: a sync longer ago than this reads all.
DELETIONS_KEPT_DAYS = 55
#: Exact's document type of a sales invoice.
DOCUMENT_SALES_INVOICE = 10


@dataclass(frozen=True)
class ExactOnlineSettings(OAuthPlatformSettings):
    """Connecting to Exact Online: the site the user signs in on, the app's client id (its
    secret only in KINDLY_EXACTONLINE_CLIENT_SECRET), the divisions"""

    site: str = field(
        default="nl",
        metadata={
            "schema": {
                "enum": list(SITES),
                "description": "The Exact Online site of the user: nl, be, de, co.uk, com, "
                "es or fr (start.exactonline.SITE)",
            }
        },
    )
    authorize_url: str = field(default="", metadata=endpoint("Default: from the site"))
    token_url: str = field(default="", metadata=endpoint("Default: from the site"))
    api_url: str = field(default="", metadata=endpoint("Default: from the site", base=True))
    group_prefixes: Mapping[str, str] = group_prefixes_field(
        "Account classification names in Exact Online"
    )
    webhook_url: str = field(
        default="",
        metadata={
            "schema": {
                "pattern": "^(https://.+)?$",
                "description": "The public https address of kindly serve's "
                "/webhooks/exactonline: when set, kindly connect subscribes each division "
                "to changes of accounts, sales invoices and financial transactions, and "
                "kindly disconnect ends the subscriptions",
            }
        },
    )

    def __post_init__(self) -> None:
        root = f"https://start.exactonline.{self.site}"
        for name, path in (
            ("authorize_url", "/api/oauth2/auth"),
            ("token_url", "/api/oauth2/token"),
            ("api_url", "/api/v1"),
        ):
            if not getattr(self, name):
                object.__setattr__(self, name, root + path)


class ExactOnlineConnector(OAuthPlatform):
    name: ClassVar[str] = "exactonline"
    title: ClassVar[str] = "Exact Online"
    oauth_scopes: ClassVar[tuple[str, ...]] = ()
    settings_type: ClassVar[type[ConnectorSettings]] = ExactOnlineSettings
    webhook: ClassVar[Webhook | None] = Webhook(
        "/webhooks/exactonline",
        "KINDLY_EXACTONLINE_WEBHOOK_SECRET",
        "Copy the webhook secret of your app in Exact's App Center into it.",
    )
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.INCREMENTAL,
            Capability.NOTES,
            Capability.WEBHOOKS,
            Capability.PDF,
            Capability.MAILER,
            Capability.GROUPS,
        }
    )
    #: Exact's print-and-mail call takes no idempotency key: an answer lost on the way
    #: leaves the e-mail in doubt ("unconfirmed"), never asked for twice.
    mailer_idempotent: ClassVar[bool] = False
    client_secret_variable: ClassVar[str] = "KINDLY_EXACTONLINE_CLIENT_SECRET"  # noqa: S105
    refresh_token_variable: ClassVar[str] = "KINDLY_EXACTONLINE_REFRESH_TOKEN"  # noqa: S105
    secret_variables: ClassVar[Mapping[str, str]] = {
        "KINDLY_EXACTONLINE_CLIENT_SECRET": "the app's client secret",
        "KINDLY_EXACTONLINE_REFRESH_TOKEN": "a refresh token for `kindly connect "
        "exactonline` without a browser",
        "KINDLY_EXACTONLINE_WEBHOOK_SECRET": "the webhook secret, for `kindly serve`",
    }
    app_hint: ClassVar[str] = (
        "Register an app in Exact's App Center with the redirect URI, put its client id "
        "under [exactonline] and its secret in KINDLY_EXACTONLINE_CLIENT_SECRET."
    )
    calls_per_minute: ClassVar[int] = 60
    call_limits: ClassVar[tuple[Limit, ...]] = (Limit(60, 60), Limit(5000, 86400))
    rate_headers: ClassVar[tuple[str, str] | None] = (
        "X-RateLimit-Minutely-Remaining",
        "X-RateLimit-Remaining",
    )
    refresh_margin: ClassVar[timedelta] = timedelta(seconds=30)
    settings: ExactOnlineSettings
    #: Invoice numbers by id, as read in this process (the notes' subjects name them).
    _numbers: dict[str, str]

    @classmethod
    def list_tenants(
        cls, settings: OAuthPlatformSettings, http: HttpClient, token: Token
    ) -> list[Tenant]:
        """The divisions the user may see, by code and name."""
        headers = {"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"}
        me = http.request(
            "GET",
            f"{settings.api_url}/current/Me",
            params={"$select": "CurrentDivision"},
            headers=headers,
        ).json()
        current = _results(me)[0].get("CurrentDivision") if _results(me) else None
        if current is None:
            raise FatalError("Exact Online did not say which division is the user's")
        listed = http.request(
            "GET",
            f"{settings.api_url}/{current}/system/Divisions",
            params={"$select": "Code,Description"},
            headers=headers,
        ).json()
        found = [
            Tenant(str(row["Code"]), str(row.get("Description") or row["Code"]))
            for row in _results(listed)
            if row.get("Code") is not None
        ]
        return found or [Tenant(str(current), str(current))]

    # -- calling -----------------------------------------------------------------------------

    @property
    def division(self) -> str:
        return self.tenant.tenant_id

    def _call(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, **options: Any
    ) -> Response:
        url = path if path.startswith("http") else f"{self.settings.api_url}/{self.division}/{path}"
        return self.http.request(method, url, params=params, **options)

    def _rows(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every row of a list, following OData's ``__next`` to the last page."""

        def fetch(following: str | None) -> Page[dict[str, Any]]:
            response = (
                self._call("GET", following) if following else self._call("GET", path, params)
            )
            body = response.json()
            return Page.of(response, ODataNext.results(body), body)

        return iter(paginate(ODataNext(), fetch))

    def _since(self, path: str, fields: str, mark: str | None) -> list[dict[str, Any]]:
        rows = list(
            self._rows(path, {"$select": fields, "$filter": f"Timestamp gt {int(mark or 0)}L"})
        )
        if self.progress is not None:
            self.progress(path.rsplit("/", 1)[-1], len(rows))
        return rows

    def _classification_names(self, accounts: Iterable[Mapping[str, Any]]) -> dict[str, str]:
        """The description of every account classification, by id: read (one call, 60 a
        page) only when an account read in this sync has one."""
        if not any(account.get(slot) for account in accounts for slot in CLASSIFICATION_SLOTS):
            return {}
        return {
            str(row["ID"]).lower(): str(row.get("Description") or row.get("Code") or "")
            for row in self._classifications()
        }

    def _classifications(self) -> list[dict[str, Any]]:
        return [
            row
            for row in self._rows("crm/AccountClassifications", {"$select": CLASSIFICATION_FIELDS})
            if row.get("ID")
        ]

    def _open(self) -> dict[str, Decimal]:
        rows = list(
            self._rows("read/financial/ReceivablesList", {"$select": "InvoiceNumber,Amount"})
        )
        return records.open_amounts(rows)

    # -- reading -----------------------------------------------------------------------------

    def sync(self, previous: LedgerSnapshot | None, bookmarks: Mapping[str, str]) -> SyncResult:
        marks = dict(bookmarks) if previous is not None else {}
        now = self.clock()
        if previous is not None and self._must_read_all(marks, now):
            previous, marks = None, {}
        accounts = self._since("sync/CRM/Accounts", ACCOUNT_FIELDS, marks.get("accounts"))
        invoices = self._since(
            "sync/SalesInvoice/SalesInvoices", INVOICE_FIELDS + ",Timestamp", marks.get("invoices")
        )
        deleted: list[dict[str, Any]] = []
        if previous is not None:
            deleted = self._since(
                "sync/Deleted", "EntityKey,EntityType,Timestamp", marks.get("deleted")
            )
        open_amounts = self._open()
        classifications = self._classification_names(accounts)
        merge = Merge("Exact Online", previous)
        merge.apply(
            "account",
            merge.customers,
            accounts,
            id_field="ID",
            read=partial(
                records.customer,
                company_country=self.company_country,
                classifications=classifications,
            ),
        )
        for record in invoices:
            invoice_id = str(record.get("InvoiceID") or "?")
            kind = int(record.get("Type") or 0)
            if kind in records.CREDIT_NOTE_TYPES:
                note = merge.read("credit note", invoice_id, partial(records.credit_note, record))
                if note is not None:
                    merge.credit_notes[note.id] = note
            elif kind in records.INVOICE_TYPES:
                open_amount = open_amounts.get(str(record.get("InvoiceNumber") or ""))
                read = merge.read(
                    "invoice", invoice_id, partial(records.invoice, record, open_amount)
                )
                if read is not None:
                    merge.invoices[read.id] = read
        for row in deleted:
            key, kind = str(row.get("EntityKey") or ""), int(row.get("EntityType") or 0)
            if kind == DELETED_INVOICE:
                merge.invoices.pop(key, None)
                merge.credit_notes.pop(key, None)
            elif kind == DELETED_ACCOUNT:
                merge.customers.pop(key, None)
        # Paid since the last sync changes no invoice in Exact: what is open is the list.
        for invoice_id, invoice in list(merge.invoices.items()):
            merge.invoices[invoice_id] = _with_open(invoice, open_amounts.get(invoice.number))
        self._numbers = {i.id: i.number for i in merge.invoices.values()}
        # One Timestamp sequence per division: the newest row seen is where each list,
        # and the deletions, go on from.
        for name, rows in (("accounts", accounts), ("invoices", invoices), ("deleted", deleted)):
            newest = max((int(r.get("Timestamp") or 0) for r in rows), default=None)
            if newest is not None:
                marks[name] = str(max(newest, int(marks.get(name) or 0)))
        if "deleted" not in marks:
            seen = [int(marks.get(name) or 0) for name in ("accounts", "invoices")]
            marks["deleted"] = str(max(seen))
        marks["synced_at"] = now.isoformat()
        return SyncResult(merge.snapshot(), marks, tuple(merge.warnings))

    def _must_read_all(self, marks: Mapping[str, str], now: datetime) -> bool:
        """Whether the bookmarks can no longer be trusted, so the sync reads everything:
        Exact keeps its log of deletions two months only, and a division moved to another
        database starts its Timestamps again (``DivisionMoveDate``, looked at in the first
        sync of a day: one call)."""
        try:
            last = datetime.fromisoformat(marks["synced_at"])
        except (KeyError, ValueError):
            return True
        if (now - last).days > DELETIONS_KEPT_DAYS:
            return True
        if now.date() == last.date():
            return False
        rows = self._rows(
            "system/Divisions",
            {"$filter": f"Code eq {int(self.division)}", "$select": "Code,DivisionMoveDate"},
        )
        moved = next((moment(row.get("DivisionMoveDate")) for row in rows), None)
        return moved is not None and moved >= last

    def read_invoices(self, invoice_ids: Sequence[str]) -> tuple[Invoice, ...]:
        wanted = [i for i in invoice_ids if _guid(i)]
        if not wanted:
            return ()
        open_amounts = self._open()
        found: list[Invoice] = []
        for start in range(0, len(wanted), IDS_PER_CALL):
            chunk = wanted[start : start + IDS_PER_CALL]
            text = " or ".join(f"InvoiceID eq guid'{i}'" for i in chunk)
            for row in self._rows(
                "salesinvoice/SalesInvoices", {"$filter": text, "$select": INVOICE_FIELDS}
            ):
                if int(row.get("Type") or 0) in records.INVOICE_TYPES:
                    number = str(row.get("InvoiceNumber") or "")
                    read = partial(records.invoice, open_amount=open_amounts.get(number))
                    found += each_readable(
                        "Exact Online", "invoice", [row], read, id_field="InvoiceID"
                    )
        self._numbers = {**getattr(self, "_numbers", {}), **{i.id: i.number for i in found}}
        return tuple(found)

    # -- writing -----------------------------------------------------------------------------

    def write_notes(
        self, notes: Sequence[Note], *, check: Collection[str] = ()
    ) -> Mapping[str, str | None]:
        """A communication note on the account per reminder. Exact takes no idempotency
        key: the notes in ``check`` are looked for on their accounts first."""
        doubtful = [note for note in notes if note.id in check]
        held = {n.id for account in {n.customer_id for n in doubtful} for n in self._on(account)}
        numbers = self._numbers_of({i for note in notes for i in note.invoice_ids})
        results: dict[str, str | None] = {}
        for position, note in enumerate(notes):
            if note.id in held:
                results[note.id] = None
                continue
            named = ", ".join(numbers.get(i, i) for i in note.invoice_ids)
            body = {
                "Account": note.customer_id,
                "Subject": f"Kindly: {named}"[:200],
                "Notes": note_text_with_marker(note),
                "Date": note.created_at.isoformat(),
            }
            try:
                self._call("POST", "activities/CommunicationNotes", json=body)
            except AuthError as exc:
                for rest in notes[position:]:
                    results[rest.id] = str(exc)
                break
            except HttpError as exc:
                results[note.id] = str(exc)
            else:
                results[note.id] = None
        return results

    def _numbers_of(self, invoice_ids: Iterable[str]) -> dict[str, str]:
        known = dict(getattr(self, "_numbers", {}))
        missing = [i for i in invoice_ids if i not in known]
        if missing:
            known.update({i.id: i.number for i in self.read_invoices(missing)})
        return known

    def _on(self, account: str) -> list[Note]:
        if not _guid(account):
            return []
        rows = self._rows(
            "activities/CommunicationNotes",
            {"$filter": f"Account eq guid'{account}'", "$select": "Account,Subject,Notes,Created"},
        )
        return self._notes_from(rows, None)

    def _notes_from(
        self, rows: Iterable[Mapping[str, Any]], numbers: Mapping[str, str] | None
    ) -> list[Note]:
        """Kindly's notes among communication notes; the invoices from the subject's
        numbers (``numbers``: number -> id; None: not needed)."""
        notes = []
        for row in rows:
            created = moment(row.get("Created")) or self.clock()
            note = note_from_marker(
                str(row.get("Notes") or ""),
                created_at=created,
                customer_id=str(row.get("Account") or ""),
                invoice_id="",
            )
            if note is None:
                continue
            named = str(row.get("Subject") or "").removeprefix("Kindly: ").split(", ")
            ids = tuple(numbers[n] for n in named if numbers and n in numbers)
            notes.append(replace(note, invoice_ids=ids))
        return notes

    def existing_note_ids(self, notes: Iterable[Note]) -> set[str]:
        wanted = list(notes)
        held = {n.id for account in {n.customer_id for n in wanted} for n in self._on(account)}
        return {note.id for note in wanted if note.id in held}

    def read_notes(self, among: Sequence[Invoice] | None = None) -> tuple[Note, ...]:
        """Kindly's notes, read back from the division's communication notes (60 a call)."""
        invoices = self.read_snapshot().invoices if among is None else among
        numbers = {invoice.number: invoice.id for invoice in invoices}
        rows = self._rows(
            "activities/CommunicationNotes", {"$select": "Account,Subject,Notes,Created"}
        )
        notes = self._notes_from(rows, numbers)
        if among is not None:
            ids = {invoice.id for invoice in among}
            notes = [note for note in notes if set(note.invoice_ids) & ids]
        return tuple(notes)

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        """The invoice as Exact printed it: the PDF attached to the invoice's document (three
        calls: the document, its attachments, the file). None where it has none."""
        if not _guid(invoice.id):
            return None
        documents = list(
            self._rows(
                "documents/Documents",
                {
                    "$filter": f"FinancialTransactionEntryID eq guid'{invoice.id}'",
                    "$select": "ID,Type",
                },
            )
        )
        # The sales invoice's own document first, should others be linked to it too.
        documents.sort(key=lambda row: int(row.get("Type") or 0) != DOCUMENT_SALES_INVOICE)
        for document in documents:
            attachments = self._rows(
                "documents/DocumentAttachments",
                {"$filter": f"Document eq guid'{document['ID']}'", "$select": "FileName,Url"},
            )
            for attachment in attachments:
                if str(attachment.get("FileName") or "").lower().endswith(".pdf"):
                    content = self._download(str(attachment.get("Url") or ""))
                    if content is not None:
                        return content
        return None

    def _download(self, url: str) -> bytes | None:
        """An attachment's file; the token goes only to Exact's own site."""
        where, api = urlsplit(url), urlsplit(self.settings.api_url)
        if (where.scheme, where.netloc) != (api.scheme, api.netloc):
            return None
        response = self._call("GET", url + "&Download=1", headers={"Accept": "*/*"})
        return response.body if response.body.startswith(b"%PDF") else None

    def send_invoice_email(self, invoice: Invoice, reference: str | None) -> None:
        """Exact e-mails the invoice itself (``PrintedSalesInvoices``, with the account's
        address and the division's e-mail layout). Only ever for a processed invoice: on one
        still open, printing would process (book) it, and Kindly plans no reminder for
        those. Exact answers 201 even when no e-mail went out, saying why in
        ``EmailCreationError``."""
        answer = self._call(
            "POST",
            "salesinvoice/PrintedSalesInvoices",
            json={
                "InvoiceID": invoice.id,
                "SendEmailToCustomer": True,
                "SendInvoiceToCustomerPostbox": False,
                "SendOutputBasedOnAccount": False,
            },
        ).json()
        failed = next(iter(_results(answer)), {}).get("EmailCreationError")
        if failed:
            raise FatalError(f"Exact Online did not e-mail invoice {invoice.number}: {failed}")

    # -- webhook subscriptions ---------------------------------------------------------------

    @classmethod
    def after_connect(cls, workspace: Workspace) -> str:
        """Subscribe every connected division to Exact's webhooks when ``webhook_url`` is
        set. A failure here leaves the connection made: syncs run all the same."""
        url = cls._webhook_url(workspace)
        if not url:
            return ""
        problems = []
        for connector in cls.open(workspace):
            try:
                connector.subscribe(url)
            except (HttpError, KindlyError) as exc:
                problems.append(f"{connector.tenant.name}: {exc}")
        if problems:
            return "Exact Online's webhooks could not be set up (" + "; ".join(problems) + ")."
        return f"Exact Online calls {url} when accounts, sales invoices or payments change."

    @classmethod
    def before_disconnect(cls, workspace: Workspace) -> str:
        url = cls._webhook_url(workspace)
        if not url or not cls.tenants(workspace):
            return ""
        problems = []
        for connector in cls.open(workspace):
            try:
                connector.unsubscribe(url)
            except (HttpError, KindlyError) as exc:
                problems.append(f"{connector.tenant.name}: {exc}")
        if problems:
            return (
                "The webhook subscriptions could not all be ended ("
                + "; ".join(problems)
                + "): remove them in Exact's App Center."
            )
        return "Exact Online's webhook subscriptions are ended."

    @classmethod
    def _webhook_url(cls, workspace: Workspace) -> str:
        settings = cls.own_settings(workspace)
        assert isinstance(settings, ExactOnlineSettings)
        return settings.webhook_url

    def _subscriptions(self) -> list[dict[str, Any]]:
        return list(
            self._rows("webhooks/WebhookSubscriptions", {"$select": "ID,CallbackURL,Topic"})
        )

    def subscribe(self, url: str) -> list[str]:
        """Subscribe this division to :data:`WEBHOOK_TOPICS` at ``url``; the topics newly
        subscribed (one that exists already is left as it is)."""
        held = {(row.get("Topic"), row.get("CallbackURL")) for row in self._subscriptions()}
        made = []
        for topic in WEBHOOK_TOPICS:
            if (topic, url) not in held:
                self._call(
                    "POST",
                    "webhooks/WebhookSubscriptions",
                    json={"CallbackURL": url, "Topic": topic},
                )
                made.append(topic)
        return made

    def unsubscribe(self, url: str) -> int:
        """End this division's subscriptions to ``url``; how many there were."""
        ended = 0
        for row in self._subscriptions():
            if row.get("CallbackURL") == url and _guid(str(row.get("ID") or "")):
                self._call("DELETE", f"webhooks/WebhookSubscriptions(guid'{row['ID']}')")
                ended += 1
        return ended

    # -- settings held in Exact ------------------------------------------------------------

    def group_settings(self) -> Mapping[str, Overrides]:
        return group_settings(self.settings.group_prefixes)

    def put_in_group(self, customer_id: str, group: str, leaving: Collection[str] = ()) -> None:
        """Give the account the classification ``group`` ("Reminders: firm") in its
        category's slot, and clear the slots that hold one of ``leaving``. The
        classification must exist in Exact: Kindly makes none (its category is the user's
        choice), and says where to make it."""
        if not _guid(customer_id):
            raise KindlyError(f"{customer_id!r} is not an Exact Online account")
        listed = self._classifications()
        by_description = {str(row.get("Description") or ""): row for row in listed}
        target = by_description.get(group)
        if target is None:
            raise KindlyError(
                f"Exact Online has no account classification {group!r}",
                hint="Make it in Exact Online (CRM, Setup, Classifications) under the "
                "classification you keep Kindly's settings in, then write it again.",
            )
        categories = {
            str(row.get("ID") or "").lower(): int(row.get("SequenceNumber") or 0)
            for row in self._rows(
                "crm/AccountClassificationNames", {"$select": "ID,SequenceNumber"}
            )
        }
        slot = categories.get(str(target.get("AccountClassificationName") or "").lower(), 0)
        if not 1 <= slot <= len(CLASSIFICATION_SLOTS):
            raise KindlyError(f"Exact Online did not say which classification {group!r} belongs to")
        path = f"crm/Accounts(guid'{customer_id}')"
        account = _results(
            self._call("GET", path, {"$select": ",".join(CLASSIFICATION_SLOTS)}).json()
        )[0]
        leaving_ids = {
            str(by_description[name]["ID"]).lower() for name in leaving if name in by_description
        }
        changes: dict[str, str | None] = {}
        for number, name in enumerate(CLASSIFICATION_SLOTS, start=1):
            current = str(account.get(name) or "").lower()
            if number == slot:
                if current != str(target["ID"]).lower():
                    changes[name] = str(target["ID"])
            elif current in leaving_ids:
                changes[name] = None
        if changes:
            self._call("PUT", path, json=changes)

    # -- webhooks ----------------------------------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str], key: str) -> bool:
        """``HashCode`` is hex HMAC-SHA256 of the ``Content`` object's text as it arrived
        (not as re-serialised: any other spacing or order would not match)."""
        content, hash_code = _content_and_hash(body)
        return content is not None and hmac_sha256_hex_matches(content, hash_code, key)

    def _content(self, body: bytes) -> Mapping[str, Any] | None:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return None
        content = data.get("Content") if isinstance(data, dict) else None
        if not isinstance(content, dict) or str(content.get("Division")) != self.division:
            return None
        return content

    def webhook_records(self, body: bytes) -> list[tuple[str, str]]:
        content = self._content(body)
        if content is None or not content.get("Topic") or not content.get("Key"):
            return []
        return [(str(content["Topic"]), str(content["Key"]))]

    def webhook_event_ids(self, body: bytes, headers: Mapping[str, str] | None = None) -> list[str]:
        content = self._content(body)
        if content is None:
            return []
        parts = ("Division", "Topic", "Action", "Key", "EventCreatedOn")
        return [":".join(str(content.get(part, "")) for part in parts)]


def _results(answer: Any) -> list[dict[str, Any]]:
    """An OData answer's rows: ``d.results``, or ``d`` itself for one record."""
    data = answer.get("d") if isinstance(answer, dict) else None
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        return [row for row in data["results"] if isinstance(row, dict)]
    if isinstance(data, dict):
        return [data]
    raise FatalError("Exact Online answered without an OData 'd'")


def _with_open(invoice: Invoice, open_amount: Decimal | None) -> Invoice:
    if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.PAID):
        return invoice
    due = max(Decimal(0), min(open_amount or Decimal(0), invoice.total.amount))
    return replace(
        invoice,
        amount_due=Money.of(due, invoice.currency),
        status=InvoiceStatus.OPEN if due > 0 else InvoiceStatus.PAID,
    )


def _guid(text: str) -> bool:
    """Exact's ids are GUIDs: anything else names nothing there (and is never put in a
    filter)."""
    import uuid

    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _content_and_hash(body: bytes) -> tuple[bytes | None, str | None]:
    """The ``Content`` object's bytes as they arrived, and the ``HashCode``."""
    try:
        text = body.decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return None, None
    if not isinstance(data, dict) or not isinstance(data.get("HashCode"), str):
        return None, None
    decoder = json.JSONDecoder()
    position = 0
    while True:
        found = text.find('"Content"', position)
        if found < 0:
            return None, None
        colon = text.find(":", found + len('"Content"'))
        start = colon + 1
        while start < len(text) and text[start] in " \t\r\n":
            start += 1
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            position = found + 1
            continue
        if isinstance(value, dict) and value == data.get("Content"):
            return text[start:end].encode("utf-8"), data["HashCode"]
        position = found + 1

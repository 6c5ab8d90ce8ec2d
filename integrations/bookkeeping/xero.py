"""Xero: sales invoices, credit notes, payments and contacts in; History notes out.

One connector per organisation (Xero's "tenant"), on the OAuth platform base
(:mod:`integrations.bookkeeping.oauth_platform`); what Xero's records mean is in
:mod:`integrations.bookkeeping.xero_records`. What it does with the Accounting API
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
- **Webhooks**: ``x-xero-signature`` is checked by the base's HMAC check, which the
  :class:`Webhook` declaration names (:func:`verify_webhook` for one body and key).

Money is read as Decimal straight from the JSON, never through float.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

from integrations.base import Capability, ConnectorSettings, Webhook
from integrations.bookkeeping import xero_records
from integrations.bookkeeping.oauth_platform import (
    OAuthPlatform,
    OAuthPlatformSettings,
    Tenant,
    endpoint,
)
from integrations.fields import group_prefixes_field, group_settings, moment
from integrations.http import AuthError, FatalError, HttpClient, HttpError, Limit
from integrations.notes import (
    held_note_ids,
    note_from_marker,
    note_text_with_marker,
    notes_across_invoices,
)
from integrations.oauth import Token
from integrations.pagination import Page, PageNumber, paginate
from integrations.sync import Merge, advanced_bookmark, each_readable, stamp_before
from integrations.webhooks import events_from_json, hmac_sha256_base64_matches
from plugin.core.model import (
    Invoice,
    LedgerSnapshot,
    Note,
)
from plugin.core.policy import Overrides
from plugin.ports import SyncResult

__all__ = ["Tenant", "XeroConnector", "XeroSettings", "tenants_from", "verify_webhook"]

PAGE_SIZE = 1000
#: How many invoice ids go in one fresh read (the URL stays well under 8 KB).
IDS_PER_CALL = 40
#: What a sync lists, with its filter: receivables only.
RESOURCES = {
    "Contacts": None,
    "Invoices": 'Type=="ACCREC"',
    "CreditNotes": 'Type=="ACCRECCREDIT"',
    "Payments": 'PaymentType=="ACCRECPAYMENT"',
}


@dataclass(frozen=True)
class XeroSettings(OAuthPlatformSettings):
    """Connecting to Xero: the app's client id (the secret, if any, only in
    KINDLY_XERO_CLIENT_SECRET), the organisations, and where Xero's endpoints are (for a
    sandbox or a local test server)"""

    authorize_url: str = field(
        default="https://login.xero.com/identity/connect/authorize",
        metadata=endpoint("Xero's authorization endpoint"),
    )
    token_url: str = field(
        default="https://identity.xero.com/connect/token",
        metadata=endpoint("Xero's token endpoint"),
    )
    revoke_url: str = field(
        default="https://identity.xero.com/connect/revocation",
        metadata=endpoint("Xero's revocation endpoint"),
    )
    api_url: str = field(
        default="https://api.xero.com/api.xro/2.0",
        metadata=endpoint("The Accounting API's base address", base=True),
    )
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
    connections_url: str = field(
        default="https://api.xero.com/connections", metadata=endpoint("Xero's connections endpoint")
    )
    group_prefixes: Mapping[str, str] = group_prefixes_field("Contact group names in Xero")


def verify_webhook(body: bytes, signature: str | None, key: str) -> bool:
    """Whether ``x-xero-signature`` is base64(HMAC-SHA256(raw body, webhook key))."""
    return hmac_sha256_base64_matches(body, signature, key)


def tenants_from(connections: list[Mapping[str, Any]]) -> list[Tenant]:
    return [
        Tenant(str(c["tenantId"]), str(c.get("tenantName") or c["tenantId"]))
        for c in connections
        if c.get("tenantType", "ORGANISATION") == "ORGANISATION" and c.get("tenantId")
    ]


#: History records sent in one PUT.
HISTORY_BATCH = 50


def _note_targets(note: Note) -> list[str]:
    """The records a note goes on: each invoice it names, and the contact."""
    return [f"Invoices/{invoice_id}" for invoice_id in note.invoice_ids] + [
        f"Contacts/{note.customer_id}"
    ]


class XeroConnector(OAuthPlatform):
    name: ClassVar[str] = "xero"
    title: ClassVar[str] = "Xero"
    # Apps made since 2 March 2026 get granular scopes instead of accounting.transactions:
    # [xero] scopes sets them.
    oauth_scopes: ClassVar[tuple[str, ...]] = (
        "offline_access",
        "accounting.transactions",
        "accounting.contacts",
        # Only to see whether Xero's own invoice reminders are on.
        "accounting.settings.read",
    )
    settings_type: ClassVar[type[ConnectorSettings]] = XeroSettings
    webhook: ClassVar[Webhook | None] = Webhook(
        "/webhooks/xero",
        "KINDLY_XERO_WEBHOOK_KEY",
        "Copy the webhook key from your app at developer.xero.com into it.",
        signature_header="x-xero-signature",
    )
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    client_secret_variable: ClassVar[str] = "KINDLY_XERO_CLIENT_SECRET"  # noqa: S105
    refresh_token_variable: ClassVar[str] = "KINDLY_XERO_REFRESH_TOKEN"  # noqa: S105
    secret_variables: ClassVar[Mapping[str, str]] = {
        "KINDLY_XERO_CLIENT_SECRET": "the app's client secret, if it has one",
        "KINDLY_XERO_REFRESH_TOKEN": "a refresh token for `kindly connect xero` without a browser",
    }
    app_hint: ClassVar[str] = (
        "Create an app at developer.xero.com (auth code with PKCE), and put its client id "
        "under [xero]."
    )
    # Xero allows 60 calls a minute and 5,000 a day per organisation.
    calls_per_minute: ClassVar[int] = 60
    call_limits: ClassVar[tuple[Limit, ...]] = (
        Limit(60, 60),
        Limit(5000, 86400),
        Limit(10000, 60, scope="app"),
    )
    rate_headers: ClassVar[tuple[str, str] | None] = (
        "X-MinLimit-Remaining",
        "X-DayLimit-Remaining",
    )
    settings: XeroSettings

    def tenant_headers(self, tenant: Tenant) -> Mapping[str, str]:
        return {"xero-tenant-id": tenant.tenant_id}

    @classmethod
    def list_tenants(
        cls, settings: OAuthPlatformSettings, http: HttpClient, token: Token
    ) -> list[Tenant]:
        assert isinstance(settings, XeroSettings)
        response = http.request(
            "GET",
            settings.connections_url,
            headers={"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"},
        )
        listed = response.json()
        return tenants_from(listed if isinstance(listed, list) else [])

    # -- reading ---------------------------------------------------------------------------

    def _list(
        self, resource: str, where: str | None, since: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Every record of ``resource`` changed since ``since``, and the new bookmark."""
        # A second earlier than the newest change seen: a record changed in that same
        # second after our read is not missed (the overlap is merged away by id).
        headers = {"If-Modified-Since": stamp_before(since)} if since else None
        server_time: list[str | None] = []

        def fetch(number: int) -> Page[dict[str, Any]]:
            params: dict[str, Any] = {"page": number, "pageSize": PAGE_SIZE}
            if where:
                params["where"] = where
            if resource == "Contacts":
                params["includeArchived"] = "true"
            data = self.get(resource, params, headers=headers).json()
            items = data.get(resource) if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise FatalError(f"Xero: {resource} answered without a {resource} list")
            if not server_time:
                server_time.append(xero_records.iso_moment(data.get("DateTimeUTC")))
            if self.progress is not None:
                self.progress(resource, (number - 1) * PAGE_SIZE + len(items))
            return Page(items, data)

        pages = PageNumber(PAGE_SIZE, count_field=("pagination", "pageCount"))
        records = list(paginate(pages, fetch))
        newest = advanced_bookmark(
            since,
            (xero_records.iso_moment(record.get("UpdatedDateUTC")) or "" for record in records),
            server_time[0] if server_time else None,
        )
        return records, newest

    def sync(self, previous: LedgerSnapshot | None, bookmarks: Mapping[str, str]) -> SyncResult:
        marks = dict(bookmarks) if previous is not None else {}
        fetched: dict[str, list[dict[str, Any]]] = {}
        for resource, where in RESOURCES.items():
            records, newest = self._list(resource, where, marks.get(resource))
            fetched[resource] = records
            if newest:
                marks[resource] = newest
        merge = self._merge(Merge("Xero", previous), fetched)
        return SyncResult(merge.snapshot(), marks, tuple(merge.warnings))

    def _merge(self, merge: Merge, fetched: Mapping[str, list[dict[str, Any]]]) -> Merge:
        """The changed records put over the previous ones; deleted and voided ones out."""
        read_customer = partial(xero_records.customer, company_country=self.company_country)
        contacts = fetched["Contacts"]
        merge.apply("contact", merge.customers, contacts, id_field="ContactID", read=read_customer)
        for record in fetched["Invoices"]:
            invoice_id = str(record.get("InvoiceID") or "")
            if record.get("Status") == "DELETED":
                merge.invoices.pop(invoice_id, None)
                merge.promises.pop(invoice_id, None)
                continue
            invoice = merge.read(
                "invoice", invoice_id or "?", partial(xero_records.invoice, record)
            )
            if invoice is None:
                continue
            merge.invoices[invoice.id] = invoice
            merge.promises.pop(invoice.id, None)
            promise = merge.read("invoice", invoice_id, partial(xero_records.promise, record))
            if promise is not None:
                merge.promises[invoice.id] = promise
        merge.apply(
            "credit note",
            merge.credit_notes,
            fetched["CreditNotes"],
            id_field="CreditNoteID",
            read=xero_records.credit_note,
            gone=xero_records.no_credit,
        )
        # Payments stay even when their invoice is not (yet) in the snapshot: one made
        # between reading invoices and reading payments would otherwise be lost for good.
        merge.apply(
            "payment",
            merge.payments,
            fetched["Payments"],
            id_field="PaymentID",
            read=xero_records.payment,
            gone=lambda r: r.get("Status") == "DELETED",
        )
        # An invoice whose contact did not come with the contacts still has a client to
        # remind: the name on the invoice, the company's country.
        for record in fetched["Invoices"]:
            contact = record.get("Contact") or {}
            contact_id = str(contact.get("ContactID") or "")
            if (
                contact_id
                and contact_id not in merge.customers
                and record.get("Status") != "DELETED"
            ):
                customer = merge.read("contact", contact_id, partial(read_customer, contact))
                if customer is not None:
                    merge.customers[contact_id] = customer
        return merge

    def read_invoices(self, invoice_ids: Sequence[str]) -> tuple[Invoice, ...]:
        found: list[Invoice] = []
        for start in range(0, len(invoice_ids), IDS_PER_CALL):
            chunk = invoice_ids[start : start + IDS_PER_CALL]
            data = self.get("Invoices", {"IDs": ",".join(chunk), "pageSize": PAGE_SIZE}).json()
            kept = [r for r in data.get("Invoices", []) if r.get("Status") != "DELETED"]
            found += each_readable(
                "Xero", "invoice", kept, xero_records.invoice, id_field="InvoiceID"
            )
        return tuple(found)

    def online_invoice_url(self, invoice: Invoice) -> str | None:
        if invoice.online_url:
            return invoice.online_url
        try:
            data = self.get(f"Invoices/{invoice.id}/OnlineInvoice").json()
        except FatalError as exc:
            if exc.status in (400, 404):  # drafts and some invoice kinds have no link
                return None
            raise
        links = data.get("OnlineInvoices") or []
        return str(links[0]["OnlineInvoiceUrl"]) if links else None

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        response = self.get(f"Invoices/{invoice.id}", headers={"Accept": "application/pdf"})
        return response.body if response.body.startswith(b"%PDF") else None

    # -- writing ---------------------------------------------------------------------------

    def write_notes(
        self, notes: Sequence[Note], *, check: Collection[str] = ()
    ) -> Mapping[str, str | None]:
        """Each note goes into the History of every invoice it names and of the contact.

        One PUT per record carries all the batch's notes for it. A note is written once
        every record has it; when one PUT fails, the others stand and the note is retried
        next run, where ``check`` has each record's History read first so that only the
        records still missing it get it.
        """
        by_target: dict[str, list[Note]] = {}
        for note in notes:
            for target in _note_targets(note):
                by_target.setdefault(target, []).append(note)
        failed: dict[str, str] = {}
        for target, wanted in by_target.items():
            try:
                if any(note.id in check for note in wanted):
                    held = {note.id for note in self._notes_in(target)}
                    wanted = [note for note in wanted if note.id not in held]
                for first in range(0, len(wanted), HISTORY_BATCH):
                    self._put_history(target, wanted[first : first + HISTORY_BATCH])
            except AuthError as exc:
                # Every other record would be refused alike: the rest wait for the next run.
                for note in notes:
                    failed.setdefault(note.id, str(exc))
                break
            except HttpError as exc:
                for note in wanted:
                    failed.setdefault(note.id, f"{target}: {exc}")
        return {note.id: failed.get(note.id) for note in notes}

    def _put_history(self, target: str, notes: Sequence[Note]) -> None:
        import hashlib

        if not notes:
            return
        body = {"HistoryRecords": [{"Details": note_text_with_marker(n)} for n in notes]}
        batch = hashlib.sha256("\n".join(n.id for n in notes).encode()).hexdigest()[:32]
        self.http.request(
            "PUT",
            f"{self.settings.api_url}/{target}/History",
            json=body,
            # The same batch twice is one batch, even if our answer got lost.
            headers={"Idempotency-Key": f"kindly-notes:{target.split('/')[1]}:{batch}"[:128]},
        )

    def _notes_in(self, target: str) -> list[Note]:
        kind, record_id = target.split("/")
        if kind == "Invoices":
            return self._notes_on(record_id, "")
        records = self.get(f"{target}/History").json().get("HistoryRecords", [])
        found = (
            note_from_marker(
                str(record.get("Details") or ""),
                created_at=moment(record.get("DateUTC")) or self.clock(),
                customer_id=record_id,
                invoice_id="",
            )
            for record in records
        )
        return [note for note in found if note is not None]

    def existing_note_ids(self, notes: Iterable[Note]) -> set[str]:
        return held_note_ids(notes, lambda invoice_id: self._notes_on(invoice_id, ""))

    def _notes_on(self, invoice_id: str, customer_id: str) -> list[Note]:
        records = self.get(f"Invoices/{invoice_id}/History").json().get("HistoryRecords", [])
        found = (
            note_from_marker(
                str(record.get("Details") or ""),
                created_at=moment(record.get("DateUTC")) or self.clock(),
                customer_id=customer_id,
                invoice_id=invoice_id,
            )
            for record in records
        )
        return [note for note in found if note is not None]

    def read_notes(self, among: Sequence[Invoice] | None = None) -> tuple[Note, ...]:
        """Kindly's notes, read back from the History of each invoice (one call each: Xero
        has no bulk History), of ``among`` or of every invoice."""
        invoices = self.read_snapshot().invoices if among is None else among
        return notes_across_invoices(invoices, lambda i: self._notes_on(i.id, i.customer_id))

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

    def webhook_records(self, body: bytes) -> list[tuple[str, str]]:
        events = events_from_json(
            body, under="events", kind="eventCategory", record_id="resourceId", tenant="tenantId"
        )
        return [(e.kind, e.record_id) for e in events if e.tenant == self.tenant.tenant_id]

    def webhook_event_ids(self, body: bytes, headers: Mapping[str, str] | None = None) -> list[str]:
        # Xero's events carry no id of their own: the change they announce is one.
        events = events_from_json(
            body, under="events", kind="eventCategory", record_id="resourceId", tenant="tenantId"
        )
        return [
            ":".join(
                str(e.raw.get(name, ""))
                for name in ("tenantId", "eventCategory", "eventType", "resourceId", "eventDateUtc")
            )
            for e in events
            if e.tenant == self.tenant.tenant_id
        ]

    def platform_reminders(self) -> list[str]:
        """Xero's own invoice reminders, when they are on (one call)."""
        try:
            answer = self.get("InvoiceReminders/Settings").json()
        except AuthError as exc:
            if exc.status != 403:
                raise
            # A connection made before Kindly asked for accounting.settings.read.
            raise AuthError(
                "Xero does not let Kindly see whether its invoice reminders are on",
                status=403,
                hint="Connect again (kindly connect xero) to allow it.",
            ) from None
        reminders = answer.get("InvoiceReminders") if isinstance(answer, dict) else None
        if any(isinstance(r, dict) and r.get("Enabled") for r in reminders or []):
            return [
                "Xero's invoice reminders are on (Xero: Business settings, Invoice "
                "settings, Invoice reminders)."
            ]
        return []

    def group_settings(self) -> Mapping[str, Overrides]:
        return group_settings(self.settings.group_prefixes)

    def put_in_group(self, customer_id: str, group: str, leaving: Collection[str] = ()) -> None:
        import uuid

        groups = self._contact_groups()
        # A fresh key per change: a retry of this call is one change, and the same change
        # made again later (in, out, in) is not taken for a replay.
        change = uuid.uuid4().hex
        if group not in groups:
            made = self.http.request(
                "PUT",
                f"{self.settings.api_url}/ContactGroups",
                json={"ContactGroups": [{"Name": group}]},
                headers={"Idempotency-Key": f"kindly-group:{change}"},
            ).json()
            groups[group] = str(made["ContactGroups"][0]["ContactGroupID"])
        self.http.request(
            "PUT",
            f"{self.settings.api_url}/ContactGroups/{groups[group]}/Contacts",
            json={"Contacts": [{"ContactID": customer_id}]},
            headers={"Idempotency-Key": f"kindly-join:{change}"},
        )
        for name in leaving:
            if name in groups and name != group:
                self.http.request(
                    "DELETE",
                    f"{self.settings.api_url}/ContactGroups/{groups[name]}/Contacts/{customer_id}",
                )

    def _contact_groups(self) -> dict[str, str]:
        """The organisation's active contact groups: name -> ContactGroupID."""
        answer = self.get("ContactGroups", params={"where": 'Status=="ACTIVE"'}).json()
        return {
            str(g["Name"]): str(g["ContactGroupID"])
            for g in answer.get("ContactGroups") or []
            if g.get("Name") and g.get("ContactGroupID")
        }

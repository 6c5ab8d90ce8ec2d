"""QuickBooks Online: customers, invoices, credit memos and payments in; notes out.

One connector per company (QuickBooks' "realm"), on the OAuth platform base
(:mod:`integrations.bookkeeping.oauth_platform`); what its records mean is in
:mod:`integrations.bookkeeping.quickbooks_records`. What it does with the Accounting API
(../shared/reference/platform-apis.md §3):

- **Connect**: the company is the ``realmId`` QuickBooks puts on the sign-in's redirect;
  without a browser (a refresh token handed in), ``[quickbooks] tenants`` names it. The
  refresh token rolls: the newest is always kept (encrypted, as for every platform).
- **Sync**: the first reads each entity with the query API, 1,000 rows a call
  (``STARTPOSITION``/``MAXRESULTS``); after it, one change-data-capture call
  (``/cdc``) brings every customer, invoice, credit memo and payment changed or deleted
  since the bookmark, so an unchanged company costs one call. A bookmark older than CDC's
  30 days reads everything again.
- **Fresh re-check**: the invoices a reminder names are read again with one
  ``select … where Id in (…)`` per 40.
- **Write-back**: one note (an ``Attachable`` holding text) per reminder, attached to each
  invoice it names and to the customer, where a bookkeeper sees it beside the invoice.
  Not ``PrivateNote``: that is one field the bookkeeper writes in too, and a sparse
  update would overwrite theirs. Notes go 30 to a batch request, each batch with a
  ``requestid`` made from its notes' ids, so a retry after a lost answer does not attach
  them twice.
- **Per-client settings inside QuickBooks** (D6): the customer type, named as Xero's
  contact groups ("Reminders: firm", "Language: nl", "Kind: consumer").
- **Webhooks**: ``intuit-signature`` is base64(HMAC-SHA256(body, verifier token)), in the
  legacy body and the CloudEvents one.

Money is read as Decimal straight from the JSON, never through float.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any, ClassVar
from urllib.parse import quote

from integrations.base import Capability, ConnectorSettings, Webhook
from integrations.bookkeeping import quickbooks_records as records
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
from integrations.sync import Merge, advanced_bookmark, each_readable, iso_stamp, stamp_before
from integrations.webhooks import events_from_json
from plugin.core.model import Invoice, LedgerSnapshot, Note
from plugin.core.policy import Overrides
from plugin.errors import ConfigError, KindlyError
from plugin.ports import SyncResult

__all__ = ["QuickBooksConnector", "QuickBooksSettings"]

#: The most rows one query answers.
PAGE_SIZE = 1000
#: Invoice ids in one fresh re-read (the query stays short).
IDS_PER_CALL = 40
#: The entities a sync reads, in the order the merge needs them.
ENTITIES = ("Customer", "Invoice", "CreditMemo", "Payment")
#: How far back change data capture reaches (a little less than QuickBooks' 30 days).
CDC_REACH = timedelta(days=29)
#: Operations one batch request may carry.
NOTES_PER_BATCH = 30
#: Since 1 August 2025 every request behaves as this minor version.
MINOR_VERSION = "75"
BOOKMARK = "cdc"


@dataclass(frozen=True)
class QuickBooksSettings(OAuthPlatformSettings):
    """Connecting to QuickBooks Online: the app's client id (its secret only in
    KINDLY_QUICKBOOKS_CLIENT_SECRET), the companies, and where the endpoints are (the
    sandbox, or a local test server)"""

    authorize_url: str = field(
        default="https://appcenter.intuit.com/connect/oauth2",
        metadata=endpoint("Intuit's authorization endpoint"),
    )
    token_url: str = field(
        default="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        metadata=endpoint("Intuit's token endpoint"),
    )
    revoke_url: str = field(
        default="https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
        metadata=endpoint("Intuit's revocation endpoint"),
    )
    api_url: str = field(
        default="https://quickbooks.api.intuit.com/v3/company",
        metadata=endpoint(
            "The Accounting API up to /company (sandbox: "
            "https://sandbox-quickbooks.api.intuit.com/v3/company)",
            base=True,
        ),
    )
    home_currency: str = field(
        default="USD",
        metadata={
            "schema": {
                "pattern": "^[A-Z]{3}$",
                "description": "The company's home currency, for records that name none",
            }
        },
    )
    group_prefixes: Mapping[str, str] = group_prefixes_field("Customer type names in QuickBooks")


class QuickBooksConnector(OAuthPlatform):
    name: ClassVar[str] = "quickbooks"
    title: ClassVar[str] = "QuickBooks Online"
    oauth_scopes: ClassVar[tuple[str, ...]] = ("com.intuit.quickbooks.accounting",)
    settings_type: ClassVar[type[ConnectorSettings]] = QuickBooksSettings
    webhook: ClassVar[Webhook | None] = Webhook(
        "/webhooks/quickbooks",
        "KINDLY_QUICKBOOKS_VERIFIER_TOKEN",
        "Copy the verifier token of your app's webhooks at developer.intuit.com into it.",
        signature_header="intuit-signature",
    )
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.INCREMENTAL,
            Capability.NOTES,
            Capability.MAILER,
            Capability.ONLINE_LINK,
            Capability.PDF,
            Capability.GROUPS,
            Capability.WEBHOOKS,
        }
    )
    client_secret_variable: ClassVar[str] = "KINDLY_QUICKBOOKS_CLIENT_SECRET"  # noqa: S105
    refresh_token_variable: ClassVar[str] = "KINDLY_QUICKBOOKS_REFRESH_TOKEN"  # noqa: S105
    secret_variables: ClassVar[Mapping[str, str]] = {
        "KINDLY_QUICKBOOKS_CLIENT_SECRET": "the app's client secret (QuickBooks apps have one)",
        "KINDLY_QUICKBOOKS_REFRESH_TOKEN": "a refresh token for `kindly connect quickbooks` "
        "without a browser (name the company in [quickbooks] tenants)",
        "KINDLY_QUICKBOOKS_VERIFIER_TOKEN": "the webhooks' verifier token, for `kindly serve`",
    }
    app_hint: ClassVar[str] = (
        "Create an app at developer.intuit.com (Accounting scope), register the redirect "
        "URI, put its client id under [quickbooks] and its secret in "
        "KINDLY_QUICKBOOKS_CLIENT_SECRET."
    )
    # 500 calls a minute per company; a little under, so a second process fits.
    calls_per_minute: ClassVar[int] = 450
    call_limits: ClassVar[tuple[Limit, ...]] = (Limit(500, 60),)
    settings: QuickBooksSettings
    _answered_at: str | None = None

    @classmethod
    def list_tenants(
        cls, settings: OAuthPlatformSettings, http: HttpClient, token: Token
    ) -> list[Tenant]:
        """The company the sign-in chose (QuickBooks puts it on the redirect), or those
        [quickbooks] tenants names when a refresh token was handed in; named as
        QuickBooks names them."""
        realms = [token.granted["realmId"]] if token.granted.get("realmId") else []
        realms = realms or list(settings.tenants)
        if not realms:
            raise ConfigError(
                "QuickBooks did not say which company was connected",
                hint="Connect in the browser, or name the company's id (its realm id) in "
                "[quickbooks] tenants when handing in a refresh token.",
            )
        found = []
        for realm in realms:
            answer = http.request(
                "GET",
                f"{settings.api_url}/{realm}/companyinfo/{realm}",
                params={"minorversion": MINOR_VERSION},
                headers={
                    "Authorization": f"Bearer {token.access_token}",
                    "Accept": "application/json",
                },
            ).json()
            info = answer.get("CompanyInfo") or {}
            found.append(Tenant(realm, str(info.get("CompanyName") or realm)))
        return found

    # -- calling -----------------------------------------------------------------------------

    @property
    def realm(self) -> str:
        return self.tenant.tenant_id

    def _call(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, **options: Any
    ) -> Response:
        return self.http.request(
            method,
            f"{self.settings.api_url}/{self.realm}/{path}",
            params={**(params or {}), "minorversion": MINOR_VERSION},
            **options,
        )

    def _query(self, text: str) -> dict[str, Any]:
        answer = self._call("GET", "query", {"query": text}).json()
        found = answer.get("QueryResponse") if isinstance(answer, dict) else None
        if not isinstance(found, dict):
            raise FatalError("QuickBooks answered a query without a QueryResponse")
        # QuickBooks' own clock at the first answer: a bookmark never runs past it.
        self._answered_at = self._answered_at or _stamp(answer.get("time"))
        return found

    def _all(self, entity: str) -> list[dict[str, Any]]:
        """Every row of ``entity``, a page of 1,000 a call; a short page is the last."""
        rows: list[dict[str, Any]] = []
        start = 1
        while True:
            # A QuickBooks query, not SQL, of one of our own entity names.
            text = f"select * from {entity} STARTPOSITION {start} MAXRESULTS {PAGE_SIZE}"  # noqa: S608
            page = self._query(text).get(entity) or []
            rows.extend(page)
            if self.progress is not None:
                self.progress(entity, len(rows))
            if len(page) < PAGE_SIZE:
                return rows
            start += PAGE_SIZE

    def _changes(self, since: str) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
        """Every record changed or deleted since ``since``, by entity (CDC), and when
        QuickBooks answered. CDC gives at most 1,000 of an entity at once: asked again
        from the newest of a full entity until none is full."""
        found: dict[str, list[dict[str, Any]]] = {entity: [] for entity in ENTITIES}
        server_time = None
        asked = since
        while True:
            answer = self._call(
                "GET", "cdc", {"entities": ",".join(ENTITIES), "changedSince": asked}
            ).json()
            server_time = server_time or answer.get("time")
            full = None
            for response in answer.get("CDCResponse") or []:
                for part in response.get("QueryResponse") or []:
                    for entity in ENTITIES:
                        rows = part.get(entity) or []
                        found[entity].extend(rows)
                        if len(rows) >= PAGE_SIZE:
                            newest = max((records.updated(r) or "" for r in rows), default="")
                            full = min(full or newest, newest)
            if full is None or full <= asked:
                return found, server_time
            asked = full

    # -- reading -----------------------------------------------------------------------------

    def sync(self, previous: LedgerSnapshot | None, bookmarks: Mapping[str, str]) -> SyncResult:
        since = bookmarks.get(BOOKMARK) if previous is not None else None
        if since is not None and since < iso_stamp(self.clock() - CDC_REACH):
            previous, since = None, None  # beyond what CDC remembers: read it all
        self._answered_at = None
        if since is None:
            fetched = {entity: self._all(entity) for entity in ENTITIES}
            server_time = self._answered_at
        else:
            # A second before the bookmark: a change in that same second after the last
            # read is not missed (what comes twice is merged by id).
            fetched, answered = self._changes(stamp_before(since))
            server_time = _stamp(answered)
        newest = advanced_bookmark(
            since,
            (records.updated(r) or "" for rows in fetched.values() for r in rows),
            server_time,
        )
        merge = self._merge(Merge("QuickBooks", previous), fetched)
        marks = {BOOKMARK: newest} if newest else {}
        return SyncResult(merge.snapshot(), marks, tuple(merge.warnings))

    def _merge(self, merge: Merge, fetched: Mapping[str, list[dict[str, Any]]]) -> Merge:
        home = self.settings.home_currency
        read_customer = partial(records.customer, company_country=self.company_country)
        merge.apply(
            "customer",
            merge.customers,
            fetched["Customer"],
            id_field="Id",
            read=read_customer,
            gone=records.is_deleted,
        )
        merge.apply(
            "invoice",
            merge.invoices,
            fetched["Invoice"],
            id_field="Id",
            read=partial(records.invoice, home_currency=home),
            gone=records.is_deleted,
        )
        merge.apply(
            "credit memo",
            merge.credit_notes,
            fetched["CreditMemo"],
            id_field="Id",
            read=partial(records.credit_note, home_currency=home),
            gone=lambda r: records.is_deleted(r) or not r.get("TotalAmt"),
        )
        for record in fetched["Payment"]:
            payment_id = str(record.get("Id") or "?")
            prefix = records.payment_id_prefix(payment_id)
            # A changed payment replaces every line it had; a deleted one takes them out.
            for old in [key for key in merge.payments if key.startswith(prefix)]:
                del merge.payments[old]
            if records.is_deleted(record):
                continue
            lines = merge.read("payment", payment_id, partial(records.payments, record, home))
            for line in lines or ():
                merge.payments[line.id] = line
        return merge

    def read_invoices(self, invoice_ids: Sequence[str]) -> tuple[Invoice, ...]:
        found: list[Invoice] = []
        for start in range(0, len(invoice_ids), IDS_PER_CALL):
            chunk = invoice_ids[start : start + IDS_PER_CALL]
            # QuickBooks' ids are numbers: anything else names no invoice of it.
            ids = ", ".join(f"'{i}'" for i in chunk if i.isdigit())
            if not ids:
                continue
            text = f"select * from Invoice where Id in ({ids}) MAXRESULTS {PAGE_SIZE}"  # noqa: S608
            rows = self._query(text).get("Invoice") or []
            read = partial(records.invoice, home_currency=self.settings.home_currency)
            found += each_readable("QuickBooks", "invoice", rows, read, id_field="Id")
        return tuple(found)

    def online_invoice_url(self, invoice: Invoice) -> str | None:
        """The customer's pay link (QuickBooks Payments), asked for with the invoice when
        the sync did not bring it; None where the company takes no online payment."""
        if invoice.online_url:
            return invoice.online_url
        answer = self._call(
            "GET", f"invoice/{quote(invoice.id)}", {"include": "invoiceLink"}
        ).json()
        link = (answer.get("Invoice") or {}).get("InvoiceLink")
        return str(link) if link else None

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        response = self._call(
            "GET", f"invoice/{quote(invoice.id)}/pdf", headers={"Accept": "application/pdf"}
        )
        return response.body if response.body.startswith(b"%PDF") else None

    # -- writing -----------------------------------------------------------------------------

    def write_notes(
        self, notes: Sequence[Note], *, check: Collection[str] = ()
    ) -> Mapping[str, str | None]:
        """One Attachable per note, attached to its invoices and its customer, 30 to a
        batch request (one call). A note in ``check`` (its earlier write may have landed)
        is looked for first; each batch's requestid (from its notes' ids) keeps a retried
        batch from attaching them twice all the same."""
        held = self._note_ids() if any(note.id in check for note in notes) else set()
        results: dict[str, str | None] = {note.id: None for note in notes if note.id in held}
        wanted = [note for note in notes if note.id not in held]
        for first in range(0, len(wanted), NOTES_PER_BATCH):
            batch = wanted[first : first + NOTES_PER_BATCH]
            try:
                results.update(self._attach_batch(batch))
            except AuthError as exc:
                # Every other batch would be refused alike: they wait for the next run.
                for note in wanted[first:]:
                    results[note.id] = str(exc)
                break
            except HttpError as exc:
                for note in batch:
                    results[note.id] = str(exc)
        return {note.id: results.get(note.id) for note in notes}

    def _attach_batch(self, notes: Sequence[Note]) -> dict[str, str | None]:
        items = []
        for number, note in enumerate(notes):
            targets = [("Invoice", i) for i in note.invoice_ids] + [("Customer", note.customer_id)]
            refs = [
                {"EntityRef": {"type": kind, "value": value}, "IncludeOnSend": False}
                for kind, value in targets
            ]
            attachable = {"Note": note_text_with_marker(note), "AttachableRef": refs}
            items.append({"bId": str(number), "operation": "create", "Attachable": attachable})
        answer = self._call(
            "POST",
            "batch",
            {"requestid": _request_id("notes", "\n".join(note.id for note in notes))},
            json={"BatchItemRequest": items},
        ).json()
        by_id = {str(item.get("bId")): item for item in answer.get("BatchItemResponse") or []}
        results: dict[str, str | None] = {}
        for number, note in enumerate(notes):
            item = by_id.get(str(number))
            if item is None:
                results[note.id] = "QuickBooks did not answer for this note"
            elif "Fault" in item:
                errors = (item["Fault"] or {}).get("Error") or [{}]
                results[note.id] = "QuickBooks: " + "; ".join(
                    str(e.get("Message") or e.get("Detail") or "refused") for e in errors
                )
            else:
                results[note.id] = None
        return results

    def _attachables(self) -> list[dict[str, Any]]:
        return self._all("Attachable")

    def _note_ids(self) -> set[str]:
        return {note.id for note in self._notes_from(self._attachables())}

    def _notes_from(self, attachables: Iterable[Mapping[str, Any]]) -> list[Note]:
        notes = []
        for attachable in attachables:
            refs = [r.get("EntityRef") or {} for r in attachable.get("AttachableRef") or []]
            invoices = [str(r.get("value")) for r in refs if r.get("type") == "Invoice"]
            customers = [str(r.get("value")) for r in refs if r.get("type") == "Customer"]
            created = moment((attachable.get("MetaData") or {}).get("CreateTime")) or self.clock()
            for invoice_id in invoices or [""]:
                note = note_from_marker(
                    str(attachable.get("Note") or ""),
                    created_at=created,
                    customer_id=customers[0] if customers else "",
                    invoice_id=invoice_id,
                )
                if note is not None:
                    notes.append(note)
        return notes

    def existing_note_ids(self, notes: Iterable[Note]) -> set[str]:
        wanted = {note.id for note in notes}
        return wanted & self._note_ids() if wanted else set()

    def read_notes(self, among: Sequence[Invoice] | None = None) -> tuple[Note, ...]:
        """Kindly's notes, read back from the company's attachables (1,000 a call)."""
        notes = self._notes_from(self._attachables())
        if among is not None:
            ids = {invoice.id for invoice in among}
            notes = [note for note in notes if set(note.invoice_ids) & ids]
        return tuple(notes)

    def send_invoice_email(self, invoice: Invoice, reference: str | None = None) -> None:
        """Have QuickBooks send the invoice e-mail itself, to the customer's address there.
        ``reference`` (the reminder's key) makes the requestid: a retry after a lost answer
        does not e-mail the client twice."""
        self._call(
            "POST",
            f"invoice/{quote(invoice.id)}/send",
            {"requestid": _request_id("send", f"{reference or ''}:{invoice.id}")},
            headers={"Content-Type": "application/octet-stream"},
            data=b"",
        )

    def group_settings(self) -> Mapping[str, Overrides]:
        return group_settings(self.settings.group_prefixes)

    def put_in_group(self, customer_id: str, group: str, leaving: Collection[str] = ()) -> None:
        """Give the customer the customer type ``group`` ("Reminders: firm"): a customer
        has one type, so the one it leaves goes with it. QuickBooks' API makes no customer
        type: one missing is made in QuickBooks, and the message says where."""
        if not customer_id.isdigit():
            raise KindlyError(f"{customer_id!r} is not a QuickBooks customer")
        quoted = group.replace("\\", "\\\\").replace("'", "\\'")
        text = f"select * from CustomerType where Name = '{quoted}'"  # noqa: S608
        found = self._query(text).get("CustomerType") or []
        if not found:
            raise KindlyError(
                f"QuickBooks has no customer type {group!r}",
                hint="Make it in QuickBooks (Settings, All lists, Customer types), then "
                "write it again.",
            )
        type_id = str(found[0]["Id"])
        customer = self._call("GET", f"customer/{quote(customer_id)}").json().get("Customer") or {}
        if str((customer.get("CustomerTypeRef") or {}).get("value") or "") == type_id:
            return
        self._call(
            "POST",
            "customer",
            json={
                "Id": customer_id,
                "SyncToken": str(customer.get("SyncToken") or "0"),
                "sparse": True,
                "CustomerTypeRef": {"value": type_id},
            },
        )

    # -- webhooks ----------------------------------------------------------------------------

    def _events(self, body: bytes) -> list[tuple[str, str, str]]:
        """(entity, id, realm) of each event, from the legacy body or the CloudEvents one."""
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return []
        found: list[tuple[str, str, str]] = []
        if isinstance(data, dict):
            for notification in data.get("eventNotifications") or []:
                realm = str(notification.get("realmId") or "")
                change = notification.get("dataChangeEvent") or {}
                for entity in change.get("entities") or []:
                    if entity.get("name") and entity.get("id"):
                        found.append((str(entity["name"]), str(entity["id"]), realm))
            return found
        for event in events_from_json(
            body, under=None, kind="type", record_id="intuitentityid", tenant="intuitaccountid"
        ):
            # "qbo.invoice.created.v1": the entity is the second part.
            parts = event.kind.split(".")
            entity = parts[1].capitalize() if len(parts) > 2 else event.kind
            found.append((entity, event.record_id, event.tenant or ""))
        return found

    def webhook_records(self, body: bytes) -> list[tuple[str, str]]:
        return [(kind, record) for kind, record, realm in self._events(body) if realm == self.realm]

    def webhook_event_ids(self, body: bytes, headers: Mapping[str, str] | None = None) -> list[str]:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return []
        if isinstance(data, list):
            return [
                str(event.get("id"))
                for event in data
                if isinstance(event, dict)
                and event.get("id")
                and str(event.get("intuitaccountid")) == self.realm
            ]
        # The legacy body's events have no id: the change they announce is one.
        return [
            ":".join((realm, kind, record, _last_updated(data, kind, record)))
            for kind, record, realm in self._events(body)
            if realm == self.realm
        ]


def _last_updated(data: Any, kind: str, record: str) -> str:
    for notification in data.get("eventNotifications") or []:
        for entity in (notification.get("dataChangeEvent") or {}).get("entities") or []:
            if entity.get("name") == kind and str(entity.get("id")) == record:
                return str(entity.get("lastUpdated") or "")
    return ""


def _request_id(kind: str, text: str) -> str:
    """QuickBooks' idempotency key: the same request again is answered, not done again."""
    return hashlib.sha256(f"kindly-{kind}:{text}".encode()).hexdigest()[:36]


def _stamp(value: Any) -> str | None:
    found = moment(value)
    return iso_stamp(found) if found else None

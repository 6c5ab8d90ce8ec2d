"""A fake Exact Online on loopback: its OAuth 2 and the slice of the REST API we use.

It behaves like the platform where our connector could get it wrong, and answers as
Exact's OData v2 JSON does (../shared/reference/platform-apis.md section 5):

- a list is ``{"d": {"results": [...], "__next": "<absolute URL>"}}``, with no ``__next``
  on the last page; one record is ``{"d": {...}}``; every row carries OData's
  ``__metadata`` (``uri``, ``type``) beside its fields; dates are ``/Date(<ms>)/`` (ms since
  the epoch, UTC); amounts exact JSON numbers; errors
  ``{"error": {"code": "", "message": {"lang": "", "value": "..."}}}``;
- OAuth 2 for a confidential client: ``/api/oauth2/auth`` redirects with ``code`` and
  ``state`` (the code holds a ``!``, as Exact's do, so it comes URL-encoded); the token
  endpoint takes the client in the form (``client_id``/``client_secret``) or as HTTP Basic,
  a wrong one is 400 ``invalid_client``; the code is good once, for 3 minutes of the fake
  clock, with the redirect URI it was given for; ``expires_in`` is the STRING ``"600"``;
  access tokens last 600 s; refresh tokens rotate and the one used stops working at once
  (no grace: a client that loses the answer is locked out, see ``lose_token_answers``);
  unused refresh tokens end after 30 days;
- the API under ``/api/v1``: a bearer token, ``Accept: application/json`` (Exact answers
  Atom XML otherwise; here 406, unless ``require_json_accept`` is off), ``current/Me``
  without a division, everything else under ``/api/v1/{division}/`` for a division the
  user may see (``divisions``: two of them, records kept apart), else 403;
- rate limits per division: ``per_minute`` (60) calls in a fake minute (the window opens at
  its first call) and ``day_limit`` (5000) a fake day (to midnight UTC); every call that
  passes the token and division checks is counted and carries ``X-RateLimit-Limit``,
  ``-Remaining``, ``-Reset`` (ms epoch of the next midnight UTC) and the
  ``X-RateLimit-Minutely-*`` three; over the minutely budget: 429 with only the minutely
  headers; the day spent: 429 with all six;
- ``sync/CRM/Accounts``, ``sync/SalesInvoice/SalesInvoices``, ``sync/Deleted`` (a deletion
  listed for two months, as Exact keeps them; ``move_division`` starts every Timestamp
  again, lower, and sets ``DivisionMoveDate``): ``$select`` required, rows by
  ``Timestamp`` ascending (an int64 per division, every change the next
  one), 1000 a page, ``__next`` by ``$skiptoken=<last Timestamp>``; the rows hold only the
  selected fields and ``Timestamp``;
- the REST lists ``crm/Accounts``, ``salesinvoice/SalesInvoices`` (both only with a
  ``$filter``: they have sync counterparts, and Exact makes filtering mandatory there;
  ``mandatory_filters``), ``activities/CommunicationNotes``,
  ``read/financial/ReceivablesList`` and ``system/Divisions``: 60 rows a page in key order,
  ``__next`` by ``$skiptoken`` (``guid'<last key>'``, or the last ``HID``); one record by
  key, ``crm/Accounts(guid'...')``, 404 when unknown; the REST rows have no ``Timestamp``
  (only the sync endpoints know it);
- ``$filter`` as far as we speak it: comparisons ``<Field> eq|ne|gt|ge|lt|le <literal>``
  (``guid'...'``, ``datetime'...'``, ``'text'``, ``123``/``123L``, ``1.5``, ``true``,
  ``null``) joined with ``and``/``or`` and parentheses; the literal must suit the field's
  type; anything else (functions, ``not``, an unknown field) is a 400 naming it. Query
  options: ``$select``, ``$filter``, ``$skiptoken``, ``$top``, ``$orderby`` (only the
  order the fake gives anyway), ``$format=json``; another ``$`` option is a 400;
- ``POST activities/CommunicationNotes`` makes a note (201 ``{"d": note}``); Exact has no
  idempotency key, so posting twice makes two;
- accounts carry ``Classification1`` .. ``Classification8`` (GUIDs): one classification of
  ``crm/AccountClassifications`` each, from the classification name (category) of
  ``crm/AccountClassificationNames`` whose ``SequenceNumber`` is the slot (a classification
  in the wrong slot is a 400); ``PUT crm/Accounts(guid'...')`` changes the fields it is
  given (204, no body; a new Timestamp);
- a processed invoice has a document (``documents/Documents``, its
  ``FinancialTransactionEntryID`` the invoice's id) with a PDF attachment
  (``documents/DocumentAttachments``): the attachment's ``Url`` gives an HTML page, and the
  file only with ``&Download=1`` appended, to a bearer token of the division;
- ``POST salesinvoice/PrintedSalesInvoices`` (``InvoiceID``, ``SendEmailToCustomer``, ...):
  on a processed invoice with ``SendEmailToCustomer`` it "e-mails" it (kept in
  ``Division.mailed``) and answers 201 with ``EmailCreationSuccess``; to an account without
  an e-mail address it answers 201 all the same, with ``EmailCreationError`` (as Exact
  does); printing an invoice still open (Status 20) processes it (Status 50, filed in the
  receivables), which is why Kindly never asks for that;
- ``webhooks/WebhookSubscriptions``: list, ``POST`` (``CallbackURL`` over https and a known
  ``Topic``; the same pair twice is a 400) and ``DELETE (guid'...')`` (204);
- faults on demand (``fail_next``), before any check; ``Fault.carry_out`` does the request
  and then answers with the fault (a lost answer);
- a count of every call (``calls``, by "METHOD /path"), of the token calls
  (``token_calls``), of the refreshes, and of the rows in each list answer (``served``);
  ``shuffle_pages`` mixes the rows within each page.

Records are held per division as Exact JSON (``Decimal`` amounts, ``/Date()/`` dates); tests
add and change them with the helpers, each change moving the fake clock on a second and
taking the division's next ``Timestamp``. The clock moves only with ``tick()``.

``sync/Deleted``'s ``EntityType`` numbers are this fake's assumption, not checked against
Exact's reference: 2 for Accounts (``ENTITY_ACCOUNTS``), 13 for SalesInvoices
(``ENTITY_SALES_INVOICES``).
"""

from __future__ import annotations

import base64
import collections
import json
import random
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

API = "/api/v1"
AUTHORIZE_PATH = "/api/oauth2/auth"
TOKEN_PATH = "/api/oauth2/token"
ACCESS_LIFE = timedelta(seconds=600)
CODE_LIFE = timedelta(minutes=3)
REFRESH_LIFE = timedelta(days=30)
MINUTE = timedelta(minutes=1)
DELETIONS_KEPT = timedelta(days=60)
SYNC_PAGE = 1000
REST_PAGE = 60
#: sync/Deleted's EntityType for an account and a sales invoice (the fake's assumption).
ENTITY_ACCOUNTS = 2
ENTITY_SALES_INVOICES = 13
#: The first Timestamp a division gives: past 2**32, so only an int64 holds it.
FIRST_TIMESTAMP = 5_000_000_000

GUID, DATETIME, INT, DECIMAL, TEXT, BOOL = "guid", "datetime", "int", "decimal", "text", "bool"
#: The .NET type names Exact's OData errors speak of.
EDM = {
    GUID: "System.Guid",
    DATETIME: "System.DateTime",
    INT: "System.Int64",
    DECIMAL: "System.Double",
    TEXT: "System.String",
    BOOL: "System.Boolean",
}

ACCOUNT_FIELDS = {
    "ID": GUID,
    "Code": TEXT,
    "Name": TEXT,
    "Email": TEXT,
    "Language": TEXT,
    "LanguageDescription": TEXT,
    "Status": TEXT,
    "IsSales": BOOL,
    "IsSupplier": BOOL,
    "Blocked": BOOL,
    "Phone": TEXT,
    "AddressLine1": TEXT,
    "AddressLine2": TEXT,
    "AddressLine3": TEXT,
    "City": TEXT,
    "Postcode": TEXT,
    "State": TEXT,
    "Country": TEXT,
    "Remarks": TEXT,
    "Division": INT,
    "Created": DATETIME,
    "Modified": DATETIME,
    "Timestamp": INT,
}
INVOICE_FIELDS = {
    "InvoiceID": GUID,
    "InvoiceNumber": INT,
    "Type": INT,
    "Status": INT,
    "StatusDescription": TEXT,
    "InvoiceDate": DATETIME,
    "DueDate": DATETIME,
    "Currency": TEXT,
    "AmountFC": DECIMAL,
    "AmountDC": DECIMAL,
    "InvoiceTo": GUID,
    "InvoiceToName": TEXT,
    "OrderedBy": GUID,
    "YourRef": TEXT,
    "Description": TEXT,
    "Remarks": TEXT,
    "PaymentReference": TEXT,
    "Division": INT,
    "Created": DATETIME,
    "Modified": DATETIME,
    "Timestamp": INT,
}
RECEIVABLE_FIELDS = {
    "HID": INT,
    "AccountId": GUID,
    "AccountCode": TEXT,
    "AccountName": TEXT,
    "Amount": DECIMAL,
    "AmountInTransit": DECIMAL,
    "CurrencyCode": TEXT,
    "Description": TEXT,
    "DueDate": DATETIME,
    "EntryNumber": INT,
    "InvoiceDate": DATETIME,
    "InvoiceNumber": INT,
    "JournalCode": TEXT,
    "JournalDescription": TEXT,
    "Notes": TEXT,
    "YourRef": TEXT,
}
NOTE_FIELDS = {
    "ID": GUID,
    "Account": GUID,
    "AccountName": TEXT,
    "Subject": TEXT,
    "Notes": TEXT,
    "Date": DATETIME,
    "Creator": GUID,
    "CreatorFullName": TEXT,
    "Division": INT,
    "Created": DATETIME,
    "Modified": DATETIME,
}
#: What a note may be posted with (anything else is refused, as OData refuses it).
NOTE_WRITABLE = frozenset({"Account", "Subject", "Notes", "Date", "Contact"})
DELETED_FIELDS = {
    "ID": GUID,
    "EntityKey": GUID,
    "EntityType": INT,
    "DeletedBy": GUID,
    "DeletedDate": DATETIME,
    "Division": INT,
    "Timestamp": INT,
}
CLASSIFICATION_SLOTS = tuple(f"Classification{n}" for n in range(1, 9))
ACCOUNT_FIELDS.update(dict.fromkeys(CLASSIFICATION_SLOTS, GUID))
#: What PUT crm/Accounts may change here.
ACCOUNT_WRITABLE = frozenset(CLASSIFICATION_SLOTS) | {"Email", "Language", "Phone", "Remarks"}
CLASSIFICATION_FIELDS = {
    "ID": GUID,
    "Code": TEXT,
    "Description": TEXT,
    "AccountClassificationName": GUID,
    "AccountClassificationNameDescription": TEXT,
    "Division": INT,
}
CLASSIFICATION_NAME_FIELDS = {
    "ID": GUID,
    "Description": TEXT,
    "SequenceNumber": INT,
    "Division": INT,
}
DOCUMENT_FIELDS = {
    "ID": GUID,
    "Account": GUID,
    "Subject": TEXT,
    "Type": INT,
    "TypeDescription": TEXT,
    "FinancialTransactionEntryID": GUID,
    "SalesInvoiceNumber": INT,
    "Division": INT,
}
ATTACHMENT_FIELDS = {
    "ID": GUID,
    "Document": GUID,
    "FileName": TEXT,
    "FileSize": DECIMAL,
    "Url": TEXT,
}
SUBSCRIPTION_FIELDS = {
    "ID": GUID,
    "CallbackURL": TEXT,
    "Topic": TEXT,
    "ClientID": GUID,
    "Division": INT,
    "Created": DATETIME,
}
#: Topics a subscription may name (Exact has more).
WEBHOOK_TOPICS = frozenset(
    {"Accounts", "SalesInvoices", "FinancialTransactions", "Contacts", "Items", "Documents"}
)
#: Exact's document type of a sales invoice.
DOCUMENT_SALES_INVOICE = 10
ATTACHMENT_PATH = "/docs/SysAttachment.aspx"
DIVISION_FIELDS = {
    "Code": INT,
    "Description": TEXT,
    "Currency": TEXT,
    "Country": TEXT,
    "DivisionMoveDate": DATETIME,
}
ME_FIELDS = {
    "CurrentDivision": INT,
    "FullName": TEXT,
    "UserID": GUID,
    "UserName": TEXT,
    "Email": TEXT,
    "LanguageCode": TEXT,
}


@dataclass(frozen=True)
class Resource:
    #: The attribute of ``Division`` that holds the rows ("" for computed ones).
    store: str
    #: The key: a REST list is in this order and pages on it.
    key: str
    #: The OData type in ``__metadata``.
    kind: str
    fields: dict[str, str]
    sync: bool = False
    #: Refused without a ``$filter`` while ``mandatory_filters`` is on.
    needs_filter: bool = False

    @property
    def page(self) -> int:
        return SYNC_PAGE if self.sync else REST_PAGE


RESOURCES = {
    "crm/Accounts": Resource("accounts", "ID", "Account", ACCOUNT_FIELDS, needs_filter=True),
    "salesinvoice/SalesInvoices": Resource(
        "invoices", "InvoiceID", "SalesInvoice", INVOICE_FIELDS, needs_filter=True
    ),
    "activities/CommunicationNotes": Resource("notes", "ID", "CommunicationNote", NOTE_FIELDS),
    "read/financial/ReceivablesList": Resource(
        "receivables", "HID", "ReceivablesList", RECEIVABLE_FIELDS
    ),
    "system/Divisions": Resource("", "Code", "Division", DIVISION_FIELDS),
    "crm/AccountClassifications": Resource(
        "classifications", "ID", "AccountClassification", CLASSIFICATION_FIELDS
    ),
    "crm/AccountClassificationNames": Resource(
        "classification_names", "ID", "AccountClassificationName", CLASSIFICATION_NAME_FIELDS
    ),
    "documents/Documents": Resource("documents", "ID", "Document", DOCUMENT_FIELDS),
    "documents/DocumentAttachments": Resource(
        "attachments", "ID", "DocumentAttachment", ATTACHMENT_FIELDS
    ),
    "webhooks/WebhookSubscriptions": Resource(
        "subscriptions", "ID", "WebhookSubscription", SUBSCRIPTION_FIELDS
    ),
    "sync/CRM/Accounts": Resource("accounts", "ID", "Sync.Account", ACCOUNT_FIELDS, sync=True),
    "sync/SalesInvoice/SalesInvoices": Resource(
        "invoices", "InvoiceID", "Sync.SalesInvoice", INVOICE_FIELDS, sync=True
    ),
    "sync/Deleted": Resource("deleted", "ID", "Sync.Deleted", DELETED_FIELDS, sync=True),
}
#: One record by its key: ``crm/Accounts(guid'...')``.
BY_KEY = re.compile(r"^(?P<name>[\w/]+)\((?P<key>guid'[^']*'|\d+)\)$")
QUERY_OPTIONS = frozenset({"$select", "$filter", "$skiptoken", "$top", "$orderby", "$format"})


def ms(moment: datetime | date) -> int:
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def odata_date(moment: datetime | date) -> str:
    """``/Date(<ms since the epoch, UTC>)/``, as Exact writes dates."""
    return f"/Date({ms(moment)})/"


def parse_odata_date(text: str) -> int:
    """The ms of ``/Date(<ms>)/`` (an offset after the ms, if any, is dropped)."""
    found = re.fullmatch(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/", text)
    if found is None:
        raise ValueError(text)
    return int(found[1])


def parse_when(text: str) -> int:
    """ms of ``/Date(ms)/`` or an ISO date/time (UTC unless it says otherwise)."""
    if text.startswith("/Date("):
        return parse_odata_date(text)
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return ms(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


def money(amount: str | int | Decimal) -> Decimal:
    return amount if isinstance(amount, Decimal) else Decimal(str(amount))


def encode(value: Any) -> str:
    """JSON text with every Decimal written as the number it is (362.07, never 362.0699...)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value)


def error(message: str) -> dict[str, Any]:
    """Exact's (OData v2's) error body."""
    return {"error": {"code": "", "message": {"lang": "", "value": message}}}


class ODataError(Exception):
    """A request the fake refuses with 400 and this message."""


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | bytes | None = None
    #: Done in the server just before this answer goes out (another process's work).
    before: Callable[[], None] | None = None
    #: Carry the request out all the same, then answer with this fault (a lost answer).
    carry_out: bool = False
    #: With ``carry_out``: no answer at all, the connection dropped (a lost answer).
    drop: bool = False


@dataclass
class Division:
    """One Exact administration: its records, its Timestamp sequence and its rate limits."""

    code: int
    description: str
    currency: str = "EUR"
    country: str = "NL"
    #: When Exact moved the division to another database: every Timestamp starts again.
    moved: datetime | None = None
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ReceivablesList rows by HID.
    receivables: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: sync/Deleted rows by their ID.
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The receivable (HID) of each invoice or credit note still open.
    receivable_of: dict[str, int] = field(default_factory=dict)
    classifications: dict[str, dict[str, Any]] = field(default_factory=dict)
    classification_names: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    attachments: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The file of each attachment, by its ID.
    files: dict[str, bytes] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: What Exact e-mailed: (invoice id, address), in order.
    mailed: list[tuple[str, str]] = field(default_factory=list)
    timestamp: int = FIRST_TIMESTAMP - 1
    last_hid: int = 0
    last_code: int = 0
    # Rate limits
    day: date | None = None
    day_remaining: int = 5000
    minute_start: datetime | None = None
    minute_used: int = 0

    def next_timestamp(self) -> int:
        self.timestamp += 1
        return self.timestamp


class FakeExactOnline:
    def __init__(
        self,
        *,
        client_id: str = "kindly-exact-client",
        client_secret: str = "kindly-exact-secret",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
        self.division = 1234567
        self.division_name = "Noordlicht Studio B.V."
        self.divisions: dict[int, Division] = {
            code: Division(code, name, day=self.clock.date())
            for code, name in (
                (self.division, self.division_name),
                (7654321, "Noordlicht Holding"),
            )
        }
        self.user_id = str(uuid.uuid4())
        self.user_name = "Anouk Visser"
        self.calls: collections.Counter[str] = collections.Counter()
        #: Rows in each list answer, in order.
        self.served: list[int] = []
        self.faults: collections.defaultdict[str, list[Fault]] = collections.defaultdict(list)
        #: Rows of each page in a shuffled order (within the page).
        self.shuffle_pages = False
        self.random = random.Random(20261122)
        self.per_minute = 60
        self.day_limit = 5000
        #: Refuse (406) API calls whose Accept does not name application/json.
        self.require_json_accept = True
        #: Refuse crm/Accounts and salesinvoice/SalesInvoices lists without a $filter.
        self.mandatory_filters = True
        # OAuth state
        self.codes: dict[str, dict[str, Any]] = {}
        #: Access tokens and when they expire.
        self.access_tokens: dict[str, datetime] = {}
        #: Live refresh tokens and until when they are taken (30 days unused).
        self.refresh_tokens: dict[str, datetime] = {}
        #: Every POST to the token endpoint, whatever came of it.
        self.token_calls = 0
        self.refreshes = 0
        #: Token answers to lose: the request is carried out, the connection then dropped.
        self.lose_token_answers = 0
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # -- serving -------------------------------------------------------------------------

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_PUT(self) -> None:
                fake._handle(self, "PUT")

            def do_DELETE(self) -> None:
                fake._handle(self, "DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def endpoints(self) -> dict[str, str]:
        return {
            "authorize_url": f"{self.url}{AUTHORIZE_PATH}",
            "token_url": f"{self.url}{TOKEN_PATH}",
            "revoke_url": "",
            "api_url": f"{self.url}{API}",
        }

    def fail_next(self, path_prefix: str, *faults: Fault) -> None:
        """Answer the next calls whose path starts with ``path_prefix`` with ``faults``, one
        each, in order (before any check of tokens, divisions or rate limits)."""
        with self.lock:
            self.faults[path_prefix].extend(faults)

    def api_calls(self) -> int:
        return sum(n for key, n in self.calls.items() if key.split(" ", 1)[1].startswith(API))

    # -- the main division's records and allowance ----------------------------------------

    def book(self, division: int | None = None) -> Division:
        return self.divisions[self.division if division is None else division]

    @property
    def accounts(self) -> dict[str, dict[str, Any]]:
        return self.book().accounts

    @property
    def invoices(self) -> dict[str, dict[str, Any]]:
        return self.book().invoices

    @property
    def receivables(self) -> dict[int, dict[str, Any]]:
        return self.book().receivables

    @property
    def notes(self) -> dict[str, dict[str, Any]]:
        return self.book().notes

    @property
    def deleted(self) -> dict[str, dict[str, Any]]:
        return self.book().deleted

    @property
    def day_remaining(self) -> int:
        """Calls left today in the main division (``book(n).day_remaining`` for another)."""
        with self.lock:
            self._roll(self.book())
            return self.book().day_remaining

    @day_remaining.setter
    def day_remaining(self, value: int) -> None:
        with self.lock:
            self._roll(self.book())
            self.book().day_remaining = value

    # -- tokens ----------------------------------------------------------------------------

    def issue_tokens(self) -> dict[str, Any]:
        """A fresh grant, as the token endpoint gives it (for a connector the tests connect
        without the browser)."""
        with self.lock:
            access = "eat-" + secrets.token_urlsafe(32)
            refresh = "Gcp1!IAAAA" + secrets.token_urlsafe(32)
            self.access_tokens[access] = self.clock + ACCESS_LIFE
            self.refresh_tokens[refresh] = self.clock + REFRESH_LIFE
            return {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "bearer",
                "expires_in": str(int(ACCESS_LIFE.total_seconds())),
            }

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    # -- records -------------------------------------------------------------------------

    def tick(self, minutes: float = 0, seconds: float = 1) -> datetime:
        with self.lock:
            self.clock += timedelta(minutes=minutes, seconds=seconds if not minutes else 0)
            return self.clock

    def _stamp(self, record: dict[str, Any], book: Division) -> None:
        """A change: now (a second on) as Modified, and the division's next Timestamp."""
        record["Modified"] = odata_date(self.tick())
        record["Timestamp"] = book.next_timestamp()

    def add_account(
        self, name: str, *, division: int | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A customer account called ``name``; e-mail ``<first word>@client.example``."""
        with self.lock:
            book = self.book(division)
            book.last_code += 1
            account: dict[str, Any] = {
                "ID": str(uuid.uuid4()),
                "Code": f"C{book.last_code:02d}".rjust(18),
                "Name": name,
                "Email": f"{name.split()[0].lower()}@client.example",
                "Language": "NL",
                "LanguageDescription": "Nederlands",
                "Status": "C",
                "IsSales": True,
                "IsSupplier": False,
                "Blocked": False,
                "Phone": "+31 20 123 4567",
                "AddressLine1": "Keizersgracht 1",
                "City": "Amsterdam",
                "Postcode": "1015 AA",
                "Country": "NL",
                "Remarks": "",
                "Division": book.code,
            }
            account.update(fields)
            self._stamp(account, book)
            account.setdefault("Created", account["Modified"])
            book.accounts[account["ID"]] = account
            return account

    def update_account(
        self, account_id: str, *, division: int | None = None, **fields: Any
    ) -> dict[str, Any]:
        with self.lock:
            book = self.book(division)
            account = book.accounts[account_id]
            account.update(fields)
            self._stamp(account, book)
            return account

    def add_classification(
        self,
        description: str,
        *,
        category: str = "Kindly",
        slot: int = 1,
        division: int | None = None,
    ) -> dict[str, Any]:
        """An account classification ``description`` under the classification name
        ``category`` (made with SequenceNumber ``slot`` when new)."""
        with self.lock:
            book = self.book(division)
            name = next(
                (n for n in book.classification_names.values() if n["Description"] == category),
                None,
            )
            if name is None:
                name = {
                    "ID": str(uuid.uuid4()),
                    "Description": category,
                    "SequenceNumber": slot,
                    "Division": book.code,
                }
                book.classification_names[name["ID"]] = name
            row = {
                "ID": str(uuid.uuid4()),
                "Code": description.upper().replace(" ", "")[:8],
                "Description": description,
                "AccountClassificationName": name["ID"],
                "AccountClassificationNameDescription": category,
                "Division": book.code,
            }
            book.classifications[row["ID"]] = row
            return row

    def classify(
        self, account_id: str, classification: dict[str, Any], *, division: int | None = None
    ) -> dict[str, Any]:
        """Give an account a classification, in its category's slot (a change of the account)."""
        with self.lock:
            book = self.book(division)
            slot = book.classification_names[classification["AccountClassificationName"]][
                "SequenceNumber"
            ]
            return self.update_account(
                account_id, division=division, **{f"Classification{slot}": classification["ID"]}
            )

    def move_division(self, division: int | None = None) -> None:
        """Exact moves the division to another database: its Timestamps start again (lower
        than any given before) and DivisionMoveDate says when."""
        with self.lock:
            book = self.book(division)
            book.moved = self.tick()
            book.timestamp = FIRST_TIMESTAMP // 2
            for rows in (book.accounts, book.invoices, book.deleted):
                for row in rows.values():
                    row["Timestamp"] = book.next_timestamp()

    def delete_account(self, account_id: str, *, division: int | None = None) -> dict[str, Any]:
        """Delete an account: sync/Deleted gives it (EntityType 2) from now on."""
        with self.lock:
            book = self.book(division)
            del book.accounts[account_id]
            return self._bury(book, account_id, ENTITY_ACCOUNTS)

    def add_invoice(
        self,
        account: dict[str, Any],
        number: int,
        amount: str | int | Decimal,
        *,
        issued: date,
        due: date,
        currency: str = "EUR",
        open_amount: str | int | Decimal | None = None,
        division: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A processed sales invoice (Type 8020, Status 50: booked, so in the receivables) of
        ``amount`` incl. VAT; its receivable is ``open_amount`` (``amount`` unless given),
        none when that is 0."""
        with self.lock:
            total = money(amount)
            invoice = self._sales(account, number, total, issued, due, currency, 8020, division)
            invoice.update(_amounts(fields))
            self._file(invoice, money(open_amount) if open_amount is not None else total, division)
            return invoice

    def add_credit_note(
        self,
        account: dict[str, Any],
        number: int,
        amount: str | int | Decimal,
        *,
        issued: date,
        currency: str = "EUR",
        open_amount: str | int | Decimal | None = None,
        division: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A sales credit note (Type 8021) for ``amount`` (given as its size; AmountFC and the
        receivable are negative); its receivable is ``-open_amount`` (``-amount`` unless
        given), none when that is 0."""
        with self.lock:
            size = abs(money(amount))
            note = self._sales(account, number, -size, issued, issued, currency, 8021, division)
            note.update(_amounts(fields))
            open_size = abs(money(open_amount)) if open_amount is not None else size
            self._file(note, -open_size, division)
            return note

    def _sales(
        self,
        account: dict[str, Any],
        number: int,
        total: Decimal,
        issued: date,
        due: date,
        currency: str,
        kind: int,
        division: int | None,
    ) -> dict[str, Any]:
        book = self.book(division)
        if account["ID"] not in book.accounts:
            raise KeyError(f"account {account['ID']} is not in division {book.code}")
        label = "Invoice" if kind == 8020 else "Credit note"
        invoice: dict[str, Any] = {
            "InvoiceID": str(uuid.uuid4()),
            "InvoiceNumber": int(number),
            "Type": kind,
            "Status": 50,
            "StatusDescription": "Processed",
            "InvoiceDate": odata_date(issued),
            "DueDate": odata_date(due),
            "Currency": currency,
            "AmountFC": total,
            "AmountDC": total,
            "InvoiceTo": account["ID"],
            "InvoiceToName": account["Name"],
            "OrderedBy": account["ID"],
            "YourRef": "",
            "Description": f"{label} {number}",
            "Remarks": "",
            "PaymentReference": f"{int(number):016d}",
            "Division": book.code,
        }
        self._stamp(invoice, book)
        invoice["Created"] = invoice["Modified"]
        book.invoices[invoice["InvoiceID"]] = invoice
        self._print(book, invoice)
        return invoice

    def _print(self, book: Division, invoice: dict[str, Any]) -> None:
        """The document of a processed invoice, with its PDF."""
        document = {
            "ID": str(uuid.uuid4()),
            "Account": invoice["InvoiceTo"],
            "Subject": f"{invoice['Description']}",
            "Type": DOCUMENT_SALES_INVOICE,
            "TypeDescription": "Sales invoice",
            "FinancialTransactionEntryID": invoice["InvoiceID"],
            "SalesInvoiceNumber": invoice["InvoiceNumber"],
            "Division": book.code,
        }
        book.documents[document["ID"]] = document
        attachment_id = str(uuid.uuid4())
        content = (
            b"%PDF-1.4\n% fake Exact Online invoice "
            + str(invoice["InvoiceNumber"]).encode()
            + b"\n%%EOF\n"
        )
        book.attachments[attachment_id] = {
            "ID": attachment_id,
            "Document": document["ID"],
            "FileName": f"Factuur {invoice['InvoiceNumber']}.pdf",
            "FileSize": Decimal(len(content)),
            # Made absolute when served (the server may not be started yet).
            "Url": f"{ATTACHMENT_PATH}?ID={attachment_id}&_Division_={book.code}",
        }
        book.files[attachment_id] = content

    def _file(self, invoice: dict[str, Any], open_amount: Decimal, division: int | None) -> None:
        """The ReceivablesList row of ``invoice`` for ``open_amount`` (none at 0)."""
        if open_amount == 0:
            return
        book = self.book(division)
        account = book.accounts[invoice["InvoiceTo"]]
        book.last_hid += 1
        book.receivables[book.last_hid] = {
            "HID": book.last_hid,
            "AccountId": account["ID"],
            "AccountCode": account["Code"],
            "AccountName": account["Name"],
            "Amount": open_amount,
            "AmountInTransit": Decimal("0"),
            "CurrencyCode": invoice["Currency"],
            "Description": invoice["Description"],
            "DueDate": invoice["DueDate"],
            "EntryNumber": 26000000 + book.last_hid,
            "InvoiceDate": invoice["InvoiceDate"],
            "InvoiceNumber": invoice["InvoiceNumber"],
            "JournalCode": "70",
            "JournalDescription": "Verkoopboek",
            "Notes": "",
            "YourRef": invoice.get("YourRef", ""),
        }
        book.receivable_of[invoice["InvoiceID"]] = book.last_hid

    def pay(
        self,
        invoice: dict[str, Any],
        amount: str | int | Decimal,
        *,
        division: int | None = None,
    ) -> dict[str, Any] | None:
        """A payment (or, for a credit note, a refund) of ``amount``: its receivable moves that
        much towards 0 and is gone at 0. The invoice itself does not change (in Exact a
        payment is a financial transaction: neither Modified nor Timestamp move). Returns
        the receivable row, None once gone."""
        with self.lock:
            book = self.book(division)
            hid = book.receivable_of.get(invoice["InvoiceID"])
            if hid is None:
                raise ValueError(f"invoice {invoice['InvoiceNumber']} has nothing open")
            row = book.receivables[hid]
            paid = abs(money(amount))
            if paid > abs(row["Amount"]):
                raise ValueError(f"invoice {invoice['InvoiceNumber']}: more than is open")
            row["Amount"] = row["Amount"] - paid if row["Amount"] > 0 else row["Amount"] + paid
            if row["Amount"] == 0:
                del book.receivables[hid]
                del book.receivable_of[invoice["InvoiceID"]]
                return None
            return row

    def update_invoice(
        self, invoice_id: str, *, division: int | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Change fields of an invoice: a new Modified and the next Timestamp (its receivable
        stays as it is)."""
        with self.lock:
            book = self.book(division)
            invoice = book.invoices[invoice_id]
            invoice.update(_amounts(fields))
            self._stamp(invoice, book)
            return invoice

    def delete_invoice(self, invoice_id: str, *, division: int | None = None) -> dict[str, Any]:
        """Delete an invoice (or credit note) and its receivable: sync/Deleted gives it
        (EntityType 13) from now on."""
        with self.lock:
            book = self.book(division)
            del book.invoices[invoice_id]
            hid = book.receivable_of.pop(invoice_id, None)
            if hid is not None:
                del book.receivables[hid]
            return self._bury(book, invoice_id, ENTITY_SALES_INVOICES)

    def _bury(self, book: Division, key: str, entity_type: int) -> dict[str, Any]:
        row: dict[str, Any] = {
            "ID": str(uuid.uuid4()),
            "EntityKey": key,
            "EntityType": entity_type,
            "DeletedBy": self.user_id,
            "Division": book.code,
        }
        self._stamp(row, book)
        row["DeletedDate"] = row.pop("Modified")
        book.deleted[row["ID"]] = row
        return row

    # -- dispatch --------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        with self.lock:
            self.calls[f"{method} {path}"] += 1
            if path == TOKEN_PATH and method == "POST":
                self.token_calls += 1
            injected = None
            for prefix, queued in self.faults.items():
                if queued and path.startswith(prefix):
                    injected = queued.pop(0)
                    break
            if injected is not None and not injected.carry_out:
                status, payload, headers = injected.status, injected.body or {}, injected.headers
            else:
                try:
                    status, payload, headers = self._route(
                        method, path, query, request.headers, body
                    )
                except KeyError:
                    status, payload, headers = 404, error("Not found: " + path), {}
                if injected is not None:
                    status, payload, headers = (
                        injected.status,
                        injected.body or {},
                        injected.headers,
                    )
            if injected is not None and injected.before is not None:
                injected.before()
            if injected is not None and injected.drop:
                request.close_connection = True
                return
            if path == TOKEN_PATH and self.lose_token_answers:
                # Done, and the answer never arrives: the line drops before it.
                self.lose_token_answers -= 1
                request.close_connection = True
                return
            data = payload if isinstance(payload, bytes) else encode(payload).encode()
            if status == 204:
                data = b""
        request.send_response(status)
        headers = {"Content-Type": "application/json; charset=utf-8", **headers}
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        if path == AUTHORIZE_PATH and method == "GET":
            return self._authorize(query)
        if path == TOKEN_PATH and method == "POST":
            form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
            return self._token(headers, form)
        if path == ATTACHMENT_PATH and method == "GET":
            return self._download(query, headers)
        if not path.startswith(API + "/"):
            raise KeyError(path)
        token = (headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        expires = self.access_tokens.get(token)
        if expires is None or expires <= self.clock:
            return (
                401,
                error("Access token is invalid or has expired"),
                {"WWW-Authenticate": 'Bearer realm="Exact Online", error="invalid_token"'},
            )
        if self.require_json_accept and "application/json" not in (headers.get("Accept") or ""):
            return 406, error("The fake answers JSON only: send Accept: application/json"), {}
        rest = path.removeprefix(API + "/")
        me = rest == "current/Me"
        if me:
            book = self.book()
        else:
            head, _, rest = rest.partition("/")
            known = head.isdigit() and int(head) in self.divisions
            if not known:
                return 403, error(f"Forbidden: no access to division {head}"), {}
            book = self.divisions[int(head)]
        throttled, rate = self._take(book)
        if throttled is not None:
            return throttled, error("Too many requests: the rate limit is reached"), rate
        try:
            if me:
                if method != "GET":
                    raise KeyError(rest)
                status, payload, extra = self._list(book, rest, None, [self._me()], query)
            else:
                status, payload, extra = self._api(book, method, rest, query, body)
        except ODataError as exc:
            status, payload, extra = 400, error(str(exc)), {}
        except KeyError:
            status, payload, extra = 404, error(f"Not found: {path}"), {}
        return status, payload, {**rate, **extra}

    # -- rate limits -----------------------------------------------------------------------

    def _roll(self, book: Division) -> None:
        """A new fake day gives the day's calls back; a fake minute gone, the minute's."""
        if book.day != self.clock.date():
            book.day = self.clock.date()
            book.day_remaining = self.day_limit
        if book.minute_start is not None and self.clock >= book.minute_start + MINUTE:
            book.minute_start = None
            book.minute_used = 0

    def _take(self, book: Division) -> tuple[int | None, dict[str, str]]:
        """(429 or None, the rate-limit headers) for one call in ``book``."""
        self._roll(book)
        if book.minute_start is None:
            book.minute_start = self.clock
        minute_reset = str(ms(book.minute_start + MINUTE))
        if book.minute_used >= self.per_minute:
            return 429, {
                "X-RateLimit-Minutely-Limit": str(self.per_minute),
                "X-RateLimit-Minutely-Remaining": "0",
                "X-RateLimit-Minutely-Reset": minute_reset,
            }
        midnight = datetime.combine(self.clock.date() + timedelta(days=1), datetime.min.time(), UTC)
        spent = book.day_remaining <= 0
        if not spent:
            book.day_remaining -= 1
            book.minute_used += 1
        headers = {
            "X-RateLimit-Limit": str(self.day_limit),
            "X-RateLimit-Remaining": str(max(book.day_remaining, 0)),
            "X-RateLimit-Reset": str(ms(midnight)),
            "X-RateLimit-Minutely-Limit": str(self.per_minute),
            "X-RateLimit-Minutely-Remaining": str(self.per_minute - book.minute_used),
            "X-RateLimit-Minutely-Reset": minute_reset,
        }
        return (429 if spent else None), headers

    # -- OAuth -----------------------------------------------------------------------------

    def _authorize(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        # The user signs in to Exact and consents: back to the redirect URI.
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, {"error": "invalid_request"}, {}
        if not query.get("redirect_uri"):
            return 400, {"error": "invalid_request", "error_description": "redirect_uri"}, {}
        code = "stampNL001.gAAA!" + secrets.token_urlsafe(24)
        self.codes[code] = {
            "redirect_uri": query["redirect_uri"],
            "expires": self.clock + CODE_LIFE,
        }
        answer = {"code": code, "state": query.get("state", "")}
        joiner = "&" if "?" in query["redirect_uri"] else "?"
        return 302, b"", {"Location": query["redirect_uri"] + joiner + urlencode(answer)}

    def _client(self, headers: Any, form: dict[str, str]) -> tuple[str, str] | None:
        basic = headers.get("Authorization") or ""
        if basic.startswith("Basic "):
            try:
                pair = base64.b64decode(basic[6:]).decode()
            except ValueError:
                return None
            client_id, _, secret = pair.partition(":")
            return unquote(client_id), unquote(secret)
        if "client_id" in form:
            return form["client_id"], form.get("client_secret", "")
        return None

    def _token(self, headers: Any, form: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if self._client(headers, form) != (self.client_id, self.client_secret):
            return 400, {"error": "invalid_client"}, {}
        grant = form.get("grant_type")
        if grant == "authorization_code":
            entry = self.codes.pop(form.get("code", ""), None)  # good once, whatever comes
            if (
                entry is None
                or entry["expires"] <= self.clock
                or entry["redirect_uri"] != form.get("redirect_uri")
            ):
                return 400, {"error": "invalid_grant"}, {}
            return 200, self.issue_tokens(), {}
        if grant == "refresh_token":
            old = form.get("refresh_token", "")
            until = self.refresh_tokens.get(old)
            if until is None or until <= self.clock:
                return 400, {"error": "invalid_grant"}, {}
            # Rotation without grace: the one used stops working now.
            del self.refresh_tokens[old]
            self.refreshes += 1
            return 200, self.issue_tokens(), {}
        return 400, {"error": "unsupported_grant_type"}, {}

    # -- the API ---------------------------------------------------------------------------

    def _api(
        self, book: Division, method: str, rest: str, query: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        single = BY_KEY.match(rest)
        name = single["name"] if single else rest
        if name == "salesinvoice/PrintedSalesInvoices" and not single:
            if method != "POST":
                return 405, error(f"Method {method} is not allowed on {name}"), {}
            return self._print_post(book, body)
        resource = RESOURCES.get(name)
        if resource is None or (resource.sync and single):
            raise KeyError(rest)
        if method == "POST" and name == "activities/CommunicationNotes" and not single:
            return self._post_note(book, body)
        if method == "PUT" and name == "crm/Accounts" and single:
            return self._put_account(book, single["key"], body)
        if name == "webhooks/WebhookSubscriptions":
            if method == "POST" and not single:
                return self._subscribe(book, body)
            if method == "DELETE" and single:
                key = single["key"][5:-1].lower()
                if book.subscriptions.pop(key, None) is None:
                    return 404, error(f"{name}({single['key']}) does not exist"), {}
                return 204, b"", {}
        if method != "GET":
            return 405, error(f"Method {method} is not allowed on {name}"), {}
        if single:
            return self._one(book, name, resource, single["key"], query)
        return self._list(book, name, resource, self._rows(book, resource), query)

    def _me(self) -> dict[str, Any]:
        return {
            "CurrentDivision": self.division,
            "FullName": self.user_name,
            "UserID": self.user_id,
            "UserName": "anouk@noordlicht.example",
            "Email": "anouk@noordlicht.example",
            "LanguageCode": "nl-NL",
        }

    def _rows(self, book: Division, resource: Resource) -> list[dict[str, Any]]:
        if not resource.store:
            return [
                {
                    "Code": each.code,
                    "Description": each.description,
                    "Currency": each.currency,
                    "Country": each.country,
                    "DivisionMoveDate": odata_date(each.moved) if each.moved else None,
                }
                for each in self.divisions.values()
            ]
        rows: dict[Any, dict[str, Any]] = getattr(book, resource.store)
        if resource.store == "deleted":
            # Exact keeps the log of deletions two months.
            kept_from = ms(self.clock - DELETIONS_KEPT)
            return [r for r in rows.values() if parse_odata_date(r["DeletedDate"]) >= kept_from]
        return list(rows.values())

    def _one(
        self, book: Division, name: str, resource: Resource, key: str, query: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        self._options(query)
        wanted: Any = key[5:-1].lower() if key.startswith("guid'") else int(key)
        if resource.fields[resource.key] == GUID and not isinstance(wanted, str):
            raise ODataError(f"The key of {name} is a Guid: use {name}(guid'...')")
        for row in self._rows(book, resource):
            mine = row[resource.key]
            if (mine.lower() if isinstance(mine, str) else mine) == wanted:
                select = self._select(query, resource, self._rows(book, resource))
                return 200, {"d": self._shape(book, name, resource, row, select)}, {}
        return 404, error(f"{name}({key}) does not exist"), {}

    def _options(self, query: dict[str, str]) -> None:
        for option in query:
            if option.startswith("$") and option not in QUERY_OPTIONS:
                raise ODataError(f"The query option {option} is not supported")
        if query.get("$format", "json") != "json":
            raise ODataError(f"$format={query['$format']} is not supported: use json")

    def _select(
        self, query: dict[str, str], resource: Resource | None, rows: list[dict[str, Any]]
    ) -> list[str] | None:
        text = query.get("$select")
        if text is None or text.strip() in ("", "*"):
            if resource is not None and resource.sync:
                raise ODataError("$select is mandatory on a sync endpoint")
            return None
        known = self._fields(resource, rows)
        names = [n.strip() for n in text.split(",")]
        for each in names:
            if each not in known or (
                resource is not None and not resource.sync and each == "Timestamp"
            ):
                raise ODataError(f"Invalid $select: no property '{each}'")
        return names

    @staticmethod
    def _fields(resource: Resource | None, rows: list[dict[str, Any]]) -> dict[str, str]:
        """The fields of a resource and their types (those tests added to records too)."""
        known = dict(resource.fields if resource is not None else ME_FIELDS)
        for row in rows:
            for name, value in row.items():
                if name not in known:
                    known[name] = _kind_of(value)
        return known

    def _shape(
        self,
        book: Division,
        name: str,
        resource: Resource | None,
        row: dict[str, Any],
        select: list[str] | None,
    ) -> dict[str, Any]:
        if resource is None:
            uri = f"{self.url}{API}/current/Me(guid'{row['UserID']}')"
            kind = "Me"
        else:
            key = row[resource.key]
            shown = f"guid'{key}'" if isinstance(key, str) else str(key)
            uri = f"{self.url}{API}/{book.code}/{name}({shown})"
            kind = resource.kind
        out: dict[str, Any] = {"__metadata": {"uri": uri, "type": f"Exact.Web.Api.Models.{kind}"}}
        if select is None:
            out.update(
                {
                    k: v
                    for k, v in row.items()
                    if resource is None or resource.sync or k != "Timestamp"
                }
            )
        else:
            out.update({k: row.get(k) for k in select})
            if resource is not None and resource.sync:
                out["Timestamp"] = row["Timestamp"]
        if isinstance(out.get("Url"), str) and out["Url"].startswith("/"):
            out["Url"] = self.url + out["Url"]
        return out

    def _list(
        self,
        book: Division,
        name: str,
        resource: Resource | None,
        rows: list[dict[str, Any]],
        query: dict[str, str],
    ) -> tuple[int, Any, dict[str, str]]:
        self._options(query)
        select = self._select(query, resource, rows)
        known = self._fields(resource, rows)
        if resource is not None and not resource.sync:
            known.pop("Timestamp", None)
        text = query.get("$filter", "").strip()
        if resource is not None and resource.needs_filter and self.mandatory_filters and not text:
            raise ODataError(f"$filter is mandatory on {name}: it has a sync endpoint")
        if text:
            keep = FilterParser(text, known).parse()
            rows = [r for r in rows if keep(r)]
        order = None if resource is None else "Timestamp" if resource.sync else resource.key
        if order is not None:
            if query.get("$orderby") and query["$orderby"].strip() not in (order, f"{order} asc"):
                raise ODataError(
                    f"$orderby={query['$orderby']} is not supported: rows come by {order}"
                )
            rows = sorted(rows, key=lambda r: _sort_key(r[order]))
            token = query.get("$skiptoken")
            if token:
                after = _parse_skiptoken(token, known[order])
                rows = [r for r in rows if _sort_key(r[order]) > after]
        size = resource.page if resource is not None else REST_PAGE
        top = query.get("$top")
        if top is not None:
            if not top.isdigit():
                raise ODataError(f"Invalid $top: {top}")
            size = min(size, int(top))
        page = rows[:size]
        more = len(rows) > len(page) and (top is None or int(top) > len(page))
        result: dict[str, Any] = {"results": []}
        shown = self.random.sample(page, len(page)) if self.shuffle_pages else page
        result["results"] = [self._shape(book, name, resource, row, select) for row in shown]
        if more and order is not None:
            last = page[-1][order]
            params = {k: v for k, v in query.items() if k != "$skiptoken"}
            if top is not None:
                params["$top"] = str(int(top) - len(page))
            params["$skiptoken"] = f"guid'{last}'" if known[order] == GUID else str(last)
            base = f"{self.url}{API}/{book.code}/{name}"
            result["__next"] = base + "?" + urlencode(params, quote_via=quote, safe="$'(),:")
        self.served.append(len(page))
        return 200, {"d": result}, {}

    def _download(self, query: dict[str, str], headers: Any) -> tuple[int, Any, dict[str, str]]:
        """An attachment's file, to a bearer token; without ``Download=1``, Exact's page."""
        token = (headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        expires = self.access_tokens.get(token)
        if expires is None or expires <= self.clock:
            return 401, error("Access token is invalid or has expired"), {}
        book = self.divisions.get(int(query.get("_Division_", "0") or 0))
        attachment_id = query.get("ID", "").lower()
        if book is None or attachment_id not in book.files:
            return 404, b"<html><body>Not found</body></html>", {"Content-Type": "text/html"}
        if query.get("Download") != "1":
            page = b"<html><body>Exact Online: attachment viewer</body></html>"
            return 200, page, {"Content-Type": "text/html; charset=utf-8"}
        return 200, book.files[attachment_id], {"Content-Type": "application/pdf"}

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"null", parse_float=Decimal)
        except ValueError:
            raise ODataError("The request body is not JSON") from None
        if not isinstance(data, dict):
            raise ODataError("The request body is not a JSON object")
        data.pop("__metadata", None)
        return data

    def _put_account(
        self, book: Division, key: str, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        account = book.accounts.get(key[5:-1].lower()) if key.startswith("guid'") else None
        if account is None:
            return 404, error(f"crm/Accounts({key}) does not exist"), {}
        data = self._json_body(body)
        for name, value in data.items():
            if name not in ACCOUNT_WRITABLE:
                raise ODataError(f"The property '{name}' cannot be changed on Account")
            if name in CLASSIFICATION_SLOTS and value is not None:
                chosen = book.classifications.get(str(value).lower())
                if chosen is None:
                    raise ODataError(f"{name}: the classification {value} does not exist")
                slot = book.classification_names[chosen["AccountClassificationName"]]
                if f"Classification{slot['SequenceNumber']}" != name:
                    raise ODataError(
                        f"{name}: classification {chosen['Description']} belongs to "
                        f"Classification{slot['SequenceNumber']}"
                    )
        account.update(data)
        self._stamp(account, book)
        return 204, b"", {}

    def _print_post(self, book: Division, body: bytes) -> tuple[int, Any, dict[str, str]]:
        data = self._json_body(body)
        key = str(data.get("InvoiceID") or "").lower()
        invoice = book.invoices.get(key)
        if invoice is None:
            return 400, error(f"InvoiceID: the sales invoice {key} does not exist"), {}
        answer: dict[str, Any] = {
            "InvoiceID": invoice["InvoiceID"],
            "Division": book.code,
            "Document": None,
            "DocumentCreationError": None,
            "DocumentCreationSuccess": "Document created",
            "EmailCreationError": None,
            "EmailCreationSuccess": None,
        }
        if invoice["Status"] == 20:
            # Printing processes it: booked, numbered, in the receivables from now on.
            invoice["Status"], invoice["StatusDescription"] = 50, "Processed"
            self._stamp(invoice, book)
            self._file(invoice, invoice["AmountFC"], book.code)
            self._print(book, invoice)
        document = next(
            (
                d
                for d in book.documents.values()
                if d["FinancialTransactionEntryID"] == invoice["InvoiceID"]
            ),
            None,
        )
        answer["Document"] = document["ID"] if document else None
        if data.get("SendEmailToCustomer"):
            address = book.accounts[invoice["InvoiceTo"]].get("Email") or ""
            if address:
                book.mailed.append((invoice["InvoiceID"], address))
                answer["EmailCreationSuccess"] = f"The e-mail was sent to {address}"
            else:
                answer["EmailCreationError"] = "The account has no e-mail address"
        return 201, {"d": answer}, {}

    def _subscribe(self, book: Division, body: bytes) -> tuple[int, Any, dict[str, str]]:
        data = self._json_body(body)
        url, topic = str(data.get("CallbackURL") or ""), str(data.get("Topic") or "")
        if not url.startswith("https://"):
            raise ODataError("CallbackURL: webhooks need an https address")
        if topic not in WEBHOOK_TOPICS:
            raise ODataError(f"Topic: '{topic}' is not a webhook topic")
        if any(
            row["CallbackURL"] == url and row["Topic"] == topic
            for row in book.subscriptions.values()
        ):
            raise ODataError(f"A subscription to {topic} for {url} exists already")
        row: dict[str, Any] = {
            "ID": str(uuid.uuid4()),
            "CallbackURL": url,
            "Topic": topic,
            "ClientID": str(uuid.uuid5(uuid.NAMESPACE_URL, self.client_id)),
            "Division": book.code,
            "Created": odata_date(self.clock),
        }
        book.subscriptions[row["ID"]] = row
        resource = RESOURCES["webhooks/WebhookSubscriptions"]
        return (
            201,
            {"d": self._shape(book, "webhooks/WebhookSubscriptions", resource, row, None)},
            {},
        )

    def _post_note(self, book: Division, body: bytes) -> tuple[int, Any, dict[str, str]]:
        try:
            data = json.loads(body or b"null", parse_float=Decimal)
        except ValueError:
            return 400, error("The request body is not JSON"), {}
        if not isinstance(data, dict):
            return 400, error("The request body is not a JSON object"), {}
        data.pop("__metadata", None)
        for name in data:
            if name not in NOTE_WRITABLE:
                return 400, error(f"The property '{name}' does not exist on CommunicationNote"), {}
        for name in ("Account", "Subject"):
            if not isinstance(data.get(name), str) or not data[name].strip():
                return 400, error(f"Mandatory: {name}"), {}
        try:
            account_id = str(uuid.UUID(data["Account"]))
        except ValueError:
            return 400, error(f"Account: '{data['Account']}' is not a Guid"), {}
        account = book.accounts.get(account_id)
        if account is None:
            return 400, error(f"Account: the account {account_id} does not exist"), {}
        notes = data.get("Notes", "")
        if not isinstance(notes, str):
            return 400, error("Notes: text expected"), {}
        when = data.get("Date")
        try:
            moment = parse_when(when) if isinstance(when, str) else ms(self.clock)
        except ValueError:
            return 400, error(f"Date: '{when}' is not a date"), {}
        if when is not None and not isinstance(when, str):
            return 400, error(f"Date: '{when}' is not a date"), {}
        now = odata_date(self.clock)
        note: dict[str, Any] = {
            "ID": str(uuid.uuid4()),
            "Account": account_id,
            "AccountName": account["Name"],
            "Subject": data["Subject"],
            "Notes": notes,
            "Date": f"/Date({moment})/",
            "Creator": self.user_id,
            "CreatorFullName": self.user_name,
            "Division": book.code,
            "Created": now,
            "Modified": now,
        }
        book.notes[note["ID"]] = note
        resource = RESOURCES["activities/CommunicationNotes"]
        return (
            201,
            {"d": self._shape(book, "activities/CommunicationNotes", resource, note, None)},
            {},
        )


# -- $filter ------------------------------------------------------------------------------

TOKEN = re.compile(
    r"""\s*(?:
    (?P<open>\()|(?P<close>\))
    |(?P<guid>guid'[^']*')
    |(?P<datetime>datetime'[^']*')
    |(?P<text>'(?:[^']|'')*')
    |(?P<number>-?\d+(?:\.\d+)?[LlMmDd]?)
    |(?P<word>[A-Za-z_]\w*)
    |(?P<other>[^\s()']+|')
    )""",
    re.VERBOSE,
)
COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
Predicate = Callable[[dict[str, Any]], bool]


class FilterParser:
    """``$filter`` as far as the fake speaks it: comparisons joined by and/or, in
    parentheses or not; the literal's type must be the field's."""

    def __init__(self, text: str, fields: dict[str, str]) -> None:
        self.text = text
        self.fields = fields
        self.tokens: list[tuple[str, str]] = []
        at = 0
        while at < len(text):
            if not text[at:].strip():
                break
            found = TOKEN.match(text, at)
            assert found is not None  # "other" takes any character
            kind = found.lastgroup
            assert kind is not None
            self.tokens.append((kind, found[kind]))
            at = found.end()
        self.at = 0

    def parse(self) -> Predicate:
        if not self.tokens:
            raise ODataError("An empty $filter")
        keep = self._or()
        if self.at != len(self.tokens):
            raise ODataError(f"Unsupported $filter syntax at: {self._rest()!r}")
        return keep

    def _rest(self) -> str:
        return " ".join(value for _, value in self.tokens[self.at :])

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _next(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise ODataError(f"The $filter ends too soon: {self.text!r}")
        self.at += 1
        return token

    def _is_word(self, word: str) -> bool:
        token = self._peek()
        return token is not None and token[0] == "word" and token[1].lower() == word

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._is_word("or"):
            self.at += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else lambda r: any(p(r) for p in parts)

    def _and(self) -> Predicate:
        parts = [self._factor()]
        while self._is_word("and"):
            self.at += 1
            parts.append(self._factor())
        return parts[0] if len(parts) == 1 else lambda r: all(p(r) for p in parts)

    def _factor(self) -> Predicate:
        kind, value = self._next()
        if kind == "open":
            inner = self._or()
            if self._next()[0] != "close":
                raise ODataError(f"Unbalanced parentheses in $filter: {self.text!r}")
            return inner
        if kind != "word" or value.lower() in ("not", "and", "or"):
            raise ODataError(f"Unsupported $filter syntax at: {value} {self._rest()}".strip())
        following = self._peek()
        if following is not None and following[0] == "open":
            raise ODataError(f"Unsupported $filter function: {value}()")
        if value not in self.fields:
            raise ODataError(f"Unsupported $filter: no property '{value}'")
        field_kind = self.fields[value]
        op_kind, op = self._next()
        if op_kind != "word" or op.lower() not in COMPARE:
            raise ODataError(f"Unsupported $filter operator: {op}")
        op = op.lower()
        literal_kind, literal = _literal(self._next())
        widened = field_kind == DECIMAL and literal_kind == INT
        if literal_kind is not None and literal_kind != field_kind and not widened:
            raise ODataError(
                f"Operator '{op}' incompatible with operand types "
                f"'{EDM[field_kind]}' and '{EDM[literal_kind]}'"
            )
        if op not in ("eq", "ne") and (field_kind in (GUID, BOOL) or literal is None):
            raise ODataError(f"Operator '{op}' is not defined for '{EDM[field_kind]}'")
        name = value

        def keep(row: dict[str, Any]) -> bool:
            mine = _comparable(row.get(name), field_kind)
            if op in ("eq", "ne"):
                return bool(mine == literal) == (op == "eq")
            if mine is None:
                return False
            if op == "gt":
                return bool(mine > literal)
            if op == "ge":
                return bool(mine >= literal)
            if op == "lt":
                return bool(mine < literal)
            return bool(mine <= literal)

        return keep


def _literal(token: tuple[str, str]) -> tuple[str | None, Any]:
    """(the literal's type, its comparable value); type None for null."""
    kind, value = token
    try:
        if kind == "guid":
            return GUID, str(uuid.UUID(value[5:-1]))
        if kind == "datetime":
            return DATETIME, parse_when(value[9:-1])
        if kind == "text":
            return TEXT, value[1:-1].replace("''", "'")
        if kind == "number":
            if value[-1] in "Ll" or value.lstrip("-").isdigit():
                return INT, int(value.rstrip("Ll"))
            return DECIMAL, Decimal(value.rstrip("MmDd"))
    except (ValueError, InvalidOperation) as exc:
        raise ODataError(f"Invalid literal in $filter: {value}") from exc
    if kind == "word" and value in ("true", "false"):
        return BOOL, value == "true"
    if kind == "word" and value == "null":
        return None, None
    raise ODataError(f"Unsupported $filter syntax at: {value}")


def _comparable(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == GUID:
        return str(value).lower()
    if kind == DATETIME:
        return parse_odata_date(value)
    if kind == DECIMAL:
        return money(value)
    return value


def _amounts(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with the invoice amounts as Decimal."""
    return {k: money(v) if k in ("AmountFC", "AmountDC") else v for k, v in fields.items()}


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, Decimal | float):
        return DECIMAL
    if isinstance(value, str) and value.startswith("/Date("):
        return DATETIME
    return TEXT


def _sort_key(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _parse_skiptoken(token: str, kind: str) -> Any:
    try:
        if kind == GUID:
            if not (token.startswith("guid'") and token.endswith("'")):
                raise ValueError(token)
            return str(uuid.UUID(token[5:-1])).lower()
        return int(token.rstrip("Ll"))
    except ValueError as exc:
        raise ODataError(f"Invalid $skiptoken: {token}") from exc

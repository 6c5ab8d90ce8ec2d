"""A fake Fiken API v2 (Norway) on loopback: its OAuth 2 and the slice of the API we use.

It behaves like the platform where our connector could get it wrong, and answers in the
shapes of ../shared/specs/fiken/fiken-api-v2.yaml (OAS 3.0; platform-apis.md section 6):
amounts are integers in øre (cents), dates ``YYYY-MM-DD`` and nothing finer, ids int64;
there is no float anywhere in an answer (the encoder refuses one).

- OAuth 2 for a confidential client: ``/oauth/authorize`` (``response_type=code``,
  ``client_id``, ``redirect_uri``, ``state`` all required) redirects with ``code`` and
  ``state``; a request without ``state``, or a user who says no (``deny_consent``), is
  redirected with ``error``/``error_description`` as Fiken documents. ``/oauth/token``
  takes the client as HTTP Basic only (else 401 ``invalid_client``); the code is good once,
  for 10 minutes of the fake clock, with its redirect URI; the answer is ``access_token``,
  ``refresh_token``, ``token_type`` "bearer", ``expires_in`` 86400 (an int); access tokens
  last that long. A refresh gives a new refresh token and the one used stops at once while
  ``rotate_refresh_tokens`` is on (the default: Fiken says "possibly updated", so a client
  must store what comes back); off, the same one comes back and keeps working.
  ``/oauth/revoke`` with the bearer ends the grant: its refresh token and every access
  token it gave;
- the API under ``/api/v2``: a bearer token (unknown, expired or revoked: 401);
  ``GET /user``; ``GET /companies`` (two companies, paged, ``sortBy``) and
  ``GET /companies/{slug}``; everything else under ``/companies/{slug}/`` with records
  kept apart per company, an unknown slug 403;
- lists page as Fiken's do: ``page`` from 0 (default 0), ``pageSize`` (default 25, 1..100,
  else 400), rows in the order they were made unless ``sortBy`` says otherwise, and the
  headers ``Fiken-Api-Page``, ``-Page-Size``, ``-Page-Count`` (0 for no rows) and
  ``-Result-Count`` on the paged lists (companies, contacts, invoices, creditNotes; the
  spec declares them there only); a page past the end is ``[]`` with the headers;
  ``shuffle_pages`` mixes the rows within each page;
- filters as in the spec: the date fields with their ``Le``/``Lt``/``Ge``/``Gt`` forms
  (``lastModified*``, ``createdDate*``, ``issueDate*``, ``dueDate*``) compare DATES only,
  and ``lastModifiedDate`` is a date, so two changes on one day both come back from
  ``lastModifiedGe=<that day>`` (a client must re-read its last day); a malformed date or
  boolean is a 400. A query parameter the fake does not know is ignored, as a server that
  does not know it would, and noted in ``ignored_params``;
- ``contacts`` (filters ``customer``, ``supplier``, ``inactive``, ``name``, ``email``,
  ``organizationNumber``, ``customerNumber``, ``phoneNumber``, ``group``, the dates;
  ``sortBy`` ``lastModified|createdDate asc|desc``) and ``contacts/{id}``;
- ``invoices`` (filters ``customerId``, ``settled``, ``orderReference``, ``invoiceNumber``,
  ``invoiceDraftUuid``, the dates) and ``invoices/{id}``: ``customer`` is the contact,
  ``sale`` the sale with its payments, ``invoicePdf`` a PDF, ``associatedCreditNotes`` ids;
  ``PATCH invoices/{id}`` (``newDueDate``, ``sentManually``; ``originalDueDate`` keeps the
  first due date);
- ``creditNotes`` (``customerId``, ``settled``, the dates: ``lastModified*`` is in the newer
  spec only and the credit note shows no ``lastModifiedDate``; ``credit_note_modified_filter``
  off makes the fake ignore it, as an older Fiken would) and ``creditNotes/{id}``;
- ``sales/{saleId}``, ``sales/{saleId}/payments`` and ``.../payments/{paymentId}`` (not paged,
  as in the spec); a NOK payment is ``paymentId``, ``date``, ``account``, ``amount`` only:
  the spec says ``amountInNok``, ``currency`` and ``fee`` come with a foreign one;
- files: each ``downloadUrl`` is ``/api/v2/files/<key>/<name>`` on this fake, the bytes to a
  bearer token (PDFs are ``%PDF-1.4`` ...); ``downloadUrlWithFikenNormalUserCredentials``
  wants a browser login (401 here);
- ``POST invoices/send`` (``sendInvoiceRequest``: ``invoiceId``, ``method`` [``email``,
  ``ehf``, ``efaktura``, ``sms``, ``letter``, ``auto``], ``includeDocumentAttachments``
  required, ...; an unexpected field is a 400, as Fiken's docs say) sends by the first
  method the customer can receive (``auto``: EHF, eFaktura, SMS, e-mail), answers 200 with
  no body and records ``(invoiceId, methods, recipient)`` in the company's ``sent``; when
  no method reaches the customer (EHF without an organisation number, SMS without a phone
  number, eFaktura for a contact not registered for it, a letter outside Norway) it is a
  400 naming why; ``POST creditNotes/send`` likewise into ``sent_credit_notes``;
- attachments, multipart/form-data, 201 with ``Location`` (the file's URL) and no body:
  ``invoices/{id}/attachments`` (fields ``filename``, ``file``: the only two the spec
  gives, anything else is a 400), ``contacts/{id}/attachments`` (``filename``, ``comment``,
  ``file``; shown in the contact's ``documents``), ``sales/{saleId}/attachments``
  (``filename``, ``attachToPayment``, ``attachToSale``, ``file``; one of the two must be
  true); ``filename`` is required and must end in .png, .jpeg, .jpg, .gif or .pdf; the
  attachment shows as ``{identifier, downloadUrl, downloadUrlWithFikenNormalUserCredentials,
  type, comment?}`` and keeps its bytes; posting twice makes two (no idempotency); ``GET``
  of the invoice's and the sale's attachment lists;
- Fiken's own payment reminders ("purring"): the spec has no setting, field or endpoint for
  them; its only trace is the attachment ``type`` value ``reminder``. ``remind`` puts one
  on an invoice (a ``reminder`` attachment, a PDF), and with ``auto_reminders`` on,
  ``next_day`` does so for every open invoice ``reminder_after_days`` past due that has none
  yet (the fake's assumption of what Fiken's own reminders look like through the API);
  neither moves ``lastModifiedDate`` (unknown in Fiken, so a client must not count on it);
- the rate limit: ONE request at a time per user: a request that arrives while another of
  the same user is in flight gets 429 (``hold_next`` keeps a request in flight until the
  test lets it go, so overlap is made without sleeping); with ``strict_rate`` on, more than
  ``per_second`` requests in one second of the fake clock get 429 too (Fiken "slows" them);
- faults on demand (``fail_next``), before any check; ``Fault.carry_out`` does the request
  and then answers with the fault, with ``drop`` the connection closes without an answer;
- a count of every call (``calls``, by "METHOD /path"), of the token calls (``token_calls``),
  of the refreshes, and of the rows in each list answer (``served``).

Records are held per company as Fiken JSON (keys starting with ``_`` are the fake's own and
never served); ids are one increasing sequence across the fake. Tests add and change them
with the helpers, each change moving the fake clock on a second: the clock (Europe/Oslo)
moves only with ``tick()`` and ``next_day()``. Invoices are never deleted: Fiken has no such
endpoint, an invoice is credited (``add_credit_note``).

Error bodies are ``{"error": ..., "error_description": ...}`` (as the token endpoint's;
the spec gives no error schema for the API, so this is the fake's assumption).
"""

from __future__ import annotations

import base64
import collections
import email.policy
import json
import random
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from email.message import Message
from email.parser import BytesParser
from fractions import Fraction
from http.server import ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from tests.fakes.http_server import DROP, base_url, serve, stop

API = "/api/v2"
AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
REVOKE_PATH = "/oauth/revoke"
FILES = f"{API}/files"
#: Where ``downloadUrlWithFikenNormalUserCredentials`` points: Fiken's web login, not the API.
LOGIN_FILES = "/filer"
OSLO = ZoneInfo("Europe/Oslo")
ACCESS_LIFE = timedelta(seconds=86400)
CODE_LIFE = timedelta(minutes=10)
PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
#: How long a held request waits for the test at most (a failed test must not hang the server).
HOLD_LIMIT = 10.0
SEND_METHODS = ("email", "ehf", "efaktura", "sms", "letter", "auto")
#: The order ``auto`` tries, as the spec gives it.
AUTO_ORDER = ("ehf", "efaktura", "sms", "email")
EMAIL_SEND_OPTIONS = ("document_link", "attachment", "auto")
SEND_FIELDS = frozenset(
    {
        "method",
        "includeDocumentAttachments",
        "recipientName",
        "recipientEmail",
        "message",
        "emailSendOption",
        "mergeInvoiceAndAttachments",
        "organizationNumber",
        "mobileNumber",
    }
)
ATTACHABLE = (".png", ".jpeg", ".jpg", ".gif", ".pdf")
CONTENT_TYPES = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
}
#: NOK per unit of a currency, exact (amounts in NOK are rounded to whole øre).
NOK_PER = {
    "NOK": Fraction(1),
    "EUR": Fraction(1150, 100),
    "SEK": Fraction(98, 100),
    "DKK": Fraction(154, 100),
    "USD": Fraction(1060, 100),
    "GBP": Fraction(1360, 100),
}
NORWAY = frozenset({"norge", "norway", "no", "nor"})
CONTACT_SORTS = ("createdDate", "lastModified")
COMPANY_SORTS = ("createdDate", "name", "organizationNumber")
BANK_ACCOUNT = "1920:10001"
BANK_ACCOUNT_NUMBER = "15035646830"


class ApiError(Exception):
    """A request the fake refuses with ``status`` and this message."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason or {
            400: "bad_request",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            415: "unsupported_media_type",
            429: "too_many_requests",
        }.get(status, "error")


def error(reason: str, message: str) -> dict[str, Any]:
    return {"error": reason, "error_description": message}


def encode(payload: Any) -> bytes:
    """JSON, refusing floats: Fiken's amounts are whole øre, and a float is a fake's bug."""

    def check(value: Any) -> None:
        if isinstance(value, float):
            raise TypeError(f"a float in a Fiken answer: {value!r}")
        if isinstance(value, dict):
            for each in value.values():
                check(each)
        elif isinstance(value, list | tuple):
            for each in value:
                check(each)

    check(payload)
    return json.dumps(payload, ensure_ascii=False).encode()


def iso(value: date | str) -> str:
    return value.isoformat() if isinstance(value, date) else value


def mod10(digits: str) -> str:
    """The MOD10 (Luhn) check digit of a Norwegian KID."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        n = int(char) * (2 if position % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return str((10 - total % 10) % 10)


def in_nok(amount: int, currency: str) -> int:
    return round(amount * NOK_PER[currency])


def split_vat(gross: int) -> tuple[int, int]:
    """(net, vat) of a gross amount at 25 % (the HIGH rate), rounded to the øre."""
    net = (gross * 100 + 62) // 125
    return net, gross - net


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | bytes | None = None
    #: Done in the server just before this answer goes out (another process's work).
    before: Callable[[], None] | None = None
    #: Carry the request out all the same, then answer with this fault (a lost answer).
    carry_out: bool = False
    #: No answer at all, the connection dropped (with ``carry_out``: after doing it).
    drop: bool = False


@dataclass
class Hold:
    """A request kept in flight: ``arrived`` is set once it is counted as in flight, and
    it goes on when the test sets ``release``."""

    path_prefix: str
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class Sent(NamedTuple):
    """What Fiken sent: the document's id, the methods asked for, and where it went."""

    invoice_id: int
    methods: tuple[str, ...]
    recipient: str


@dataclass
class Grant:
    user: str
    refresh_token: str


@dataclass
class Book:
    """One Fiken company: its description and its records."""

    slug: str
    info: dict[str, Any]
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[int, dict[str, Any]] = field(default_factory=dict)
    sales: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: The payments of each sale, by saleId, in order.
    payments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    credit_notes: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Attachments posted (or Fiken's reminders), in order, each with its ``content``.
    attachments: list[dict[str, Any]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    sent_credit_notes: list[Sent] = field(default_factory=list)
    #: Every send as asked: the request body, the method used and the recipient.
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    last_customer_number: int = 10000
    last_credit_note_number: int = 10000


class FakeFiken:
    def __init__(
        self,
        *,
        client_id: str = "kindly-fiken-client",
        client_secret: str = "kindly-fiken-secret",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = datetime(2026, 11, 22, 9, 0, tzinfo=OSLO)
        self.user = "Kari Nordmann"
        self.user_email = "kari@fjordlys.example"
        self.company = "fjordlys-design-as"
        self.books: dict[str, Book] = {
            self.company: Book(
                self.company,
                {
                    "name": "Fjordlys Design AS",
                    "slug": self.company,
                    "organizationNumber": "921345678",
                    "vatType": "bi-monthly",
                    "address": {
                        "streetAddress": "Storgata 12",
                        "city": "Oslo",
                        "postCode": "0155",
                        "country": "Norge",
                    },
                    "email": "post@fjordlys.example",
                    "creationDate": "2019-03-01",
                    "hasApiAccess": True,
                    "testCompany": False,
                    "accountingStartDate": "2019-03-01",
                },
            ),
            "nordlys-demo-as": Book(
                "nordlys-demo-as",
                {
                    "name": "Nordlys Demo AS",
                    "slug": "nordlys-demo-as",
                    "organizationNumber": "998877665",
                    "vatType": "no",
                    "address": {
                        "streetAddress": "Bryggen 3",
                        "city": "Bergen",
                        "postCode": "5003",
                        "country": "Norge",
                    },
                    "email": "post@nordlys.example",
                    "creationDate": "2024-01-15",
                    "hasApiAccess": True,
                    "testCompany": True,
                    "accountingStartDate": "2024-01-01",
                },
            ),
        }
        self.calls: collections.Counter[str] = collections.Counter()
        #: Rows in each list answer, in order.
        self.served: list[int] = []
        #: (path, parameter) of each query parameter the fake ignored.
        self.ignored_params: list[tuple[str, str]] = []
        self.faults: collections.defaultdict[str, list[Fault]] = collections.defaultdict(list)
        self.holds: list[Hold] = []
        #: Rows of each page in a shuffled order (within the page).
        self.shuffle_pages = False
        self.random = random.Random(20261122)
        #: 429 beyond ``per_second`` requests of a user in one second of the fake clock.
        self.strict_rate = False
        self.per_second = 4
        #: Filter credit notes by lastModified* (the newer spec); off, those are ignored.
        self.credit_note_modified_filter = True
        #: Fiken puts a reminder on invoices ``reminder_after_days`` past due (next_day).
        self.auto_reminders = False
        self.reminder_after_days = 14
        #: The user refuses consent at the authorize step.
        self.deny_consent = False
        self.rotate_refresh_tokens = True
        # OAuth state
        self.codes: dict[str, dict[str, Any]] = {}
        #: Access tokens: when each expires and the grant it belongs to.
        self.access_tokens: dict[str, tuple[datetime, str]] = {}
        #: Live refresh tokens and their grant.
        self.refresh_tokens: dict[str, str] = {}
        self.grants: dict[str, Grant] = {}
        #: Every POST to the token endpoint, whatever came of it.
        self.token_calls = 0
        self.refreshes = 0
        self.revocations = 0
        #: Requests in flight per user, and requests per (user, fake second).
        self.in_flight: collections.Counter[str] = collections.Counter()
        #: Requests refused because another of the same user was in flight.
        self.overlaps = 0
        self.per_second_seen: collections.Counter[tuple[str, datetime]] = collections.Counter()
        #: Every downloadable file, by its key: filename, content, content type.
        self.files: dict[str, dict[str, Any]] = {}
        self.last_id = 11_000_000
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # -- serving -------------------------------------------------------------------------

    def start(self) -> str:
        self._server = serve(self._handle, encode)
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        return base_url(self._server)

    def stop(self) -> None:
        stop(self._server)

    def endpoints(self) -> dict[str, str]:
        return {
            "authorize_url": f"{self.url}{AUTHORIZE_PATH}",
            "token_url": f"{self.url}{TOKEN_PATH}",
            "revoke_url": f"{self.url}{REVOKE_PATH}",
            "api_url": f"{self.url}{API}",
        }

    def fail_next(self, path_prefix: str, *faults: Fault) -> None:
        """Answer the next calls whose path starts with ``path_prefix`` with ``faults``, one
        each, in order (before any check of tokens, companies or rate limits)."""
        with self.lock:
            self.faults[path_prefix].extend(faults)

    def hold_next(self, path_prefix: str = API) -> Hold:
        """Keep the next API request whose path starts with ``path_prefix`` in flight (past
        the token and rate checks) until the test sets the returned ``release``."""
        hold = Hold(path_prefix)
        with self.lock:
            self.holds.append(hold)
        return hold

    def api_calls(self) -> int:
        return sum(n for key, n in self.calls.items() if key.split(" ", 1)[1].startswith(API))

    # -- the default company's records ---------------------------------------------------

    def book(self, slug: str | None = None) -> Book:
        return self.books[self.company if slug is None else slug]

    @property
    def contacts(self) -> dict[int, dict[str, Any]]:
        return self.book().contacts

    @property
    def invoices(self) -> dict[int, dict[str, Any]]:
        return self.book().invoices

    @property
    def credit_notes(self) -> dict[int, dict[str, Any]]:
        return self.book().credit_notes

    @property
    def attachments(self) -> list[dict[str, Any]]:
        return self.book().attachments

    @property
    def sent(self) -> list[Sent]:
        return self.book().sent

    def sale(self, invoice: dict[str, Any] | int) -> dict[str, Any]:
        """The sale of an invoice, as stored (its payments in ``book.payments``)."""
        with self.lock:
            book, row = self._find("invoices", invoice)
            return book.sales[row["_saleId"]]

    # -- tokens ----------------------------------------------------------------------------

    def issue_tokens(self, user: str | None = None) -> dict[str, Any]:
        """A fresh grant, as the token endpoint gives it (for a connector the tests connect
        without the browser); ``user`` is whose it is (the rate limit is per user)."""
        with self.lock:
            grant_id = secrets.token_hex(8)
            refresh = secrets.token_urlsafe(32)
            self.grants[grant_id] = Grant(user or self.user, refresh)
            self.refresh_tokens[refresh] = grant_id
            return self._access(grant_id, refresh)

    def _access(self, grant_id: str, refresh: str) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        self.access_tokens[access] = (self.clock + ACCESS_LIFE, grant_id)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": int(ACCESS_LIFE.total_seconds()),
        }

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    # -- the clock ---------------------------------------------------------------------------

    @property
    def today(self) -> date:
        return self.clock.date()

    def tick(self, minutes: float = 0, seconds: float = 1) -> datetime:
        with self.lock:
            self.clock += timedelta(minutes=minutes, seconds=seconds if not minutes else 0)
            return self.clock

    def next_day(self, days: int = 1) -> datetime:
        """The clock at 09:00 ``days`` on; Fiken's own reminders go out if switched on."""
        with self.lock:
            self.clock = datetime.combine(self.today + timedelta(days=days), time(9), OSLO)
            if self.auto_reminders:
                for book in self.books.values():
                    for invoice in list(book.invoices.values()):
                        self._auto_remind(book, invoice)
            return self.clock

    def _auto_remind(self, book: Book, invoice: dict[str, Any]) -> None:
        sale = book.sales[invoice["_saleId"]]
        due = date.fromisoformat(invoice["dueDate"])
        late = (self.today - due).days >= self.reminder_after_days
        reminded = any(
            a["_owner"] == ("invoice", invoice["invoiceId"]) and a["type"] == "reminder"
            for a in book.attachments
        )
        if late and not sale["settled"] and not reminded:
            self._remind(book, invoice)

    # -- records ----------------------------------------------------------------------------

    def _next_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def _find(self, kind: str, row: dict[str, Any] | int) -> tuple[Book, dict[str, Any]]:
        """The company holding the ``kind`` record ``row`` (a record or its id)."""
        key = {"contacts": "contactId", "invoices": "invoiceId", "credit_notes": "creditNoteId"}
        wanted = row if isinstance(row, int) else row[key[kind]]
        for book in self.books.values():
            rows: dict[int, dict[str, Any]] = getattr(book, kind)
            if wanted in rows:
                return book, rows[wanted]
        raise KeyError(f"no {kind} record {wanted}")

    def _store_file(self, filename: str, content: bytes, content_type: str | None = None) -> str:
        key = str(uuid.uuid4())
        extension = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        self.files[key] = {
            "filename": filename,
            "content": content,
            "contentType": content_type or CONTENT_TYPES.get(extension, "application/pdf"),
        }
        return key

    def _pdf(self, label: str, number: int) -> str:
        content = f"%PDF-1.4\n% fake Fiken {label} {number}\n%%EOF\n".encode()
        return self._store_file(f"{label}-{number}.pdf", content)

    @staticmethod
    def _apply(record: dict[str, Any], fields: dict[str, Any]) -> None:
        """``fields`` into ``record``: dates as text; None removes a field (Fiken leaves out
        what is not set), except ``language``, which the spec makes nullable."""
        for name, value in fields.items():
            if value is None and name != "language":
                record.pop(name, None)
            else:
                record[name] = iso(value) if isinstance(value, date) else value

    def add_contact(
        self,
        name: str,
        *,
        language: str | None = "NORWEGIAN",
        company: str | None = None,
        efaktura: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """A customer called ``name``; e-mail ``<first word>@kunde.example``, a phone number
        and an address in Oslo, no organisation number (a private person: no EHF) unless
        given; ``efaktura``: registered to receive eFaktura."""
        with self.lock:
            book = self.book(company)
            self.tick()
            book.last_customer_number += 1
            number = book.last_customer_number
            contact: dict[str, Any] = {
                "contactId": self._next_id(),
                "createdDate": self.today.isoformat(),
                "lastModifiedDate": self.today.isoformat(),
                "name": name,
                "email": f"{name.split()[0].lower()}@kunde.example",
                "customerNumber": number,
                "customerAccountCode": f"1500:{number}",
                "phoneNumber": "91234567",
                "customer": True,
                "supplier": False,
                "contactPerson": [],
                "notes": [],
                "currency": "NOK",
                "language": language,
                "inactive": False,
                "daysUntilInvoicingDueDate": 14,
                "address": {
                    "streetAddress": "Kirkeveien 7",
                    "city": "Oslo",
                    "postCode": "0368",
                    "country": "Norge",
                },
                "groups": [],
                "_efaktura": efaktura,
            }
            self._apply(contact, fields)
            book.contacts[contact["contactId"]] = contact
            return contact

    def update_contact(self, contact_id: int, **fields: Any) -> dict[str, Any]:
        """Change a contact: today becomes its ``lastModifiedDate``."""
        with self.lock:
            _, contact = self._find("contacts", contact_id)
            self.tick()
            self._apply(contact, fields)
            contact["lastModifiedDate"] = self.today.isoformat()
            return contact

    def add_invoice(
        self,
        contact: dict[str, Any] | int,
        number: int,
        gross_ore: int,
        *,
        issued: date,
        due: date,
        currency: str = "NOK",
        company: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """An invoice numbered ``number`` to ``contact`` of ``gross_ore`` incl. 25 % VAT (give
        ``vat`` for another split), with its sale (open for the whole amount) and its PDF.
        ``company`` must be the contact's when given."""
        if not isinstance(gross_ore, int) or isinstance(gross_ore, bool):
            raise TypeError("Fiken amounts are whole øre: give an int")
        with self.lock:
            book, customer = self._find("contacts", contact)
            if company is not None and book.slug != company:
                raise KeyError(f"contact {customer['contactId']} is not in {company}")
            self.tick()
            net, vat = split_vat(gross_ore)
            if "vat" in fields:
                vat = int(fields["vat"])
                net = gross_ore - vat
            invoice_id = self._next_id()
            kid = f"{number:07d}"
            invoice: dict[str, Any] = {
                "invoiceId": invoice_id,
                "createdDate": self.today.isoformat(),
                "lastModifiedDate": self.today.isoformat(),
                "invoiceNumber": number,
                "kid": kid + mod10(kid),
                "issueDate": iso(issued),
                "dueDate": iso(due),
                "originalDueDate": iso(due),
                "net": net,
                "vat": vat,
                "gross": gross_ore,
                "netInNok": in_nok(net, currency),
                "vatInNok": in_nok(vat, currency),
                "grossInNok": in_nok(gross_ore, currency),
                "cash": False,
                "invoiceText": "",
                "yourReference": "",
                "ourReference": self.user,
                "orderReference": "",
                "invoiceDraftUuid": str(uuid.uuid4()),
                "address": dict(customer.get("address") or {"country": "Norge"}),
                "lines": [
                    {
                        "net": net,
                        "vat": vat,
                        "vatType": "HIGH" if vat else "NONE",
                        "gross": gross_ore,
                        "netInNok": in_nok(net, currency),
                        "vatInNok": in_nok(vat, currency),
                        "grossInNok": in_nok(gross_ore, currency),
                        "vatInPercent": 25 if vat else 0,
                        "unitPrice": net,
                        "quantity": 1,
                        "description": f"Faktura {number}",
                        "incomeAccount": "3000",
                    }
                ],
                "currency": currency,
                "bankAccountNumber": BANK_ACCOUNT_NUMBER,
                "sentManually": False,
                "_customerId": customer["contactId"],
                "_pdf": self._pdf("faktura", number),
            }
            self._apply(invoice, fields)
            sale_id = self._next_id()
            book.sales[sale_id] = {
                "saleId": sale_id,
                "lastModifiedDate": self.today.isoformat(),
                "transactionId": self._next_id(),
                "saleNumber": str(number),
                "date": invoice["issueDate"],
                "kind": "invoice",
                "netAmount": invoice["net"],
                "vatAmount": invoice["vat"],
                "settled": False,
                "writeOff": False,
                "totalPaid": 0,
                "totalPaidInCurrency": 0,
                "outstandingBalance": invoice["gross"],
                "currency": currency,
                "dueDate": invoice["dueDate"],
                "kid": invoice["kid"],
                "deleted": False,
                "_invoiceId": invoice_id,
                "_customerId": customer["contactId"],
            }
            book.payments[sale_id] = []
            invoice["_saleId"] = sale_id
            book.invoices[invoice_id] = invoice
            return invoice

    def update_invoice(self, invoice_id: int, **fields: Any) -> dict[str, Any]:
        """Change fields of an invoice: today becomes its ``lastModifiedDate``; a new
        ``dueDate`` leaves ``originalDueDate`` as it was; a new ``gross`` opens the sale
        again for the difference."""
        with self.lock:
            book, invoice = self._find("invoices", invoice_id)
            self.tick()
            self._apply(invoice, fields)
            invoice["lastModifiedDate"] = self.today.isoformat()
            sale = book.sales[invoice["_saleId"]]
            sale["dueDate"] = invoice["dueDate"]
            self._settle(book, invoice, self.today)
            return invoice

    def pay(
        self,
        invoice: dict[str, Any] | int,
        amount_ore: int,
        *,
        on: date,
        account: str = BANK_ACCOUNT,
        fee_ore: int = 0,
        amount_in_nok: int | None = None,
    ) -> dict[str, Any]:
        """A payment of ``amount_ore`` (in the invoice's currency) on the invoice's sale, made
        ``on``: the sale's totals and ``settled`` follow, and today becomes the
        ``lastModifiedDate`` of the sale and the invoice."""
        if not isinstance(amount_ore, int) or isinstance(amount_ore, bool):
            raise TypeError("Fiken amounts are whole øre: give an int")
        with self.lock:
            book, row = self._find("invoices", invoice)
            sale = book.sales[row["_saleId"]]
            if amount_ore <= 0 or amount_ore > sale["outstandingBalance"]:
                raise ValueError(
                    f"invoice {row['invoiceNumber']}: {amount_ore} is not within the "
                    f"{sale['outstandingBalance']} open"
                )
            self.tick()
            payment: dict[str, Any] = {
                "paymentId": self._next_id(),
                "date": iso(on),
                "account": account,
                "amount": amount_ore,
            }
            if row["currency"] != "NOK":
                # The spec: these come with a foreign-currency payment only.
                payment["amountInNok"] = (
                    amount_in_nok
                    if amount_in_nok is not None
                    else in_nok(amount_ore, row["currency"])
                )
                payment["currency"] = row["currency"]
                payment["fee"] = fee_ore
            book.payments[sale["saleId"]].append(payment)
            sale["paymentDate"] = iso(on)
            self._settle(book, row, on)
            self._touch(row, sale)
            return payment

    def add_credit_note(
        self, invoice: dict[str, Any] | int, gross_ore: int, *, issued: date, **fields: Any
    ) -> dict[str, Any]:
        """A credit note of ``gross_ore`` against ``invoice`` (numbered from 10001 in its
        company): what it credits is no longer owed; it is ``settled`` when it fitted within
        what was open (else Fiken owes the customer the rest)."""
        if not isinstance(gross_ore, int) or isinstance(gross_ore, bool):
            raise TypeError("Fiken amounts are whole øre: give an int")
        with self.lock:
            book, row = self._find("invoices", invoice)
            sale = book.sales[row["_saleId"]]
            self.tick()
            book.last_credit_note_number += 1
            number = book.last_credit_note_number
            currency = row["currency"]
            net, vat = split_vat(gross_ore) if row["vat"] else (gross_ore, 0)
            kid = f"{number:07d}"
            note: dict[str, Any] = {
                "creditNoteId": self._next_id(),
                "creditNoteNumber": number,
                "kid": kid + mod10(kid),
                "net": net,
                "vat": vat,
                "gross": gross_ore,
                "netInNok": in_nok(net, currency),
                "vatInNok": in_nok(vat, currency),
                "grossInNok": in_nok(gross_ore, currency),
                "creditNoteText": f"Kreditnota for faktura {row['invoiceNumber']}",
                "yourReference": row.get("yourReference", ""),
                "ourReference": self.user,
                "orderReference": row.get("orderReference", ""),
                "address": dict(row.get("address") or {"country": "Norge"}),
                "lines": [
                    {
                        "net": net,
                        "vat": vat,
                        "vatType": "HIGH" if vat else "NONE",
                        "gross": gross_ore,
                        "vatInPercent": 25 if vat else 0,
                        "unitPrice": net,
                        "quantity": 1,
                        "description": f"Kreditert faktura {row['invoiceNumber']}",
                        "incomeAccount": "3000",
                    }
                ],
                "currency": currency,
                "issueDate": iso(issued),
                "settled": gross_ore <= sale["outstandingBalance"],
                "associatedInvoiceId": row["invoiceId"],
                "_customerId": row["_customerId"],
                "_lastModified": self.today.isoformat(),
                "_pdf": self._pdf("kreditnota", number),
            }
            self._apply(note, fields)
            book.credit_notes[note["creditNoteId"]] = note
            self._settle(book, row, issued)
            self._touch(row, sale)
            return note

    def remind(self, invoice: dict[str, Any] | int) -> dict[str, Any]:
        """Fiken sends a payment reminder ("purring") itself: the invoice gets an attachment
        of type ``reminder`` (the reminder's PDF). Returns the attachment."""
        with self.lock:
            book, row = self._find("invoices", invoice)
            return self._remind(book, row)

    def _remind(self, book: Book, invoice: dict[str, Any]) -> dict[str, Any]:
        owner = ("invoice", invoice["invoiceId"])
        count = 1 + sum(
            1 for a in book.attachments if a["_owner"] == owner and a["type"] == "reminder"
        )
        filename = f"purring-{invoice['invoiceNumber']}-{count}.pdf"
        content = f"%PDF-1.4\n% fake Fiken purring {invoice['invoiceNumber']}\n%%EOF\n"
        return self._attach(book, owner, filename, content.encode(), kind="reminder")

    def _attach(
        self,
        book: Book,
        owner: tuple[str, int],
        filename: str,
        content: bytes,
        *,
        kind: str = "unspecified",
        comment: str | None = None,
        content_type: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        key = self._store_file(filename, content, content_type)
        attachment: dict[str, Any] = {
            "identifier": filename,
            "type": kind,
            "filename": filename,
            "content": content,
            "_key": key,
            "_owner": owner,
            **extra,
        }
        if comment is not None:
            attachment["comment"] = comment
        book.attachments.append(attachment)
        return attachment

    def _settle(self, book: Book, invoice: dict[str, Any], on: date | str) -> None:
        """The sale's totals from its payments and the credit notes of its invoice."""
        sale = book.sales[invoice["_saleId"]]
        payments = book.payments[sale["saleId"]]
        paid = sum(p["amount"] for p in payments)
        sale["totalPaidInCurrency"] = paid
        sale["totalPaid"] = sum(p.get("amountInNok", p["amount"]) for p in payments)
        credited = sum(
            n["gross"]
            for n in book.credit_notes.values()
            if n["associatedInvoiceId"] == invoice["invoiceId"]
        )
        sale["netAmount"], sale["vatAmount"] = invoice["net"], invoice["vat"]
        sale["outstandingBalance"] = max(invoice["gross"] - paid - credited, 0)
        settled = sale["outstandingBalance"] == 0
        if settled and not sale["settled"]:
            sale["settledDate"] = iso(on)
        if not settled:
            sale.pop("settledDate", None)
        sale["settled"] = settled

    def _touch(self, invoice: dict[str, Any], sale: dict[str, Any]) -> None:
        invoice["lastModifiedDate"] = sale["lastModifiedDate"] = self.today.isoformat()

    # -- dispatch --------------------------------------------------------------------------

    def _handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
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
            return self._fault(injected)
        answer = self._serve(method, path, query, headers, body)
        if injected is not None:
            return self._fault(injected)
        return answer

    @staticmethod
    def _fault(fault: Fault) -> tuple[int, Any, dict[str, str]]:
        if fault.before is not None:
            fault.before()
        if fault.drop:
            return 0, DROP, {}
        payload = fault.body if fault.body is not None else error("fault", "injected")
        return fault.status, payload, dict(fault.headers)

    def _serve(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, Any, dict[str, str]]:
        if path == AUTHORIZE_PATH and method == "GET":
            with self.lock:
                return self._authorize(query)
        if path == TOKEN_PATH and method == "POST":
            with self.lock:
                return self._token(headers, body)
        if path == REVOKE_PATH and method == "POST":
            with self.lock:
                return self._revoke(headers)
        if path.startswith(LOGIN_FILES + "/"):
            page = b"<html><body>Logg inn i Fiken</body></html>"
            return 401, page, {"Content-Type": "text/html; charset=utf-8"}
        if path != API and not path.startswith(API + "/"):
            return 404, error("not_found", f"Not found: {path}"), {}
        with self.lock:
            user = self._user(headers)
            if user is None:
                return (
                    401,
                    error("invalid_token", "The access token is invalid or has expired"),
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            # Fiken's limit is per user, not per token: two tokens of one user collide too.
            if self.in_flight[user]:
                self.overlaps += 1
                message = "Only one concurrent request is allowed per user"
                return 429, error("too_many_requests", message), {}
            if self.strict_rate:
                second = self.clock.replace(microsecond=0)
                if self.per_second_seen[(user, second)] >= self.per_second:
                    message = f"More than {self.per_second} requests in a second"
                    return 429, error("too_many_requests", message), {}
                self.per_second_seen[(user, second)] += 1
            self.in_flight[user] += 1
            hold = next((h for h in self.holds if path.startswith(h.path_prefix)), None)
            if hold is not None:
                self.holds.remove(hold)
        try:
            if hold is not None:
                hold.arrived.set()
                hold.release.wait(HOLD_LIMIT)
            with self.lock:
                try:
                    return self._api(method, path, query, headers, body)
                except ApiError as exc:
                    return exc.status, error(exc.reason, str(exc)), {}
        finally:
            with self.lock:
                self.in_flight[user] -= 1

    def _user(self, headers: dict[str, str]) -> str | None:
        token = _header(headers, "Authorization").removeprefix("Bearer ").strip()
        entry = self.access_tokens.get(token)
        if entry is None or entry[0] <= self.clock:
            return None
        return self.grants[entry[1]].user

    # -- OAuth -----------------------------------------------------------------------------

    def _authorize(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        # A wrong client or no redirect URI cannot be sent back: the user sees an error page.
        if query.get("client_id") != self.client_id or not query.get("redirect_uri"):
            return 400, error("invalid_request", "Unknown client or no redirect_uri"), {}
        redirect = query["redirect_uri"]
        if query.get("response_type") != "code" or not query.get("state"):
            answer = {
                "error": "invalid_request",
                "error_description": "response_type=code and state are required",
            }
        elif self.deny_consent:
            answer = {"error": "access_denied", "error_description": "The user said no"}
            if query.get("state"):
                answer["state"] = query["state"]
        else:
            code = secrets.token_urlsafe(24)
            self.codes[code] = {"redirect_uri": redirect, "expires": self.clock + CODE_LIFE}
            answer = {"code": code, "state": query["state"]}
        joiner = "&" if "?" in redirect else "?"
        return 302, b"", {"Location": redirect + joiner + urlencode(answer)}

    def _token(self, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        basic = _header(headers, "Authorization")
        client = None
        if basic.startswith("Basic "):
            try:
                client = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                client = None
        if client is None or (client[0], client[2]) != (self.client_id, self.client_secret):
            # Fiken's token endpoint takes HTTP Basic only: credentials in the form do not do.
            return (
                401,
                error("invalid_client", "Client authentication failed"),
                {"WWW-Authenticate": 'Basic realm="oauth"'},
            )
        form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        grant = form.get("grant_type")
        if grant == "authorization_code":
            entry = self.codes.pop(form.get("code", ""), None)  # good once, whatever comes
            if (
                entry is None
                or entry["expires"] <= self.clock
                or entry["redirect_uri"] != form.get("redirect_uri")
            ):
                message = "The authorization code is invalid or expired."
                return 400, error("invalid_grant", message), {}
            return 200, self.issue_tokens(), {}
        if grant == "refresh_token":
            old = form.get("refresh_token", "")
            grant_id = self.refresh_tokens.get(old)
            if grant_id is None:
                return 400, error("invalid_grant", "The refresh token is invalid."), {}
            self.refreshes += 1
            refresh = old
            if self.rotate_refresh_tokens:
                # The one used stops working now: a client that loses the answer is out.
                del self.refresh_tokens[old]
                refresh = secrets.token_urlsafe(32)
                self.refresh_tokens[refresh] = grant_id
                self.grants[grant_id].refresh_token = refresh
            return 200, self._access(grant_id, refresh), {}
        return 400, error("unsupported_grant_type", f"grant_type {grant!r}"), {}

    def _revoke(self, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        token = _header(headers, "Authorization").removeprefix("Bearer ").strip()
        entry = self.access_tokens.get(token)
        if entry is None:
            return 401, error("invalid_token", "The access token is invalid"), {}
        grant_id = entry[1]
        # The grant goes, and with it its refresh token and every access token it gave.
        for access in [t for t, (_, g) in self.access_tokens.items() if g == grant_id]:
            del self.access_tokens[access]
        for refresh in [t for t, g in self.refresh_tokens.items() if g == grant_id]:
            del self.refresh_tokens[refresh]
        self.grants.pop(grant_id, None)
        self.revocations += 1
        return 200, b"", {}

    # -- the API ---------------------------------------------------------------------------

    def _api(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, Any, dict[str, str]]:
        segments = [s for s in path[len(API) :].split("/") if s]
        if segments == ["user"]:
            _only(method, "GET")
            return 200, {"name": self.user, "email": self.user_email}, {}
        if segments[:1] == ["files"] and len(segments) >= 2:
            _only(method, "GET")
            return self._download(segments[1])
        if segments[:1] != ["companies"]:
            raise ApiError(404, f"Not found: {path}")
        if len(segments) == 1:
            _only(method, "GET")
            return self._companies(path, query)
        book = self.books.get(segments[1])
        if book is None:
            raise ApiError(403, f"No access to the company {segments[1]}")
        rest = segments[2:]
        if not rest:
            _only(method, "GET")
            return 200, dict(book.info), {}
        return self._company(book, method, path, rest, query, headers, body)

    def _company(
        self,
        book: Book,
        method: str,
        path: str,
        rest: list[str],
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, Any, dict[str, str]]:
        head, tail = rest[0], rest[1:]
        if head == "contacts":
            if not tail:
                _only(method, "GET")
                return self._contacts(book, path, query)
            contact = book.contacts.get(_id(tail[0]))
            if contact is None:
                raise ApiError(404, f"No contact {tail[0]}")
            if len(tail) == 1:
                _only(method, "GET")
                return 200, self._contact(book, contact), {}
            if tail[1:] == ["attachments"]:
                _only(method, "POST")
                form = _multipart(headers, body, {"filename", "comment", "file"})
                owner = ("contact", contact["contactId"])
                return self._post_attachment(book, owner, form)
        if head == "invoices":
            if not tail:
                _only(method, "GET")
                return self._invoices(book, path, query)
            if tail == ["send"]:
                _only(method, "POST")
                return self._send(book, "invoiceId", headers, body)
            invoice = book.invoices.get(_id(tail[0]))
            if invoice is None:
                raise ApiError(404, f"No invoice {tail[0]}")
            if len(tail) == 1:
                _only(method, "GET", "PATCH")
                if method == "PATCH":
                    return self._patch_invoice(book, invoice, path, headers, body)
                return 200, self._invoice(book, invoice), {}
            if tail[1:] == ["attachments"]:
                _only(method, "GET", "POST")
                owner = ("invoice", invoice["invoiceId"])
                if method == "GET":
                    return 200, self._attachments_of(book, owner), {}
                form = _multipart(headers, body, {"filename", "file"})
                return self._post_attachment(book, owner, form)
        if head == "creditNotes":
            if not tail:
                _only(method, "GET")
                return self._credit_notes(book, path, query)
            if tail == ["send"]:
                _only(method, "POST")
                return self._send(book, "creditNoteId", headers, body)
            note = book.credit_notes.get(_id(tail[0]))
            if note is None:
                raise ApiError(404, f"No credit note {tail[0]}")
            if len(tail) == 1:
                _only(method, "GET")
                return 200, self._credit_note(book, note), {}
        if head == "sales" and tail:
            sale = book.sales.get(_id(tail[0]))
            if sale is None:
                raise ApiError(404, f"No sale {tail[0]}")
            if len(tail) == 1:
                _only(method, "GET")
                return 200, self._sale(book, sale), {}
            if tail[1:] == ["payments"]:
                _only(method, "GET")
                return 200, list(book.payments[sale["saleId"]]), {}
            if tail[1] == "payments" and len(tail) == 3:
                _only(method, "GET")
                wanted = _id(tail[2])
                for payment in book.payments[sale["saleId"]]:
                    if payment["paymentId"] == wanted:
                        return 200, dict(payment), {}
                raise ApiError(404, f"No payment {tail[2]} on sale {tail[0]}")
            if tail[1:] == ["attachments"]:
                _only(method, "GET", "POST")
                owner = ("sale", sale["saleId"])
                if method == "GET":
                    return 200, self._attachments_of(book, owner), {}
                fields = {"filename", "attachToPayment", "attachToSale", "file"}
                return self._post_attachment(book, owner, _multipart(headers, body, fields))
        raise ApiError(404, f"Not found: {path}")

    # -- shapes ----------------------------------------------------------------------------

    @staticmethod
    def _public(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if not k.startswith("_")}

    def _file_urls(self, key: str) -> dict[str, str]:
        name = quote(self.files[key]["filename"])
        return {
            "downloadUrl": f"{self.url}{FILES}/{key}/{name}",
            "downloadUrlWithFikenNormalUserCredentials": f"{self.url}{LOGIN_FILES}/{key}",
        }

    def _attachment(self, attachment: dict[str, Any]) -> dict[str, Any]:
        shown: dict[str, Any] = {"identifier": attachment["identifier"]}
        shown.update(self._file_urls(attachment["_key"]))
        shown["type"] = attachment["type"]
        if "comment" in attachment:
            shown["comment"] = attachment["comment"]
        return shown

    def _attachments_of(self, book: Book, owner: tuple[str, int]) -> list[dict[str, Any]]:
        return [self._attachment(a) for a in book.attachments if a["_owner"] == owner]

    def _pdf_attachment(self, key: str, identifier: str) -> dict[str, Any]:
        return {"identifier": identifier, **self._file_urls(key), "type": "invoice"}

    def _contact(self, book: Book, contact: dict[str, Any]) -> dict[str, Any]:
        shown = self._public(contact)
        shown["documents"] = self._attachments_of(book, ("contact", contact["contactId"]))
        return shown

    def _sale(self, book: Book, sale: dict[str, Any]) -> dict[str, Any]:
        shown = self._public(sale)
        shown["customer"] = self._contact(book, book.contacts[sale["_customerId"]])
        shown["salePayments"] = [dict(p) for p in book.payments[sale["saleId"]]]
        shown["saleAttachments"] = self._attachments_of(book, ("sale", sale["saleId"]))
        return shown

    def _invoice(self, book: Book, invoice: dict[str, Any]) -> dict[str, Any]:
        shown = self._public(invoice)
        shown["invoicePdf"] = self._pdf_attachment(invoice["_pdf"], str(invoice["invoiceNumber"]))
        shown["associatedCreditNotes"] = [
            n["creditNoteId"]
            for n in book.credit_notes.values()
            if n["associatedInvoiceId"] == invoice["invoiceId"]
        ]
        shown["attachments"] = self._attachments_of(book, ("invoice", invoice["invoiceId"]))
        shown["customer"] = self._contact(book, book.contacts[invoice["_customerId"]])
        shown["sale"] = self._sale(book, book.sales[invoice["_saleId"]])
        return shown

    def _credit_note(self, book: Book, note: dict[str, Any]) -> dict[str, Any]:
        shown = self._public(note)
        shown["customer"] = self._contact(book, book.contacts[note["_customerId"]])
        shown["creditNotePdf"] = self._pdf_attachment(note["_pdf"], str(note["creditNoteNumber"]))
        return shown

    # -- lists -----------------------------------------------------------------------------

    def _page(
        self,
        path: str,
        query: dict[str, str],
        known: set[str],
        rows: list[dict[str, Any]],
        shape: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> tuple[int, Any, dict[str, str]]:
        for name in query:
            if name not in known and name not in ("page", "pageSize"):
                self.ignored_params.append((path, name))
        page = _int_param(query, "page", 0)
        size = _int_param(query, "pageSize", PAGE_SIZE)
        if page < 0:
            raise ApiError(400, f"page must be 0 or more, not {page}")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ApiError(400, f"pageSize must be 1 to {MAX_PAGE_SIZE}, not {size}")
        chunk = rows[page * size : (page + 1) * size]
        if self.shuffle_pages:
            chunk = self.random.sample(chunk, len(chunk))
        self.served.append(len(chunk))
        headers = {
            "Fiken-Api-Page": str(page),
            "Fiken-Api-Page-Size": str(size),
            "Fiken-Api-Page-Count": str(-(-len(rows) // size)),
            "Fiken-Api-Result-Count": str(len(rows)),
        }
        return 200, [shape(row) for row in chunk], headers

    def _companies(self, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        rows = [book.info for book in self.books.values()]
        name, descending = _sort_by(query, COMPANY_SORTS, "name asc")
        key = "creationDate" if name == "createdDate" else name
        rows.sort(key=lambda r: str(r.get(key, "")), reverse=descending)
        return self._page(path, query, {"sortBy"}, rows, dict)

    def _contacts(
        self, book: Book, path: str, query: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        rows = list(book.contacts.values())
        out: list[int] = []
        dates = {"lastModified": "lastModifiedDate", "createdDate": "createdDate"}
        known = {"sortBy", "group"} | _date_filters(query, rows, dates, out)
        rows = [r for r in rows if r["contactId"] not in out]
        for name in ("customer", "supplier", "inactive"):
            if name in query:
                known.add(name)
                wanted = _bool_param(query, name)
                rows = [r for r in rows if bool(r.get(name)) == wanted]
        for name in ("name", "email", "organizationNumber", "phoneNumber"):
            if name in query:
                known.add(name)
                rows = [r for r in rows if r.get(name) == query[name]]
        for name in ("customerNumber", "supplierNumber"):
            if name in query:
                known.add(name)
                number = _int_param(query, name, 0)
                rows = [r for r in rows if r.get(name) == number]
        if "group" in query:
            rows = [r for r in rows if query["group"] in r.get("groups", [])]
        name, descending = _sort_by(query, CONTACT_SORTS, "createdDate asc")
        field_name = "lastModifiedDate" if name == "lastModified" else "createdDate"
        rows.sort(key=lambda r: (r[field_name], r["contactId"]), reverse=descending)
        return self._page(path, query, known, rows, lambda r: self._contact(book, r))

    def _invoices(
        self, book: Book, path: str, query: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        rows = list(book.invoices.values())
        out: list[int] = []
        dates = {"issueDate": "issueDate", "lastModified": "lastModifiedDate", "dueDate": "dueDate"}
        known = _date_filters(query, rows, dates, out)
        rows = [r for r in rows if r["invoiceId"] not in out]
        if "customerId" in query:
            known.add("customerId")
            customer = _int_param(query, "customerId", 0)
            rows = [r for r in rows if r["_customerId"] == customer]
        if "settled" in query:
            known.add("settled")
            wanted = _bool_param(query, "settled")
            rows = [r for r in rows if book.sales[r["_saleId"]]["settled"] == wanted]
        for name in ("orderReference", "invoiceDraftUuid"):
            if name in query:
                known.add(name)
                rows = [r for r in rows if r.get(name) == query[name]]
        if "invoiceNumber" in query:
            known.add("invoiceNumber")
            rows = [r for r in rows if str(r["invoiceNumber"]) == query["invoiceNumber"]]
        rows.sort(key=lambda r: int(r["invoiceId"]))
        return self._page(path, query, known, rows, lambda r: self._invoice(book, r))

    def _credit_notes(
        self, book: Book, path: str, query: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        rows = list(book.credit_notes.values())
        out: list[int] = []
        dates = {"issueDate": "issueDate"}
        if self.credit_note_modified_filter:
            dates["lastModified"] = "_lastModified"
        known = _date_filters(query, rows, dates, out)
        rows = [r for r in rows if r["creditNoteId"] not in out]
        if "customerId" in query:
            known.add("customerId")
            customer = _int_param(query, "customerId", 0)
            rows = [r for r in rows if r["_customerId"] == customer]
        if "settled" in query:
            known.add("settled")
            wanted = _bool_param(query, "settled")
            rows = [r for r in rows if r["settled"] == wanted]
        rows.sort(key=lambda r: int(r["creditNoteId"]))
        return self._page(path, query, known, rows, lambda r: self._credit_note(book, r))

    # -- files, writes ---------------------------------------------------------------------

    def _download(self, key: str) -> tuple[int, Any, dict[str, str]]:
        stored = self.files.get(key)
        if stored is None:
            raise ApiError(404, f"No file {key}")
        return 200, stored["content"], {"Content-Type": stored["contentType"]}

    def _post_attachment(
        self, book: Book, owner: tuple[str, int], form: dict[str, tuple[str | None, bytes]]
    ) -> tuple[int, Any, dict[str, str]]:
        if "filename" not in form:
            raise ApiError(400, "filename is required")
        filename = form["filename"][1].decode()
        if not filename.lower().endswith(ATTACHABLE):
            raise ApiError(400, f"filename must end with one of {', '.join(ATTACHABLE)}")
        if "file" not in form or form["file"][0] is None:
            raise ApiError(400, "file is required (a file part)")
        extra: dict[str, Any] = {}
        if owner[0] == "sale":
            flags = {}
            for name in ("attachToPayment", "attachToSale"):
                # The spec's schema says default true, its description false: the fake takes
                # false, so a client that leaves both out is refused and learns to say which.
                text = form[name][1].decode().lower() if name in form else "false"
                if text not in ("true", "false"):
                    raise ApiError(400, f"{name} must be true or false")
                flags[name] = text == "true"
            if not any(flags.values()):
                raise ApiError(400, "At least one of attachToPayment and attachToSale is true")
            extra.update(flags)
        comment = form["comment"][1].decode() if "comment" in form else None
        attachment = self._attach(book, owner, filename, form["file"][1], comment=comment, **extra)
        location = self._file_urls(attachment["_key"])["downloadUrl"]
        return 201, b"", {"Location": location}

    def _patch_invoice(
        self,
        book: Book,
        invoice: dict[str, Any],
        path: str,
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, Any, dict[str, str]]:
        data = _json_body(headers, body)
        for name in data:
            if name not in ("newDueDate", "sentManually"):
                raise ApiError(400, f"Unexpected field: {name}")
        if "newDueDate" in data:
            invoice["dueDate"] = _date_value(data["newDueDate"], "newDueDate").isoformat()
            book.sales[invoice["_saleId"]]["dueDate"] = invoice["dueDate"]
        if "sentManually" in data:
            if not isinstance(data["sentManually"], bool):
                raise ApiError(400, "sentManually must be a boolean")
            invoice["sentManually"] = data["sentManually"]
        self.tick()
        invoice["lastModifiedDate"] = self.today.isoformat()
        return 200, b"", {"Location": f"{self.url}{path}"}

    def _send(
        self, book: Book, id_field: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        data = _json_body(headers, body)
        for name in data:
            if name not in SEND_FIELDS and name != id_field:
                raise ApiError(400, f"Unexpected field: {name}")
        wanted = data.get(id_field)
        if not isinstance(wanted, int) or isinstance(wanted, bool):
            raise ApiError(400, f"{id_field} is required (an integer)")
        methods = data.get("method")
        if (
            not isinstance(methods, list)
            or not methods
            or any(m not in SEND_METHODS for m in methods)
        ):
            raise ApiError(400, f"method must be a list of {', '.join(SEND_METHODS)}")
        if not isinstance(data.get("includeDocumentAttachments"), bool):
            raise ApiError(400, "includeDocumentAttachments is required (a boolean)")
        option = data.get("emailSendOption", "auto")
        if option not in EMAIL_SEND_OPTIONS:
            raise ApiError(400, f"emailSendOption must be one of {', '.join(EMAIL_SEND_OPTIONS)}")
        for name in ("recipientName", "recipientEmail", "message", "organizationNumber"):
            if name in data and not isinstance(data[name], str):
                raise ApiError(400, f"{name} must be a string")
        documents = book.invoices if id_field == "invoiceId" else book.credit_notes
        document = documents.get(wanted)
        if document is None:
            raise ApiError(400, f"{id_field} {wanted} does not exist in {book.slug}")
        contact = book.contacts[document["_customerId"]]
        reasons: list[str] = []
        for asked in methods:
            for way in AUTO_ORDER if asked == "auto" else (asked,):
                recipient, why = _reach(contact, way, data)
                if recipient:
                    entry = Sent(wanted, tuple(methods), recipient)
                    if id_field == "invoiceId":
                        book.sent.append(entry)
                    else:
                        book.sent_credit_notes.append(entry)
                    book.deliveries.append(
                        {id_field: wanted, "via": way, "recipient": recipient, "request": data}
                    )
                    return 200, b"", {}
                reasons.append(f"{way}: {why}")
        raise ApiError(400, "The document cannot be sent by " + "; ".join(reasons))


# -- helpers ---------------------------------------------------------------------------------


def _header(headers: dict[str, str], name: str) -> str:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), "")


def _only(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise ApiError(405, f"{method} is not supported here (only {', '.join(allowed)})")


def _id(text: str) -> int:
    if not text.isdigit():
        raise ApiError(404, f"Not found: {text}")
    return int(text)


def _int_param(query: dict[str, str], name: str, default: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, not {text!r}") from None


def _bool_param(query: dict[str, str], name: str) -> bool:
    text = query[name].lower()
    if text not in ("true", "false"):
        raise ApiError(400, f"{name} must be true or false, not {query[name]!r}")
    return text == "true"


def _date_value(text: Any, name: str) -> date:
    # Fiken's dates are yyyy-MM-dd and nothing else: a time or another form is a 400.
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ApiError(400, f"{name} must be a date yyyy-MM-dd, not {text!r}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{name} must be a date yyyy-MM-dd, not {text!r}") from None


def _date_filters(
    query: dict[str, str],
    rows: Iterable[dict[str, Any]],
    fields: dict[str, str],
    out: list[int],
) -> set[str]:
    """Apply ``<name>``, ``<name>Le|Lt|Ge|Gt`` for each date field: the ids of the rows they
    leave out go into ``out``; returns the parameters used."""
    tests: dict[str, Callable[[date, date], bool]] = {
        "": lambda mine, given: mine == given,
        "Le": lambda mine, given: mine <= given,
        "Lt": lambda mine, given: mine < given,
        "Ge": lambda mine, given: mine >= given,
        "Gt": lambda mine, given: mine > given,
    }
    used: set[str] = set()
    rows = list(rows)
    for param, field_name in fields.items():
        for suffix, test in tests.items():
            name = param + suffix
            if name not in query:
                continue
            used.add(name)
            given = _date_value(query[name], name)
            for row in rows:
                mine = row.get(field_name)
                if mine is None or not test(date.fromisoformat(mine), given):
                    out.append(_row_id(row))
    return used


def _row_id(row: dict[str, Any]) -> int:
    for key in ("contactId", "invoiceId", "creditNoteId"):
        if key in row:
            return int(row[key])
    raise KeyError("a row without an id")


def _sort_by(query: dict[str, str], fields: tuple[str, ...], default: str) -> tuple[str, bool]:
    text = query.get("sortBy", default)
    name, _, order = text.strip().partition(" ")
    if name not in fields or order not in ("asc", "desc"):
        choices = ", ".join(f"{f} asc|desc" for f in fields)
        raise ApiError(400, f"sortBy must be one of {choices}, not {text!r}")
    return name, order == "desc"


def _json_body(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    if not _header(headers, "Content-Type").lower().startswith("application/json"):
        raise ApiError(415, "Wrong media type: send application/json")
    try:
        data = json.loads(body or b"null")
    except ValueError:
        raise ApiError(400, "The request body is not JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body is not a JSON object")
    return data


def _multipart(
    headers: dict[str, str], body: bytes, allowed: set[str]
) -> dict[str, tuple[str | None, bytes]]:
    """The parts of a multipart/form-data body by name: (the part's filename, its bytes).
    A part the spec does not give for this endpoint is a 400."""
    content_type = _header(headers, "Content-Type")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(415, "Wrong media type: send multipart/form-data")
    envelope = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message: Message = BytesParser(policy=email.policy.HTTP).parsebytes(envelope + body)
    parts = message.get_payload()
    if not message.is_multipart() or not isinstance(parts, list):
        raise ApiError(400, "The multipart body could not be read")
    form: dict[str, tuple[str | None, bytes]] = {}
    for part in parts:
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise ApiError(400, "A part without a name")
        if name not in allowed:
            raise ApiError(400, f"Unexpected field: {name} (this endpoint takes {sorted(allowed)})")
        content = part.get_payload(decode=True)
        form[name] = (part.get_filename(), content if isinstance(content, bytes) else b"")
    return form


def _reach(contact: dict[str, Any], way: str, data: dict[str, Any]) -> tuple[str, str]:
    """(where ``way`` reaches the contact, or "" and why not)."""
    if way == "email":
        address = data.get("recipientEmail") or contact.get("email") or ""
        return address, "no e-mail address"
    if way == "sms":
        number = data.get("mobileNumber") or contact.get("phoneNumber") or ""
        return number, "no mobile number"
    if way == "ehf":
        number = data.get("organizationNumber") or contact.get("organizationNumber") or ""
        return number, "EHF needs an organization number"
    if way == "efaktura":
        registered = contact["name"] if contact.get("_efaktura") else ""
        return registered, "the customer does not receive eFaktura"
    address = contact.get("address") or {}
    if str(address.get("country", "")).lower() in NORWAY and address.get("streetAddress"):
        lines = (
            address["streetAddress"],
            f"{address.get('postCode', '')} {address.get('city', '')}",
        )
        return f"{contact['name']}, " + ", ".join(line.strip() for line in lines), ""
    return "", "a letter needs a postal address in Norway"

"""A fake Pennylane (Company API v2, France) on loopback: its OAuth 2 and the slice of the
API Kindly uses.

It behaves like the platform where our connector could get it wrong. It answers in the
shapes of Pennylane's published contract (the 2026-09-30 ``operations.json`` kept in
``Davidslv/pennylane_client``: getMe, getCustomers, getCustomer, getCustomerInvoices,
getCustomerInvoice, getCustomerInvoicePayments and the two changelogs) and follows
docs/research/pennylane-api.md. tests/test_fake_pennylane.py holds the fake to those shapes.

- amounts are decimal strings with two places (``"120.00"``, ``"-50.00"``); a float is never
  sent (the encoder refuses one). Ids are integers, dates ``YYYY-MM-DD``, and times are
  ISO 8601 in UTC with microseconds and ``Z``. An error is ``{"error": ..., "status": n}``;
- OAuth 2 for a confidential client. ``/oauth/authorize`` (``client_id``, ``redirect_uri``,
  ``response_type=code``, ``scope`` required; ``state`` optional) redirects with ``code``
  and ``state``. It redirects with ``error`` when the user refuses (``deny_consent``), the
  scope is missing or malformed, or the response type is not ``code``. The user picks ONE
  company at consent (``consent_company``, default :attr:`FakePennylane.company`), and the
  grant is bound to it. A ``code_challenge`` (``S256`` or ``plain``) is accepted, and once
  given, the token step needs the matching ``code_verifier``. ``/oauth/token`` takes the
  client in the form only (``client_id``, ``client_secret``; otherwise 401
  ``invalid_client``). It takes a code once, within 10 fake minutes, with its redirect
  URI, and answers ``access_token``, ``token_type`` "Bearer", ``expires_in`` 86400,
  ``refresh_token`` and ``scope``. Refresh tokens ROTATE: a refresh ends the refresh token
  used AND the access token given with it, and answers a new pair. A refresh token lasts
  90 days. ``/oauth/revoke`` (client in the form, ``token``: access or refresh) ends that
  pair and answers 200 with an empty body;
- the API under ``/api/external/v2`` needs a bearer token (401 when it is missing, unknown,
  expired or revoked) holding the scope the resource needs (``customers:readonly|all``;
  ``customer_invoices:readonly|all``, and ``customer_invoices:all`` to send; otherwise 403).
  Each token sees only its company's records (two companies exist);
- ``GET /me`` answers ``{user, company: {id, name, reg_no, accounting_logic}, scopes}``
  (``user`` is null while ``user_on_me`` is off, as with a company API token);
- lists page by cursor: ``cursor`` (opaque) and ``limit`` (1..100, default 20; changelogs
  1..1000), answering ``{items, has_more, next_cursor}`` (``next_cursor`` is null at the end).
  Lists sort by ``sort`` (``id``/``-id``, invoices also ``date``/``-date``; the default is
  ``-id``, newest first). A cursor holds only the position, not ``filter`` or ``sort``, so
  a client must send them again on every page or page 2 comes back unfiltered, as
  Pennylane warns. A malformed cursor, limit, sort or filter is a 400;
- ``filter`` is a JSON array of ``{field, operator, value}``. On customers the fields are
  ``id`` (lt, lteq, gt, gteq, eq, not_eq, in, not_in), ``customer_type`` (eq, not_eq),
  ``name`` (start_with), ``external_reference`` and ``reg_no`` (eq). On customer invoices
  they are ``id``, ``customer_id``, ``date`` (all eight), ``invoice_number`` (eq, not_eq,
  in, not_in), and ``draft`` and ``credit_note`` (eq). Another field or operator is a 400;
- ``GET /customers`` and ``/customers/{id}``: company and individual customers
  (``customer_type``; an individual has ``first_name``/``last_name`` and no
  ``vat_number``/``reg_no``), ``emails``, ``billing_address``, ``billing_language``, ...;
- ``GET /customer_invoices`` and ``/customer_invoices/{id}``: invoices, drafts and credit
  notes in one collection, with every field the contract requires (and no other field).
  The status follows the fake clock and the money: ``draft``; ``credit_note``;
  ``upcoming`` until the ``deadline`` (Paris date) has passed, then ``late``;
  ``partially_paid`` once part is paid (``partially_paid_status`` off: it stays
  upcoming/late, as on older data); ``paid`` at nothing left. An invoice credited in full
  is ``cancelled``, and one credited in part with something left is
  ``partially_cancelled``. ``paid`` is true when ``remaining_amount_with_tax`` is
  ``"0.00"``. A credit note has negative amounts and ``credited_invoice {id, url}``,
  and takes off the credited invoice's remaining amount (at most what is left);
- ``public_file_url``: a fresh link to ``/public/invoice/pdf?encrypted_id=...`` on this fake
  in each answer, good for 30 fake minutes, which serves ``%PDF-1.4`` bytes WITHOUT a bearer
  token (``pdf_via_storage``: through a 302 to a signed ``/storage/...`` link). While
  ``pdf_generating`` is on, or the invoice's id is in ``pdf_pending``, the PDF is "being
  generated": ``public_file_url`` and ``filename`` are null and ``send_by_email`` answers 409;
- ``GET /customer_invoices/{id}/payments`` (paged, like the lists): ``{id, label, currency,
  currency_amount, status, created_at, updated_at}``. Only a payment whose status is
  ``confirmed``, ``paid_out`` or ``found`` counts toward the invoice's remaining amount;
- ``POST /customer_invoices/{id}/send_by_email`` takes an optional body
  ``{"recipients": [...]}`` and answers 204. It records a :class:`Sent` in ``sent``; with
  no recipients it goes to the customer's ``emails``. It answers 422 for a draft or a
  customer without e-mail, 409 while ``pdf_generating`` is on, and 400 for a malformed body;
- changelogs: ``GET /changelogs/customer_invoices`` and ``/changelogs/customers`` answer
  ``{items: [{id, operation, processed_at, updated_at, created_at}], has_more,
  next_cursor}``, oldest first. ``start_date`` (RFC 3339) works on the first page only:
  with ``cursor`` it is a 400. It is inclusive. Four weeks of changes are kept: older ones
  are no longer served, and an older ``start_date`` is a 422. Inserts, updates (a payment,
  a credit note on the invoice, a helper's change) and deletes are logged; so are customer
  inserts and updates;
- the rate limit is 25 requests (``rate_limit``) per 5 fake seconds (``rate_window``) for
  EACH access token. Every answer to a valid token carries ``ratelimit-limit``,
  ``ratelimit-remaining`` and ``ratelimit-reset`` (Unix seconds). Beyond the limit the
  answer is 429, body ``Rate limit exceeded. Please retry in X seconds.``, with
  ``retry-after`` (seconds);
- faults on demand (``fail_next``) come before any check; ``Fault.carry_out`` does the
  request and then answers with the fault, and with ``drop`` there is no answer at all (a
  lost answer). ``shuffle_pages`` mixes the rows within each list page (never a changelog
  page, whose order is documented). ``served`` counts the records of each list answer
  (customers, invoices, payments); ``calls`` counts every call by "METHOD /path",
  ``token_calls`` the token endpoint's, ``refreshes`` the refresh grants carried out, and
  ``revoked`` holds the tokens posted for revocation.

Records are held per company as Pennylane JSON (keys starting with ``_`` are the fake's
own and never served; URL fields are added when served). Tests add and change records with
the helpers, and each change moves the fake clock on a second. The clock moves only with
``tick()``.

Webhooks are left out on purpose. They are Beta, their three events
(``customer_invoice.e_invoicing_status_updated``, ``dms_file.created``,
``supplier_invoice.e_invoicing_received``) carry nothing Kindly reads, the notes do not
give the pushed ``object`` shapes, and Pennylane itself says to rely on changelogs.

These are the fake's assumptions where the contract and the notes are silent:
- the OAuth error bodies (Doorkeeper's ``{"error", "error_description"}``); a code lasting
  10 minutes; ``scope`` in the token answer; revoking one token ending its whole pair; PKCE
  accepted although Pennylane's walkthrough never mentions it;
- the fixed rate window, which opens at a token's first call; no rate headers on a 401,
  where there is no token to count against;
- keyset cursors that refuse a cursor made by another list (400); a non-numeric id in a
  path is a 404;
- a changelog entry's ``updated_at``/``created_at`` are the record's at that change; the
  clock turning an invoice ``late`` is NOT a change (no changelog entry, no new
  ``updated_at``): a client must compare ``deadline`` with today itself;
- how credit notes touch status (``cancelled``/``partially_cancelled``) and
  ``remaining_amount_with_tax`` (open question 5 of the notes); which payment statuses
  count;
- a draft's ``invoice_number`` is ``""`` (the contract makes it a non-null string), and
  its remaining amount is its total; a payment's ``created_at`` is noon (Paris) of the day
  it was paid (the contract has no payment date);
- the numbering (``F<year><0000>``, credit notes ``AV<year><0000>``), 20 % VAT, and the
  exchange rates of :data:`EURO_RATES`; the 409 and 422 messages of ``send_by_email``; the
  public PDF's 404 once it has expired.
"""

from __future__ import annotations

import base64
import collections
import copy
import hashlib
import json
import math
import random
import re
import secrets
import threading
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from email.utils import format_datetime
from http.server import ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from tests.fakes.http_server import DROP, base_url, serve, stop

API = "/api/external/v2"
AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
REVOKE_PATH = "/oauth/revoke"
#: Where ``public_file_url`` points (Pennylane's own is ``/public/invoice/pdf?encrypted_id=``).
PUBLIC_PDF_PATH = "/public/invoice/pdf"
#: Where ``pdf_via_storage`` sends the public link on to.
STORAGE_PATH = "/storage"
#: Where Pennylane's answers point when the fake is not serving (records made before start).
PENNYLANE = "https://app.pennylane.com"
PARIS = ZoneInfo("Europe/Paris")
ACCESS_LIFE = timedelta(seconds=86400)
REFRESH_LIFE = timedelta(days=90)
CODE_LIFE = timedelta(minutes=10)
PUBLIC_FILE_LIFE = timedelta(minutes=30)
RATE_LIMIT = 25
RATE_WINDOW = timedelta(seconds=5)
LIMIT = 20
MAX_LIMIT = 100
MAX_CHANGELOG_LIMIT = 1000
RETENTION = timedelta(weeks=4)
VAT = Decimal("0.20")
CENT = Decimal("0.01")
#: What one unit of a currency is in euro (the fake's rates), as ``exchange_rate`` shows it.
EURO_RATES = {"EUR": "1.0", "USD": "0.92", "GBP": "1.17", "CHF": "1.06"}
#: What ``issue_tokens`` grants unless told.
DEFAULT_SCOPE = "customers:readonly customer_invoices:all"
#: Pennylane's scope form: ``resource:readonly`` or ``resource:all``.
SCOPE_FORM = re.compile(r"[a-z_]+(?::[a-z_]+)*:(?:readonly|all)")
LANGUAGES = ("fr_FR", "en_GB", "de_DE", "es_ES")
PAYMENT_CONDITIONS = (
    "upon_receipt",
    "custom",
    "7_days",
    "15_days",
    "30_days",
    "30_days_end_of_month",
    "45_days",
    "45_days_end_of_month",
    "60_days",
)
PAYMENT_STATUSES = (
    "initiated",
    "pending",
    "emitted",
    "found",
    "not_found",
    "aborted",
    "error",
    "refunded",
    "prepared",
    "pending_customer_approval",
    "pending_submission",
    "submitted",
    "confirmed",
    "paid_out",
    "cancelled",
    "customer_approval_denied",
    "failed",
    "charged_back",
    "resubmission_requested",
    "draft",
)
#: The payment statuses whose money counts as received (the fake's reading).
SETTLED_PAYMENTS = frozenset({"confirmed", "paid_out", "found"})
INVOICE_STATUSES = (
    "archived",
    "incomplete",
    "cancelled",
    "paid",
    "partially_paid",
    "partially_cancelled",
    "upcoming",
    "late",
    "draft",
    "credit_note",
    "proforma",
    "shipping_order",
    "purchasing_order",
    "estimate_pending",
    "estimate_accepted",
    "estimate_invoiced",
    "estimate_denied",
)
#: The sub-resources an invoice links to as ``{"url": ...}``.
INVOICE_LINKS = (
    "invoice_line_sections",
    "invoice_lines",
    "custom_header_fields",
    "categories",
    "payments",
    "matched_transactions",
    "appendices",
)
#: Invoice fields the fake works out itself: a helper may not set them.
COMPUTED = frozenset(
    {
        "id",
        "currency_amount",
        "currency_amount_before_tax",
        "currency_tax",
        "tax",
        "exchange_rate",
        "remaining_amount_with_tax",
        "remaining_amount_without_tax",
        "paid",
        "draft",
        "credited_invoice",
        "created_at",
        "updated_at",
    }
)
ORDERING = ("lt", "lteq", "gt", "gteq", "eq", "not_eq", "in", "not_in")
#: Filters: field -> (kind of value, operators).
CUSTOMER_FILTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "id": ("int", ORDERING),
    "customer_type": ("str", ("eq", "not_eq")),
    "name": ("str", ("start_with",)),
    "external_reference": ("str", ("eq",)),
    "reg_no": ("str", ("eq",)),
}
INVOICE_FILTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "id": ("int", ORDERING),
    "customer_id": ("int", ORDERING),
    "date": ("date", ORDERING),
    "invoice_number": ("str", ("eq", "not_eq", "in", "not_in")),
    "draft": ("bool", ("eq",)),
    "credit_note": ("bool", ("eq",)),
}

Answer = tuple[int, Any, dict[str, str]]


class ApiError(Exception):
    """A request the fake refuses with ``status`` and this message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error(status: int, message: str) -> dict[str, Any]:
    """Pennylane's error body."""
    return {"error": message, "status": status}


def iso(moment: datetime) -> str:
    """Pennylane's time: UTC, microseconds, ``Z``."""
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}Z"


def money(amount: str | int | Decimal) -> Decimal:
    if isinstance(amount, float):
        raise TypeError("amounts are exact: give a str, int or Decimal, not a float")
    return amount if isinstance(amount, Decimal) else Decimal(str(amount))


def amount_text(amount: str | int | Decimal) -> str:
    """An amount as the fake writes it: two places, ``"120.00"``, ``"-50.00"``."""
    value = money(amount).quantize(CENT)
    return "0.00" if value == 0 else format(value, "f")


def _refuse_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError(f"a float in a Pennylane answer: {value!r}")
    if isinstance(value, dict):
        for each in value.values():
            _refuse_floats(each)
    elif isinstance(value, list | tuple):
        for each in value:
            _refuse_floats(each)


def encode(payload: Any) -> bytes:
    """JSON as Pennylane writes it; amounts are strings, so a float is the fake's own bug."""
    _refuse_floats(payload)
    return json.dumps(payload, ensure_ascii=False).encode()


def parse_time(text: str) -> datetime:
    """An RFC 3339 time (with its offset) or ValueError."""
    found = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})", text.strip()
    )
    if found is None:
        raise ValueError(text)
    head, fraction, zone = found.groups()
    fraction = (fraction or ".0")[:7]
    return datetime.fromisoformat(head + fraction + ("+00:00" if zone == "Z" else zone))


def _slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-") or "client"


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | bytes | str | None = None
    #: Done in the server just before this answer goes out (another process's work).
    before: Callable[[], None] | None = None
    #: Carry the request out all the same, then answer with this fault (a lost answer).
    carry_out: bool = False
    #: No answer at all, the connection dropped (with ``carry_out``: after doing it).
    drop: bool = False


class Sent(NamedTuple):
    """An invoice sent by e-mail, and the addresses it went to."""

    invoice_id: int
    recipients: tuple[str, ...]


@dataclass
class Grant:
    """One consent: the company it is bound to, its scope and its current refresh token."""

    company: int
    scope: str
    refresh_token: str
    refresh_expires: datetime
    revoked: bool = False


@dataclass
class Book:
    """One Pennylane company: its records, its changelogs and what it sent."""

    id: int
    name: str
    reg_no: str
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: The payments of each invoice, by invoice id, in order.
    payments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    #: Changelog entries per resource ("customers", "customer_invoices"), oldest first.
    changes: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"customers": [], "customer_invoices": []}
    )
    sent: list[Sent] = field(default_factory=list)
    #: The last number given per year: invoices and credit notes.
    last_number: dict[int, int] = field(default_factory=dict)
    last_credit_number: dict[int, int] = field(default_factory=dict)


class FakePennylane:
    def __init__(
        self,
        *,
        client_id: str = "kindly-pennylane-client",
        client_secret: str = "kindly-pennylane-secret",
    ) -> None:
        self.lock = threading.RLock()
        self.client_id = client_id
        self.client_secret = client_secret
        # Microseconds that are not zero: a client that drops them shows.
        self.clock = datetime(2026, 11, 23, 8, 0, 0, 412731, tzinfo=UTC)
        self.random = random.Random(20261123)
        self._last_id = 31_400_000
        self.user: dict[str, Any] = {
            "id": 77_001,
            "first_name": "Camille",
            "last_name": "Martin",
            "email": "camille@atelier-lumiere.example",
            "locale": "fr",
        }
        self.companies: dict[int, Book] = {
            book.id: book
            for book in (
                Book(4_120_017, "Atelier Lumière SAS", "852741963"),
                Book(4_120_018, "Lumière Conseil SARL", "913258746"),
            )
        }
        #: The default company's id.
        self.company = next(iter(self.companies))
        self.calls: collections.Counter[str] = collections.Counter()
        #: Records in each list answer (customers, invoices, payments), in order.
        self.served: list[int] = []
        self.faults: collections.defaultdict[str, list[Fault]] = collections.defaultdict(list)
        #: Rows of each list page in a shuffled order (within the page).
        self.shuffle_pages = False
        self.rate_limit = RATE_LIMIT
        self.rate_window = RATE_WINDOW
        #: Every invoice PDF is still being generated: no public link, send_by_email 409.
        self.pdf_generating = False
        #: The invoices (by id) whose PDF alone is still being generated.
        self.pdf_pending: set[int] = set()
        #: The public link answers with a redirect to a signed link on a storage path.
        self.pdf_via_storage = False
        #: A credit note logs an update of the invoice it credits (off: only its insert).
        self.credit_logs_invoice = True
        #: A partly paid invoice shows ``partially_paid`` (off: upcoming/late, older data).
        self.partially_paid_status = True
        #: ``/me`` names the user (off: ``user`` is null, as for a company API token).
        self.user_on_me = True
        #: The user refuses at the consent screen.
        self.deny_consent = False
        #: The company the user picks at the consent screen (None: the default company).
        self.consent_company: int | None = None
        # OAuth state
        self.codes: dict[str, dict[str, Any]] = {}
        self.grants: dict[str, Grant] = {}
        #: Live refresh tokens and their grant.
        self.refresh_tokens: dict[str, str] = {}
        #: Live access tokens: their grant and when they end.
        self.access_tokens: dict[str, tuple[str, datetime]] = {}
        #: Every POST to the token endpoint, whatever came of it.
        self.token_calls = 0
        #: Refresh grants carried out.
        self.refreshes = 0
        #: Tokens posted to the revocation endpoint.
        self.revoked: list[str] = []
        #: Rate-limit windows per access token: (start, calls counted).
        self.buckets: dict[str, tuple[datetime, int]] = {}
        #: Public PDF links: key -> (company, invoice id, until).
        self.public_files: dict[str, tuple[int, int, datetime]] = {}
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
        self._server = None

    def endpoints(self) -> dict[str, str]:
        return {
            "authorize_url": f"{self.url}{AUTHORIZE_PATH}",
            "token_url": f"{self.url}{TOKEN_PATH}",
            "revoke_url": f"{self.url}{REVOKE_PATH}",
            "api_url": f"{self.url}{API}",
        }

    def fail_next(self, path_prefix: str, *faults: Fault) -> None:
        """Answer the next calls whose path starts with ``path_prefix`` with ``faults``, one
        each, in order (before any check of tokens, scopes or rate limits)."""
        with self.lock:
            self.faults[path_prefix].extend(faults)

    def api_calls(self) -> int:
        return sum(n for key, n in self.calls.items() if key.split(" ", 1)[1].startswith(API))

    def _root(self) -> str:
        return base_url(self._server) if self._server is not None else PENNYLANE

    # -- the default company's records ---------------------------------------------------

    def book(self, company_id: int | None = None) -> Book:
        return self.companies[self.company if company_id is None else company_id]

    @property
    def customers(self) -> dict[int, dict[str, Any]]:
        return self.book().customers

    @property
    def invoices(self) -> dict[int, dict[str, Any]]:
        return self.book().invoices

    @property
    def sent(self) -> list[Sent]:
        return self.book().sent

    def payments(self, invoice: dict[str, Any] | int) -> list[dict[str, Any]]:
        """The payments of an invoice, as stored."""
        with self.lock:
            book, record = self._find_invoice(invoice)
            return book.payments[record["id"]]

    # -- tokens ----------------------------------------------------------------------------

    def issue_tokens(
        self, company: int | None = None, *, scope: str = DEFAULT_SCOPE
    ) -> dict[str, Any]:
        """A fresh grant on ``company`` (the default one unless named), as the token
        endpoint answers it (for a connector the tests connect without the browser)."""
        with self.lock:
            book = self.book(company)
            return self._grant(book.id, scope)

    def _grant(self, company: int, scope: str) -> dict[str, Any]:
        grant_id = uuid.uuid4().hex
        refresh = secrets.token_urlsafe(32)
        self.grants[grant_id] = Grant(company, scope, refresh, self.clock + REFRESH_LIFE)
        self.refresh_tokens[refresh] = grant_id
        return self._token_answer(grant_id)

    def _token_answer(self, grant_id: str) -> dict[str, Any]:
        grant = self.grants[grant_id]
        access = secrets.token_urlsafe(32)
        self.access_tokens[access] = (grant_id, self.clock + ACCESS_LIFE)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(ACCESS_LIFE.total_seconds()),
            "refresh_token": grant.refresh_token,
            "scope": grant.scope,
        }

    def expire_access_tokens(self) -> None:
        """Every access token ends now (their refresh tokens still work)."""
        with self.lock:
            for token, (grant_id, _) in list(self.access_tokens.items()):
                self.access_tokens[token] = (grant_id, self.clock)

    def _end_grant(self, grant_id: str) -> None:
        grant = self.grants[grant_id]
        grant.revoked = True
        self.refresh_tokens.pop(grant.refresh_token, None)
        for token in [t for t, (g, _) in self.access_tokens.items() if g == grant_id]:
            del self.access_tokens[token]

    # -- the clock ---------------------------------------------------------------------------

    def tick(self, minutes: float = 0, seconds: float = 1, *, days: float = 0) -> datetime:
        """Move the clock on (``seconds`` only when neither ``days`` nor ``minutes`` is
        given). Invoices whose deadline passed turn late; that is not a change of theirs."""
        with self.lock:
            if days or minutes:
                self.clock += timedelta(days=days, minutes=minutes)
            else:
                self.clock += timedelta(seconds=seconds)
            for book in self.companies.values():
                for invoice in book.invoices.values():
                    self._settle(invoice)
            return self.clock

    @property
    def today(self) -> date:
        """The date in Paris."""
        return self.clock.astimezone(PARIS).date()

    def _new_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def _stamp(self, record: dict[str, Any]) -> None:
        """A change: a second on, and now as ``updated_at``."""
        self.tick()
        record["updated_at"] = iso(self.clock)

    def _log(self, book: Book, resource: str, record: dict[str, Any], operation: str) -> None:
        entries = book.changes[resource]
        entries.append(
            {
                "id": record["id"],
                "operation": operation,
                "processed_at": iso(self.clock),
                "updated_at": record["updated_at"] if operation != "delete" else iso(self.clock),
                "created_at": record["created_at"],
                "_at": self.clock,
                "_seq": len(entries) + 1,
            }
        )

    def _find_invoice(self, key: dict[str, Any] | int) -> tuple[Book, dict[str, Any]]:
        wanted = key["id"] if isinstance(key, dict) else key
        for book in self.companies.values():
            if wanted in book.invoices:
                return book, book.invoices[wanted]
        raise KeyError(f"no customer invoice {wanted}")

    def _find_customer(
        self, key: dict[str, Any] | int, company: int | None = None
    ) -> tuple[Book, dict[str, Any]]:
        wanted = key["id"] if isinstance(key, dict) else key
        for book in self.companies.values():
            if wanted in book.customers:
                if company is not None and company != book.id:
                    raise KeyError(f"customer {wanted} is not in company {company}")
                return book, book.customers[wanted]
        raise KeyError(f"no customer {wanted}")

    @staticmethod
    def _plain(fields: dict[str, Any]) -> dict[str, Any]:
        """Fields as Pennylane JSON: dates and times as ISO text; no floats."""
        out: dict[str, Any] = {}
        for name, value in fields.items():
            if isinstance(value, float):
                raise TypeError(f"{name}: amounts are exact, not floats")
            if isinstance(value, datetime):
                value = iso(value)
            elif isinstance(value, date):
                value = value.isoformat()
            elif isinstance(value, Decimal):
                value = amount_text(value)
            out[name] = value
        return out

    # -- customers ---------------------------------------------------------------------------

    def add_customer(
        self,
        name: str,
        *,
        kind: str = "company",
        company: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A customer of ``company`` (the default one unless named): a company customer
        called ``name`` (``kind="company"``), or a person (``kind="individual"``: ``name``
        is "First Last"). Its e-mail is ``compta@<name>.example`` for a company and
        ``<first name>@client.example`` for a person; ``fields`` set any other field of
        the record (``emails=[]``, ``billing_language="en_GB"``, ...)."""
        if kind not in ("company", "individual"):
            raise ValueError(f"kind is company or individual, not {kind!r}")
        with self.lock:
            book = self.book(company)
            self.tick()
            now = iso(self.clock)
            address = {
                "address": "12 rue de la Paix",
                "postal_code": "75002",
                "city": "Paris",
                "country_alpha2": "FR",
            }
            customer: dict[str, Any] = {
                "id": self._new_id(),
                "name": name,
                "billing_iban": None,
                "payment_conditions": "30_days",
                "recipient": "",
                "phone": "",
                "reference": None,
                "notes": None,
                "ledger_account": None,
                "emails": [],
                "billing_address": address,
                "delivery_address": dict(address),
                "created_at": now,
                "updated_at": now,
                "customer_type": kind,
                "external_reference": self._uuid(),
                "billing_language": "fr_FR",
            }
            if kind == "company":
                customer["vat_number"] = ""
                customer["reg_no"] = ""
                customer["emails"] = [f"compta@{_slug(name)}.example"]
            else:
                first, _, last = name.partition(" ")
                customer["first_name"] = first
                customer["last_name"] = last
                customer["emails"] = [f"{_slug(first)}@client.example"]
            self._check_customer_fields(customer, fields)
            customer.update(self._plain(fields))
            book.customers[customer["id"]] = customer
            self._log(book, "customers", customer, "insert")
            return customer

    @staticmethod
    def _check_customer_fields(customer: dict[str, Any], fields: dict[str, Any]) -> None:
        unknown = sorted(set(fields) - set(customer) - {"id"})
        if unknown or "id" in fields:
            raise TypeError(
                f"not a field of a Pennylane {customer['customer_type']} customer: "
                f"{', '.join(unknown or ['id'])} (e-mails are 'emails', the language is "
                "'billing_language')"
            )
        language = fields.get("billing_language", customer["billing_language"])
        if language not in LANGUAGES:
            raise ValueError(f"billing_language is one of {LANGUAGES}, not {language!r}")
        conditions = fields.get("payment_conditions", customer["payment_conditions"])
        if conditions not in PAYMENT_CONDITIONS:
            raise ValueError(f"payment_conditions is not {conditions!r}")

    def update_customer(self, customer_id: int, **fields: Any) -> dict[str, Any]:
        """Change a customer's fields: a new ``updated_at`` and an update in the changelog."""
        with self.lock:
            book, customer = self._find_customer(customer_id)
            self._check_customer_fields(customer, fields)
            customer.update(self._plain(fields))
            self._stamp(customer)
            self._log(book, "customers", customer, "update")
            return customer

    # -- invoices ----------------------------------------------------------------------------

    def add_invoice(
        self,
        customer: dict[str, Any] | int,
        number: int | str,
        amount: str | int | Decimal,
        *,
        issued: date,
        due: date,
        currency: str = "EUR",
        company: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A finalized invoice of ``amount`` incl. 20 % VAT to ``customer``; ``number`` an
        int becomes ``"F<year><0007>"``, a str is the number as it is. Its status follows
        the clock and the money; ``status=`` pins one (until ``update_invoice(id,
        status=None)``); ``fields`` set other fields (``label``, ``language``, ...)."""
        with self.lock:
            book, holder = self._find_customer(customer, company)
            if isinstance(number, int):
                book.last_number[issued.year] = max(book.last_number.get(issued.year, 0), number)
                number = f"F{issued.year}{number:04d}"
            invoice = self._new_invoice(
                book, holder, money(amount), number, issued, due, currency, draft=False
            )
            return self._finish_new(book, invoice, fields)

    def add_draft(
        self,
        customer: dict[str, Any] | int,
        amount: str | int | Decimal,
        *,
        issued: date | None = None,
        due: date | None = None,
        currency: str = "EUR",
        company: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A draft (not finalized: ``draft`` true, status draft, no number yet)."""
        with self.lock:
            book, holder = self._find_customer(customer, company)
            invoice = self._new_invoice(
                book, holder, money(amount), "", issued, due, currency, draft=True
            )
            return self._finish_new(book, invoice, fields)

    def add_credit_note(
        self,
        invoice: dict[str, Any] | int,
        amount: str | int | Decimal,
        *,
        issued: date,
        number: int | str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A credit note of ``amount`` (its size; its amounts are negative) on ``invoice``:
        ``credited_invoice`` points to it, and it takes off what is left to pay on the
        invoice (at most that). The rest of a larger credit note stays as its own remaining
        amount (negative)."""
        with self.lock:
            book, original = self._find_invoice(invoice)
            if original["draft"] or original["_credit_note"]:
                raise ValueError("only a finalized invoice can be credited")
            customer = book.customers[original["customer"]["id"]]
            size = abs(money(amount))
            if isinstance(number, int) or number is None:
                year = issued.year
                count = book.last_credit_number.get(year, 0) + 1 if number is None else number
                book.last_credit_number[year] = max(book.last_credit_number.get(year, 0), count)
                number = f"AV{year}{count:04d}"
            left = max(self._remaining(original), Decimal(0))
            applied = min(size, left)
            credit = self._new_invoice(
                book,
                customer,
                -size,
                number,
                issued,
                issued,
                original["currency"],
                draft=False,
                credited=original,
            )
            credit["_credited"] = str(-applied)
            self._finish_new(book, credit, fields)
            if applied:
                original["_credited"] = str(money(original["_credited"]) + applied)
                if self.credit_logs_invoice:
                    self._stamp(original)
                    self._log(book, "customer_invoices", original, "update")
                self._settle(original)
            return credit

    def _finish_new(
        self, book: Book, invoice: dict[str, Any], fields: dict[str, Any]
    ) -> dict[str, Any]:
        self._apply(invoice, fields)
        self._settle(invoice)
        book.invoices[invoice["id"]] = invoice
        book.payments[invoice["id"]] = []
        self._log(book, "customer_invoices", invoice, "insert")
        return invoice

    def _new_invoice(
        self,
        book: Book,
        customer: dict[str, Any],
        total: Decimal,
        number: str,
        issued: date | None,
        due: date | None,
        currency: str,
        *,
        draft: bool,
        credited: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if currency not in EURO_RATES:
            raise ValueError(f"the fake has no exchange rate for {currency}")
        self.tick()
        now = iso(self.clock)
        what = "Avoir" if credited is not None else "Facture"
        label = f"{what} {customer['name']}" + (f" - {number}" if number else "")
        invoice: dict[str, Any] = {
            "id": self._new_id(),
            "label": label,
            "invoice_number": number,
            "currency": currency,
            "date": issued.isoformat() if issued else None,
            "deadline": due.isoformat() if due else None,
            "language": customer["billing_language"],
            "paid": False,
            "status": "draft" if draft else "upcoming",
            "discount": {"type": "absolute", "value": "0"},
            "ledger_entry": {"id": self._new_id()},
            "draft": draft,
            "special_mention": None,
            "customer": {"id": customer["id"]},
            "payment_method_ledger_account": None,
            "pdf_invoice_free_text": "",
            "pdf_invoice_subject": "",
            "pdf_description": None,
            "billing_subscription": None,
            "credited_invoice": {"id": credited["id"]} if credited is not None else None,
            "customer_invoice_template": None,
            "transaction_reference": None,
            "installments": None,
            "quote": None,
            "external_reference": self._uuid(),
            "purchase_order_reference": None,
            "sales_order_reference": None,
            "e_invoicing": None,
            "factur_x": False,
            "schematron_validation_status": None,
            "archived_at": None,
            "created_at": now,
            "updated_at": now,
            # The fake's own: the total (invoice currency, signed), what is paid, what
            # credit notes took off (a credit note: minus what it gave), a pinned status.
            "_total": "0",
            "_before": "0",
            "_paid": "0",
            "_credited": "0",
            "_credit_note": credited is not None,
            "_pinned": None,
        }
        self._price(invoice, total)
        return invoice

    @staticmethod
    def _price(invoice: dict[str, Any], total: Decimal) -> None:
        """The money fields of a total incl. VAT in the invoice's currency."""
        rate = Decimal(EURO_RATES[invoice["currency"]])
        before = (total / (1 + VAT)).quantize(CENT)
        tax = total - before
        invoice["amount"] = amount_text(total * rate)
        invoice["currency_amount"] = amount_text(total)
        invoice["currency_amount_before_tax"] = amount_text(before)
        invoice["exchange_rate"] = EURO_RATES[invoice["currency"]]
        invoice["currency_tax"] = amount_text(tax)
        invoice["tax"] = amount_text(tax * rate)
        invoice["_total"] = str(total)
        invoice["_before"] = str(before)

    def _apply(self, invoice: dict[str, Any], fields: dict[str, Any]) -> None:
        fields = dict(fields)
        if "status" in fields:
            pinned = fields.pop("status")
            if pinned is not None and pinned not in INVOICE_STATUSES:
                raise ValueError(f"not a Pennylane invoice status: {pinned!r}")
            invoice["_pinned"] = pinned
        refused = sorted((set(fields) & COMPUTED) | {k for k in fields if k.startswith("_")})
        unknown = sorted(set(fields) - set(invoice) - set(refused))
        if refused or unknown:
            raise TypeError(
                f"cannot set {', '.join(refused + unknown)} on an invoice: the fake works out "
                "the money and the state (use amount=, pay() or add_credit_note())"
            )
        if "customer" in fields:
            holder = fields.pop("customer")
            invoice["customer"] = {"id": holder["id"] if isinstance(holder, dict) else holder}
        total = fields.pop("amount", None)
        if "currency" in fields and fields["currency"] not in EURO_RATES:
            raise ValueError(f"the fake has no exchange rate for {fields['currency']}")
        language = fields.get("language", invoice["language"])
        if language not in LANGUAGES:
            raise ValueError(f"language is one of {LANGUAGES}, not {language!r}")
        invoice.update(self._plain(fields))
        if total is not None or "currency" in fields:
            size = money(total) if total is not None else money(invoice["_total"])
            self._price(invoice, -abs(size) if invoice["_credit_note"] else size)

    @staticmethod
    def _remaining(invoice: dict[str, Any]) -> Decimal:
        return money(invoice["_total"]) - money(invoice["_paid"]) - money(invoice["_credited"])

    def _status_of(self, invoice: dict[str, Any]) -> str:
        if invoice["draft"]:
            return "draft"
        if invoice["_pinned"] is not None:
            return str(invoice["_pinned"])
        if invoice["_credit_note"]:
            return "credit_note"
        total, paid, credited = (money(invoice[k]) for k in ("_total", "_paid", "_credited"))
        remaining = total - paid - credited
        if remaining <= 0:
            return "cancelled" if credited >= total else "paid"
        if credited > 0:
            return "partially_cancelled"
        if paid > 0 and self.partially_paid_status:
            return "partially_paid"
        deadline = invoice["deadline"]
        if deadline and date.fromisoformat(deadline) < self.today:
            return "late"
        return "upcoming"

    def _settle(self, invoice: dict[str, Any]) -> None:
        """The remaining amounts, ``paid`` and the status the money and the clock give
        (not a change of the invoice: ``tick`` calls this)."""
        remaining = self._remaining(invoice)
        total, before = money(invoice["_total"]), money(invoice["_before"])
        invoice["remaining_amount_with_tax"] = amount_text(remaining)
        invoice["remaining_amount_without_tax"] = amount_text(
            remaining * before / total if total else 0
        )
        invoice["paid"] = not invoice["draft"] and remaining == 0
        invoice["status"] = self._status_of(invoice)

    def pay(
        self,
        invoice: dict[str, Any] | int,
        amount: str | int | Decimal,
        *,
        on: date,
        label: str | None = None,
        status: str = "paid_out",
    ) -> dict[str, Any]:
        """A payment of ``amount`` received on ``on``: it joins the invoice's payments, and
        (when its ``status`` is one that counts) lowers what is left to pay; the invoice's
        status follows, and it is an update in the changelog."""
        if status not in PAYMENT_STATUSES:
            raise ValueError(f"not a Pennylane payment status: {status!r}")
        with self.lock:
            book, record = self._find_invoice(invoice)
            if record["draft"]:
                raise ValueError("a draft cannot be paid")
            value = money(amount)
            counts = status in SETTLED_PAYMENTS
            left = self._remaining(record)
            if counts and (value > left if left >= 0 else value < left):
                raise ValueError(f"invoice {record['invoice_number']}: only {left} is left")
            self._stamp(record)
            when = iso(datetime.combine(on, time(12), PARIS))
            customer = book.customers.get(record["customer"]["id"], {"name": ""})
            payment = {
                "id": self._new_id(),
                "label": label or f"Paiement {customer['name']} {record['invoice_number']}",
                "currency": record["currency"],
                "currency_amount": amount_text(value),
                "status": status,
                "created_at": when,
                "updated_at": when,
            }
            book.payments[record["id"]].append(payment)
            if counts:
                record["_paid"] = str(money(record["_paid"]) + value)
            self._settle(record)
            self._log(book, "customer_invoices", record, "update")
            return payment

    def update_invoice(self, invoice_id: int, **fields: Any) -> dict[str, Any]:
        """Change an invoice's fields (``status=`` pins a status, None unpins; ``amount=``
        sets a new total): a new ``updated_at`` and an update in the changelog."""
        with self.lock:
            book, invoice = self._find_invoice(invoice_id)
            self._apply(invoice, fields)
            self._stamp(invoice)
            self._settle(invoice)
            self._log(book, "customer_invoices", invoice, "update")
            return invoice

    def delete_invoice(self, invoice_id: int) -> dict[str, Any]:
        """Delete an invoice: gone by id and from the lists, a delete in the changelog."""
        with self.lock:
            book, invoice = self._find_invoice(invoice_id)
            del book.invoices[invoice["id"]]
            book.payments.pop(invoice["id"], None)
            self.tick()
            self._log(book, "customer_invoices", invoice, "delete")
            return invoice

    # -- rendering -------------------------------------------------------------------------

    def _customer_json(self, customer: dict[str, Any]) -> dict[str, Any]:
        shown = {k: copy.deepcopy(v) for k, v in customer.items() if not k.startswith("_")}
        base = self._root() + API
        which = json.dumps([{"field": "customer_id", "operator": "eq", "value": str(shown["id"])}])
        shown["mandates"] = {"url": f"{base}/gocardless_mandates?filter={quote(which)}"}
        shown["pro_account_mandates"] = {
            "url": f"{base}/pro_account/mandates?filter={quote(which)}"
        }
        shown["contacts"] = {"url": f"{base}/customers/{shown['id']}/contacts"}
        return shown

    def _invoice_json(self, book: Book, invoice: dict[str, Any]) -> dict[str, Any]:
        self._settle(invoice)
        shown = {k: copy.deepcopy(v) for k, v in invoice.items() if not k.startswith("_")}
        base = self._root() + API
        number = invoice["id"]
        holder = invoice["customer"]
        shown["customer"] = (
            {"id": holder["id"], "url": f"{base}/customers/{holder['id']}"} if holder else None
        )
        credited = invoice["credited_invoice"]
        if credited is not None:
            shown["credited_invoice"] = {
                "id": credited["id"],
                "url": f"{base}/customer_invoices/{credited['id']}",
            }
        for link in INVOICE_LINKS:
            shown[link] = {"url": f"{base}/customer_invoices/{number}/{link}"}
        if self.pdf_generating or invoice["id"] in self.pdf_pending:
            shown["public_file_url"] = None
            shown["filename"] = None
        else:
            key = secrets.token_urlsafe(24)
            self.public_files[key] = (book.id, number, self.clock + PUBLIC_FILE_LIFE)
            query = urlencode({"encrypted_id": key})
            shown["public_file_url"] = f"{self._root()}{PUBLIC_PDF_PATH}?{query}"
            shown["filename"] = self._filename(invoice)
        return shown

    @staticmethod
    def _filename(invoice: dict[str, Any]) -> str:
        if invoice["draft"]:
            return f"Brouillon {invoice['id']}.pdf"
        what = "Avoir" if invoice["_credit_note"] else "Facture"
        return f"{what} {invoice['invoice_number']}.pdf"

    # -- dispatch --------------------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        status, payload, extra = self._answer(method, target, headers, body)
        # Pennylane's clock is this fake's: the connector reads it from the Date header.
        return status, payload, {"Date": format_datetime(self.clock, usegmt=True), **extra}

    def _answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        lowered = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            self.calls[f"{method} {path}"] += 1
            if path == TOKEN_PATH and method == "POST":
                self.token_calls += 1
            injected = None
            for prefix, queued in self.faults.items():
                if queued and path.startswith(prefix):
                    injected = queued.pop(0)
                    break
            if injected is None:
                return self._route(method, path, query, lowered, body)
            if injected.carry_out:
                self._route(method, path, query, lowered, body)
            if injected.before is not None:
                injected.before()
            if injected.drop:
                return 0, DROP, {}
            payload = injected.body
            if payload is None:
                payload = error(injected.status, "injected fault")
            if isinstance(payload, str):
                payload = payload.encode()
            return injected.status, payload, dict(injected.headers)

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Answer:
        if path == AUTHORIZE_PATH and method == "GET":
            return self._authorize(query)
        if path == TOKEN_PATH and method == "POST":
            return self._token(self._form(body))
        if path == REVOKE_PATH and method == "POST":
            return self._revoke(self._form(body))
        if path == PUBLIC_PDF_PATH and method == "GET":
            if self.pdf_via_storage and "signature" not in query:
                signed = urlencode({**query, "signature": secrets.token_urlsafe(16)})
                return 302, b"", {"Location": f"{STORAGE_PATH}/file.pdf?{signed}"}
            return self._public_pdf(query)
        if path == f"{STORAGE_PATH}/file.pdf" and method == "GET":
            return self._public_pdf(query)
        if not path.startswith(API + "/"):
            return 404, error(404, "Not Found"), {}
        token, grant, refused = self._bearer(headers)
        if refused is not None or grant is None:
            return refused or (401, error(401, "The access token is invalid"), {})
        throttled, rate = self._take(token)
        if throttled is not None:
            return throttled
        book = self.companies[grant.company]
        segments = path.removeprefix(API + "/").split("/")
        try:
            status, payload, extra = self._api(book, grant, method, segments, query, body)
        except ApiError as exc:
            status, payload, extra = exc.status, error(exc.status, str(exc)), {}
        return status, payload, {**rate, **extra}

    @staticmethod
    def _form(body: bytes) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(body.decode(errors="replace")).items()}

    def _bearer(self, headers: dict[str, str]) -> tuple[str, Grant | None, Answer | None]:
        given = headers.get("authorization", "")

        def refuse(message: str) -> tuple[str, Grant | None, Answer | None]:
            challenge = (
                f'Bearer realm="Doorkeeper", error="invalid_token", error_description="{message}"'
            )
            return "", None, (401, error(401, message), {"WWW-Authenticate": challenge})

        if not given.lower().startswith("bearer "):
            return refuse("The access token is missing")
        token = given[7:].strip()
        held = self.access_tokens.get(token)
        if held is None:
            return refuse("The access token is invalid")
        grant = self.grants[held[0]]
        if grant.revoked:
            return refuse("The access token was revoked")
        if held[1] <= self.clock:
            return refuse("The access token expired")
        return token, grant, None

    # -- rate limit --------------------------------------------------------------------------

    def _take(self, token: str) -> tuple[Answer | None, dict[str, str]]:
        """(a 429 or None, the rate-limit headers) for one call with ``token``."""
        start, used = self.buckets.get(token, (self.clock, 0))
        if self.clock >= start + self.rate_window:
            start, used = self.clock, 0
        over = used >= self.rate_limit
        if not over:
            used += 1
        self.buckets[token] = (start, used)
        end = start + self.rate_window
        headers = {
            "ratelimit-limit": str(self.rate_limit),
            "ratelimit-remaining": str(max(self.rate_limit - used, 0)),
            "ratelimit-reset": str(math.ceil(end.timestamp())),
        }
        if not over:
            return None, headers
        wait = max(1, math.ceil((end - self.clock).total_seconds()))
        text = f"Rate limit exceeded. Please retry in {wait} seconds."
        throttled = {**headers, "retry-after": str(wait), "Content-Type": "text/plain"}
        return (429, text.encode(), throttled), headers

    # -- OAuth -----------------------------------------------------------------------------

    def _authorize(self, query: dict[str, str]) -> Answer:
        # A wrong client or no redirect URI cannot be sent back: the user sees an error page.
        redirect = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect:
            return (
                400,
                {"error": "invalid_request", "error_description": "Unknown client or no URI"},
                {},
            )
        scope = " ".join(query.get("scope", "").split())
        challenge = query.get("code_challenge", "")
        method = query.get("code_challenge_method") or ("plain" if challenge else "")
        answer: dict[str, str]
        if query.get("response_type") != "code":
            answer = {"error": "unsupported_response_type"}
        elif not scope or any(not SCOPE_FORM.fullmatch(each) for each in scope.split()):
            answer = {"error": "invalid_scope"}
        elif challenge and method not in ("S256", "plain"):
            answer = {"error": "invalid_request", "error_description": "code_challenge_method"}
        elif self.deny_consent:
            answer = {"error": "access_denied"}
        else:
            code = secrets.token_urlsafe(32)
            self.codes[code] = {
                "redirect_uri": redirect,
                "scope": scope,
                "company": self.book(self.consent_company).id,
                "expires": self.clock + CODE_LIFE,
                "challenge": challenge,
                "method": method,
            }
            answer = {"code": code}
        if "state" in query:
            answer["state"] = query["state"]
        joiner = "&" if "?" in redirect else "?"
        return 302, b"", {"Location": redirect + joiner + urlencode(answer)}

    @staticmethod
    def _pkce_ok(entry: dict[str, Any], verifier: str) -> bool:
        if entry["method"] == "S256":
            digest = hashlib.sha256(verifier.encode()).digest()
            made = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        else:
            made = verifier
        return secrets.compare_digest(made, entry["challenge"])

    def _token(self, form: dict[str, str]) -> Answer:
        given = (form.get("client_id", ""), form.get("client_secret", ""))
        if given != (self.client_id, self.client_secret):
            return (
                401,
                {
                    "error": "invalid_client",
                    "error_description": "Client authentication failed due to unknown "
                    "client, no client authentication included, or unsupported "
                    "authentication method.",
                },
                {},
            )
        bad_grant = {
            "error": "invalid_grant",
            "error_description": "The provided authorization grant is invalid, expired, "
            "revoked, does not match the redirection URI used in the authorization "
            "request, or was issued to another client.",
        }
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            entry = self.codes.pop(form.get("code", ""), None)  # good once, whatever comes
            if (
                entry is None
                or entry["expires"] <= self.clock
                or entry["redirect_uri"] != form.get("redirect_uri")
            ):
                return 400, bad_grant, {}
            if entry["challenge"] and not self._pkce_ok(entry, form.get("code_verifier", "")):
                return 400, {**bad_grant, "error_description": "The code_verifier is wrong"}, {}
            return 200, self._grant(entry["company"], entry["scope"]), {}
        if grant_type == "refresh_token":
            old = form.get("refresh_token", "")
            grant_id = self.refresh_tokens.get(old)
            if grant_id is None:
                return 400, bad_grant, {}
            grant = self.grants[grant_id]
            if grant.revoked or grant.refresh_expires <= self.clock:
                return 400, bad_grant, {}
            self.refreshes += 1
            # Rotation: the refresh token used and the access token given with it end now.
            del self.refresh_tokens[old]
            for token in [t for t, (g, _) in self.access_tokens.items() if g == grant_id]:
                del self.access_tokens[token]
            grant.refresh_token = secrets.token_urlsafe(32)
            grant.refresh_expires = self.clock + REFRESH_LIFE
            self.refresh_tokens[grant.refresh_token] = grant_id
            return 200, self._token_answer(grant_id), {}
        return 400, {"error": "unsupported_grant_type"}, {}

    def _revoke(self, form: dict[str, str]) -> Answer:
        given = (form.get("client_id", ""), form.get("client_secret", ""))
        if given != (self.client_id, self.client_secret):
            return 401, {"error": "invalid_client"}, {}
        token = form.get("token", "")
        if not token:
            return 400, {"error": "invalid_request"}, {}
        self.revoked.append(token)
        held = self.access_tokens.get(token)
        grant_id = held[0] if held is not None else self.refresh_tokens.get(token)
        if grant_id is not None:
            self._end_grant(grant_id)
        # RFC 7009: an unknown token is not an error.
        return 200, b"", {}

    def _public_pdf(self, query: dict[str, str]) -> Answer:
        held = self.public_files.get(query.get("encrypted_id", ""))
        gone = 404, b"Not Found", {"Content-Type": "text/plain"}
        if held is None or held[2] <= self.clock:
            return gone
        invoice = self.companies[held[0]].invoices.get(held[1])
        if invoice is None:
            return gone
        name = self._filename(invoice)
        content = (
            b"%PDF-1.4\n% fake Pennylane " + name.encode() + b"\n"
            b"1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
        )
        return (
            200,
            content,
            {
                "Content-Type": "application/pdf",
                "Content-Disposition": f'inline; filename="{quote(name)}"',
            },
        )

    # -- the API ---------------------------------------------------------------------------

    @staticmethod
    def _need(grant: Grant, resource: str, *, write: bool = False) -> None:
        wanted = [f"{resource}:all"] if write else [f"{resource}:readonly", f"{resource}:all"]
        if not set(wanted) & set(grant.scope.split()):
            raise ApiError(403, f'Access to this resource requires scope "{wanted[0]}".')

    def _api(
        self,
        book: Book,
        grant: Grant,
        method: str,
        segments: list[str],
        query: dict[str, str],
        body: bytes,
    ) -> Answer:
        match segments:
            case ["me"] if method == "GET":
                return 200, self._me(book, grant), {}
            case ["customers"] if method == "GET":
                self._need(grant, "customers")
                return self._list_customers(book, query)
            case ["customers", key] if method == "GET":
                self._need(grant, "customers")
                customer = book.customers.get(_id(key))
                if customer is None:
                    raise ApiError(404, "Not Found")
                return 200, self._customer_json(customer), {}
            case ["customer_invoices"] if method == "GET":
                self._need(grant, "customer_invoices")
                return self._list_invoices(book, query)
            case ["customer_invoices", key] if method == "GET":
                self._need(grant, "customer_invoices")
                return 200, self._invoice_json(book, self._invoice(book, key)), {}
            case ["customer_invoices", key, "payments"] if method == "GET":
                self._need(grant, "customer_invoices")
                return self._list_payments(book, self._invoice(book, key), query)
            case ["customer_invoices", key, "send_by_email"] if method == "POST":
                self._need(grant, "customer_invoices", write=True)
                return self._send(book, self._invoice(book, key), body)
            case ["changelogs", "customer_invoices"] if method == "GET":
                self._need(grant, "customer_invoices")
                return self._changelog(book, "customer_invoices", query)
            case ["changelogs", "customers"] if method == "GET":
                self._need(grant, "customers")
                return self._changelog(book, "customers", query)
        raise ApiError(404, "Not Found")

    @staticmethod
    def _invoice(book: Book, key: str) -> dict[str, Any]:
        invoice = book.invoices.get(_id(key))
        if invoice is None:
            raise ApiError(404, "Not Found")
        return invoice

    def _me(self, book: Book, grant: Grant) -> dict[str, Any]:
        return {
            "user": dict(self.user) if self.user_on_me else None,
            "company": {
                "id": book.id,
                "name": book.name,
                "reg_no": book.reg_no,
                "accounting_logic": "FR_PCG",
            },
            "scopes": grant.scope.split(),
        }

    # -- lists -----------------------------------------------------------------------------

    def _page(
        self,
        kind: str,
        rows: list[dict[str, Any]],
        keys: Callable[[dict[str, Any]], list[Any]],
        descending: bool,
        query: dict[str, str],
        maximum: int,
    ) -> tuple[list[dict[str, Any]], bool, str | None]:
        """(the rows of the page asked for, has_more, next_cursor): keyset paging on
        ``keys``; the cursor holds the last key given, nothing of filter or sort."""
        limit = _limit(query, maximum)
        ordered = sorted(rows, key=keys, reverse=descending)
        text = query.get("cursor", "")
        if text:
            after = _decode_cursor(kind, text)
            try:
                ordered = [
                    r for r in ordered if (keys(r) < after if descending else keys(r) > after)
                ]
            except TypeError:
                raise ApiError(400, "Invalid cursor") from None
        page = ordered[:limit]
        more = len(ordered) > limit
        return page, more, _encode_cursor(kind, keys(page[-1])) if more else None

    def _mixed(self, rows: list[Any]) -> list[Any]:
        return self.random.sample(rows, len(rows)) if self.shuffle_pages else rows

    def _listed(self, items: list[dict[str, Any]], more: bool, cursor: str | None) -> Answer:
        self.served.append(len(items))
        return 200, {"items": self._mixed(items), "has_more": more, "next_cursor": cursor}, {}

    def _list_customers(self, book: Book, query: dict[str, str]) -> Answer:
        _, descending = _sort(query, ("id",))
        terms = _filters(query, CUSTOMER_FILTERS)
        rows = [c for c in book.customers.values() if _matches(terms, _customer_value, c)]
        page, more, cursor = self._page(
            "customers", rows, lambda c: [c["id"]], descending, query, MAX_LIMIT
        )
        return self._listed([self._customer_json(c) for c in page], more, cursor)

    def _list_invoices(self, book: Book, query: dict[str, str]) -> Answer:
        name, descending = _sort(query, ("id", "date"))
        terms = _filters(query, INVOICE_FILTERS)
        rows = [i for i in book.invoices.values() if _matches(terms, _invoice_value, i)]

        def keys(invoice: dict[str, Any]) -> list[Any]:
            return [invoice["date"] or "", invoice["id"]] if name == "date" else [invoice["id"]]

        page, more, cursor = self._page(
            "customer_invoices", rows, keys, descending, query, MAX_LIMIT
        )
        return self._listed([self._invoice_json(book, i) for i in page], more, cursor)

    def _list_payments(self, book: Book, invoice: dict[str, Any], query: dict[str, str]) -> Answer:
        _, descending = _sort(query, ("id",))
        # The contract: a draft's or a credit note's list is empty.
        hidden = invoice["draft"] or invoice["_credit_note"]
        rows = [] if hidden else book.payments.get(invoice["id"], [])
        page, more, cursor = self._page(
            f"customer_invoices/{invoice['id']}/payments",
            rows,
            lambda p: [p["id"]],
            descending,
            query,
            MAX_LIMIT,
        )
        return self._listed([copy.deepcopy(p) for p in page], more, cursor)

    def _changelog(self, book: Book, resource: str, query: dict[str, str]) -> Answer:
        start_text = query.get("start_date", "")
        if start_text and query.get("cursor"):
            raise ApiError(400, "start_date and cursor cannot be used together")
        horizon = self.clock - RETENTION
        rows = [e for e in book.changes[resource] if e["_at"] >= horizon]
        if start_text:
            try:
                start = parse_time(start_text)
            except ValueError:
                raise ApiError(400, "start_date must be an RFC 3339 date-time") from None
            if start < horizon:
                raise ApiError(422, "start_date must be within the last 4 weeks")
            rows = [e for e in rows if e["_at"] >= start]
        page, more, cursor = self._page(
            f"changelogs/{resource}",
            rows,
            lambda e: [e["processed_at"], e["_seq"]],
            False,
            query,
            MAX_CHANGELOG_LIMIT,
        )
        items = [{k: v for k, v in e.items() if not k.startswith("_")} for e in page]
        return 200, {"items": items, "has_more": more, "next_cursor": cursor}, {}

    # -- sending ---------------------------------------------------------------------------

    def _send(self, book: Book, invoice: dict[str, Any], body: bytes) -> Answer:
        data: Any = None
        if body.strip():
            try:
                data = json.loads(body)
            except ValueError:
                raise ApiError(400, "The body is not valid JSON") from None
        if data is not None and not isinstance(data, dict):
            raise ApiError(400, "The body must be a JSON object")
        recipients = data.get("recipients") if data else None
        if recipients is not None and (
            not isinstance(recipients, list)
            or not all(isinstance(r, str) and "@" in r for r in recipients)
        ):
            raise ApiError(400, "recipients must be a list of e-mail addresses")
        if invoice["draft"]:
            raise ApiError(422, "A draft invoice cannot be sent: finalize it first")
        if self.pdf_generating or invoice["id"] in self.pdf_pending:
            raise ApiError(409, "The invoice PDF is being generated, please retry later")
        if not recipients:
            customer = book.customers.get(invoice["customer"]["id"]) or {}
            recipients = list(customer.get("emails") or [])
            if not recipients:
                raise ApiError(422, "The customer has no e-mail address to send the invoice to")
        book.sent.append(Sent(invoice["id"], tuple(recipients)))
        return 204, b"", {}


# -- query parameters --------------------------------------------------------------------------


def _id(text: str) -> int:
    if not text.isdigit():
        raise ApiError(404, "Not Found")
    return int(text)


def _limit(query: dict[str, str], maximum: int) -> int:
    text = query.get("limit", "")
    if not text:
        return LIMIT
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise ApiError(400, f"limit must be an integer between 1 and {maximum}")
    return int(text)


def _sort(query: dict[str, str], allowed: tuple[str, ...]) -> tuple[str, bool]:
    text = query.get("sort") or "-id"
    name = text.removeprefix("-")
    if name not in allowed:
        raise ApiError(400, f"sort must be one of {', '.join(allowed)} (or with a leading -)")
    return name, text.startswith("-")


def _encode_cursor(kind: str, key: list[Any]) -> str:
    raw = json.dumps({"k": kind, "a": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(kind: str, text: str) -> list[Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        raise ApiError(400, "Invalid cursor") from None
    if not isinstance(data, dict) or data.get("k") != kind or not isinstance(data.get("a"), list):
        raise ApiError(400, "Invalid cursor")
    after: list[Any] = data["a"]
    return after


Term = tuple[str, str, Any]


def _filters(query: dict[str, str], known: dict[str, tuple[str, tuple[str, ...]]]) -> list[Term]:
    text = query.get("filter", "")
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        raise ApiError(400, "filter must be a JSON array") from None
    if not isinstance(data, list):
        raise ApiError(400, "filter must be a JSON array")
    terms: list[Term] = []
    for each in data:
        if not isinstance(each, dict) or not {"field", "operator", "value"} <= set(each):
            raise ApiError(400, "each filter needs field, operator and value")
        name, operator, value = each["field"], each["operator"], each["value"]
        if name not in known:
            raise ApiError(400, f"filter on {name!r} is not available")
        kind, operators = known[name]
        if operator not in operators:
            raise ApiError(400, f"operator {operator!r} is not available on {name}")
        if operator in ("in", "not_in"):
            if not isinstance(value, list):
                raise ApiError(400, f"{operator} takes an array")
            value = [_typed(kind, name, v) for v in value]
        else:
            value = _typed(kind, name, value)
        terms.append((name, operator, value))
    return terms


def _typed(kind: str, name: str, value: Any) -> Any:
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    elif kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
    elif kind == "date":
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return value
    elif isinstance(value, str):
        return value
    raise ApiError(400, f"{value!r} is not a valid value for {name}")


def _customer_value(customer: dict[str, Any], name: str) -> Any:
    return customer.get(name)


def _invoice_value(invoice: dict[str, Any], name: str) -> Any:
    if name == "customer_id":
        return invoice["customer"]["id"] if invoice["customer"] else None
    if name == "credit_note":
        return invoice["_credit_note"]
    return invoice.get(name)


def _matches(
    terms: list[Term], value_of: Callable[[dict[str, Any], str], Any], row: dict[str, Any]
) -> bool:
    for name, operator, wanted in terms:
        actual = value_of(row, name)
        if operator == "eq":
            ok = actual == wanted
        elif operator == "not_eq":
            ok = actual != wanted
        elif operator == "in":
            ok = actual in wanted
        elif operator == "not_in":
            ok = actual not in wanted
        elif operator == "start_with":
            ok = isinstance(actual, str) and actual.lower().startswith(str(wanted).lower())
        elif actual is None:
            ok = False
        else:
            ok = {
                "lt": actual < wanted,
                "lteq": actual <= wanted,
                "gt": actual > wanted,
                "gteq": actual >= wanted,
            }[operator]
        if not ok:
            return False
    return True

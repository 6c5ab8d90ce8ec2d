"""A fake Moneybird on loopback: its OAuth 2 and the slice of API v2 we use.

It behaves like the platform where our connector could get it wrong, and answers in the
shapes of ../shared/specs/moneybird/openapi.yml (``sales_invoice_response``,
``contact_response``, ``note_response``, ``webhook_response``, ``workflow_response``, ...;
tests/test_fake_moneybird.py holds the fake to those schemas) and
../shared/reference/platform-apis.md section 4:

- ids are numeric strings (``"458026356994557400"``), amounts decimal strings as Moneybird
  writes them (``"121.0"``, ``"60.5"``, ``"-363.0"``: never a JSON number, and the encoder
  refuses a float), times ISO 8601 with milliseconds and ``Z``, dates ``YYYY-MM-DD``;
  ``version`` is the epoch second of the record's last change; errors are
  ``{"error": "...", "symbolic": {...}}`` (422s ``{"error": {field: [...]}, "details": ...}``);
- OAuth 2 (Doorkeeper): ``/oauth/authorize`` redirects with ``code`` and ``state`` (or
  ``error=access_denied`` while ``consent`` is off, ``invalid_scope`` for an unknown scope;
  no scope means ``sales_invoices``); ``/oauth/token`` takes the client in the form or as
  HTTP Basic (else 401 ``invalid_client``), a code once within 10 fake minutes with its
  redirect URI, answers ``access_token``, ``token_type`` "bearer", ``refresh_token``,
  ``scope``, ``created_at`` and, while ``tokens_expire`` is on, ``expires_in`` 3600 (off:
  no ``expires_in`` and access tokens that never end, as integrators report); the refresh
  token is not rotated (the same one comes back and keeps working) unless
  ``rotate_refresh_tokens`` is on, then the one used stops at once; ``/oauth/revoke``
  ends the grant the token belongs to;
- the API under ``/api/v2``: a bearer token (401 ``{"error": ...}`` when missing, unknown,
  expired or revoked) with the scope the resource needs (contacts: any of sales_invoices,
  documents, estimates, bank, settings; sales invoices: sales_invoices; webhooks:
  settings; else 401 ``No access to ...``, as the spec's examples answer);
  ``administrations.json`` lists two administrations; everything else is
  ``/api/v2/{administration_id}/...(.json)``, records kept apart per administration, an
  unknown administration 404;
- rate limits: ``rate_limit`` (150) calls in a window of 5 fake minutes that opens at an
  administration's first call (``administrations.json`` has a window of its own); every
  counted answer carries ``RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (UTC epoch
  seconds); over it: 429, body ``Retry later``, and ``Retry-After`` as the spec describes
  it, an epoch second (``retry_after_seconds`` makes it a delay instead);
- contacts: the list (``page``/``per_page`` up to 100, default 50, a ``Link`` header with
  ``rel="next"``/``rel="prev"``; ``query``; archived ones only with
  ``include_archived=true``, also for one contact and the synchronization list), one
  contact, ``synchronization`` (GET: ``[{id, version}]``, ``filter`` updated_after,
  created_after, first_name, last_name; POST ``{"ids": [...]}``: the full contacts);
  contacts have no language (the invoice has one);
- sales invoices: the list with ``filter`` (comma-separated ``key:value`` terms: ``state``
  pipe-separated, ``period`` preset or ``YYYYMM[DD]..YYYYMM[DD]``, ``reference``,
  ``contact_id``, ``workflow_id``, ``created_after``, ``updated_after`` exclusive; unknown
  keys ignored; an unknown state or an open-ended period 400). Without ``filter`` the
  default is ``period:this_year``; a filter replaces the defaults entirely, so one without
  ``period`` reaches every year (the spec's reading). One invoice, ``find_by_invoice_id``,
  ``synchronization`` (GET ``[{id, version}]``, same filter, no default period; POST by
  ids). The state follows the fake clock: open until the due date has passed in
  Amsterdam, then late; reminded once a reminder went out; paid when ``total_unpaid`` is
  0; a credit invoice (negative totals, ``original_sales_invoice_id``) stays open until
  settled. Each change, a state change included, moves ``updated_at`` and ``version``;
- synchronization POST: more than 100 ids gives the first 100, as the spec says
  ("Returns a maximum of 100 ... even if more ids are provided"); with
  ``refuse_too_many_ids`` on it is a 400 instead; ``{"ids"}`` missing: 400;
- a deleted invoice is gone: 404 by id, and absent from the synchronization list (how a
  client learns of deletions);
- notes: ``POST sales_invoices/{id}/notes.json`` and ``contacts/{id}/notes.json`` with
  ``{"note": {"note", "todo", "assignee_id"}}`` give 201 and the note, which joins the
  record's ``notes`` and moves its version; no idempotency: posting twice makes two;
- ``PATCH sales_invoices/{id}/send_invoice.json`` (``sales_invoice_sending``: delivery
  method, e-mail address, ...; a draft gets its number, dates and state open;
  ``sending_scheduled`` makes it scheduled) answers the invoice and keeps a
  :class:`Sending` in ``sent``; to no address: 422;
  ``POST sales_invoices/send_reminders.json`` (``sales_invoice_reminders``: contact_id,
  workflow_id, document_style_id, identity_id, sales_invoice_ids, optional
  reminder_text, delivery_method, email_address) keeps a :class:`Reminder` in
  ``reminders_sent`` per entry, makes the invoices reminded and answers 200 with an
  empty body;
- ``GET sales_invoices/{id}/download_pdf.json``: 302 to ``/downloads/<token>`` on this
  fake, good for 30 fake seconds, which serves ``%PDF-1.4`` bytes without a bearer token
  (Moneybird's download host takes none);
- webhooks: list (no ``secret``), create (``url`` required, ``enabled_events`` from
  :data:`WEBHOOK_EVENTS` or :data:`WEBHOOK_GROUPS`; 201 with ``token`` and, this once,
  ``secret``; a URL in ``unreachable_webhook_urls`` is refused, as Moneybird refuses one
  that does not answer 200), delete (204); :meth:`FakeMoneybird.signed_webhook` makes a
  push as Moneybird sends it: the JSON payload and its ``Moneybird-Signature``
  (``t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>``) and ``Idempotency-Key`` headers;
- workflows: ``workflows.json`` and ``workflows/{id}.json``, an invoice and an estimate
  workflow "Standaard" per administration; whether Moneybird chases clients itself is in
  the invoice workflow's ``steps[].reminder_auto_send`` (off, as a new administration
  has it; :meth:`FakeMoneybird.enable_automatic_reminders` turns it on); every invoice
  carries its ``workflow_id``;
- faults on demand (``fail_next``), before any check; ``Fault.carry_out`` does the request
  and then answers the fault, with ``drop`` no answer at all (a lost answer);
  ``shuffle_pages`` mixes the rows within each page and synchronization answer;
  ``served`` counts the full records of each list answer; ``calls``
  counts every call by "METHOD /path", ``token_calls`` the token endpoint's, ``refreshes``
  the refresh grants.

Records are held per administration as Moneybird JSON (amounts as strings); tests add and
change them with the helpers, each change moving the fake clock on a second. The clock
moves only with ``tick()``.

Where the spec is silent these are the fake's assumptions: the unknown administration's
404, the URL check's and the unknown webhook event's 400s, the empty body of
send_reminders (the spec gives no example), the default page size of 50, and a credit
invoice settling its original only when asked (``settle=True``, one payment on each, as
``register_payment_creditinvoice`` books it).
"""

from __future__ import annotations

import base64
import collections
import copy
import hashlib
import hmac
import json
import random
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from tests.fakes.http_server import DROP, base_url, serve, stop

API = "/api/v2"
AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
REVOKE_PATH = "/oauth/revoke"
DOWNLOAD_PATH = "/downloads/"
ACCESS_LIFE = timedelta(seconds=3600)
CODE_LIFE = timedelta(minutes=10)
DOWNLOAD_LIFE = timedelta(seconds=30)
RATE_LIMIT = 150
RATE_WINDOW = timedelta(minutes=5)
PER_PAGE = 50
MAX_PER_PAGE = 100
MAX_SYNC_IDS = 100
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
#: The scopes Moneybird knows; a grant without any gets sales_invoices.
SCOPES = ("sales_invoices", "documents", "estimates", "bank", "time_entries", "settings")
#: The scopes each resource takes (any one of them).
NEEDS = {
    "contacts": ("sales_invoices", "documents", "estimates", "bank", "settings"),
    "sales_invoices": ("sales_invoices",),
    "webhooks": ("settings",),
    "workflows": ("settings", "sales_invoices", "documents", "estimates", "bank"),
}
STATES = (
    "draft",
    "scheduled",
    "open",
    "pending_payment",
    "reminded",
    "late",
    "paid",
    "uncollectible",
)
VAT = Decimal("0.21")
#: What one unit of a foreign currency is in euro, for the ``*_base`` amounts.
EURO_RATES = {"EUR": Decimal(1), "USD": Decimal("0.92"), "GBP": Decimal("1.17")}
_EVENT_NAMES = """
contact_is_trusted contact_is_not_trusted contact_archived contact_activated
contact_changed contact_created contact_created_from_checkout_order contact_destroyed
contact_mandate_request_failed contact_mandate_request_initiated
contact_mandate_request_succeeded contact_mandate_request_url_obtained
contact_mandate_destroyed contact_merged contact_online_authorization_link_requested
contact_person_created contact_person_destroyed contact_person_updated
contact_tax_number_validated credit_invoice_created_from_original note_created
note_destroyed payment_destroyed payment_linked_to_financial_mutation payment_registered
payment_send_email sales_invoice_created sales_invoice_created_based_on_estimate
sales_invoice_created_based_on_recurring sales_invoice_created_based_on_subscription
sales_invoice_created_from_checkout_order sales_invoice_created_from_payment_request
sales_invoice_created_from_original sales_invoice_destroyed
sales_invoice_marked_as_dubious sales_invoice_marked_as_uncollectible
sales_invoice_merged sales_invoice_merged_with_recurring_sales_invoice
sales_invoice_paused sales_invoice_revert_dubious sales_invoice_revert_uncollectible
sales_invoice_send_email sales_invoice_send_manually sales_invoice_send_post
sales_invoice_send_post_confirmation sales_invoice_send_post_cancelled
sales_invoice_send_reminder_email sales_invoice_send_reminder_manually
sales_invoice_send_reminder_post sales_invoice_send_reminder_post_confirmation
sales_invoice_send_si sales_invoice_send_si_delivered sales_invoice_send_si_error
sales_invoice_state_changed_to_draft sales_invoice_state_changed_to_late
sales_invoice_state_changed_to_open sales_invoice_state_changed_to_paid
sales_invoice_state_changed_to_pending_payment sales_invoice_state_changed_to_reminded
sales_invoice_state_changed_to_scheduled sales_invoice_state_changed_to_uncollectible
sales_invoice_unpaused sales_invoice_updated workflow_created workflow_deactivated
workflow_destroyed workflow_updated
"""
_GROUP_NAMES = """
contact contact_mandate_request contact_person note payment sales_invoice
sales_invoice_marked_as sales_invoice_revert sales_invoice_send
sales_invoice_state_changed workflow
"""
#: The webhook events of the families Kindly may use, as webhook_events.md names them (other
#: families exist in Moneybird; the fake refuses them to catch a typo).
WEBHOOK_EVENTS = frozenset(_EVENT_NAMES.split())
#: Event groups (an event matches when its name starts with the group's).
WEBHOOK_GROUPS = frozenset(_GROUP_NAMES.split())
#: The contact fields ``query`` searches.
SEARCHED = """
company_name attention firstname lastname address1 address2 zipcode city country email
phone customer_id tax_number chamber_of_commerce bank_account
"""
FIRST_ID = 458026356994557400
#: Between two ids: Moneybird's are far apart and not consecutive.
ID_STEP = 1_048_583
REMINDER_TEXTS = (
    None,
    "Geachte {recipient.name},\n\nUit onze administratie blijkt dat u de onderstaande "
    "facturen nog niet voldaan heeft.\n\n{reminders_table}\n\nMet vriendelijke groet,\n\n"
    "{company.company_name}",
    "Geachte {recipient.name},\n\nOndanks een eerdere herinnering blijkt dat u de "
    "onderstaande facturen nog niet voldaan heeft.\n\n{reminders_table}\n\n"
    "Met vriendelijke groet,\n\n{company.company_name}",
    "Geachte {recipient.name},\n\nDit is de derde herinnering voor de onderstaande "
    "facturen.\n\n{reminders_table}\n\nMet vriendelijke groet,\n\n{company.company_name}",
)
#: (step_order, due_interval) of a new administration's invoice workflow.
WORKFLOW_STEPS = ((0, 14), (1, 10), (2, 5), (3, 5))
PAYMENT_CONDITIONS = (
    "We verzoeken u vriendelijk het bovenstaande bedrag van {document.total_price} voor "
    "{document.due_date} te voldoen op onze bankrekening onder vermelding van de "
    "omschrijving {document.payment_reference}. Voor vragen kunt u contact opnemen per e-mail."
)

Answer = tuple[int, Any, dict[str, str]]


class Sending(NamedTuple):
    """An invoice Moneybird sent (``send_invoice``)."""

    invoice_id: str
    delivery_method: str
    email_address: str | None


class Reminder(NamedTuple):
    """A reminder Moneybird sent (one entry of ``send_reminders``)."""

    contact_id: str
    sales_invoice_ids: tuple[str, ...]
    delivery_method: str
    email_address: str | None
    reminder_text: str


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | bytes | str | None = None
    #: Done in the server just before this answer goes out (another process's work).
    before: Callable[[], None] | None = None
    #: Carry the request out all the same, then answer with this fault (a lost answer).
    carry_out: bool = False
    #: With ``carry_out``: no answer at all, the connection dropped (a lost answer).
    drop: bool = False


@dataclass
class Book:
    """One Moneybird administration: its records, settings and what it sent."""

    id: str
    name: str
    language: str = "nl"
    currency: str = "EUR"
    country: str = "NL"
    time_zone: str = "Europe/Amsterdam"
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Every note, on invoices and contacts, by id.
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Webhooks as created, ``secret`` included (the API shows it only at creation).
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    workflows: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: list[Sending] = field(default_factory=list)
    reminders_sent: list[Reminder] = field(default_factory=list)
    #: States set by hand (scheduled, uncollectible, ...), kept until the invoice is paid.
    pinned: dict[str, str] = field(default_factory=dict)
    #: The last invoice number given, per year ("2026-0007" is 7 in 2026).
    last_number: dict[int, int] = field(default_factory=dict)
    last_draft: int = 0
    last_customer: int = 0
    document_style_id: str = ""
    identity_id: str = ""
    tax_rate_id: str = ""
    revenue_ledger_id: str = ""
    bank_ledger_id: str = ""
    # Rate limit: the window's start and the calls made in it.
    window_start: datetime | None = None
    window_used: int = 0

    @property
    def invoice_workflow_id(self) -> str:
        """The default invoice workflow."""
        return str(
            next(
                w["id"]
                for w in self.workflows.values()
                if w["type"] == "InvoiceWorkflow" and w["default"]
            )
        )


def iso(moment: datetime) -> str:
    """Moneybird's time: UTC, milliseconds, ``Z``."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def money(amount: str | int | Decimal) -> Decimal:
    if isinstance(amount, float):
        raise TypeError("amounts are exact: give a str, int or Decimal, not a float")
    return amount if isinstance(amount, Decimal) else Decimal(str(amount))


def amount_text(amount: str | int | Decimal) -> str:
    """An amount as Moneybird writes it: ``"121.0"``, ``"60.5"``, ``"-12.34"``."""
    value = money(amount)
    if value == 0:
        return "0.0"
    text = format(value.normalize(), "f")
    return text if "." in text else text + ".0"


def parse_time(text: str) -> datetime:
    """ISO 8601 or ``2026-08-21 13:50:12 UTC`` (the spec's examples); UTC unless it says."""
    cleaned = text.strip().removesuffix(" UTC").replace("Z", "+00:00")
    moment = datetime.fromisoformat(cleaned)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _refuse_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError(f"a float in a Moneybird answer: {value!r}")
    if isinstance(value, dict):
        for each in value.values():
            _refuse_floats(each)
    elif isinstance(value, list | tuple):
        for each in value:
            _refuse_floats(each)


def encode(payload: Any) -> bytes:
    """JSON as Moneybird writes it; amounts are strings, so a float is the fake's own bug."""
    _refuse_floats(payload)
    return json.dumps(payload).encode()


def error(message: str, **symbolic: str) -> dict[str, Any]:
    """Moneybird's ``symbolic_error``."""
    answer: dict[str, Any] = {"error": message}
    if symbolic:
        answer["symbolic"] = symbolic
    return answer


def invalid(field_name: str, message: str, code: str) -> dict[str, Any]:
    """Moneybird's 422 body (``non_symbolic_error`` with its ``details``)."""
    return {"error": {field_name: [message]}, "details": {field_name: [{"error": code}]}}


def not_found() -> dict[str, Any]:
    return error("record not found", id="not_found")


def rf_reference(body: str) -> str:
    """An ISO 11649 creditor reference (``RF`` + check digits + ``body``)."""
    digits = "".join(str(int(c, 36)) for c in body + "RF00")
    return f"RF{98 - int(digits) % 97:02d}{body}"


def _truthy(text: str | None) -> bool:
    return (text or "").strip().lower() in ("true", "1", "yes")


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        return None


class FakeMoneybird:
    def __init__(
        self,
        *,
        client_id: str = "kindly-moneybird-client",
        client_secret: str = "kindly-moneybird-secret",
        tokens_expire: bool = True,
        rotate_refresh_tokens: bool = False,
    ) -> None:
        self.lock = threading.RLock()
        self.client_id = client_id
        self.client_secret = client_secret
        #: Access tokens end after an hour and the token answer says ``expires_in``.
        self.tokens_expire = tokens_expire
        #: A refresh gives a new refresh token and ends the one used.
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.clock = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
        self.random = random.Random(20261122)
        self._last_id = FIRST_ID - ID_STEP
        self.user_id = self._new_id()
        self.administrations: dict[str, Book] = {}
        for name in ("Noordlicht Studio B.V.", "Noordlicht Holding B.V."):
            book = Book(self._new_id(), name)
            self.administrations[book.id] = book
            self._furnish(book)
        #: The default administration's id.
        self.administration = next(iter(self.administrations))
        self.calls: collections.Counter[str] = collections.Counter()
        #: Full records in each list or synchronization-by-ids answer, in order.
        self.served: list[int] = []
        self.faults: collections.defaultdict[str, list[Fault]] = collections.defaultdict(list)
        #: Rows of each page (and synchronization answer) in a shuffled order.
        self.shuffle_pages = False
        self.rate_limit = RATE_LIMIT
        self.rate_window = RATE_WINDOW
        #: ``Retry-After`` as seconds to wait (RFC 9110) instead of the spec's epoch second.
        self.retry_after_seconds = False
        #: A synchronization POST with more than 100 ids is a 400 (the spec: the first 100).
        self.refuse_too_many_ids = False
        #: The user consents at the authorize step (off: ``error=access_denied``).
        self.consent = True
        #: Webhook URLs that do not answer 200: creating a webhook for one is refused.
        self.unreachable_webhook_urls: set[str] = set()
        # OAuth state
        self.codes: dict[str, dict[str, Any]] = {}
        #: Grants by id: their ``scope``, ``refresh_token`` and whether ``revoked``.
        self.grants: dict[str, dict[str, Any]] = {}
        #: Access tokens: their grant and when they end (None: never).
        self.access_tokens: dict[str, tuple[str, datetime | None]] = {}
        #: Every POST to the token endpoint, whatever came of it.
        self.token_calls = 0
        self.refreshes = 0
        #: Tokens posted to the revocation endpoint.
        self.revoked: list[str] = []
        #: PDF download links: token -> (administration, invoice id, until).
        self.downloads: dict[str, tuple[str, str, datetime]] = {}
        #: The rate-limit window of ``administrations.json`` (start, calls).
        self._top_window: tuple[datetime | None, int] = (None, 0)
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
        each, in order (before any check of tokens, administrations or rate limits)."""
        with self.lock:
            self.faults[path_prefix].extend(faults)

    def api_calls(self) -> int:
        return sum(n for key, n in self.calls.items() if key.split(" ", 1)[1].startswith(API))

    # -- the default administration's records ----------------------------------------------

    def book(self, administration_id: str | None = None) -> Book:
        return self.administrations[administration_id or self.administration]

    @property
    def contacts(self) -> dict[str, dict[str, Any]]:
        return self.book().contacts

    @property
    def invoices(self) -> dict[str, dict[str, Any]]:
        return self.book().invoices

    @property
    def notes(self) -> dict[str, dict[str, Any]]:
        return self.book().notes

    @property
    def webhooks(self) -> dict[str, dict[str, Any]]:
        return self.book().webhooks

    @property
    def workflows(self) -> dict[str, dict[str, Any]]:
        return self.book().workflows

    @property
    def sent(self) -> list[Sending]:
        return self.book().sent

    @property
    def reminders_sent(self) -> list[Reminder]:
        return self.book().reminders_sent

    def rate_remaining(self, administration: str | None = None) -> int:
        """Calls left in the administration's current window."""
        with self.lock:
            book = self.book(administration)
            self._roll(book)
            return self.rate_limit - book.window_used

    def spend_rate_limit(self, calls: int, *, administration: str | None = None) -> None:
        """Count ``calls`` against the administration's window, as another app of the same
        user would."""
        with self.lock:
            book = self.book(administration)
            self._roll(book)
            if book.window_start is None:
                book.window_start = self.clock
            book.window_used = min(self.rate_limit, book.window_used + calls)

    # -- tokens ----------------------------------------------------------------------------

    def issue_tokens(self, scope: str = "sales_invoices settings") -> dict[str, Any]:
        """A fresh grant, as the token endpoint gives it (for a connector the tests connect
        without the browser)."""
        with self.lock:
            grant_id = uuid.uuid4().hex
            self.grants[grant_id] = {
                "scope": scope,
                "refresh_token": secrets.token_urlsafe(32),
                "revoked": False,
            }
            return self._token_answer(grant_id)

    def _token_answer(self, grant_id: str) -> dict[str, Any]:
        grant = self.grants[grant_id]
        access = secrets.token_urlsafe(32)
        expires = self.clock + ACCESS_LIFE if self.tokens_expire else None
        self.access_tokens[access] = (grant_id, expires)
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "refresh_token": grant["refresh_token"],
            "scope": grant["scope"],
            "created_at": int(self.clock.timestamp()),
        }
        if expires is not None:
            answer["expires_in"] = int(ACCESS_LIFE.total_seconds())
        return answer

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token, (grant_id, _) in list(self.access_tokens.items()):
                self.access_tokens[token] = (grant_id, self.clock)

    # -- the clock -----------------------------------------------------------------------

    def tick(self, minutes: float = 0, seconds: float = 1, *, days: float = 0) -> datetime:
        """Move the clock on (``seconds`` only when neither ``days`` nor ``minutes`` is
        given); invoices whose due date passed turn late."""
        with self.lock:
            if days or minutes:
                self.clock += timedelta(days=days, minutes=minutes)
            else:
                self.clock += timedelta(seconds=seconds)
            for book in self.administrations.values():
                for invoice in book.invoices.values():
                    self._settle(book, invoice)
            return self.clock

    @property
    def today(self) -> date:
        """The date in the administrations' time zone."""
        return self.clock.astimezone(AMSTERDAM).date()

    def _new_id(self) -> str:
        self._last_id += ID_STEP
        return str(self._last_id)

    def _stamp(self, record: dict[str, Any]) -> None:
        """A change: now (a second on) as ``updated_at`` and its epoch second as version."""
        self.tick()
        record["updated_at"] = iso(self.clock)
        record["version"] = int(self.clock.timestamp())

    def _event(self, book: Book, record: dict[str, Any], action: str, **data: Any) -> None:
        now = iso(self.clock)
        record["events"].append(
            {
                "administration_id": book.id,
                "user_id": self.user_id,
                "action": action,
                "link_entity_id": None,
                "link_entity_type": None,
                "data": data,
                "created_at": now,
                "updated_at": now,
            }
        )

    def _find(self, store: str, key: str | dict[str, Any]) -> tuple[Book, dict[str, Any]]:
        wanted = key["id"] if isinstance(key, dict) else str(key)
        for book in self.administrations.values():
            rows: dict[str, dict[str, Any]] = getattr(book, store)
            if wanted in rows:
                return book, rows[wanted]
        raise KeyError(f"no {store} record {wanted}")

    # -- administrations and workflows -----------------------------------------------------

    def _furnish(self, book: Book) -> None:
        """What a new administration has: a document style, an identity, a tax rate, ledger
        accounts and the two default workflows."""
        book.document_style_id = self._new_id()
        book.identity_id = self._new_id()
        book.tax_rate_id = self._new_id()
        book.revenue_ledger_id = self._new_id()
        book.bank_ledger_id = self._new_id()
        self.add_workflow("Standaard", administration=book.id, default=True)
        self.add_workflow("Standaard", administration=book.id, kind="EstimateWorkflow")

    def add_workflow(
        self,
        name: str,
        *,
        administration: str | None = None,
        kind: str = "InvoiceWorkflow",
        default: bool = False,
        automatic_reminders: bool = False,
    ) -> dict[str, Any]:
        """A workflow: an invoice workflow has the four steps of a new administration (the
        first the payment term, then three reminders, sent by Moneybird itself only with
        ``automatic_reminders``); an estimate workflow one step."""
        with self.lock:
            book = self.book(administration)
            now = iso(self.clock)
            steps = WORKFLOW_STEPS if kind == "InvoiceWorkflow" else WORKFLOW_STEPS[:1]
            workflow: dict[str, Any] = {
                "id": self._new_id(),
                "administration_id": book.id,
                "type": kind,
                "name": name,
                "default": default,
                "currency": book.currency,
                "language": book.language,
                "active": True,
                "prices_are_incl_tax": False,
                "payment_methods": [],
                "collection_method": None,
                "number_of_collections": 0,
                "show_qr_code": True,
                "created_at": now,
                "updated_at": now,
                "steps": [
                    {
                        "id": self._new_id(),
                        "administration_id": book.id,
                        "step_order": order,
                        "due_interval": interval,
                        "reminder_delay": 0,
                        "reminder_text": REMINDER_TEXTS[order]
                        if kind == "InvoiceWorkflow"
                        else None,
                        "reminder_auto_send": automatic_reminders and order > 0,
                        "action": None,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for order, interval in steps
                ],
            }
            book.workflows[workflow["id"]] = workflow
            return workflow

    def enable_automatic_reminders(
        self, *, administration: str | None = None, workflow_id: str | None = None
    ) -> dict[str, Any]:
        """Moneybird sends the reminders of this invoice workflow (the administration's
        default unless named) itself: ``reminder_auto_send`` on every reminder step."""
        with self.lock:
            book = self.book(administration)
            workflow = book.workflows[workflow_id or book.invoice_workflow_id]
            self.tick()
            now = iso(self.clock)
            for step in workflow["steps"]:
                if step["step_order"] > 0:
                    step["reminder_auto_send"] = True
                    step["updated_at"] = now
            workflow["updated_at"] = now
            return workflow

    # -- contacts --------------------------------------------------------------------------

    def add_contact(
        self, name: str, *, administration: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A company contact called ``name`` (a person: ``company_name=None`` with
        ``firstname`` and ``lastname``); e-mail ``<first word>@client.example``."""
        if "language" in fields:
            raise TypeError("a Moneybird contact has no language (the invoice has one)")
        with self.lock:
            book = self.book(administration)
            book.last_customer += 1
            self.tick()
            now = iso(self.clock)
            words = (name or fields.get("firstname") or "client").split()
            word = re.sub(r"[^a-z0-9]", "", words[0].lower()) or "client"
            email = f"{word}@client.example"
            contact: dict[str, Any] = {
                "id": self._new_id(),
                "administration_id": book.id,
                "company_name": name,
                "firstname": None,
                "lastname": None,
                "address1": "Keizersgracht 1",
                "address2": "",
                "zipcode": "1015 AA",
                "city": "Amsterdam",
                "country": "NL",
                "phone": "",
                "delivery_method": "Email",
                "customer_id": str(book.last_customer),
                "tax_number": "",
                "chamber_of_commerce": "",
                "bank_account": "",
                "is_trusted": False,
                "max_transfer_amount": None,
                "attention": "",
                "email": email,
                "email_ubl": True,
                "send_invoices_to_attention": "",
                "send_invoices_to_email": email,
                "send_estimates_to_attention": "",
                "send_estimates_to_email": email,
                "direct_debit": False,
                "sepa_active": False,
                "sepa_iban": "",
                "sepa_iban_account_name": "",
                "sepa_bic": "",
                "sepa_mandate_id": "",
                "sepa_mandate_date": None,
                "sepa_sequence_type": "RCUR",
                "credit_card_number": "",
                "credit_card_reference": "",
                "credit_card_type": None,
                "tax_number_validated_at": None,
                "tax_number_valid": None,
                "invoice_workflow_id": None,
                "estimate_workflow_id": None,
                "si_identifier": "",
                "si_identifier_type": None,
                "moneybird_payments_mandate": False,
                "created_at": now,
                "updated_at": now,
                "version": int(self.clock.timestamp()),
                "sales_invoices_url": f"https://moneybird.com/{book.id}/sales_invoices/"
                f"{self.random.getrandbits(256):064x}/all",
                "notes": [],
                "custom_fields": [],
                "contact_people": [],
                "archived": False,
                "events": [],
            }
            contact.update(self._plain(fields))
            self._event(book, contact, "contact_created")
            book.contacts[contact["id"]] = contact
            return contact

    def update_contact(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        """Change a contact's fields (``archived=True`` archives it): a new version."""
        if "language" in fields:
            raise TypeError("a Moneybird contact has no language (the invoice has one)")
        with self.lock:
            book, contact = self._find("contacts", contact_id)
            was_archived = contact["archived"]
            contact.update(self._plain(fields))
            self._stamp(contact)
            if contact["archived"] != was_archived:
                action = "contact_archived" if contact["archived"] else "contact_activated"
            else:
                action = "contact_changed"
            self._event(book, contact, action)
            return contact

    @staticmethod
    def _plain(fields: dict[str, Any]) -> dict[str, Any]:
        """Fields as Moneybird JSON: dates as ISO text, amounts as Moneybird's strings."""
        out: dict[str, Any] = {}
        for name, value in fields.items():
            if isinstance(value, datetime):
                value = iso(value)
            elif isinstance(value, date):
                value = value.isoformat()
            elif isinstance(value, Decimal | int) and not isinstance(value, bool):
                if name.startswith("total_") or name in ("discount",):
                    value = amount_text(value)
            elif isinstance(value, float):
                raise TypeError(f"{name}: amounts are exact, not floats")
            out[name] = value
        return out

    # -- sales invoices --------------------------------------------------------------------

    def add_invoice(
        self,
        contact: dict[str, Any],
        number: int | str,
        amount: str | int | Decimal,
        *,
        issued: date,
        due: date,
        currency: str = "EUR",
        language: str = "nl",
        state: str | None = None,
        administration: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A sent sales invoice of ``amount`` incl. 21% VAT; ``number`` an int becomes
        ``"<year>-0007"``, a str is the number as it is. Its state follows the clock (open,
        late after ``due``) unless ``state`` pins one (scheduled, pending_payment,
        reminded, uncollectible, ...) until it is paid."""
        with self.lock:
            book = self.book(administration or contact["administration_id"])
            if isinstance(number, int):
                book.last_number[issued.year] = max(book.last_number.get(issued.year, 0), number)
                number = f"{issued.year}-{number:04d}"
            invoice = self._new_invoice(
                book, contact, money(amount), number, issued, due, currency, language
            )
            if state == "reminded":
                invoice["reminder_count"] = 1
            elif state is not None:
                book.pinned[invoice["id"]] = state
            self._apply(invoice, fields)
            self._settle(book, invoice)
            return invoice

    def add_draft(
        self,
        contact: dict[str, Any],
        amount: str | int | Decimal,
        *,
        issued: date | None = None,
        due: date | None = None,
        currency: str = "EUR",
        language: str = "nl",
        administration: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A draft: no number (``invoice_id`` null, a ``draft_id``), not sent, state draft;
        its invoice date is set when it is sent unless ``issued`` is given."""
        with self.lock:
            book = self.book(administration or contact["administration_id"])
            due = due or (issued or self.today) + timedelta(days=WORKFLOW_STEPS[0][1])
            invoice = self._new_invoice(
                book, contact, money(amount), None, issued, due, currency, language
            )
            self._apply(invoice, fields)
            self._settle(book, invoice)
            return invoice

    def add_credit_invoice(
        self,
        original: dict[str, Any],
        amount: str | int | Decimal,
        *,
        issued: date,
        number: int | str | None = None,
        settle: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """A sent credit invoice for ``amount`` (its size; the totals are negative) of
        ``original``. With ``settle`` the two are settled against each other as
        ``register_payment_creditinvoice`` does: a payment on each, dated today."""
        with self.lock:
            book, original = self._find("invoices", original)
            contact = book.contacts[original["contact_id"]]
            size = abs(money(amount))
            if settle and size > money(original["total_unpaid"]):
                raise ValueError(f"invoice {original['invoice_id']}: less than {size} is open")
            if isinstance(number, int):
                book.last_number[issued.year] = max(book.last_number.get(issued.year, 0), number)
                number = f"{issued.year}-{number:04d}"
            credit = self._new_invoice(
                book,
                contact,
                -size,
                number or self._next_number(book, issued.year),
                issued,
                issued,
                original["currency"],
                original["language"],
                created=("credit_invoice_created_from_original",),
            )
            credit["original_sales_invoice_id"] = original["id"]
            credit["reference"] = original["reference"]
            self._apply(credit, fields)
            if settle:
                mine = self._payment(book, original, size, self.today, credit_id=credit["id"])
                theirs = self._payment(book, credit, -size, self.today, credit_id=None)
                mine["linked_payment_id"], theirs["linked_payment_id"] = theirs["id"], mine["id"]
                for invoice, payment in ((original, mine), (credit, theirs)):
                    self._book_payment(book, invoice, payment)
            self._settle(book, credit)
            return credit

    def _next_number(self, book: Book, year: int) -> str:
        book.last_number[year] = book.last_number.get(year, 0) + 1
        return f"{year}-{book.last_number[year]:04d}"

    def _base(self, amount: Decimal, currency: str) -> str:
        rate = EURO_RATES.get(currency, Decimal(1))
        return amount_text((amount * rate).quantize(Decimal("0.01")))

    def _new_invoice(
        self,
        book: Book,
        contact: dict[str, Any],
        total: Decimal,
        number: str | None,
        issued: date | None,
        due: date,
        currency: str,
        language: str,
        created: tuple[str, ...] = ("sales_invoice_created",),
    ) -> dict[str, Any]:
        if contact["id"] not in book.contacts:
            raise KeyError(f"contact {contact['id']} is not in administration {book.id}")
        self.tick()
        now = iso(self.clock)
        excl = (total / (1 + VAT)).quantize(Decimal("0.01"))
        tax = total - excl
        draft = number is None
        if draft:
            book.last_draft += 1
        code = "".join(self.random.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(8))
        view = f"https://moneybird.com/{book.id}/external/{self.random.getrandbits(256):064x}/"
        view += f"{self.random.getrandbits(256):064x}/sales_invoice"
        invoice: dict[str, Any] = {
            "id": self._new_id(),
            "administration_id": book.id,
            "contact_id": contact["id"],
            "contact_person_id": None,
            "contact_person": None,
            "invoice_id": number,
            "recurring_sales_invoice_id": None,
            "subscription_id": None,
            "workflow_id": contact.get("invoice_workflow_id") or book.invoice_workflow_id,
            "document_style_id": book.document_style_id,
            "identity_id": book.identity_id,
            "draft_id": book.last_draft if draft else None,
            "state": "draft" if draft else "open",
            "invoice_date": issued.isoformat() if issued else None,
            "due_date": due.isoformat(),
            "payment_conditions": PAYMENT_CONDITIONS,
            "payment_reference": rf_reference("0000000000000" + code),
            "short_payment_reference": rf_reference(code),
            "reference": "",
            "language": language,
            "currency": currency,
            "discount": "0.0",
            "original_sales_invoice_id": None,
            "paused": False,
            "paid_at": None,
            "sent_at": None if draft or issued is None else issued.isoformat(),
            "created_at": now,
            "updated_at": now,
            "public_view_code": None if draft else f"{self.random.randrange(10**6):06d}",
            "public_view_code_expires_at": None if draft else iso(self.clock + timedelta(days=92)),
            "version": int(self.clock.timestamp()),
            "details": [
                {
                    "id": self._new_id(),
                    "administration_id": book.id,
                    "tax_rate_id": book.tax_rate_id,
                    "ledger_account_id": book.revenue_ledger_id,
                    "project_id": None,
                    "product_id": None,
                    "amount": "1 x",
                    "amount_decimal": "1.0",
                    "description": "Werkzaamheden",
                    "price": amount_text(excl),
                    "period": None,
                    "row_order": 1,
                    "total_price_excl_tax_with_discount": amount_text(excl),
                    "total_price_excl_tax_with_discount_base": self._base(excl, currency),
                    "tax_report_reference": ["NL/1a"],
                    "mandatory_tax_text": None,
                    "created_at": now,
                    "updated_at": now,
                }
            ],
            "payments": [],
            "total_paid": "0.0",
            "total_unpaid": amount_text(total),
            "total_unpaid_base": self._base(total, currency),
            "prices_are_incl_tax": False,
            "total_price_excl_tax": amount_text(excl),
            "total_price_excl_tax_base": self._base(excl, currency),
            "total_price_incl_tax": amount_text(total),
            "total_price_incl_tax_base": self._base(total, currency),
            "total_discount": "0.0",
            "marked_dubious_on": None,
            "marked_uncollectible_on": None,
            "reminder_count": 0,
            "next_reminder": None if draft else due.isoformat(),
            "original_estimate_id": None,
            "url": view,
            "payment_url": view,
            "custom_fields": [],
            "notes": [],
            "attachments": [],
            "events": [],
            "tax_totals": [
                {
                    "tax_rate_id": book.tax_rate_id,
                    "taxable_amount": amount_text(excl),
                    "taxable_amount_base": self._base(excl, currency),
                    "tax_amount": amount_text(tax),
                    "tax_amount_base": self._base(tax, currency),
                }
            ],
            "time_entries": [],
        }
        for action in created:
            self._event(book, invoice, action)
        if not draft:
            self._event(book, invoice, "sales_invoice_state_changed_to_open")
            self._event(
                book, invoice, "sales_invoice_send_email", email_address=self._address(contact)
            )
        book.invoices[invoice["id"]] = invoice
        return invoice

    def _apply(self, invoice: dict[str, Any], fields: dict[str, Any]) -> None:
        if not fields:
            return
        invoice.update(self._plain(fields))
        self._retotal(invoice)

    def _retotal(self, invoice: dict[str, Any]) -> None:
        """``total_paid``/``total_unpaid`` (and base) from the total and the payments."""
        paid = sum((money(p["price"]) for p in invoice["payments"]), Decimal(0))
        unpaid = money(invoice["total_price_incl_tax"]) - paid
        invoice["total_paid"] = amount_text(paid)
        invoice["total_unpaid"] = amount_text(unpaid)
        invoice["total_unpaid_base"] = self._base(unpaid, invoice["currency"])

    def _state_of(self, book: Book, invoice: dict[str, Any]) -> str:
        pinned = book.pinned.get(invoice["id"])
        if pinned == "scheduled" or (invoice["invoice_id"] is None and pinned is None):
            return pinned or "draft"
        unpaid = money(invoice["total_unpaid"])
        if unpaid == 0:
            return "paid"
        if pinned is not None:
            return pinned
        if unpaid < 0:
            return "open"  # a credit invoice waits to be settled; it is never late
        if invoice["reminder_count"]:
            return "reminded"
        if date.fromisoformat(invoice["due_date"]) < self.today:
            return "late"
        return "open"

    def _settle(self, book: Book, invoice: dict[str, Any]) -> None:
        """The state the clock and the payments give; a change of state is a change of the
        invoice (now, without moving the clock: ``tick`` calls this)."""
        state = self._state_of(book, invoice)
        if state == "paid":
            book.pinned.pop(invoice["id"], None)
        if state == invoice["state"]:
            return
        invoice["state"] = state
        invoice["updated_at"] = iso(self.clock)
        invoice["version"] = int(self.clock.timestamp())
        if state == "paid":
            invoice["next_reminder"] = None
        self._event(book, invoice, f"sales_invoice_state_changed_to_{state}")

    def _payment(
        self,
        book: Book,
        invoice: dict[str, Any],
        price: Decimal,
        on: date,
        *,
        credit_id: str | None,
        reference: str | None = None,
    ) -> dict[str, Any]:
        now = iso(self.clock)
        return {
            "id": self._new_id(),
            "administration_id": book.id,
            "invoice_type": "SalesInvoice",
            "invoice_id": invoice["id"],
            "financial_account_id": None,
            "user_id": self.user_id,
            "payment_transaction_id": None,
            "transaction_identifier": reference,
            "price": amount_text(price),
            "price_base": self._base(price, invoice["currency"]),
            "payment_date": on.isoformat(),
            "credit_invoice_id": credit_id,
            "financial_mutation_id": None,
            "ledger_account_id": book.bank_ledger_id,
            "linked_payment_id": None,
            "manual_payment_action": None,
            "created_at": now,
            "updated_at": now,
        }

    def _book_payment(self, book: Book, invoice: dict[str, Any], payment: dict[str, Any]) -> None:
        total = money(invoice["total_price_incl_tax"])
        before = money(invoice["total_unpaid"])
        after = before - money(payment["price"])
        if after != 0 and (after > 0) != (total > 0):
            raise ValueError(f"invoice {invoice['invoice_id']}: more than is open ({before})")
        # Stamped first: the tick settles every invoice, and this one's state change must
        # come after its payment.
        self._stamp(invoice)
        invoice["payments"].append(payment)
        self._retotal(invoice)
        payment["created_at"] = payment["updated_at"] = invoice["updated_at"]
        self._event(book, invoice, "payment_registered", payment_id=payment["id"])
        if after == 0:
            invoice["paid_at"] = payment["payment_date"]
        self._settle(book, invoice)

    def pay(
        self,
        invoice: dict[str, Any] | str,
        amount: str | int | Decimal,
        *,
        on: date,
        reference: str | None = None,
    ) -> dict[str, Any]:
        """A payment of ``amount`` (a refund, negative, for a credit invoice) on ``on``: it
        joins ``payments`` and moves the totals, the state and the version. ``reference``
        is the bank's ``transaction_identifier``."""
        with self.lock:
            book, record = self._find("invoices", invoice)
            payment = self._payment(book, record, money(amount), on, credit_id=None)
            payment["transaction_identifier"] = reference
            self._book_payment(book, record, payment)
            return payment

    def update_invoice(self, invoice_id: str, **fields: Any) -> dict[str, Any]:
        """Change an invoice's fields (``state=`` pins a state): a new version."""
        with self.lock:
            book, invoice = self._find("invoices", invoice_id)
            state = fields.pop("state", None)
            self._stamp(invoice)
            if state is not None:
                book.pinned[invoice["id"]] = state
            self._apply(invoice, fields)
            self._event(book, invoice, "sales_invoice_updated")
            self._settle(book, invoice)
            return invoice

    def delete_invoice(self, invoice_id: str) -> dict[str, Any]:
        """Delete an invoice: gone by id and from the synchronization lists."""
        with self.lock:
            book, invoice = self._find("invoices", invoice_id)
            del book.invoices[invoice["id"]]
            book.pinned.pop(invoice["id"], None)
            for note in invoice["notes"]:
                book.notes.pop(note["id"], None)
            self.tick()
            return invoice

    # -- webhooks --------------------------------------------------------------------------

    def add_webhook(
        self,
        url: str,
        enabled_events: Iterable[str] = (),
        *,
        administration: str | None = None,
    ) -> dict[str, Any]:
        """A webhook as created, ``secret`` included (what ``POST webhooks.json`` answers)."""
        with self.lock:
            book = self.book(administration)
            webhook: dict[str, Any] = {
                "id": self._new_id(),
                "administration_id": book.id,
                "url": url,
                "enabled_events": list(enabled_events),
                "last_http_status": None,
                "last_http_body": None,
                "token": "".join(
                    self.random.choice("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
                    for _ in range(24)
                ),
                "secret": f"{self.random.getrandbits(256):064x}",
                "deactivated_at": None,
            }
            book.webhooks[webhook["id"]] = webhook
            return dict(webhook)

    def signed_webhook(
        self,
        administration_id: str,
        entity: dict[str, Any] | str,
        action: str,
        *,
        webhook_id: str | None = None,
        idempotency_key: str | None = None,
        at: datetime | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """(body, headers) of the push Moneybird makes for ``action`` on ``entity`` (an
        invoice or contact record, or its id; a deleted one as the record it was) to the
        administration's webhook (the last one made unless named), signed at ``at`` (the
        clock) with its secret. A retry of the same push passes the same
        ``idempotency_key``."""
        with self.lock:
            book = self.book(administration_id)
            if webhook_id is None:
                if not book.webhooks:
                    raise LookupError(f"administration {book.id} has no webhook")
                webhook_id = list(book.webhooks)[-1]
            webhook = book.webhooks[webhook_id]
            if isinstance(entity, str):
                entity = book.invoices.get(entity) or book.contacts[entity]
            if "contact_id" in entity:
                kind, shown = "SalesInvoice", self._invoice_json(book, entity)
                state: str | None = entity["state"]
            else:
                kind, shown, state = "Contact", self._contact_json(entity, events=True), None
            payload = {
                "administration_id": book.id,
                "webhook_id": webhook["id"],
                "webhook_token": webhook["token"],
                "entity_type": kind,
                "entity_id": entity["id"],
                "state": state,
                "action": action,
                "entity": shown,
            }
            body = json.dumps(payload, separators=(",", ":")).encode()
            moment = int((at or self.clock).timestamp())
            digest = hmac.new(
                webhook["secret"].encode(), f"{moment}.".encode() + body, hashlib.sha256
            ).hexdigest()
            return body, {
                "Content-Type": "application/json",
                "Moneybird-Signature": f"t={moment},v1={digest}",
                "Idempotency-Key": idempotency_key or str(uuid.uuid4()),
            }

    # -- rendering -------------------------------------------------------------------------

    @staticmethod
    def _contact_json(contact: dict[str, Any], *, events: bool) -> dict[str, Any]:
        """A contact as the API shows it; inside an invoice without its events."""
        shown = copy.deepcopy(contact)
        if not events:
            shown.pop("events", None)
        return shown

    def _invoice_json(self, book: Book, invoice: dict[str, Any]) -> dict[str, Any]:
        """An invoice as the API shows it: its contact as it is now, after ``contact_id``."""
        shown: dict[str, Any] = {}
        for name, value in invoice.items():
            shown[name] = copy.deepcopy(value)
            if name == "contact_id":
                shown["contact"] = self._contact_json(book.contacts[value], events=False)
        return shown

    @staticmethod
    def _webhook_json(webhook: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in webhook.items() if k != "secret"}

    # -- dispatch --------------------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
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
            payload = injected.body if injected.body is not None else {}
            if isinstance(payload, str):
                payload = payload.encode()
            return injected.status, payload, injected.headers

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Answer:
        if path == AUTHORIZE_PATH and method == "GET":
            return self._authorize(query)
        if path == TOKEN_PATH and method == "POST":
            return self._token(headers, self._form(body))
        if path == REVOKE_PATH and method == "POST":
            return self._revoke(headers, self._form(body))
        if path.startswith(DOWNLOAD_PATH) and method == "GET":
            return self._download(path.removeprefix(DOWNLOAD_PATH))
        if not path.startswith(API + "/"):
            return 404, error("Not found"), {}
        refused, scope = self._bearer(headers)
        if refused is not None:
            return refused
        rest = path.removeprefix(API + "/").removesuffix(".json")
        segments = rest.split("/")
        if segments == ["administrations"]:
            throttled, rate = self._take_top()
            if throttled is not None:
                return throttled
            if method != "GET":
                return 404, error("Not found"), rate
            listed = [self._administration_json(b) for b in self.administrations.values()]
            return 200, listed, rate
        book = self.administrations.get(segments[0])
        if book is None:
            return 404, error("Administration not found", administration_id="not_found"), {}
        throttled, rate = self._take(book)
        if throttled is not None:
            return throttled
        needed = NEEDS.get(segments[1] if len(segments) > 1 else "", ())
        if needed and not set(needed) & set(scope.split()):
            return 401, error("No access to " + " or ".join(needed)), rate
        status, payload, extra = self._api(book, method, segments[1:], query, body)
        return status, payload, {**rate, **extra}

    @staticmethod
    def _form(body: bytes) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(body.decode()).items()}

    def _bearer(self, headers: dict[str, str]) -> tuple[Answer | None, str]:
        """(a 401 or None, the token's scope)."""
        challenge = 'Bearer realm="Doorkeeper", error="invalid_token"'
        given = headers.get("authorization", "")
        if not given.startswith("Bearer "):
            return (401, error("No access token given"), {"WWW-Authenticate": challenge}), ""
        held = self.access_tokens.get(given.removeprefix("Bearer ").strip())
        if held is None:
            return (401, error("The access token is invalid"), {"WWW-Authenticate": challenge}), ""
        grant_id, until = held
        grant = self.grants[grant_id]
        if grant["revoked"]:
            return (401, error("The access token was revoked"), {"WWW-Authenticate": challenge}), ""
        if until is not None and until <= self.clock:
            return (401, error("The access token expired"), {"WWW-Authenticate": challenge}), ""
        return None, str(grant["scope"])

    @staticmethod
    def _administration_json(book: Book) -> dict[str, Any]:
        return {
            "id": book.id,
            "name": book.name,
            "language": book.language,
            "currency": book.currency,
            "country": book.country,
            "time_zone": book.time_zone,
            "access": "user",
            "suspended": False,
            "period_locked_until": None,
            "period_start_date": "2026-01-01",
        }

    # -- rate limits -----------------------------------------------------------------------

    def _roll(self, book: Book) -> None:
        if book.window_start is not None and self.clock >= book.window_start + self.rate_window:
            book.window_start, book.window_used = None, 0

    def _take(self, book: Book) -> tuple[Answer | None, dict[str, str]]:
        """(a 429 or None, the rate-limit headers) for one call in ``book``."""
        self._roll(book)
        if book.window_start is None:
            book.window_start = self.clock
        over = book.window_used >= self.rate_limit
        if not over:
            book.window_used += 1
        return self._rate_answer(book.window_start, book.window_used, over)

    def _take_top(self) -> tuple[Answer | None, dict[str, str]]:
        start, used = self._top_window
        if start is None or self.clock >= start + self.rate_window:
            start, used = self.clock, 0
        over = used >= self.rate_limit
        self._top_window = (start, used if over else used + 1)
        return self._rate_answer(start, self._top_window[1], over)

    def _rate_answer(
        self, start: datetime, used: int, over: bool
    ) -> tuple[Answer | None, dict[str, str]]:
        reset = int((start + self.rate_window).timestamp())
        headers = {
            "RateLimit-Limit": str(self.rate_limit),
            "RateLimit-Remaining": str(max(self.rate_limit - used, 0)),
            "RateLimit-Reset": str(reset),
        }
        if not over:
            return None, headers
        wait = max(reset - int(self.clock.timestamp()), 0)
        headers["Retry-After"] = str(wait if self.retry_after_seconds else reset)
        headers["Content-Type"] = "text/plain; charset=utf-8"
        return (429, b"Retry later", headers), headers

    # -- OAuth -----------------------------------------------------------------------------

    def _authorize(self, query: dict[str, str]) -> Answer:
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, {"error": "invalid_request"}, {}
        target = query.get("redirect_uri", "")
        if not target:
            return 400, {"error": "invalid_request", "error_description": "redirect_uri"}, {}
        scope = " ".join(query.get("scope", "").replace("+", " ").split()) or "sales_invoices"
        answer: dict[str, str]
        if any(each not in SCOPES for each in scope.split()):
            answer = {"error": "invalid_scope"}
        elif not self.consent:
            answer = {"error": "access_denied"}
        else:
            code = secrets.token_hex(32)
            self.codes[code] = {
                "redirect_uri": target,
                "scope": scope,
                "expires": self.clock + CODE_LIFE,
            }
            answer = {"code": code}
        if "state" in query:
            answer["state"] = query["state"]
        joiner = "&" if "?" in target else "?"
        return 302, b"", {"Location": target + joiner + urlencode(answer)}

    def _client_ok(self, headers: dict[str, str], form: dict[str, str]) -> bool:
        basic = headers.get("authorization", "")
        if basic.startswith("Basic "):
            try:
                pair = base64.b64decode(basic[6:]).decode()
            except ValueError:
                return False
            client_id, _, secret = pair.partition(":")
            given = (unquote(client_id), unquote(secret))
        else:
            given = (form.get("client_id", ""), form.get("client_secret", ""))
        return given == (self.client_id, self.client_secret)

    def _token(self, headers: dict[str, str], form: dict[str, str]) -> Answer:
        if not self._client_ok(headers, form):
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
        grant = form.get("grant_type")
        if grant == "authorization_code":
            entry = self.codes.pop(form.get("code", ""), None)  # good once, whatever comes
            if (
                entry is None
                or entry["expires"] <= self.clock
                or entry["redirect_uri"] != form.get("redirect_uri")
            ):
                return 400, bad_grant, {}
            return 200, self.issue_tokens(entry["scope"]), {}
        if grant == "refresh_token":
            old = form.get("refresh_token", "")
            grant_id = next(
                (
                    key
                    for key, held in self.grants.items()
                    if held["refresh_token"] == old and not held["revoked"]
                ),
                None,
            )
            if not old or grant_id is None:
                return 400, bad_grant, {}
            self.refreshes += 1
            if self.rotate_refresh_tokens:
                self.grants[grant_id]["refresh_token"] = secrets.token_urlsafe(32)
            return 200, self._token_answer(grant_id), {}
        return 400, {"error": "unsupported_grant_type"}, {}

    def _revoke(self, headers: dict[str, str], form: dict[str, str]) -> Answer:
        if not self._client_ok(headers, form):
            return 401, {"error": "invalid_client"}, {}
        token = form.get("token", "")
        self.revoked.append(token)
        held = self.access_tokens.get(token)
        for grant_id, grant in self.grants.items():
            if grant["refresh_token"] == token or (held is not None and held[0] == grant_id):
                grant["revoked"] = True
        return 200, {}, {}

    def _download(self, token: str) -> Answer:
        held = self.downloads.get(token)
        if held is None or held[2] <= self.clock:
            return 404, b"Not found", {"Content-Type": "text/plain"}
        book = self.administrations[held[0]]
        invoice = book.invoices.get(held[1])
        if invoice is None:
            return 404, b"Not found", {"Content-Type": "text/plain"}
        name = invoice["invoice_id"] or f"concept {invoice['draft_id']}"
        content = (
            b"%PDF-1.4\n% fake Moneybird sales invoice " + name.encode() + b"\n"
            b"1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
        )
        return (
            200,
            content,
            {
                "Content-Type": "application/pdf",
                "Content-Disposition": f'attachment; filename="Factuur {name}.pdf"',
            },
        )

    # -- the API ---------------------------------------------------------------------------

    def _counted(self, answer: Answer) -> Answer:
        """Note how many full records a list or synchronization answer carried."""
        if answer[0] == 200 and isinstance(answer[1], list):
            self.served.append(len(answer[1]))
        return answer

    def _api(
        self, book: Book, method: str, parts: list[str], query: dict[str, str], body: bytes
    ) -> Answer:
        if any(not part for part in parts):
            return 404, error("Not found"), {}
        match parts:
            case ["contacts"] if method == "GET":
                return self._counted(self._list_contacts(book, query))
            case ["contacts", "synchronization"] if method == "GET":
                return self._contact_versions(book, query)
            case ["contacts", "synchronization"] if method == "POST":
                return self._counted(self._by_ids(book, body, "contacts"))
            case ["contacts", contact_id] if method == "GET":
                contact = book.contacts.get(contact_id)
                if contact is None or (
                    contact["archived"] and not _truthy(query.get("include_archived"))
                ):
                    return 404, not_found(), {}
                return 200, self._contact_json(contact, events=True), {}
            case ["contacts", contact_id, "notes"] if method == "POST":
                return self._post_note(book, book.contacts.get(contact_id), "Contact", body)
            case ["sales_invoices"] if method == "GET":
                return self._counted(self._list_invoices(book, query))
            case ["sales_invoices", "synchronization"] if method == "GET":
                return self._invoice_versions(book, query)
            case ["sales_invoices", "synchronization"] if method == "POST":
                return self._counted(self._by_ids(book, body, "invoices"))
            case ["sales_invoices", "send_reminders"] if method == "POST":
                return self._send_reminders(book, body)
            case ["sales_invoices", "find_by_invoice_id", number] if method == "GET":
                found = next((i for i in book.invoices.values() if i["invoice_id"] == number), None)
                if found is None:
                    return 404, error("record not found", invoice_id="not_found"), {}
                return 200, self._invoice_json(book, found), {}
            case ["sales_invoices", invoice_id] if method == "GET":
                invoice = book.invoices.get(invoice_id)
                if invoice is None:
                    return 404, not_found(), {}
                return 200, self._invoice_json(book, invoice), {}
            case ["sales_invoices", invoice_id, "notes"] if method == "POST":
                return self._post_note(book, book.invoices.get(invoice_id), "SalesInvoice", body)
            case ["sales_invoices", invoice_id, "send_invoice"] if method == "PATCH":
                return self._send_invoice(book, book.invoices.get(invoice_id), body)
            case ["sales_invoices", invoice_id, "download_pdf"] if method == "GET":
                if invoice_id not in book.invoices:
                    return 404, not_found(), {}
                token = secrets.token_hex(32)
                self.downloads[token] = (book.id, invoice_id, self.clock + DOWNLOAD_LIFE)
                where = f"{self.url}{DOWNLOAD_PATH}{token}"
                text = f"This resource has been moved temporarily to {where}."
                return 302, text.encode(), {"Location": where, "Content-Type": "text/plain"}
            case ["webhooks"] if method == "GET":
                return 200, [self._webhook_json(w) for w in book.webhooks.values()], {}
            case ["webhooks"] if method == "POST":
                return self._create_webhook(book, body)
            case ["webhooks", webhook_id] if method == "DELETE":
                if book.webhooks.pop(webhook_id, None) is None:
                    return 404, not_found(), {}
                return 204, b"", {}
            case ["workflows"] if method == "GET":
                return 200, copy.deepcopy(list(book.workflows.values())), {}
            case ["workflows", workflow_id] if method == "GET":
                workflow = book.workflows.get(workflow_id)
                if workflow is None:
                    return 404, not_found(), {}
                return 200, copy.deepcopy(workflow), {}
        return 404, error(f"No route for {method} {'/'.join(parts)}"), {}

    # -- lists and synchronization -------------------------------------------------------

    def _page(
        self, book: Book, resource: str, rows: list[dict[str, Any]], query: dict[str, str]
    ) -> tuple[Answer | None, list[dict[str, Any]], dict[str, str]]:
        """(a 400 or None, the rows of the page asked for, the ``Link`` header)."""
        per_page_text = query.get("per_page", str(PER_PAGE)).strip()
        page_text = query.get("page", "1").strip()
        if not per_page_text.isdigit() or not 1 <= int(per_page_text) <= MAX_PER_PAGE:
            return (400, error("per_page does not have a valid value"), {}), [], {}
        if not page_text.isdigit() or int(page_text) < 1:
            return (400, error("page does not have a valid value"), {}), [], {}
        per_page, page = int(per_page_text), int(page_text)
        chunk = rows[(page - 1) * per_page : page * per_page]
        links = []
        base = f"{self.url}{API}/{book.id}/{resource}.json"

        def link(number: int, rel: str) -> str:
            params = {**query, "page": str(number), "per_page": str(per_page)}
            return f'<{base}?{urlencode(params, quote_via=quote)}>; rel="{rel}"'

        if page * per_page < len(rows):
            links.append(link(page + 1, "next"))
        if page > 1:
            links.append(link(page - 1, "prev"))
        return None, self._mixed(chunk), ({"Link": ", ".join(links)} if links else {})

    def _mixed(self, rows: list[Any]) -> list[Any]:
        return self.random.sample(rows, len(rows)) if self.shuffle_pages else rows

    def _visible_contacts(self, book: Book, query: dict[str, str]) -> list[dict[str, Any]]:
        archived = _truthy(query.get("include_archived"))
        return [c for c in book.contacts.values() if archived or not c["archived"]]

    def _list_contacts(self, book: Book, query: dict[str, str]) -> Answer:
        rows = self._visible_contacts(book, query)
        words = query.get("query", "").lower().split()
        if words:
            searched = SEARCHED.split()
            rows = [
                c
                for c in rows
                if all(any(w in str(c.get(f) or "").lower() for f in searched) for w in words)
            ]
        refused, page, headers = self._page(book, "contacts", rows, query)
        if refused is not None:
            return refused
        return 200, [self._contact_json(c, events=True) for c in page], headers

    @staticmethod
    def _terms(text: str) -> dict[str, str]:
        """``key:value`` terms separated by commas (a value may hold colons: times)."""
        terms: dict[str, str] = {}
        for term in text.split(","):
            key, sep, value = term.partition(":")
            if sep:
                terms[key.strip()] = value.strip()
        return terms

    @staticmethod
    def _after(terms: dict[str, str], record: dict[str, Any]) -> bool:
        """The ``created_after``/``updated_after`` terms (exclusive) hold for ``record``."""
        for key, stamp in (("created_after", "created_at"), ("updated_after", "updated_at")):
            if key in terms and parse_time(record[stamp]) <= parse_time(terms[key]):
                return False
        return True

    def _contact_versions(self, book: Book, query: dict[str, str]) -> Answer:
        terms = self._terms(query.get("filter", ""))
        try:
            rows = [c for c in self._visible_contacts(book, query) if self._after(terms, c)]
        except ValueError:
            return 400, error("The filter is invalid", filter="invalid"), {}
        for key, name in (("first_name", "firstname"), ("last_name", "lastname")):
            if key in terms:
                rows = [c for c in rows if (c[name] or "").lower() == terms[key].lower()]
        return 200, self._mixed([{"id": c["id"], "version": c["version"]} for c in rows]), {}

    def _period(self, text: str) -> tuple[date, date]:
        """A period preset or ``YYYYMM[DD]..YYYYMM[DD]`` as (first day, last day)."""
        today = self.today

        def month_end(first: date) -> date:
            following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
            return following - timedelta(days=1)

        def month(year: int, number: int) -> date:
            year, number = year + (number - 1) // 12, (number - 1) % 12 + 1
            return date(year, number, 1)

        presets = {"prev": -1, "this": 0, "next": 1}
        head, _, unit = text.partition("_")
        if head in presets and unit in ("week", "month", "quarter", "year"):
            shift = presets[head]
            if unit == "week":
                first = today - timedelta(days=today.weekday()) + timedelta(weeks=shift)
                return first, first + timedelta(days=6)
            if unit == "month":
                first = month(today.year, today.month + shift)
                return first, month_end(first)
            if unit == "quarter":
                first = month(today.year, (today.month - 1) // 3 * 3 + 1 + 3 * shift)
                return first, month_end(month(first.year, first.month + 2))
            return date(today.year + shift, 1, 1), date(today.year + shift, 12, 31)
        start_text, dots, end_text = text.partition("..")
        if dots and (not start_text or not end_text):
            raise LookupError("Period must have both a start and end date")
        end_text = end_text or start_text
        if not re.fullmatch(r"\d{6}|\d{8}", start_text) or not re.fullmatch(
            r"\d{6}|\d{8}", end_text
        ):
            raise ValueError(text)
        start = date(int(start_text[:4]), int(start_text[4:6]), int(start_text[6:] or 1))
        if len(end_text) == 8:
            end = date(int(end_text[:4]), int(end_text[4:6]), int(end_text[6:]))
        else:
            end = month_end(date(int(end_text[:4]), int(end_text[4:6]), 1))
        return start, end

    def _invoice_rows(
        self, book: Book, query: dict[str, str], default: str | None
    ) -> tuple[Answer | None, list[dict[str, Any]]]:
        text = query.get("filter")
        terms = self._terms(text if text is not None else default or "")
        rows = list(book.invoices.values())
        states = [s.strip() for s in terms.get("state", "all").split("|") if s.strip()]
        if any(s not in STATES and s != "all" for s in states):
            return (400, error("Status is not included in the list", filter="invalid"), {}), []
        if "all" not in states:
            rows = [i for i in rows if i["state"] in states]
        if "period" in terms:
            try:
                start, end = self._period(terms["period"])
            except LookupError as exc:
                return (400, error(str(exc)), {}), []
            except ValueError:
                return (400, error("Period is invalid", filter="invalid"), {}), []

            def within(invoice: dict[str, Any]) -> bool:
                # A draft without a date is in a period that holds today.
                when = invoice["invoice_date"]
                moment = date.fromisoformat(when) if when else self.today
                return start <= moment <= end

            rows = [i for i in rows if within(i)]
        for key in ("contact_id", "workflow_id", "recurring_sales_invoice_id"):
            if key in terms:
                rows = [i for i in rows if i[key] == terms[key]]
        if "reference" in terms:
            references = terms["reference"].split("|")
            rows = [i for i in rows if i["reference"] in references]
        try:
            rows = [i for i in rows if self._after(terms, i)]
        except ValueError:
            return (400, error("The filter is invalid", filter="invalid"), {}), []
        return None, rows

    def _list_invoices(self, book: Book, query: dict[str, str]) -> Answer:
        refused, rows = self._invoice_rows(book, query, "period:this_year")
        if refused is not None:
            return refused
        refused, page, headers = self._page(book, "sales_invoices", rows, query)
        if refused is not None:
            return refused
        return 200, [self._invoice_json(book, i) for i in page], headers

    def _invoice_versions(self, book: Book, query: dict[str, str]) -> Answer:
        refused, rows = self._invoice_rows(book, query, None)
        if refused is not None:
            return refused
        return 200, self._mixed([{"id": i["id"], "version": i["version"]} for i in rows]), {}

    def _by_ids(self, book: Book, body: bytes, store: str) -> Answer:
        data = _json_body(body)
        ids = data.get("ids") if isinstance(data, dict) else None
        if not isinstance(ids, list) or not ids:
            return 400, error("Ids is required", ids="required"), {}
        if len(ids) > MAX_SYNC_IDS:
            if self.refuse_too_many_ids:
                return 400, error("Too many ids, at most 100", ids="too_many"), {}
            ids = ids[:MAX_SYNC_IDS]
        wanted = {str(each) for each in ids}
        rows: dict[str, dict[str, Any]] = getattr(book, store)
        found = [record for key, record in rows.items() if key in wanted]
        if store == "contacts":
            return 200, self._mixed([self._contact_json(c, events=True) for c in found]), {}
        return 200, self._mixed([self._invoice_json(book, i) for i in found]), {}

    # -- writes ----------------------------------------------------------------------------

    def _post_note(
        self, book: Book, record: dict[str, Any] | None, kind: str, body: bytes
    ) -> Answer:
        if record is None:
            return 404, not_found(), {}
        data = _json_body(body)
        note = data.get("note") if isinstance(data, dict) else None
        if not isinstance(note, dict):
            return 400, error("Note is required", note="required"), {}
        text = note.get("note")
        if not isinstance(text, str) or not text.strip():
            return 422, invalid("note", "can't be blank", "blank"), {}
        assignee = note.get("assignee_id")
        todo = note.get("todo", False)
        todo = _truthy(todo) if isinstance(todo, str) else bool(todo)
        self._stamp(record)
        now = iso(self.clock)
        created: dict[str, Any] = {
            "id": self._new_id(),
            "administration_id": book.id,
            "entity_id": record["id"],
            "entity_type": kind,
            "user_id": self.user_id,
            "assignee_id": str(assignee) if assignee is not None else None,
            "todo": todo or assignee is not None,
            "note": text,
            "completed_at": None,
            "completed_by_id": None,
            "todo_type": None,
            "data": {},
            "created_at": now,
            "updated_at": now,
        }
        record["notes"].append(created)
        book.notes[created["id"]] = created
        return 201, copy.deepcopy(created), {}

    @staticmethod
    def _address(contact: dict[str, Any]) -> str | None:
        return contact.get("send_invoices_to_email") or contact.get("email") or None

    def _send_invoice(self, book: Book, invoice: dict[str, Any] | None, body: bytes) -> Answer:
        if invoice is None:
            return 404, not_found(), {}
        data = _json_body(body)
        sending = data.get("sales_invoice_sending") if isinstance(data, dict) else None
        sending = sending if isinstance(sending, dict) else {}
        contact = book.contacts[invoice["contact_id"]]
        asked = sending.get("delivery_method")
        if asked is not None and asked not in ("Email", "Peppol", "Manual"):
            return 400, error("Delivery method is invalid", delivery_method="invalid"), {}
        # Unasked, the contact's method (Post and Simplerinvoicing too).
        method = str(asked or contact["delivery_method"] or "Email")
        address = sending.get("email_address") or self._address(contact)
        if method == "Email" and not address:
            return 422, invalid("email_address", "can't be blank", "blank"), {}
        if sending.get("sending_scheduled") in (True, "true"):
            when = sending.get("invoice_date")
            if not isinstance(when, str):
                return 422, invalid("invoice_date", "can't be blank", "blank"), {}
            self._stamp(invoice)
            invoice["invoice_date"] = when
            book.pinned[invoice["id"]] = "scheduled"
            self._settle(book, invoice)
            return 200, self._invoice_json(book, invoice), {}
        self._stamp(invoice)
        if book.pinned.get(invoice["id"]) == "scheduled":
            del book.pinned[invoice["id"]]
        if invoice["invoice_id"] is None:
            issued = (
                date.fromisoformat(invoice["invoice_date"])
                if invoice["invoice_date"]
                else self.today
            )
            if not invoice["invoice_date"]:
                invoice["invoice_date"] = issued.isoformat()
                due = issued + timedelta(days=WORKFLOW_STEPS[0][1])
                invoice["due_date"] = due.isoformat()
            invoice["invoice_id"] = self._next_number(book, issued.year)
            invoice["draft_id"] = None
            invoice["public_view_code"] = f"{self.random.randrange(10**6):06d}"
            invoice["public_view_code_expires_at"] = iso(self.clock + timedelta(days=92))
            invoice["next_reminder"] = invoice["due_date"]
        invoice["sent_at"] = self.today.isoformat()
        shown_address = address if method == "Email" else None
        book.sent.append(Sending(invoice["id"], method, shown_address))
        action = {"Email": "send_email", "Manual": "send_manually", "Post": "send_post"}
        self._event(
            book,
            invoice,
            f"sales_invoice_{action.get(method, 'send_si')}",
            email_address=shown_address,
        )
        self._settle(book, invoice)
        return 200, self._invoice_json(book, invoice), {}

    def _send_reminders(self, book: Book, body: bytes) -> Answer:
        data = _json_body(body)
        entries = data.get("sales_invoice_reminders") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not entries:
            return (
                400,
                error("Sales invoice reminders is required", sales_invoice_reminders="required"),
                {},
            )
        required = ("contact_id", "workflow_id", "document_style_id", "identity_id")
        planned: list[tuple[Reminder, list[dict[str, Any]]]] = []
        for entry in entries:
            if not isinstance(entry, dict):
                return 400, error("A reminder is not an object"), {}
            for key in (*required, "sales_invoice_ids"):
                if key not in entry:
                    return 400, error(f"{key} is required", **{key: "required"}), {}
            contact = book.contacts.get(str(entry["contact_id"]))
            if contact is None:
                return 404, error("record not found", contact_id="not_found"), {}
            ids = entry["sales_invoice_ids"]
            if not isinstance(ids, list) or not ids:
                return 422, invalid("sales_invoice_ids", "can't be blank", "blank"), {}
            invoices = []
            for each in ids:
                invoice = book.invoices.get(str(each))
                if invoice is None:
                    return 404, error("record not found", sales_invoice_ids="not_found"), {}
                if invoice["contact_id"] != contact["id"] or invoice["state"] not in (
                    "open",
                    "late",
                    "reminded",
                ):
                    return 422, invalid("sales_invoice_ids", "is invalid", "invalid"), {}
                for key in required[1:]:
                    if str(entry[key]) != invoice[key]:
                        return 422, invalid(key, "does not match the invoices", "invalid"), {}
                invoices.append(invoice)
            method = str(entry.get("delivery_method") or "")
            if not method:
                method = "Manual" if contact["delivery_method"] == "Manual" else "Email"
            if method not in ("Email", "Manual"):
                return (
                    422,
                    invalid("delivery_method", "is not included in the list", "inclusion"),
                    {},
                )
            address = entry.get("email_address") or self._address(contact)
            if method == "Email" and not address:
                return 422, invalid("email_address", "can't be blank", "blank"), {}
            step = min(max(i["reminder_count"] for i in invoices) + 1, len(REMINDER_TEXTS) - 1)
            text = str(entry.get("reminder_text") or REMINDER_TEXTS[step])
            reminder = Reminder(
                contact["id"],
                tuple(i["id"] for i in invoices),
                method,
                address if method == "Email" else None,
                text,
            )
            planned.append((reminder, invoices))
        # Checked all first: Moneybird sends none of a request it refuses.
        for reminder, invoices in planned:
            book.reminders_sent.append(reminder)
            for invoice in invoices:
                self._stamp(invoice)
                invoice["reminder_count"] += 1
                action = "email" if reminder.delivery_method == "Email" else "manually"
                self._event(book, invoice, f"sales_invoice_send_reminder_{action}")
                step = min(invoice["reminder_count"] + 1, len(WORKFLOW_STEPS) - 1)
                invoice["next_reminder"] = (
                    self.today + timedelta(days=WORKFLOW_STEPS[step][1])
                ).isoformat()
                self._settle(book, invoice)
        return 200, b"", {}

    def _create_webhook(self, book: Book, body: bytes) -> Answer:
        data = _json_body(body)
        if not isinstance(data, dict):
            return 400, error("Url is required", url="required"), {}
        if "events" in data:
            return (
                400,
                error(
                    "'events' has been removed from webhooks, use 'enabled_events'",
                    events="removed",
                ),
                {},
            )
        url = data.get("url")
        if not isinstance(url, str) or not url:
            return 400, error("Url is required", url="required"), {}
        events = data.get("enabled_events") or []
        if not isinstance(events, list):
            return 400, error("Enabled events is invalid", enabled_events="invalid"), {}
        unknown = [e for e in events if e not in WEBHOOK_EVENTS and e not in WEBHOOK_GROUPS]
        if unknown:
            return (
                400,
                error(f"Unknown events: {', '.join(map(str, unknown))}", enabled_events="invalid"),
                {},
            )
        if url in self.unreachable_webhook_urls:
            return 400, error("Url did not respond with HTTP status 200", url="invalid"), {}
        return 201, self.add_webhook(url, events, administration=book.id), {}

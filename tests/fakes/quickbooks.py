"""A fake QuickBooks Online on loopback: Intuit's OAuth 2 and the slice of the Accounting API
we use.

It behaves like the platform where our connector could get it wrong, and answers in the
shapes of ../shared/specs/quickbooks/*.xsd as QuickBooks writes them in JSON (the XSD's
element names; money as exact JSON numbers; ISO times with an offset in ``MetaData``):

- OAuth 2 for a confidential client: the authorize redirect carries ``realmId``; the token
  endpoint takes HTTP Basic client auth only; refresh tokens roll (each refresh returns a
  new one; the one used keeps working for 24 hours of the fake clock); access tokens last
  3600 s; revocation forgets every token of the grant;
- every Accounting call is under ``/v3/company/{realmId}/``: a bearer token and this
  company's realm are checked, ``minorversion`` is taken and ignored;
- the query language, as far as we speak it: ``select * from <Entity>`` with
  ``where MetaData.LastUpdatedTime > '<iso>'`` and/or ``where Id in ('1', ...)`` (joined by
  ``and``), ``orderby`` (ignored: rows come in Id order), ``STARTPOSITION`` (1-based,
  default 1) and ``MAXRESULTS`` (default 100, at most 1000), and ``select count(*)``; an
  empty answer is ``{"QueryResponse": {}}`` (no entity key), as QuickBooks gives it;
  ``shuffle_pages`` mixes the rows within each page;
- change data capture (``/cdc``): changes and deleted stubs strictly after ``changedSince``,
  at most 1000 of an entity an answer (the oldest first), 30 days back at most;
- read one record (``/invoice/{id}`` and the others), the invoice PDF (``/invoice/{id}/pdf``
  or ``Accept: application/pdf``), ``/companyinfo/{realm}``;
- writes: a note as an Attachable (``POST /attachable``), the invoice e-mail
  (``POST /invoice/{id}/send?sendTo=``), updates (``POST /<entity>`` with ``Id`` and
  ``SyncToken``, sparse or full; a stale SyncToken is refused with 5010); a ``requestid``
  seen before answers the first answer again and does nothing (QuickBooks' idempotency);
- throttling: ``per_minute`` calls in a minute of the fake clock, then 429 ``ThrottleExceeded``;
- faults on demand (``fail_next``): 429, 5xx, 401, or a lost answer (``Fault.carry_out``);
- a count of every call, by method and path, for the tests' call budgets, and of the
  records every query or CDC answer carried (``served``).

Records are held as QuickBooks JSON, by Id, with ``Decimal`` amounts; tests add and change
them with the helpers, each change moving the clock on a second so that every
``LastUpdatedTime`` is distinct. Ids are increasing integers, one sequence per entity, as in
QuickBooks (an invoice and a customer may both be "1").
"""

from __future__ import annotations

import base64
import collections
import copy
import json
import random
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

API = "/v3/company"
#: The entities the fake holds, by their name in queries, CDC and JSON envelopes.
ENTITIES = ("Customer", "Invoice", "CreditMemo", "Payment", "Attachable", "CustomerType")
#: The entities by their path segment (``/invoice/{id}``).
SEGMENTS = {name.lower(): name for name in ENTITIES}
#: Fields that hold money: kept as Decimal, written as exact JSON numbers.
MONEY = frozenset(
    {"TotalAmt", "Balance", "RemainingCredit", "UnappliedAmt", "HomeBalance", "HomeTotalAmt"}
)
CURRENCIES = {
    "USD": "United States Dollar",
    "EUR": "Euro",
    "GBP": "British Pound Sterling",
    "CAD": "Canadian Dollar",
    "AUD": "Australian Dollar",
}
ACCESS_LIFE = timedelta(seconds=3600)
REFRESH_LIFE = timedelta(seconds=8726400)
#: How long a refresh token that has rolled over is still taken.
ROLLOVER_GRACE = timedelta(hours=24)
CDC_REACH = timedelta(days=30)
MAX_RESULTS = 1000

QUERY = re.compile(
    r"""^\s*select\s+(?P<what>\*|count\(\s*\*\s*\))\s+from\s+(?P<entity>\w+)
    (?:\s+where\s+(?P<where>.+?))?
    (?:\s+order\s*by\s+(?P<order>[\w.]+(?:\s+(?:asc|desc))?(?:\s*,\s*[\w.]+(?:\s+(?:asc|desc))?)*))?
    (?:\s+startposition\s+(?P<start>\d+))?
    (?:\s+maxresults\s+(?P<max>\d+))?
    \s*$""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)
UPDATED_AFTER = re.compile(r"^MetaData\.LastUpdatedTime\s*>\s*'(?P<moment>[^']+)'$", re.I)
NAME_IS = re.compile(r"^Name\s*=\s*'(?P<name>(?:[^'\\]|\\.)*)'$", re.I)
ID_IN = re.compile(r"^Id\s+in\s*\((?P<ids>\s*'[^']*'(?:\s*,\s*'[^']*')*\s*)\)$", re.I)


def encode(value: Any) -> str:
    """JSON text with every Decimal written as the number it is (362.07, never 362.0699...)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value)


def money(amount: str | int | Decimal) -> Decimal:
    return amount if isinstance(amount, Decimal) else Decimal(str(amount))


def stamp(moment: datetime) -> str:
    """A QuickBooks time: ISO 8601 with the offset (the fake clock is UTC: ``+00:00``)."""
    return moment.isoformat()


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def fault(message: str, detail: str = "", code: str = "", kind: str = "ValidationFault") -> Any:
    return {
        "Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": kind}
    }


def parse_error(detail: str) -> Any:
    return fault("Error parsing query", f"QueryParserError: {detail}", "4000")


def not_found(entity: str, record_id: str) -> Any:
    return fault("Object Not Found", f"Object Not Found : {entity} {record_id}", "610")


class QueryError(Exception):
    pass


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | bytes | None = None
    #: Done in the server just before this answer goes out (another process's work).
    before: Callable[[], None] | None = None
    #: Carry the request out all the same, then answer with this fault (a lost answer).
    carry_out: bool = False


class FakeQuickBooks:
    def __init__(
        self, *, client_id: str = "kindly-qbo-client", client_secret: str = "kindly-qbo-secret"
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.realm_id = "9341452000000001"
        self.company_name = "Noordlicht Inc."
        self.clock = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
        #: Whether the company takes online payments (QuickBooks Payments): invoices then
        #: have a pay link (InvoiceLink) when asked for it.
        self.online_payments = True
        self.customers: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.credit_memos: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.attachables: dict[str, dict[str, Any]] = {}
        #: Customer types: made in QuickBooks only (the API reads them, never creates them).
        self.customer_types: dict[str, dict[str, Any]] = {}
        #: Deleted records' stubs, by entity and Id, as CDC gives them.
        self.deleted: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in ENTITIES}
        self._ids: collections.Counter[str] = collections.Counter()
        #: The first answer to each requestid: ``(status, payload)``.
        self.requestids: dict[str, tuple[int, Any]] = {}
        #: (invoice Id, address) of each invoice e-mail QuickBooks sent.
        self.sent_invoices: list[tuple[str, str]] = []
        self.calls: collections.Counter[str] = collections.Counter()
        #: Records in each query or CDC answer, in order.
        self.served: list[int] = []
        self.faults: collections.defaultdict[str, list[Fault]] = collections.defaultdict(list)
        #: Rows of each query page in a shuffled order (within the page).
        self.shuffle_pages = False
        self.random = random.Random(20261122)
        #: Accounting calls taken in any minute of the fake clock; the next is throttled.
        self.per_minute = 500
        #: ``Retry-After`` on a throttled answer (None: leave it off, as Intuit documents).
        self.throttle_retry_after: str | None = "60"
        self._taken: collections.deque[datetime] = collections.deque()
        # OAuth state
        self.codes: dict[str, dict[str, str]] = {}
        #: Access tokens and when they expire.
        self.access_tokens: dict[str, datetime] = {}
        #: Live refresh tokens and when they expire (100 days, renewed with each refresh).
        self.refresh_tokens: dict[str, datetime] = {}
        #: Refresh tokens that rolled over, and until when they are still taken.
        self.rotated: dict[str, datetime] = {}
        #: Every token's grant (one authorization); revoking one token ends its grant.
        self.grants: dict[str, str] = {}
        self.revoked: set[str] = set()
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
            "authorize_url": f"{self.url}/connect/oauth2",
            "token_url": f"{self.url}/oauth2/v1/tokens/bearer",
            "revoke_url": f"{self.url}/v2/oauth2/tokens/revoke",
            "api_url": f"{self.url}{API}",
        }

    def fail_next(self, path_prefix: str, *faults: Fault) -> None:
        """Answer the next calls whose path starts with ``path_prefix`` with ``faults``, one
        each, in order (before any check of tokens or throttling)."""
        with self.lock:
            self.faults[path_prefix].extend(faults)

    def api_calls(self) -> int:
        return sum(n for key, n in self.calls.items() if key.split(" ", 1)[1].startswith(API))

    # -- tokens ----------------------------------------------------------------------------

    def issue_tokens(self, grant: str | None = None) -> dict[str, Any]:
        """A fresh token answer, as the token endpoint gives it (for a connector the tests
        connect without the browser)."""
        with self.lock:
            grant = grant or secrets.token_hex(8)
            access = "qat-" + secrets.token_urlsafe(24)
            refresh = "qrt-" + secrets.token_urlsafe(24)
            self.access_tokens[access] = self.clock + ACCESS_LIFE
            self.refresh_tokens[refresh] = self.clock + REFRESH_LIFE
            self.grants[access] = self.grants[refresh] = grant
            return {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "bearer",
                "expires_in": int(ACCESS_LIFE.total_seconds()),
                "x_refresh_token_expires_in": int(REFRESH_LIFE.total_seconds()),
            }

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    # -- records -------------------------------------------------------------------------

    def tick(self, minutes: float = 0, seconds: float = 1) -> datetime:
        self.clock += timedelta(minutes=minutes, seconds=seconds if not minutes else 0)
        return self.clock

    def store(self, entity: str) -> dict[str, dict[str, Any]]:
        return {
            "Customer": self.customers,
            "Invoice": self.invoices,
            "CreditMemo": self.credit_memos,
            "Payment": self.payments,
            "Attachable": self.attachables,
            "CustomerType": self.customer_types,
        }[entity]

    def _new(self, entity: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Give ``fields`` an Id, SyncToken "0" and MetaData (now) and keep it."""
        self._ids[entity] += 1
        record_id = str(self._ids[entity])
        now = stamp(self.tick())
        record: dict[str, Any] = {"Id": record_id, "SyncToken": "0"}
        record.update({k: money(v) if k in MONEY else v for k, v in fields.items()})
        record["MetaData"] = {"CreateTime": now, "LastUpdatedTime": now}
        self.store(entity)[record_id] = record
        return record

    def _touch(self, record: dict[str, Any]) -> None:
        """A change: the next SyncToken, and now as LastUpdatedTime."""
        record["SyncToken"] = str(int(record["SyncToken"]) + 1)
        record["MetaData"] = {**record["MetaData"], "LastUpdatedTime": stamp(self.tick())}

    def add_customer_type(self, name: str) -> dict[str, Any]:
        """A customer type, as the user makes one in QuickBooks (Customer types list)."""
        with self.lock:
            return self._new(
                "CustomerType", {"Name": name, "FullyQualifiedName": name, "Active": True}
            )

    def add_customer(self, name: str, **fields: Any) -> dict[str, Any]:
        """A customer called ``name``; e-mail ``<first word>@client.example``, USD."""
        with self.lock:
            base: dict[str, Any] = {
                "DisplayName": name,
                "FullyQualifiedName": name,
                "PrimaryEmailAddr": {"Address": f"{name.split()[0].lower()}@client.example"},
                "Active": True,
                "CurrencyRef": self._currency("USD"),
            }
            base.update(fields)
            return self._new("Customer", base)

    def add_invoice(
        self,
        customer: dict[str, Any],
        number: str,
        total: str | int | Decimal,
        *,
        issued: date,
        due: date,
        currency: str = "USD",
        balance: str | int | Decimal | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """An invoice of ``total`` with one sales line; ``Balance`` is ``total`` unless given."""
        with self.lock:
            amount = money(total)
            base: dict[str, Any] = {
                "DocNumber": number,
                "TxnDate": issued.isoformat(),
                "DueDate": due.isoformat(),
                "CurrencyRef": self._currency(currency),
                "CustomerRef": self._customer_ref(customer),
                "LinkedTxn": [],
                "Line": self._lines(amount, f"Services, invoice {number}"),
                "TotalAmt": amount,
                "Balance": money(balance) if balance is not None else amount,
                "EmailStatus": "NotSet",
            }
            email = (customer.get("PrimaryEmailAddr") or {}).get("Address")
            if email:
                base["BillEmail"] = {"Address": email}
            base.update(fields)
            return self._new("Invoice", base)

    def add_credit_memo(
        self,
        customer: dict[str, Any],
        number: str,
        total: str | int | Decimal,
        *,
        on: date,
        currency: str = "USD",
        **fields: Any,
    ) -> dict[str, Any]:
        """A credit memo of ``total``, all of it still to use (``Balance`` and
        ``RemainingCredit``); ``add_payment(credits=...)`` applies it."""
        with self.lock:
            amount = money(total)
            base: dict[str, Any] = {
                "DocNumber": number,
                "TxnDate": on.isoformat(),
                "CurrencyRef": self._currency(currency),
                "CustomerRef": self._customer_ref(customer),
                "Line": self._lines(amount, f"Credit {number}"),
                "TotalAmt": amount,
                "Balance": amount,
                "RemainingCredit": amount,
            }
            base.update(fields)
            return self._new("CreditMemo", base)

    def add_payment(
        self,
        customer: dict[str, Any],
        lines: Sequence[tuple[dict[str, Any], str | int | Decimal]],
        *,
        on: date,
        credits: Sequence[tuple[dict[str, Any], str | int | Decimal]] = (),
        reference: str | None = None,
        unapplied: str | int | Decimal = "0",
    ) -> dict[str, Any]:
        """A customer payment, in QuickBooks' own terms.

        ``lines`` are ``(invoice, amount)``: ``amount`` is everything applied to that invoice
        by this payment, cash and credit together (QuickBooks' ``Line.Amount``; with no
        ``credits`` it is just the cash). ``credits`` are ``(credit_memo, amount)``: what
        each credit memo gives up. The cash, ``TotalAmt``, is then the sum of ``lines``
        less the sum of ``credits``, plus ``unapplied`` (cash on account, ``UnappliedAmt``).
        Example: invoice 100 settled by credit memo 30 and cash 70 is
        ``lines=[(invoice, "100")], credits=[(memo, "30")]``, ``TotalAmt`` 70.

        Each invoice's ``Balance`` drops by its line amount, and it links the payment
        (``LinkedTxn`` Payment); each credit memo's ``Balance`` and ``RemainingCredit`` drop
        by its amount. Every record changed gets the next SyncToken and a LastUpdatedTime of
        its own, as QuickBooks updates them too.
        """
        with self.lock:
            applied = sum((money(a) for _, a in lines), Decimal(0))
            credited = sum((money(a) for _, a in credits), Decimal(0))
            cash = applied - credited + money(unapplied)
            if cash < 0 or money(unapplied) < 0:
                raise ValueError("more credit than the lines take up")
            for record, amount in [*lines, *credits]:
                if money(amount) > record["Balance"]:
                    raise ValueError(f"{record['DocNumber']}: more than its balance applied")
            currency = (lines or credits or [(customer, "0")])[0][0].get("CurrencyRef")
            base: dict[str, Any] = {
                "TxnDate": on.isoformat(),
                "CustomerRef": self._customer_ref(customer),
                "CurrencyRef": currency or self._currency("USD"),
                "TotalAmt": cash,
                "UnappliedAmt": money(unapplied),
                "Line": [
                    {"Amount": money(amount), "LinkedTxn": [{"TxnId": r["Id"], "TxnType": kind}]}
                    for kind, pairs in (("Invoice", lines), ("CreditMemo", credits))
                    for r, amount in pairs
                ],
            }
            if reference is not None:
                base["PaymentRefNum"] = reference
            payment = self._new("Payment", base)
            for invoice, amount in lines:
                invoice["Balance"] -= money(amount)
                invoice["LinkedTxn"] = [
                    *invoice.get("LinkedTxn", []),
                    {"TxnId": payment["Id"], "TxnType": "Payment"},
                ]
                self._touch(invoice)
            for memo, amount in credits:
                memo["Balance"] -= money(amount)
                memo["RemainingCredit"] = memo.get("RemainingCredit", memo["Balance"]) - money(
                    amount
                )
                self._touch(memo)
            return payment

    def update(self, entity: str, record_id: str, **fields: Any) -> dict[str, Any]:
        """Change fields of a record (``entity`` as "Invoice"): the next SyncToken, now."""
        with self.lock:
            record = self.store(entity)[record_id]
            record.update({k: money(v) if k in MONEY else v for k, v in fields.items()})
            self._touch(record)
            return record

    def update_invoice(self, invoice_id: str, **fields: Any) -> dict[str, Any]:
        return self.update("Invoice", invoice_id, **fields)

    def delete(self, entity: str, record_id: str) -> dict[str, Any]:
        """Delete a record ("Invoice", "Payment", "CreditMemo", "Customer", "Attachable");
        CDC gives its stub from now on."""
        with self.lock:
            del self.store(entity)[record_id]
            stub = {
                "Id": record_id,
                "status": "Deleted",
                "MetaData": {"LastUpdatedTime": stamp(self.tick())},
            }
            self.deleted[entity][record_id] = stub
            return stub

    @staticmethod
    def _currency(code: str) -> dict[str, str]:
        return {"value": code, "name": CURRENCIES.get(code, code)}

    @staticmethod
    def _customer_ref(customer: dict[str, Any]) -> dict[str, str]:
        return {"value": customer["Id"], "name": customer["DisplayName"]}

    @staticmethod
    def _lines(amount: Decimal, description: str) -> list[dict[str, Any]]:
        return [
            {
                "Id": "1",
                "LineNum": 1,
                "Description": description,
                "Amount": amount,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": "1", "name": "Services"},
                    "Qty": 1,
                    "UnitPrice": amount,
                },
            },
            {"Amount": amount, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
        ]

    # -- dispatch --------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        with self.lock:
            self.calls[f"{method} {path}"] += 1
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
                    status, payload, headers = 404, fault("Not found", path, "404"), {}
                if injected is not None:
                    status, payload, headers = (
                        injected.status,
                        injected.body or {},
                        injected.headers,
                    )
            if injected is not None and injected.before is not None:
                injected.before()
            if path == "/oauth2/v1/tokens/bearer" and self.lose_token_answers:
                # Done, and the answer never arrives: the line drops before it.
                self.lose_token_answers -= 1
                request.close_connection = True
                return
            if isinstance(payload, bytes):
                data = payload
            else:
                if isinstance(payload, dict) and path.startswith(API) and "time" not in payload:
                    payload = {**payload, "time": self.clock.isoformat(timespec="milliseconds")}
                data = encode(payload).encode()
        request.send_response(status)
        headers = {"Content-Type": "application/json;charset=UTF-8", **headers}
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        if path == "/connect/oauth2" and method == "GET":
            return self._authorize(query)
        if path == "/oauth2/v1/tokens/bearer" and method == "POST":
            return self._token(headers, {k: v[-1] for k, v in parse_qs(body.decode()).items()})
        if path == "/v2/oauth2/tokens/revoke" and method == "POST":
            return self._revoke(headers, body)
        if not path.startswith(API + "/"):
            raise KeyError(path)
        token = (headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        expires = self.access_tokens.get(token)
        if expires is None or expires <= self.clock:
            return (
                401,
                {
                    "fault": {
                        "error": [
                            {
                                "message": "AuthenticationFailed",
                                "detail": "Token expired or invalid",
                                "code": "3200",
                            }
                        ],
                        "type": "AUTHENTICATION",
                    }
                },
                {"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'},
            )
        segments = path.removeprefix(API + "/").split("/")
        if segments[0] != self.realm_id:
            return (
                403,
                fault(
                    "ApplicationAuthorizationFailed",
                    "The application is not authorised for this company",
                    "003100",
                    "SERVICE",
                ),
                {},
            )
        while self._taken and self._taken[0] <= self.clock - timedelta(minutes=1):
            self._taken.popleft()
        if len(self._taken) >= self.per_minute:
            throttled = fault(
                "ThrottleExceeded",
                f"The request limit of {self.per_minute} a minute for this company is reached",
                "003001",
                "SERVICE",
            )
            retry = {"Retry-After": self.throttle_retry_after} if self.throttle_retry_after else {}
            return 429, throttled, retry
        self._taken.append(self.clock)
        return self._api(method, segments[1:], query, headers, body)

    # -- OAuth -----------------------------------------------------------------------------

    def _authorize(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        # The user signs in, picks this company and consents: back to the redirect URI.
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, {"error": "invalid_request"}, {}
        if not query.get("redirect_uri"):
            return 400, {"error": "invalid_request", "error_description": "redirect_uri"}, {}
        if "com.intuit.quickbooks.accounting" not in query.get("scope", "").split():
            return 400, {"error": "invalid_scope"}, {}
        code = "AB" + secrets.token_urlsafe(24)
        self.codes[code] = {"redirect_uri": query["redirect_uri"]}
        answer = {"code": code, "state": query.get("state", ""), "realmId": self.realm_id}
        joiner = "&" if "?" in query["redirect_uri"] else "?"
        return 302, b"", {"Location": query["redirect_uri"] + joiner + urlencode(answer)}

    def _client_ok(self, headers: Any) -> bool:
        basic = headers.get("Authorization") or ""
        if not basic.startswith("Basic "):
            return False
        try:
            pair = base64.b64decode(basic[6:]).decode()
        except ValueError:
            return False
        return pair == f"{self.client_id}:{self.client_secret}"

    def _token(self, headers: Any, form: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if not self._client_ok(headers):
            return 401, {"error": "invalid_client"}, {}
        grant = form.get("grant_type")
        if grant == "authorization_code":
            entry = self.codes.get(form.get("code", ""))
            if entry is None or entry["redirect_uri"] != form.get("redirect_uri"):
                return 400, {"error": "invalid_grant"}, {}
            del self.codes[form["code"]]
            return 200, self.issue_tokens(), {}
        if grant == "refresh_token":
            old = form.get("refresh_token", "")
            live = self.refresh_tokens.get(old)
            grace = self.rotated.get(old)
            if not (live is not None and self.clock < live) and not (
                grace is not None and self.clock < grace
            ):
                return 400, {"error": "invalid_grant"}, {}
            # The token rolls: a new value each refresh ("store the latest"); the one just
            # used keeps working a day, for a client whose answer got lost.
            self.refresh_tokens.pop(old, None)
            self.rotated.setdefault(old, self.clock + ROLLOVER_GRACE)
            self.refreshes += 1
            return 200, self.issue_tokens(self.grants.get(old)), {}
        return 400, {"error": "unsupported_grant_type"}, {}

    def _revoke(self, headers: Any, body: bytes) -> tuple[int, Any, dict[str, str]]:
        if not self._client_ok(headers):
            return 401, {"error": "invalid_client"}, {}
        if "json" in (headers.get("Content-Type") or "") or body.lstrip().startswith(b"{"):
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                data = None
            if not isinstance(data, dict):
                return 400, {"error": "invalid_request"}, {}
            token = str(data.get("token", ""))
        else:
            token = {k: v[-1] for k, v in parse_qs(body.decode()).items()}.get("token", "")
        grant = self.grants.get(token)
        gone = {t for t, g in self.grants.items() if g == grant} if grant else {token}
        for each in gone:
            self.access_tokens.pop(each, None)
            self.refresh_tokens.pop(each, None)
            self.rotated.pop(each, None)
            self.grants.pop(each, None)
        self.revoked |= gone
        return 200, b"", {}

    # -- accounting ------------------------------------------------------------------------

    def _api(
        self, method: str, segments: list[str], query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        resource = segments[0].lower() if segments else ""
        if resource == "query" and method in ("GET", "POST"):
            text = query.get("query") if method == "GET" else body.decode()
            return self._query(text or "")
        if resource == "cdc" and method == "GET":
            return self._cdc(query)
        if resource == "batch" and method == "POST":
            return self._batch(query, body)
        if resource == "companyinfo" and method == "GET" and len(segments) == 2:
            if segments[1] != self.realm_id:
                return 400, not_found("CompanyInfo", segments[1]), {}
            info = {
                "CompanyName": self.company_name,
                "Country": "US",
                "Id": "1",
                "SyncToken": "0",
            }
            return 200, {"CompanyInfo": info}, {}
        entity = SEGMENTS.get(resource)
        if entity is None:
            raise KeyError(resource)
        if method == "POST":
            request_id = query.get("requestid")
            if request_id and request_id in self.requestids:
                status, payload = self.requestids[request_id]
                return status, copy.deepcopy(payload), {}
            status, payload = self._write(entity, segments[1:], query, body)
            if request_id and status == 200:
                self.requestids[request_id] = (status, copy.deepcopy(payload))
            return status, payload, {}
        if method != "GET" or len(segments) not in (2, 3):
            raise KeyError("/".join(segments))
        record = self.store(entity).get(segments[1])
        if record is None:
            return 400, not_found(entity, segments[1]), {}
        wants_pdf = "application/pdf" in (headers.get("Accept") or "")
        if len(segments) == 3:
            if entity != "Invoice" or segments[2] != "pdf":
                raise KeyError(segments[2])
            wants_pdf = True
        if wants_pdf:
            if entity != "Invoice":
                raise KeyError(segments[1])
            pdf = b"%PDF-1.4 fake invoice " + str(record["DocNumber"]).encode()
            return 200, pdf, {"Content-Type": "application/pdf"}
        # The customer's pay link: only asked for, and only with online payment on.
        if entity == "Invoice" and query.get("include") == "invoiceLink" and self.online_payments:
            link = f"https://connect.intuit.example/t/{self.realm_id}/inv/{record['Id']}"
            return 200, {entity: {**record, "InvoiceLink": link}}, {}
        return 200, {entity: record}, {}

    def _write(
        self, entity: str, segments: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        if entity == "Invoice" and len(segments) == 2 and segments[1] == "send":
            return self._send(segments[0], query)
        if segments:
            raise KeyError("/".join(segments))
        try:
            data = json.loads(body or b"null", parse_float=Decimal)
        except ValueError:
            return 400, fault("Request has invalid or unsupported property", "Bad JSON", "2010")
        if not isinstance(data, dict):
            return 400, fault(
                "Request has invalid or unsupported property", "Not an object", "2010"
            )
        if "Id" in data:
            return self._update(entity, data)
        if entity == "Attachable":
            return self._attach(data)
        if entity == "CustomerType":
            return 400, fault("Operation Create is not supported", "CustomerType", "500")
        return 400, fault("Operation not supported by the fake", f"Create {entity}", "2010")

    def _batch(self, query: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        """POST /batch: up to 30 operations, each answered on its own (its record, or its
        Fault) under its bId; here the creation of attachables. Idempotent by requestid."""
        request_id = query.get("requestid")
        if request_id and request_id in self.requestids:
            status, payload = self.requestids[request_id]
            return status, copy.deepcopy(payload), {}
        try:
            items = json.loads(body or b"null", parse_float=Decimal)["BatchItemRequest"]
        except (ValueError, KeyError, TypeError):
            return (
                400,
                fault("Request has invalid or unsupported property", "Bad batch", "2010"),
                {},
            )
        if not isinstance(items, list) or len(items) > 30:
            return 400, fault("Batch size exceeds the limit of 30", "BatchItemRequest", "2010"), {}
        answers = []
        for item in items:
            if item.get("operation") != "create" or "Attachable" not in item:
                answers.append(
                    {"bId": item.get("bId"), "Fault": fault("Unsupported", "op", "2010")["Fault"]}
                )
                continue
            status, payload = self._attach(item["Attachable"])
            if status == 200:
                answers.append({"bId": item.get("bId"), "Attachable": payload["Attachable"]})
            else:
                answers.append({"bId": item.get("bId"), "Fault": payload["Fault"]})
        payload = {"BatchItemResponse": answers}
        if request_id:
            self.requestids[request_id] = (200, copy.deepcopy(payload))
        return 200, payload, {}

    def _attach(self, data: dict[str, Any]) -> tuple[int, Any]:
        note = data.get("Note")
        if not isinstance(note, str) or not note.strip():
            return 400, fault("Required param missing, need to supply the required value", "Note")
        refs = data.get("AttachableRef") or []
        if not isinstance(refs, list):
            return 400, fault("Request has invalid or unsupported property", "AttachableRef")
        kept = []
        for ref in refs:
            entity_ref = ref.get("EntityRef") if isinstance(ref, dict) else None
            kind = entity_ref.get("type") if isinstance(entity_ref, dict) else None
            value = str(entity_ref.get("value")) if isinstance(entity_ref, dict) else ""
            if kind not in ENTITIES or kind == "Attachable" or value not in self.store(kind):
                return 400, fault("Invalid Reference Id", f"EntityRef {kind} {value}", "2500")
            kept.append(
                {
                    "EntityRef": {"type": kind, "value": value},
                    "IncludeOnSend": bool(ref.get("IncludeOnSend", False)),
                }
            )
        attachable = self._new("Attachable", {"Note": note, "AttachableRef": kept})
        return 200, {"Attachable": attachable}

    def _update(self, entity: str, data: dict[str, Any]) -> tuple[int, Any]:
        record = self.store(entity).get(str(data["Id"]))
        if record is None:
            return 400, not_found(entity, str(data["Id"]))
        if str(data.get("SyncToken")) != record["SyncToken"]:
            detail = (
                "Stale Object Error : You and another user were working on the same thing. "
                "Please try again."
            )
            return 400, fault("Stale Object Error", detail, "5010")
        changes = {
            k: money(v) if k in MONEY else v
            for k, v in data.items()
            if k not in ("Id", "SyncToken", "MetaData", "sparse", "domain")
        }
        kind = data.get("CustomerTypeRef")
        if entity == "Customer" and kind is not None:
            chosen = self.customer_types.get(str((kind or {}).get("value")))
            if chosen is None:
                return 400, fault("Invalid Reference Id", f"CustomerTypeRef {kind}", "2500")
            changes["CustomerTypeRef"] = {"value": chosen["Id"], "name": chosen["Name"]}
        if not data.get("sparse"):
            # A full update: what the request leaves out is cleared.
            kept = {k: record[k] for k in ("Id", "SyncToken", "MetaData")}
            record.clear()
            record.update(kept)
        record.update(changes)
        self._touch(record)
        return 200, {entity: record}

    def _send(self, invoice_id: str, query: dict[str, str]) -> tuple[int, Any]:
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            return 400, not_found("Invoice", invoice_id)
        to = query.get("sendTo") or (invoice.get("BillEmail") or {}).get("Address")
        if not to or "@" not in to:
            return 400, fault("Invalid Email Address", "No e-mail address to send to", "6140")
        if query.get("sendTo"):
            invoice["BillEmail"] = {"Address": to}
        invoice["EmailStatus"] = "EmailSent"
        invoice["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": stamp(self.clock)}
        self._touch(invoice)
        self.sent_invoices.append((invoice_id, to))
        return 200, {"Invoice": invoice}

    # -- reading many ----------------------------------------------------------------------

    def _query(self, text: str) -> tuple[int, Any, dict[str, str]]:
        try:
            entity, counting, rows, start, most = self._parse(text)
        except QueryError as exc:
            return 400, parse_error(str(exc)), {}
        if counting:
            return 200, {"QueryResponse": {"totalCount": len(rows)}}, {}
        page = rows[start - 1 : start - 1 + most]
        if self.shuffle_pages:
            page = self.random.sample(page, len(page))
        self.served.append(len(page))
        if not page:
            return 200, {"QueryResponse": {}}, {}
        answer = {entity: page, "startPosition": start, "maxResults": len(page)}
        return 200, {"QueryResponse": answer}, {}

    def _parse(self, text: str) -> tuple[str, bool, list[dict[str, Any]], int, int]:
        """(entity, count?, the rows the where-clause keeps in Id order, start, most)."""
        found = QUERY.match(text)
        if found is None:
            raise QueryError(f"Encountered an unexpected token in {text!r}")
        entity = SEGMENTS.get(found["entity"].lower())
        if entity is None:
            raise QueryError(f"Unknown entity {found['entity']!r}")
        rows = sorted(self.store(entity).values(), key=lambda r: int(r["Id"]))
        for condition in re.split(r"\s+and\s+", found["where"] or "", flags=re.I):
            if not condition.strip():
                continue
            after = UPDATED_AFTER.match(condition.strip())
            within = ID_IN.match(condition.strip())
            named = NAME_IS.match(condition.strip())
            if named is not None:
                wanted_name = re.sub(r"\\(.)", r"\1", named["name"])
                rows = [r for r in rows if r.get("Name") == wanted_name]
            elif after is not None:
                try:
                    moment = parse_time(after["moment"])
                except ValueError as exc:
                    raise QueryError(f"Bad time {after['moment']!r}") from exc
                rows = [r for r in rows if parse_time(r["MetaData"]["LastUpdatedTime"]) > moment]
            elif within is not None:
                wanted = set(re.findall(r"'([^']*)'", within["ids"]))
                rows = [r for r in rows if r["Id"] in wanted]
            else:
                raise QueryError(f"Unsupported condition {condition.strip()!r}")
        start = int(found["start"] or 1)
        most = int(found["max"] or 100)
        if start < 1:
            raise QueryError("STARTPOSITION starts at 1")
        if not 1 <= most <= MAX_RESULTS:
            raise QueryError(f"MAXRESULTS must be between 1 and {MAX_RESULTS}")
        return entity, not found["what"].startswith("*"), rows, start, most

    def _cdc(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        asked = [e.strip() for e in (query.get("entities") or "").split(",") if e.strip()]
        entities = [SEGMENTS.get(e.lower()) for e in asked]
        if not asked or None in entities:
            return 400, fault("Invalid entities", f"entities={query.get('entities')}", "2010"), {}
        try:
            since = parse_time(query["changedSince"])
        except (KeyError, ValueError):
            return 400, fault("Invalid changedSince", "changedSince is required", "2010"), {}
        if since < self.clock - CDC_REACH:
            return (
                400,
                fault("Invalid changedSince", "changedSince is more than 30 days ago", "2010"),
                {},
            )
        parts: list[dict[str, Any]] = []
        total = 0
        for entity in entities:
            assert entity is not None
            rows = self._changed(entity, since)[:MAX_RESULTS]
            total += len(rows)
            if rows:
                count = len(rows)
                parts.append(
                    {entity: rows, "startPosition": 1, "maxResults": count, "totalCount": count}
                )
            else:
                parts.append({})
        self.served.append(total)
        return 200, {"CDCResponse": [{"QueryResponse": parts}]}, {}

    def _changed(self, entity: str, since: datetime) -> list[dict[str, Any]]:
        def when(record: dict[str, Any]) -> datetime:
            return parse_time(record["MetaData"]["LastUpdatedTime"])

        every: Iterable[dict[str, Any]] = [
            *self.store(entity).values(),
            *self.deleted[entity].values(),
        ]
        changed = [r for r in every if when(r) > since]
        return sorted(changed, key=lambda r: (when(r), int(r["Id"])))

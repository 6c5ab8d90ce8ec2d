"""A fake Xero on loopback: identity, connections and the slice of the Accounting API we use.

It behaves like the platform where our connector could get it wrong, and answers in the
shapes of ../shared/specs/xero/xero_accounting.yaml (list envelopes with ``pagination``,
MS-JSON dates, ``UpdatedDateUTC``):

- OAuth 2: authorization code with PKCE (S256 checked), refresh tokens that rotate (the
  previous one stops working), access tokens that expire, revocation;
- ``/connections`` and the ``xero-tenant-id`` header on every Accounting call;
- paging (``page``, ``pageSize`` up to 1000), ``If-Modified-Since``, ``IDs``, ``where`` on
  ``Type``/``PaymentType``;
- History (GET/PUT, with ``Idempotency-Key``), Email, the PDF, the online invoice link;
- faults on demand (``fail_next``): 429 with ``Retry-After``, 5xx, 401;
- a count of every call, by method and path, for the tests' call budgets, and of the
  records every list answer carried (``served``).

Records are held as Xero JSON; tests add and change them with the helpers.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

API = "/api.xro/2.0"


def ms_date(moment: datetime | date) -> str:
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    #: Done in the server just before this answer goes out (another process's work).
    before: Callable[[], None] | None = None


class FakeXero:
    def __init__(self, *, client_id: str = "kindly-test-client", client_secret: str = "") -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
        self.tenants = [
            {
                "id": str(uuid.uuid4()),
                "authEventId": str(uuid.uuid4()),
                "tenantId": str(uuid.uuid4()),
                "tenantType": "ORGANISATION",
                "tenantName": "Noordlicht Studio",
                "createdDateUtc": "2026-01-01T00:00:00.0000000",
                "updatedDateUtc": "2026-01-01T00:00:00.0000000",
            }
        ]
        self.contacts: dict[str, dict[str, Any]] = {}
        #: Contact groups by ContactGroupID; members are kept on each contact's ContactGroups.
        self.contact_groups: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.credit_notes: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.history: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self.emailed: list[str] = []
        self.idempotency: set[str] = set()
        self.calls: collections.Counter[str] = collections.Counter()
        #: Records in each list answer, in order.
        self.served: list[int] = []
        self.faults: collections.defaultdict[str, list[Fault]] = collections.defaultdict(list)
        # OAuth state
        self.codes: dict[str, dict[str, str]] = {}
        self.access_tokens: dict[str, datetime] = {}
        self.refresh_tokens: set[str] = set()
        #: Refresh tokens rotated away, and until when they are still taken.
        self.rotated: dict[str, datetime] = {}
        #: Token answers to lose: the request is carried out, the connection then dropped.
        self.lose_token_answers = 0
        self.revoked: set[str] = set()
        self.refreshes = 0
        #: What X-DayLimit-Remaining says; each Accounting call uses one.
        #: Whether Xero sends its own invoice reminders (off unless a test turns them on).
        self.invoice_reminders = False
        self.day_remaining = 5000
        #: Answer this many Email requests with a 504 after sending the e-mail anyway.
        self.fail_after_email = 0
        #: Xero's 60 calls a minute per organisation, when set: a call beyond it is
        #: answered 429 with Retry-After (and counted in ``limited``), as Xero does.
        self.per_minute: int | None = None
        self.limited = 0
        #: Answer every History write with 429 and an hour's Retry-After (notes wait).
        self.refuse_history = False
        #: When each Accounting call arrived (time.monotonic), for counting windows.
        self.arrivals: list[float] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- serving -------------------------------------------------------------------------

    def start(self, poll_interval: float = 0.05) -> str:
        """Serve on a free port of 127.0.0.1; ``poll_interval``: how often the server
        looks whether it was told to stop (a benchmark with a thousand fakes: less often)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_PUT(self) -> None:
                fake._handle(self, "PUT")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_DELETE(self) -> None:
                fake._handle(self, "DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True
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

    @property
    def tenant_id(self) -> str:
        return str(self.tenants[0]["tenantId"])

    def endpoints(self) -> dict[str, str]:
        return {
            "authorize_url": f"{self.url}/identity/connect/authorize",
            "token_url": f"{self.url}/connect/token",
            "revoke_url": f"{self.url}/connect/revocation",
            "connections_url": f"{self.url}/connections",
            "api_url": f"{self.url}{API}",
        }

    def fail_next(self, path_prefix: str, *faults: Fault) -> None:
        self.faults[path_prefix].extend(faults)

    def api_calls(self) -> int:
        return sum(n for key, n in self.calls.items() if f" {API}" in key)

    # -- tokens ----------------------------------------------------------------------------

    def issue_tokens(self) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(24)
        refresh = "rt-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = self.clock + timedelta(minutes=30)
        self.refresh_tokens.add(refresh)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": 1800,
            "token_type": "Bearer",
            "scope": "offline_access accounting.transactions accounting.contacts",
        }

    def expire_access_tokens(self) -> None:
        self.access_tokens.clear()

    # -- records -------------------------------------------------------------------------

    def tick(self, minutes: float = 0, seconds: float = 1) -> datetime:
        self.clock += timedelta(minutes=minutes, seconds=seconds if not minutes else 0)
        return self.clock

    def add_contact(self, name: str, **fields: Any) -> dict[str, Any]:
        contact: dict[str, Any] = {
            "ContactID": str(uuid.uuid4()),
            "ContactStatus": "ACTIVE",
            "Name": name,
            "EmailAddress": f"{name.split()[0].lower()}@client.example",
            "ContactPersons": [],
            "Addresses": [],
            "Phones": [],
            "ContactGroups": [],
            "IsCustomer": True,
            "IsSupplier": False,
        }
        contact.update(fields)
        contact["UpdatedDateUTC"] = ms_date(self.tick())
        self.contacts[contact["ContactID"]] = contact
        for group in contact["ContactGroups"]:
            self.contact_groups.setdefault(group["ContactGroupID"], {**group, "Status": "ACTIVE"})
        return contact

    def add_invoice(
        self,
        contact: dict[str, Any],
        number: str,
        total: str,
        *,
        issued: date,
        due: date,
        currency: str = "EUR",
        status: str = "AUTHORISED",
        amount_due: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        invoice: dict[str, Any] = {
            "Type": "ACCREC",
            "InvoiceID": str(uuid.uuid4()),
            "InvoiceNumber": number,
            "Reference": fields.pop("Reference", ""),
            "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
            "Date": ms_date(issued),
            "DateString": f"{issued.isoformat()}T00:00:00",
            "DueDate": ms_date(due),
            "DueDateString": f"{due.isoformat()}T00:00:00",
            "Status": status,
            "CurrencyCode": currency,
            "SubTotal": float(total),
            "TotalTax": 0.0,
            "Total": float(total),
            "AmountDue": float(amount_due if amount_due is not None else total),
            "AmountPaid": float(total) - float(amount_due if amount_due is not None else total),
            "AmountCredited": 0.0,
            "Payments": [],
            "CreditNotes": [],
            "HasAttachments": False,
            "LineItems": [],
        }
        invoice.update(fields)
        invoice["UpdatedDateUTC"] = ms_date(self.tick())
        self.invoices[invoice["InvoiceID"]] = invoice
        return invoice

    def update_invoice(self, invoice_id: str, **fields: Any) -> dict[str, Any]:
        invoice = self.invoices[invoice_id]
        invoice.update(fields)
        invoice["UpdatedDateUTC"] = ms_date(self.tick())
        return invoice

    def add_payment(self, invoice: dict[str, Any], amount: str, on: date) -> dict[str, Any]:
        payment: dict[str, Any] = {
            "PaymentID": str(uuid.uuid4()),
            "Date": ms_date(on),
            "Amount": float(amount),
            "Reference": "",
            "Status": "AUTHORISED",
            "PaymentType": "ACCRECPAYMENT",
            "IsReconciled": True,
            "Invoice": {
                "InvoiceID": invoice["InvoiceID"],
                "InvoiceNumber": invoice["InvoiceNumber"],
                "CurrencyCode": invoice["CurrencyCode"],
            },
            "UpdatedDateUTC": ms_date(self.tick()),
        }
        self.payments[payment["PaymentID"]] = payment
        due = round(invoice["AmountDue"] - float(amount), 2)
        self.update_invoice(
            invoice["InvoiceID"],
            AmountDue=due,
            AmountPaid=round(invoice["AmountPaid"] + float(amount), 2),
            Status="PAID" if due <= 0 else invoice["Status"],
        )
        return payment

    def add_credit_note(
        self, contact: dict[str, Any], number: str, total: str, on: date, *, allocate_to: Any = ()
    ) -> dict[str, Any]:
        allocations: list[dict[str, Any]] = [
            {
                "Amount": float(amount),
                "Date": ms_date(on),
                "Invoice": {
                    "InvoiceID": invoice["InvoiceID"],
                    "InvoiceNumber": invoice["InvoiceNumber"],
                },
            }
            for invoice, amount in allocate_to
        ]
        note: dict[str, Any] = {
            "Type": "ACCRECCREDIT",
            "CreditNoteID": str(uuid.uuid4()),
            "CreditNoteNumber": number,
            "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
            "Date": ms_date(on),
            "Status": "AUTHORISED",
            "CurrencyCode": "EUR",
            "Total": float(total),
            "RemainingCredit": float(total) - sum(a["Amount"] for a in allocations),
            "Allocations": allocations,
            "UpdatedDateUTC": ms_date(self.tick()),
        }
        self.credit_notes[note["CreditNoteID"]] = note
        for invoice, amount in allocate_to:
            self.update_invoice(
                invoice["InvoiceID"],
                AmountDue=round(invoice["AmountDue"] - float(amount), 2),
                AmountCredited=round(invoice["AmountCredited"] + float(amount), 2),
            )
        return note

    # -- dispatch --------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        with self.lock:
            self.calls[f"{method} {path}"] += 1
            if path.startswith(API):
                now = time.monotonic()
                recent = [t for t in self.arrivals if now - t < 60]
                if self.per_minute is not None and len(recent) >= self.per_minute:
                    self.limited += 1
                    wait = str(int(60 - (now - recent[0])) + 1)
                    headers = {"Retry-After": wait, "X-Rate-Limit-Problem": "minute"}
                    self._reply(request, 429, {"Title": "Too many requests"}, headers)
                    return
                self.arrivals.append(now)
                if self.refuse_history and method == "PUT" and path.endswith("/History"):
                    headers = {"Retry-After": "3600", "X-Rate-Limit-Problem": "minute"}
                    self._reply(request, 429, {"Title": "Too many requests"}, headers)
                    return
            for prefix, queued in self.faults.items():
                if queued and path.startswith(prefix):
                    fault = queued.pop(0)
                    if fault.before is not None:
                        fault.before()
                    self._reply(request, fault.status, fault.body or {}, fault.headers)
                    return
            try:
                status, payload, headers = self._route(method, path, query, request.headers, body)
            except KeyError:
                status, payload, headers = (
                    404,
                    {"Message": "The resource you're looking for cannot be found"},
                    {},
                )
            if path == "/connect/token" and self.lose_token_answers:
                # Done, and the answer never arrives: the line drops before it.
                self.lose_token_answers -= 1
                request.close_connection = True
                return
        self._reply(request, status, payload, headers)

    def _reply(
        self,
        request: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        headers: dict[str, str],
    ) -> None:
        if isinstance(payload, bytes):
            data = payload
        elif status in (204, 304):
            data = b""
        else:
            data = json.dumps(payload).encode()
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
        if path == "/identity/connect/authorize" and method == "GET":
            return self._authorize(query)
        if path == "/connect/token" and method == "POST":
            return self._token(headers, parse_qs(body.decode()))
        if path == "/connect/revocation" and method == "POST":
            form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
            self.refresh_tokens.discard(form.get("token", ""))
            self.revoked.add(form.get("token", ""))
            return 200, b"", {}
        token = (headers.get("Authorization") or "").removeprefix("Bearer ")
        expires = self.access_tokens.get(token)
        if expires is None or expires <= self.clock:
            return (
                401,
                {"Title": "Unauthorized", "Detail": "TokenExpired"},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if path == "/connections" and method == "GET":
            return 200, self.tenants, {}
        if path.startswith("/connections/") and method == "DELETE":
            self.tenants = [t for t in self.tenants if t["id"] != path.rsplit("/", 1)[1]]
            return 204, b"", {}
        if not path.startswith(API):
            raise KeyError(path)
        if headers.get("xero-tenant-id") not in {t["tenantId"] for t in self.tenants}:
            return (
                403,
                {
                    "Type": "AuthorizationUnsuccessful",
                    "Title": "Forbidden",
                    "Detail": "AuthenticationUnsuccessful",
                },
                {},
            )
        self.day_remaining -= 1
        rate = {
            "X-MinLimit-Remaining": "59",
            "X-DayLimit-Remaining": str(self.day_remaining),
            "X-AppMinLimit-Remaining": "9999",
        }
        status, payload, extra = self._api(method, path.removeprefix(API), query, headers, body)
        return status, payload, {**rate, **extra}

    def _authorize(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        # The user signs in and consents: the browser is sent back to the redirect URI.
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, {"error": "invalid_request"}, {}
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return 400, {"error": "invalid_request", "error_description": "PKCE required"}, {}
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "challenge": query["code_challenge"],
            "redirect_uri": query["redirect_uri"],
        }
        target = (
            query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
        )
        return 302, b"", {"Location": target}

    def _token(self, headers: Any, form: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        values = {k: v[-1] for k, v in form.items()}
        client_id = values.get("client_id")
        basic = headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id = base64.b64decode(basic[6:]).decode().split(":", 1)[0]
        if client_id != self.client_id:
            return 401, {"error": "invalid_client"}, {}
        grant = values.get("grant_type")
        if grant == "authorization_code":
            entry = self.codes.pop(values.get("code", ""), None)
            if entry is None or entry["redirect_uri"] != values.get("redirect_uri"):
                return 400, {"error": "invalid_grant"}, {}
            verifier = values.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if challenge.rstrip(b"=").decode() != entry["challenge"]:
                return 400, {"error": "invalid_grant", "error_description": "PKCE mismatch"}, {}
            return 200, self.issue_tokens(), {}
        if grant == "refresh_token":
            old = values.get("refresh_token", "")
            rotated_until = self.rotated.get(old)
            within_grace = rotated_until is not None and self.clock < rotated_until
            if old not in self.refresh_tokens and not within_grace:
                return 400, {"error": "invalid_grant"}, {}
            # Rotation: the refresh token just used works for 30 more minutes only, for a
            # client whose answer got lost (Xero's documented grace period).
            self.refresh_tokens.discard(old)
            self.rotated.setdefault(old, self.clock + timedelta(minutes=30))
            self.refreshes += 1
            return 200, self.issue_tokens(), {}
        return 400, {"error": "unsupported_grant_type"}, {}

    # -- accounting ------------------------------------------------------------------------

    def _api(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        segments = path.strip("/").split("/")
        resource = segments[0]
        if resource == "InvoiceReminders" and segments[1:] == ["Settings"] and method == "GET":
            # Xero's own reminder e-mails (Business settings, Invoice reminders).
            return 200, {"InvoiceReminders": [{"Enabled": self.invoice_reminders}]}, {}
        if resource == "ContactGroups":
            return self._contact_groups(method, segments[1:], headers, body)
        collections_by_name = {
            "Invoices": ("InvoiceID", self.invoices),
            "Contacts": ("ContactID", self.contacts),
            "CreditNotes": ("CreditNoteID", self.credit_notes),
            "Payments": ("PaymentID", self.payments),
        }
        if resource not in collections_by_name:
            raise KeyError(resource)
        id_field, records = collections_by_name[resource]
        if len(segments) == 1 and method == "GET":
            return self._list(resource, records, id_field, query, headers)
        record_id = segments[1]
        if record_id not in records:
            raise KeyError(record_id)
        if len(segments) == 2 and method == "GET":
            if "application/pdf" in (headers.get("Accept") or ""):
                number = records[record_id].get("InvoiceNumber", record_id)
                return (
                    200,
                    b"%PDF-1.4 fake invoice " + number.encode(),
                    {"Content-Type": "application/pdf"},
                )
            return 200, self._envelope(resource, [records[record_id]]), {}
        action = segments[2]
        if action == "History":
            if method == "GET":
                return 200, {"HistoryRecords": self.history[record_id]}, {}
            if method == "PUT":
                key = headers.get("Idempotency-Key")
                data = json.loads(body)
                if key and key in self.idempotency:
                    return 200, data, {}
                if key:
                    self.idempotency.add(key)
                for entry in data["HistoryRecords"]:
                    self.history[record_id].append(
                        {
                            "Details": entry["Details"],
                            "Changes": "Note",
                            "User": "Kindly",
                            "DateUTC": ms_date(self.clock),
                        }
                    )
                return 200, data, {}
        if action == "OnlineInvoice" and method == "GET":
            return (
                200,
                {
                    "OnlineInvoices": [
                        {"OnlineInvoiceUrl": f"https://in.xero.example/{record_id[:8]}"}
                    ]
                },
                {},
            )
        if action == "Email" and method == "POST":
            key = headers.get("Idempotency-Key")
            if key and key in self.idempotency:
                return 204, b"", {}  # the same request again: Xero does not send twice
            if key:
                self.idempotency.add(key)
            self.emailed.append(record_id)
            if self.fail_after_email:
                self.fail_after_email -= 1
                # Sent, but the answer is lost: the client must not get it twice.
                return 504, {"Message": "Gateway timeout"}, {}
            return 204, b"", {}
        raise KeyError(action)

    def _contact_groups(
        self, method: str, segments: list[str], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """GET and PUT /ContactGroups, PUT /ContactGroups/{id}/Contacts and DELETE
        /ContactGroups/{id}/Contacts/{ContactID}, as xero_accounting.yaml describes them."""
        if not segments:
            if method == "GET":
                groups = [g for g in self.contact_groups.values() if g["Status"] == "ACTIVE"]
                return 200, {"ContactGroups": groups}, {}
            if method == "PUT":
                made = []
                for entry in json.loads(body)["ContactGroups"]:
                    if any(g["Name"] == entry["Name"] for g in self.contact_groups.values()):
                        return 400, self._validation("A contact group with this name exists"), {}
                    made.append(self.add_contact_group(entry["Name"]))
                return 200, {"ContactGroups": made}, {}
        group = self.contact_groups.get(segments[0])
        if group is None:
            return 404, {"Title": "Not Found"}, {}
        if segments[1:2] == ["Contacts"]:
            if method == "PUT" and len(segments) == 2:
                added = []
                for entry in json.loads(body)["Contacts"]:
                    contact = self.contacts.get(entry["ContactID"])
                    if contact is None:
                        return 400, self._validation("The contact does not exist"), {}
                    self.join(contact, group)
                    added.append({"ContactID": contact["ContactID"]})
                return 200, {"Contacts": added}, {}
            if method == "DELETE" and len(segments) == 3:
                contact = self.contacts.get(segments[2])
                if contact is None:
                    return 400, self._validation("The contact does not exist"), {}
                contact["ContactGroups"] = [
                    g
                    for g in contact["ContactGroups"]
                    if g["ContactGroupID"] != group["ContactGroupID"]
                ]
                contact["UpdatedDateUTC"] = ms_date(self.tick())
                return 204, b"", {}
        raise KeyError("/".join(segments))

    @staticmethod
    def _validation(message: str) -> dict[str, Any]:
        return {"ErrorNumber": 10, "Type": "ValidationException", "Message": message}

    def add_contact_group(self, name: str) -> dict[str, Any]:
        group = {"ContactGroupID": str(uuid.uuid4()), "Name": name, "Status": "ACTIVE"}
        self.contact_groups[group["ContactGroupID"]] = group
        return group

    def join(self, contact: dict[str, Any], group: dict[str, Any]) -> None:
        """Put ``contact`` in ``group``; the contact counts as changed (an incremental sync
        reads it again)."""
        if all(g["ContactGroupID"] != group["ContactGroupID"] for g in contact["ContactGroups"]):
            contact["ContactGroups"].append(dict(group))
        contact["UpdatedDateUTC"] = ms_date(self.tick())

    def _list(
        self,
        resource: str,
        records: dict[str, dict[str, Any]],
        id_field: str,
        query: dict[str, str],
        headers: Any,
    ) -> tuple[int, Any, dict[str, str]]:
        items = sorted(records.values(), key=lambda r: (r["UpdatedDateUTC"], r[id_field]))
        since = headers.get("If-Modified-Since")
        if since:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            items = [r for r in items if _parse_ms(r["UpdatedDateUTC"]) > moment]
        if query.get("IDs"):
            wanted = set(query["IDs"].split(","))
            items = [r for r in items if r[id_field] in wanted]
        where = query.get("where", "")
        for clause in filter(None, (c.strip() for c in where.split("&&"))):
            name, _, value = clause.partition("==")
            value = value.strip().strip('"')
            if value in ("true", "false"):
                items = [r for r in items if bool(r.get(name.strip())) == (value == "true")]
            else:
                items = [r for r in items if str(r.get(name.strip())) == value]
        page_size = min(int(query.get("pageSize") or 100), 1000)
        page = int(query.get("page") or 1)
        count = len(items)
        chunk = items[(page - 1) * page_size : page * page_size]
        self.served.append(len(chunk))
        envelope = self._envelope(resource, chunk)
        envelope["pagination"] = {
            "page": page,
            "pageSize": page_size,
            "pageCount": max(1, -(-count // page_size)),
            "itemCount": count,
        }
        return 200, envelope, {}

    def _envelope(self, resource: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Id": str(uuid.uuid4()),
            "Status": "OK",
            "ProviderName": "Kindly",
            "DateTimeUTC": ms_date(self.clock),
            resource: [dict(item) for item in items],
        }


def _parse_ms(value: str) -> datetime:
    millis = int(value[6:].split("+")[0].split(")")[0])
    return datetime.fromtimestamp(millis / 1000, tz=UTC)

"""Pennylane (France): customers, customer invoices with their payments, and credit notes
in; Pennylane's own invoice e-mail out. No notes: Pennylane has nowhere to keep them.

One connector per company, on the OAuth platform base
(:mod:`integrations.bookkeeping.oauth_platform`); what its records mean is in
:mod:`integrations.bookkeeping.pennylane_records`. What it does with the Company API v2
(docs/research/pennylane-api.md):

- **Connect**: OAuth 2 for a confidential app: the token endpoint and the revocation
  endpoint take the app's id and secret in the form (:class:`PennylaneOAuthApp`). A token
  reaches ONE company, chosen on Pennylane's consent screen: the tenant is ``GET /me``'s
  company. Access tokens last 24 hours, and every refresh retires both the refresh token
  used and the access token it gave: the vault keeps the new pair at once (the base's
  :meth:`~integrations.oauth.TokenVault.fresh`).
- **Sync**: the first sync reads every customer and every invoice that is not a draft,
  100 a call, following ``next_cursor``. After it, the change logs
  (``changelogs/customers``, ``changelogs/customer_invoices``: each id with ``insert``,
  ``update`` or ``delete``, up to 1000 a call) are read on from the bookmark, and only the
  records they name are fetched, by an ``id in`` filter, 100 a call; a deleted one is
  dropped. Pennylane keeps four weeks of changes: a bookmark older than that reads
  everything again. An unchanged company costs two calls.
- **Payments**: ``customer_invoices/{id}/payments``, one call per invoice, asked only for
  an invoice read in this sync that shows money paid (all of them on the first sync).
- **Fresh re-check**: the invoices a reminder names, by the same ``id in`` filter.
- **Notes**: none. Pennylane has no comment, note or activity on an invoice: the notes
  stay in Kindly's history (``Capability.NOTES`` is not declared) and ``kindly history
  --rebuild`` cannot restore it from Pennylane.
- **Extras**: the invoice PDF (``public_file_url``: public, valid 30 minutes, so it is
  asked for afresh and fetched without our token), and Pennylane's own e-mail
  (``send_by_email``), which takes no idempotency key: a lost answer leaves it in doubt,
  and a 409 (the PDF is still being made) is tried again on the next run.
- **Rate limits**: 25 calls in any 5 seconds per token. :class:`PennylaneBudget` keeps
  to 20, and waits out a window when ``ratelimit-remaining`` says none is left; a 429 is
  waited out as its ``retry-after`` says, by the HTTP client.
- **Webhooks**: not used. Pennylane's are in beta with three events, none for an invoice
  or a payment; the change logs stay the way to see changes. Nor does the API show
  Pennylane's own reminders ("Relance d'impayés"):
  :meth:`PennylaneConnector.platform_reminders` cannot tell.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode

from integrations.base import Capability, ConnectorSettings
from integrations.bookkeeping import pennylane_records as records
from integrations.bookkeeping.oauth_platform import (
    OAuthPlatform,
    OAuthPlatformSettings,
    Tenant,
    endpoint,
)
from integrations.fields import moment
from integrations.http import (
    AuthError,
    CallBudget,
    FatalError,
    HttpClient,
    HttpError,
    Limit,
    Response,
    RetriableError,
    WindowBudget,
)
from integrations.oauth import OAuthApp, Token, TokenVault
from integrations.pagination import Page, Paginator, paginate
from integrations.sync import Merge, each_readable
from integrations.workspace import Workspace
from plugin.core.model import CreditNote, Invoice, LedgerSnapshot, Note
from plugin.core.vocabulary import EmailVia
from plugin.ports import SyncResult

__all__ = ["PennylaneBudget", "PennylaneConnector", "PennylaneOAuthApp", "PennylaneSettings"]

#: Pennylane's largest page of a list, and of a change log.
PAGE_SIZE = 100
CHANGES_PAGE_SIZE = 1000
#: The change logs Kindly reads on, each with its own bookmark.
CHANGELOGS = ("customers", "customer_invoices")
#: How long Pennylane keeps a change; an older start is refused (422).
RETENTION = timedelta(weeks=4)
#: Our clock may differ from Pennylane's: the first sync's bookmark is this long before
#: it started, and a bookmark is taken for expired this long before Pennylane would.
CLOCK_MARGIN = timedelta(minutes=10)
#: A change may show in the log a moment after one stamped later: the bookmark stays
#: this far behind the newest change, and the changes since are kept by id so they are
#: not fetched again.
SETTLE = timedelta(minutes=1)
#: Every invoice but the drafts (the cursor does not carry a filter: sent on every page).
NOT_DRAFTS = json.dumps([{"field": "draft", "operator": "eq", "value": "false"}])


@dataclass(frozen=True)
class PennylaneSettings(OAuthPlatformSettings):
    """Connecting to Pennylane: the app's client id (its secret only in
    KINDLY_PENNYLANE_CLIENT_SECRET), the company, and where the endpoints are"""

    authorize_url: str = field(
        default="https://app.pennylane.com/oauth/authorize",
        metadata=endpoint("Pennylane's authorization endpoint"),
    )
    token_url: str = field(
        default="https://app.pennylane.com/oauth/token",
        metadata=endpoint("Pennylane's token endpoint"),
    )
    revoke_url: str = field(
        default="https://app.pennylane.com/oauth/revoke",
        metadata=endpoint("Pennylane's revocation endpoint"),
    )
    api_url: str = field(
        default="https://app.pennylane.com/api/external/v2",
        metadata=endpoint("The Company API up to /api/external/v2", base=True),
    )


# repr=False: the base's repr, which leaves the secret out, and not a generated one.
@dataclass(frozen=True, repr=False)
class PennylaneOAuthApp(OAuthApp):
    """Pennylane's OAuth app: the client authenticates in the form (``client_id`` and
    ``client_secret``), at the token endpoint and when revoking."""

    def _token_call(
        self, http: HttpClient, body: str, now: datetime, keep_refresh: str | None = None
    ) -> Token:
        form = dict(parse_qsl(body))
        form["client_id"] = self.client_id
        if self.client_secret:
            form["client_secret"] = self.client_secret
        # The base sends a secret as HTTP Basic too; a client authenticates one way only
        # (RFC 6749 §2.3), and Pennylane's is the form.
        in_form = replace(self, client_secret=None)
        return OAuthApp._token_call(in_form, http, urlencode(form), now, keep_refresh)

    def revoke(self, http: HttpClient, token: Token) -> None:
        """End the grant: its refresh token first (the grant itself), then the access
        token, which Pennylane may otherwise honour to the end of its day."""
        if not self.revoke_url:
            return
        for value in dict.fromkeys((token.refresh_token, token.access_token)):
            if not value:
                continue
            form = {"client_id": self.client_id, "token": value}
            if self.client_secret:
                form["client_secret"] = self.client_secret
            http.request("POST", self.revoke_url, data=form)


@dataclass
class PennylaneBudget(WindowBudget):
    """No more than 20 calls in any 5 seconds (Pennylane allows 25 per token), waiting a
    whole window when its ``ratelimit-remaining`` says none is left."""

    burst: int = 20
    window: float = 5.0


@dataclass(frozen=True)
class _Mark:
    """Where a change log is read on from: ``since`` (a time Pennylane wrote, or ours on
    the first sync), the changes already seen from it (``id@processed_at``), which come
    again because ``since`` is inclusive, or held back (:data:`SETTLE`), and the records
    that could not be read last time (``retry``), asked for again."""

    since: str
    seen: frozenset[str] = frozenset()
    retry: frozenset[str] = frozenset()

    def text(self) -> str:
        data: dict[str, Any] = {"since": self.since, "seen": sorted(self.seen)}
        if self.retry:
            data["retry"] = sorted(self.retry)
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def read(cls, text: str | None) -> _Mark | None:
        try:
            data = json.loads(text or "")
        except ValueError:
            return None
        if not isinstance(data, dict) or moment(data.get("since")) is None:
            return None

        def strings(name: str) -> frozenset[str]:
            found = data.get(name)
            return frozenset(map(str, found if isinstance(found, list) else []))

        return cls(str(data["since"]), strings("seen"), strings("retry"))


@dataclass
class _Changes:
    """What one change log said since its mark: the ids to fetch, the ids deleted, and
    the mark to read on from next time."""

    changed: list[str]
    deleted: set[str]
    mark: _Mark


class _Cursor(Paginator[str | None]):
    """Pennylane's paging: ``next_cursor`` names the next page while ``has_more``."""

    def start(self) -> str | None:
        return None

    def advance(self, cursor: str | None, page: Page[Any]) -> str | None:
        body = page.body if isinstance(page.body, Mapping) else {}
        following = body.get("next_cursor")
        if body.get("has_more") is False or not isinstance(following, str) or not following:
            return None
        return following


class PennylaneConnector(OAuthPlatform):
    name: ClassVar[str] = "pennylane"
    title: ClassVar[str] = "Pennylane"
    # Reading customers, and invoices with their payments and change log; sending an
    # invoice by e-mail needs the invoices' write scope, asked for only then.
    oauth_scopes: ClassVar[tuple[str, ...]] = ("customers:readonly", "customer_invoices:readonly")
    write_scope: ClassVar[str] = "customer_invoices:all"
    settings_type: ClassVar[type[ConnectorSettings]] = PennylaneSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.INCREMENTAL, Capability.MAILER, Capability.PDF}
    )
    client_secret_variable: ClassVar[str] = "KINDLY_PENNYLANE_CLIENT_SECRET"  # noqa: S105
    refresh_token_variable: ClassVar[str] = "KINDLY_PENNYLANE_REFRESH_TOKEN"  # noqa: S105
    secret_variables: ClassVar[Mapping[str, str]] = {
        "KINDLY_PENNYLANE_CLIENT_SECRET": "the app's client secret (Pennylane's token "
        "endpoint needs it)",
        "KINDLY_PENNYLANE_REFRESH_TOKEN": "a refresh token for `kindly connect pennylane` "
        "without a browser",
    }
    app_hint: ClassVar[str] = (
        "Pennylane gives an OAuth app to partners only: ask its Partnerships team for a "
        "client id and secret with the redirect URI, put the id under [pennylane] and the "
        "secret in KINDLY_PENNYLANE_CLIENT_SECRET."
    )
    # 25 in five seconds is Pennylane's figure; PennylaneBudget keeps each window to 20.
    calls_per_minute: ClassVar[int] = 240
    call_limits: ClassVar[tuple[Limit, ...]] = (Limit(25, 5),)
    mailer_idempotent: ClassVar[bool] = False
    settings: PennylaneSettings

    def __init__(
        self,
        settings: OAuthPlatformSettings,
        vault: TokenVault,
        tenant: Tenant,
        *,
        company_country: str = "FR",
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
        self._sleep = sleep
        self._download_client: HttpClient | None = None
        #: Pennylane's clock (its ``Date``) at the first answer since :meth:`_start`.
        self._server_start: datetime | None = None
        self._server_seen = True

    @classmethod
    def oauth_app(cls, settings: OAuthPlatformSettings, client_secret: str | None) -> OAuthApp:
        app = super().oauth_app(settings, client_secret)
        return PennylaneOAuthApp(**{item.name: getattr(app, item.name) for item in fields(app)})

    @classmethod
    def new_budget(cls, sleep: Callable[[float], None] = time.sleep) -> CallBudget:
        return PennylaneBudget(per_minute=cls.calls_per_minute, sleep=sleep)

    @classmethod
    def wanted_scopes(cls, workspace: Workspace) -> tuple[str, ...]:
        """Reading only; and writing invoices where Pennylane e-mails them itself
        (``email_via = "platform"``), which ``send_by_email`` needs."""
        if workspace.settings.email_via is EmailVia.PLATFORM:
            return ("customers:readonly", cls.write_scope)
        return cls.oauth_scopes

    @classmethod
    def list_tenants(
        cls, settings: OAuthPlatformSettings, http: HttpClient, token: Token
    ) -> list[Tenant]:
        """The one company the token reaches (``GET /me``, which needs no scope)."""
        answer = http.request(
            "GET",
            f"{settings.api_url}/me",
            headers={
                "Authorization": f"Bearer {token.access_token}",
                "Accept": "application/json",
            },
        ).json()
        company = answer.get("company") if isinstance(answer, dict) else None
        if not isinstance(company, dict) or company.get("id") is None:
            raise FatalError("Pennylane did not say which company the sign-in reaches")
        return [Tenant(str(company["id"]), str(company.get("name") or company["id"]))]

    # -- calling -----------------------------------------------------------------------------

    @property
    def company(self) -> str:
        return self.tenant.tenant_id

    def _call(self, method: str, path: str, **options: Any) -> Response:
        response = self.http.request(method, f"{self.settings.api_url}/{path}", **options)
        if not self._server_seen:
            # The first answer's, even without one: a later answer's is too late.
            self._server_seen = True
            self._server_start = _date_header(response)
        return response

    def _pages(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        first: Mapping[str, Any] | None = None,
        size: int = PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """Every record of a list, ``size`` a call, following ``next_cursor``. ``params``
        go with every page (the cursor does not carry a filter), ``first`` with the first
        page only (a change log refuses ``start_date`` beside a cursor)."""

        def fetch(cursor: str | None) -> Page[Any]:
            query = {**params, "limit": size}
            if cursor:
                query["cursor"] = cursor
            else:
                query.update(first or {})
            response = self._call("GET", path, params=query)
            body = response.json()
            rows = body.get("items") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise FatalError(f"Pennylane answered {path} without a list of items")
            return Page.of(response, rows, body)

        return (row for row in paginate(_Cursor(), fetch) if isinstance(row, dict))

    def _by_ids(self, path: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        """These records, 100 a call, by an ``id in`` filter."""
        wanted = list(dict.fromkeys(i for i in ids if i.isdigit()))
        found: list[dict[str, Any]] = []
        for start in range(0, len(wanted), PAGE_SIZE):
            chunk = wanted[start : start + PAGE_SIZE]
            ask = json.dumps([{"field": "id", "operator": "in", "value": [int(i) for i in chunk]}])
            rows = list(self._pages(path, {"filter": ask}))
            # A list that ignored the filter would make the ids it left out look deleted.
            strays = {str(row.get("id")) for row in rows} - set(chunk)
            if strays:
                raise FatalError(f"Pennylane ignored the id filter on {path}")
            found.extend(rows)
        return found

    # -- reading -----------------------------------------------------------------------------

    def sync(self, previous: LedgerSnapshot | None, bookmarks: Mapping[str, str]) -> SyncResult:
        marks = {log: _Mark.read(bookmarks.get(log)) for log in CHANGELOGS}
        if previous is None or any(self._expired(mark) for mark in marks.values()):
            return self._read_all()
        # Taken before reading: a change logged while the logs are read is read again.
        started = self._start()
        changes: dict[str, _Changes] = {}
        try:
            for log, mark in marks.items():
                assert mark is not None
                changes[log] = self._changes(log, mark, started)
        except FatalError as exc:
            if exc.status != 422:
                raise
            return self._read_all()  # Pennylane no longer keeps changes that old
        # What could not be read last time is asked for again, changed or not.
        asked = {
            log: list(dict.fromkeys([*changes[log].changed, *sorted(_retry(marks[log]))]))
            for log in CHANGELOGS
        }
        customers = self._by_ids("customers", asked["customers"])
        invoices = self._by_ids("customer_invoices", asked["customer_invoices"])
        # A credit note takes off what its invoice owes: that invoice is read again too,
        # whether or not Pennylane logged a change of it (and so when one is deleted).
        merge = Merge("Pennylane", previous)
        # The invoices the changed or deleted credit notes credit now, and those they
        # credited before (a credit note moved to another invoice, or made a draft).
        touched = changes["customer_invoices"].deleted | set(asked["customer_invoices"])
        credited = {_credited_id(row) for row in invoices} | {
            allocation.invoice_id
            for note_id in touched
            if (note := merge.credit_notes.get(note_id)) is not None
            for allocation in note.allocations
        }
        credited -= {*asked["customer_invoices"], ""}
        if credited:
            invoices += self._by_ids("customer_invoices", sorted(credited))
        # Asked for and not there: gone since the log named it.
        gone_customers = changes["customers"].deleted | (
            set(asked["customers"]) - {str(row.get("id")) for row in customers}
        )
        fetched = {str(row.get("id")) for row in invoices}
        gone_invoices = changes["customer_invoices"].deleted | (
            (set(asked["customer_invoices"]) | credited) - fetched
        )
        unread = self._merge(merge, customers, invoices)
        for customer_id in gone_customers:
            merge.customers.pop(customer_id, None)
        for invoice_id in gone_invoices:
            _forget(merge, invoice_id)
        marked = {
            log: replace(changes[log].mark, retry=frozenset(unread[log])).text()
            for log in CHANGELOGS
        }
        return SyncResult(merge.snapshot(), marked, tuple(merge.warnings))

    def _read_all(self) -> SyncResult:
        # Taken before reading: what changes while the lists are read is read again next time.
        started = self._start()
        customers = list(self._pages("customers", {}))
        invoices = list(self._pages("customer_invoices", {"filter": NOT_DRAFTS}))
        since = _stamp(min(started, self._server_start or started) - CLOCK_MARGIN)
        merge = Merge("Pennylane", None)
        unread = self._merge(merge, customers, invoices)
        marked = {log: _Mark(since, retry=frozenset(unread[log])).text() for log in CHANGELOGS}
        return SyncResult(merge.snapshot(), marked, tuple(merge.warnings))

    def _start(self) -> datetime:
        """Our clock now; Pennylane's (its ``Date``) is taken from the first answer after
        it: a bookmark never runs ahead of Pennylane's clock when ours is fast."""
        self._server_start, self._server_seen = None, False
        return self.clock()

    def _expired(self, mark: _Mark | None) -> bool:
        """Whether the changes since ``mark`` may be gone from Pennylane (or there is no
        mark to read on from): then everything is read again."""
        since = moment(mark.since) if mark else None
        return since is None or since < self.clock() - RETENTION + CLOCK_MARGIN

    def _changes(self, log: str, mark: _Mark, started: datetime) -> _Changes:
        """The change log read on from ``mark``, 1000 a call. The last operation on an id
        says what became of it; what was seen at the mark already is skipped."""
        last: dict[str, str] = {}
        stamps: list[tuple[datetime, str]] = []
        for entry in self._pages(
            f"changelogs/{log}", {}, first={"start_date": mark.since}, size=CHANGES_PAGE_SIZE
        ):
            record_id = str(entry.get("id") or "")
            if not record_id:
                continue
            stamp = str(entry.get("processed_at") or "")
            when = moment(stamp)
            if when is not None:
                stamps.append((when, f"{record_id}@{stamp}"))
                if f"{record_id}@{stamp}" in mark.seen:
                    continue
            # Without a time it cannot be placed, but it still names a change: fetched.
            last[record_id] = str(entry.get("operation") or "").lower()
        quiet = min(started, self._server_start or started) - CLOCK_MARGIN
        return _Changes(
            changed=[i for i, operation in last.items() if operation != "delete"],
            deleted={i for i, operation in last.items() if operation == "delete"},
            mark=_advanced(mark, stamps, quiet),
        )

    def _merge(
        self,
        merge: Merge,
        customers: Sequence[Mapping[str, Any]],
        invoices: Sequence[Mapping[str, Any]],
    ) -> dict[str, set[str]]:
        """The records read put over the previous ones; the ids that could not be read,
        by change log (their previous copy stays, and the next sync asks again)."""
        if self.progress is not None:
            self.progress("customers", len(customers))
            self.progress("customer_invoices", len(invoices))
        read_customer = partial(records.customer, company_country=self.company_country)
        unread = {
            "customers": merge.apply(
                "customer", merge.customers, customers, id_field="id", read=read_customer
            ),
            "customer_invoices": set(),
        }
        documents: list[tuple[Mapping[str, Any], Invoice]] = []
        for record in invoices:
            invoice_id = str(record.get("id") or "?")
            if not records.is_read(record):
                _forget(merge, invoice_id)  # a draft, a quote: not Kindly's
                continue
            read = merge.read("customer invoice", invoice_id, partial(records.read, record))
            if read is None:
                unread["customer_invoices"].add(invoice_id)
                continue
            if isinstance(read, CreditNote):
                merge.credit_notes[read.id] = read
                continue
            # Put in place, not popped and added: a record fetched again keeps its position.
            merge.invoices[read.id] = read
            documents.append((record, read))
        for record, read in documents:
            try:
                rows = self._payments_of(read) if records.shows_money_paid(read) else []
            except AuthError:
                raise
            except FatalError as exc:
                # This invoice's payments alone: the invoice is read anew, its previous
                # payments stay, and it is asked for again next time.
                merge.warnings.append(f"Pennylane payments of {read.number}: {exc}")
                unread["customer_invoices"].add(read.id)
                continue
            paid = merge.read("payment", read.id, partial(records.payments, record, rows))
            if paid is None:
                unread["customer_invoices"].add(read.id)
                continue
            # The invoice's payments as Pennylane lists them now: one no longer there went.
            kept_ids = {payment.id for payment in paid}
            for payment_id in [p.id for p in merge.payments.values() if p.invoice_id == read.id]:
                if payment_id not in kept_ids:
                    del merge.payments[payment_id]
            for payment in paid:
                merge.payments[payment.id] = payment
        return unread

    def _payments_of(self, read: Invoice) -> list[dict[str, Any]]:
        """An invoice's payments: one call (Pennylane gives no payments in the invoice,
        nor a list of them all), asked only for an invoice read in this sync that shows
        money paid."""
        return list(self._pages(f"customer_invoices/{read.id}/payments", {}))

    def read_invoices(self, invoice_ids: Sequence[str]) -> tuple[Invoice, ...]:
        """These invoices as Pennylane has them now, 100 a call."""
        rows = self._by_ids("customer_invoices", invoice_ids)
        found = each_readable("Pennylane", "customer invoice", rows, records.read)
        return tuple(read for read in found if isinstance(read, Invoice))

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        """The invoice's own PDF. Its link lasts 30 minutes, so the invoice is read for a
        fresh one (one call); the file is public, and our token is never sent there."""
        if not invoice.id.isdigit():
            return None
        row = self._call("GET", f"customer_invoices/{invoice.id}").json()
        link = records.pdf_link(row) if isinstance(row, dict) else None
        if not link:
            return None  # the file is not made yet
        response = self._downloads().download(link, accept="application/pdf")
        return response.body if response.body.startswith(b"%PDF") else None

    def _downloads(self) -> HttpClient:
        # The link is the key to the file: never shown, in a log or an error.
        if self._download_client is None:
            self._download_client = HttpClient(
                self.title, attempts=2, sleep=self._sleep, private_links=True
            )
        return self._download_client

    def not_ready_to_email(self, invoices: Sequence[Invoice]) -> list[str]:
        """The invoices whose PDF Pennylane is still making (no ``public_file_url`` yet),
        which ``send_by_email`` would refuse with a 409: one call for up to 100."""
        if len(invoices) < 2:
            return []  # one invoice cannot go out in part: its 409 says the same
        ids = [invoice.id for invoice in invoices]
        ready = {
            str(row.get("id"))
            for row in self._by_ids("customer_invoices", ids)
            if records.pdf_link(row)
        }
        return [invoice.number for invoice in invoices if invoice.id not in ready]

    def platform_reminders(self) -> list[str]:
        """Nothing to say: Pennylane's API shows neither its own reminder sequences
        ("Relance d'impayés") nor which customers they run for, so Kindly cannot tell
        whether Pennylane reminds by itself (docs/pennylane.md says where to look)."""
        return []

    # -- writing -----------------------------------------------------------------------------

    def write_notes(
        self, notes: Sequence[Note], *, check: Collection[str] = ()
    ) -> Mapping[str, str | None]:
        """Nothing is written, and nothing is asked: Pennylane keeps no notes. Each note
        counts as done, since Kindly's history holds it and no later run could put it
        anywhere else; an answer of "not written" would leave it pending in every run."""
        return {note.id: None for note in notes}

    def existing_note_ids(self, notes: Iterable[Note]) -> set[str]:
        return set()

    def read_notes(self, among: Sequence[Invoice] | None = None) -> tuple[Note, ...]:
        """None: Pennylane keeps no notes of Kindly's to read back."""
        return ()

    def send_invoice_email(self, invoice: Invoice, reference: str | None) -> None:
        """Pennylane e-mails the invoice itself (``send_by_email``), to the customer's
        invoice addresses, with its default template in the customer's language. No
        idempotency key: a lost answer leaves it in doubt. A 409 says the PDF is still
        being made: that is tried again on the next run."""
        if not invoice.id.isdigit():
            raise FatalError(f"{invoice.number} is not a Pennylane invoice")
        try:
            self._call("POST", f"customer_invoices/{invoice.id}/send_by_email", ok=(200, 204))
        except AuthError as exc:
            if exc.status != 403:
                raise
            raise AuthError(
                f"Pennylane refused to e-mail {invoice.number}: the connection may only "
                f"read invoices ({exc})",
                status=403,
                hint=f'With email_via = "platform" set, connect again: kindly connect '
                f"pennylane (it then asks for {self.write_scope}).",
            ) from None
        except HttpError as exc:
            if exc.status != 409:
                raise
            raise RetriableError(
                f"Pennylane is still making the PDF of {invoice.number}: {exc}",
                status=409,
                later=True,
                hint="Kindly tries again on the next run.",
            ) from None


def _forget(merge: Merge, invoice_id: str) -> None:
    """An invoice (or credit note) gone, with its payments."""
    merge.invoices.pop(invoice_id, None)
    merge.credit_notes.pop(invoice_id, None)
    for payment_id in [p.id for p in merge.payments.values() if p.invoice_id == invoice_id]:
        del merge.payments[payment_id]


def _retry(mark: _Mark | None) -> frozenset[str]:
    return mark.retry if mark is not None else frozenset()


def _credited_id(row: Mapping[str, Any]) -> str:
    """The invoice a credit note credits (``credited_invoice.id``), or ""."""
    credited = row.get("credited_invoice")
    return str(credited.get("id") or "") if isinstance(credited, Mapping) else ""


def _date_header(response: Response) -> datetime | None:
    """The server's clock when it answered (``Date``), if it said."""
    text = next((v for k, v in response.headers.items() if k.lower() == "date"), None)
    try:
        found = parsedate_to_datetime(text) if text else None
    except (TypeError, ValueError):
        return None
    return found if found is not None and found.tzinfo is not None else None


def _stamp(moment_: datetime) -> str:
    """A start for a change log: RFC 3339 in UTC, to the microsecond as Pennylane writes."""
    return moment_.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _advanced(mark: _Mark, stamps: Sequence[tuple[datetime, str]], quiet: datetime) -> _Mark:
    """The mark to read on from: the newest change less :data:`SETTLE`, or ``quiet`` (our
    clock, a margin before this read) when that is later: nothing was logged between the
    newest change and the read. Never before the old mark; the changes seen since the new
    one are kept, and not fetched again."""
    old = moment(mark.since)
    assert old is not None
    newest = max((when for when, _ in stamps), default=old)
    since = max(old, newest - SETTLE, quiet)
    # The old mark's own text is kept where it does not move (Pennylane's, to the digit).
    text = mark.since if since == old else _stamp(since)
    seen = {key for when, key in stamps if when >= since}
    return _Mark(text, frozenset(seen) if since > old else frozenset(seen) | mark.seen)

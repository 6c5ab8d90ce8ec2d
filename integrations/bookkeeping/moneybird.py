"""Moneybird: contacts and sales invoices (with their payments and credit invoices) in;
notes out.

One connector per administration, on the OAuth platform base
(:mod:`integrations.bookkeeping.oauth_platform`); what its records mean is in
:mod:`integrations.bookkeeping.moneybird_records`. What it does with API v2
(../shared/reference/platform-apis.md §4):

- **Connect**: the administrations come from ``administrations.json``. Moneybird's access
  tokens may not expire at all: an ``expires_in`` is honoured when it comes, and a 401
  renews the token once either way (the base's bearer).
- **Sync**: the first sync reads contacts and sales invoices a page of 100 a call (the
  full records, payments and notes inside). After it, the synchronization endpoints give
  every id with its version in one call each; only the records whose version moved are
  fetched, 100 a call, and an id no longer listed was deleted. An unchanged
  administration costs two calls.
- **Fresh re-check**: the invoices a reminder names, fetched by id through the
  synchronization endpoint (100 a call).
- **Write-back**: a note on every sales invoice a reminder names
  (``sales_invoices/{id}/notes``), where Moneybird shows it in the invoice's history.
  Moneybird takes no idempotency key: a note in doubt is looked for on its invoice first.
- **Extras**: the invoice PDF (a 302 to a download link valid 30 seconds, fetched without
  our token), the client's view of the invoice, and Moneybird's own e-mail
  (``send_invoice``).
- **Rate limits**: 150 calls in any 5 minutes, read from ``RateLimit-Remaining``.
- **Webhooks**: subscribed on connect when ``webhook_url`` is set, for invoice and
  contact events; the secret Moneybird gives at that moment is kept encrypted in the
  store. ``Moneybird-Signature: t=…,v1=…`` is HMAC-SHA256 of ``"{t}.{body}"``; a
  signature more than five minutes off is refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

from integrations.base import Capability, ConnectorSettings, Webhook
from integrations.bookkeeping import moneybird_records as records
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
    WindowBudget,
)
from integrations.notes import note_from_marker, note_text_with_marker
from integrations.oauth import Token, secret_key
from integrations.pagination import NextLink, Page, paginate
from integrations.sync import Merge, each_readable
from integrations.webhooks import hmac_sha256_hex_matches
from integrations.workspace import Workspace
from plugin.core.model import CreditNote, Invoice, LedgerSnapshot, Note, Payment
from plugin.core.vocabulary import Language
from plugin.errors import KindlyError
from plugin.ports import SyncResult

__all__ = ["MoneybirdBudget", "MoneybirdConnector", "MoneybirdSettings"]

PAGE_SIZE = 100
#: Seconds a connect waits for another Kindly setting up the webhooks.
WEBHOOKS_WAIT = 120.0
#: Ids one synchronization POST takes.
IDS_PER_CALL = 100
#: Sales invoices Kindly reads: all but drafts (which have no number and were not sent).
SENT_STATES = "state:scheduled|open|pending_payment|late|reminded|paid|uncollectible"
#: The first day of the period asked for. Any filter replaces Moneybird's default period
#: (this year), and its description asks for an explicit one to reach earlier years.
FIRST_DAY = "20000101"
#: The webhook events that change what Kindly knows.
WEBHOOK_EVENTS = (
    "sales_invoice_created",
    "sales_invoice_updated",
    "sales_invoice_destroyed",
    "sales_invoice_state_changed_to_open",
    "sales_invoice_state_changed_to_late",
    "sales_invoice_state_changed_to_paid",
    "sales_invoice_state_changed_to_uncollectible",
    "payment_registered",
    "payment_destroyed",
    "credit_invoice_created_from_original",
    "contact_created",
    "contact_changed",
    "contact_destroyed",
    "contact_merged",
)
#: How far a signature's time may be from ours.
SIGNATURE_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class MoneybirdSettings(OAuthPlatformSettings):
    """Connecting to Moneybird: the app's client id (its secret only in
    KINDLY_MONEYBIRD_CLIENT_SECRET), the administrations, and where the endpoints are"""

    authorize_url: str = field(
        default="https://moneybird.com/oauth/authorize",
        metadata=endpoint("Moneybird's authorization endpoint"),
    )
    token_url: str = field(
        default="https://moneybird.com/oauth/token", metadata=endpoint("Moneybird's token endpoint")
    )
    revoke_url: str = field(
        default="https://moneybird.com/oauth/revoke",
        metadata=endpoint("Moneybird's revocation endpoint"),
    )
    api_url: str = field(
        default="https://moneybird.com/api/v2",
        metadata=endpoint("The API up to /api/v2", base=True),
    )
    platform_mail: str = field(
        default="reminder",
        metadata={
            "schema": {
                "enum": ["reminder", "invoice"],
                "description": "What Moneybird e-mails when [delivery] email_via = "
                '"platform": "reminder" (its payment reminder, in the workflow\'s '
                'wording, counted in the invoice\'s reminders) or "invoice" (the invoice '
                "again)",
            }
        },
    )
    webhook_url: str = field(
        default="",
        metadata={
            "schema": {
                "pattern": "^(https://.+)?$",
                "description": "The public https address of kindly serve's "
                "/webhooks/moneybird: when set, kindly connect subscribes each "
                "administration to invoice and contact events (Moneybird checks that it "
                "answers), and kindly disconnect ends the subscriptions",
            }
        },
    )


@dataclass
class MoneybirdBudget(WindowBudget):
    """No more than 140 calls in any five minutes (Moneybird allows 150); when its
    ``RateLimit-Remaining`` says none is left, wait until its ``RateLimit-Reset`` (a Unix
    time), at most a window."""

    burst: int = 140
    window: float = 300.0
    remaining_header: str = "RateLimit-Remaining"
    reset_header: str | None = "RateLimit-Reset"


class MoneybirdConnector(OAuthPlatform):
    name: ClassVar[str] = "moneybird"
    title: ClassVar[str] = "Moneybird"
    # Contacts and invoices need sales_invoices; webhooks need settings.
    oauth_scopes: ClassVar[tuple[str, ...]] = ("sales_invoices", "settings")
    settings_type: ClassVar[type[ConnectorSettings]] = MoneybirdSettings
    webhook: ClassVar[Webhook | None] = Webhook(
        "/webhooks/moneybird",
        "KINDLY_MONEYBIRD_WEBHOOK_SECRET",
        "Set [moneybird] webhook_url and connect again: Kindly subscribes and keeps the "
        "secret Moneybird gives (or put a webhook's secret in this variable).",
        kept_in_store=True,
    )
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.INCREMENTAL,
            Capability.NOTES,
            Capability.MAILER,
            Capability.ONLINE_LINK,
            Capability.PDF,
            Capability.WEBHOOKS,
        }
    )
    client_secret_variable: ClassVar[str] = "KINDLY_MONEYBIRD_CLIENT_SECRET"  # noqa: S105
    refresh_token_variable: ClassVar[str] = "KINDLY_MONEYBIRD_REFRESH_TOKEN"  # noqa: S105
    secret_variables: ClassVar[Mapping[str, str]] = {
        "KINDLY_MONEYBIRD_CLIENT_SECRET": "the app's client secret",
        "KINDLY_MONEYBIRD_REFRESH_TOKEN": "a refresh token for `kindly connect moneybird` "
        "without a browser",
        "KINDLY_MONEYBIRD_WEBHOOK_SECRET": "a webhook's secret for `kindly serve`, where "
        "Kindly did not subscribe itself",
    }
    app_hint: ClassVar[str] = (
        "Register an application at moneybird.com/user/applications with the redirect URI, "
        "put its client id under [moneybird] and its secret in KINDLY_MONEYBIRD_CLIENT_SECRET."
    )
    # 150 calls in any five minutes (MoneybirdBudget keeps to 140, and reads what
    # Moneybird says is left); no limit a minute beyond that.
    calls_per_minute: ClassVar[int] = 150
    # Moneybird does not say what its count is kept on; one token reaches all the
    # administrations, so they share one budget (a token is one workspace's connection:
    # a thousand workspaces on Moneybird have a thousand budgets, not one).
    budget_per_token: ClassVar[bool] = True
    call_limits: ClassVar[tuple[Limit, ...]] = (Limit(150, 300, scope="token"),)
    mailer_idempotent: ClassVar[bool] = False
    settings: MoneybirdSettings

    @classmethod
    def new_budget(cls, sleep: Callable[[float], None] = time.sleep) -> CallBudget:
        return MoneybirdBudget(per_minute=cls.calls_per_minute, sleep=sleep)

    @classmethod
    def list_tenants(
        cls, settings: OAuthPlatformSettings, http: HttpClient, token: Token
    ) -> list[Tenant]:
        answer = http.request(
            "GET",
            f"{settings.api_url}/administrations.json",
            headers={
                "Authorization": f"Bearer {token.access_token}",
                "Accept": "application/json",
            },
        ).json()
        if not isinstance(answer, list):
            raise FatalError("Moneybird did not list the administrations")
        return [
            Tenant(str(row["id"]), str(row.get("name") or row["id"]))
            for row in answer
            if isinstance(row, dict) and row.get("id") is not None and not row.get("suspended")
        ]

    # -- calling -----------------------------------------------------------------------------

    @property
    def administration(self) -> str:
        return self.tenant.tenant_id

    def _url(self, path: str) -> str:
        return f"{self.settings.api_url}/{self.administration}/{path}"

    def _call(self, method: str, path: str, **options: Any) -> Response:
        return self.http.request(method, self._url(path), **options)

    def _pages(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every record of a list, 100 a call, following the ``Link`` header."""

        def fetch(following: str | None) -> Page[dict[str, Any]]:
            if following:
                response = self.http.request("GET", following)
            else:
                response = self._call("GET", path, params={**params, "per_page": PAGE_SIZE})
            rows = response.json()
            if not isinstance(rows, list):
                raise FatalError(f"Moneybird answered {path} without a list")
            return Page.of(response, rows, rows)

        return iter(paginate(NextLink(), fetch))

    def _sent_filter(self) -> str:
        """Every sent invoice, of every year up to next year's end."""
        return f"{SENT_STATES},period:{FIRST_DAY}..{self.clock().year + 1}1231"

    def _versions(self, kind: str, params: Mapping[str, Any] | None = None) -> dict[str, int]:
        """Every record's id and version, in one call."""
        rows = self._call("GET", f"{kind}/synchronization.json", params=params).json()
        if not isinstance(rows, list):
            raise FatalError(f"Moneybird answered {kind}/synchronization without a list")
        return {str(row["id"]): int(row.get("version") or 0) for row in rows if "id" in row}

    def _fetch(self, kind: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        """These records in full, 100 a call."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), IDS_PER_CALL):
            chunk = list(ids[start : start + IDS_PER_CALL])
            rows = self._call("POST", f"{kind}/synchronization.json", json={"ids": chunk}).json()
            if not isinstance(rows, list):
                raise FatalError(f"Moneybird answered {kind}/synchronization without a list")
            found.extend(row for row in rows if isinstance(row, dict))
        return found

    # -- reading -----------------------------------------------------------------------------

    def sync(self, previous: LedgerSnapshot | None, bookmarks: Mapping[str, str]) -> SyncResult:
        known = _versions_from(bookmarks) if previous is not None else None
        if known is None:
            previous = None
            contacts = list(self._pages("contacts.json", {"include_archived": "true"}))
            invoices = list(self._pages("sales_invoices.json", {"filter": self._sent_filter()}))
            gone_contacts: set[str] = set()
            gone_invoices: set[str] = set()
            versions = {
                "contacts": {str(r["id"]): int(r.get("version") or 0) for r in contacts},
                "invoices": {str(r["id"]): int(r.get("version") or 0) for r in invoices},
            }
        else:
            versions = {
                "contacts": self._versions("contacts", {"include_archived": "true"}),
                "invoices": self._versions("sales_invoices", {"filter": self._sent_filter()}),
            }
            contacts = self._fetch("contacts", _moved(known["contacts"], versions["contacts"]))
            invoices = self._fetch(
                "sales_invoices", _moved(known["invoices"], versions["invoices"])
            )
            gone_contacts = set(known["contacts"]) - set(versions["contacts"])
            gone_invoices = set(known["invoices"]) - set(versions["invoices"])
        if self.progress is not None:
            self.progress("contacts", len(contacts))
            self.progress("sales_invoices", len(invoices))
        merge = Merge("Moneybird", previous)
        unread = self._merge_invoices(merge, invoices, gone_invoices)
        languages = _languages(invoices)

        def language_of(contact_id: str) -> Language | None:
            # A contact changed while none of its invoices did keeps the language it had.
            held = merge.customers.get(contact_id)
            return languages.get(contact_id) or (held.language if held else None)

        unread_contacts = {
            str(record.get("id"))
            for record in contacts
            if merge.read(
                "contact",
                record.get("id"),
                partial(records.customer, record, self.company_country),
            )
            is None
        }
        merge.apply(
            "contact",
            merge.customers,
            [c for c in contacts if str(c.get("id")) not in unread_contacts],
            id_field="id",
            read=lambda record: records.customer(
                record, self.company_country, language_of(str(record.get("id")))
            ),
        )
        for contact_id in gone_contacts:
            merge.customers.pop(contact_id, None)
        # A contact unchanged whose new invoice is in another language speaks it now.
        for contact_id, language in languages.items():
            current = merge.customers.get(contact_id)
            if current is not None and current.language != language:
                merge.customers[contact_id] = replace(current, language=language)
        # What could not be read is asked for again next time, as if it had moved.
        for invoice_id in unread:
            versions["invoices"].pop(invoice_id, None)
        for contact_id in unread_contacts:
            versions["contacts"].pop(contact_id, None)
        marks = {"versions": json.dumps(versions, separators=(",", ":"))}
        return SyncResult(merge.snapshot(), marks, tuple(merge.warnings))

    def _merge_invoices(
        self, merge: Merge, rows: Iterable[Mapping[str, Any]], gone: Collection[str]
    ) -> set[str]:
        """Put the invoices read over the previous ones; the ids that could not be read
        (their previous copy stays, and the next sync fetches them again)."""
        unread: set[str] = set()
        for record in rows:
            invoice_id = str(record.get("id") or "?")
            credit = merge.read(
                "sales invoice", invoice_id, partial(records.is_credit_invoice, record)
            )
            read: Invoice | CreditNote | None = None
            payments: list[Payment] = []
            if credit is not None:
                if credit:
                    read = merge.read(
                        "credit invoice", invoice_id, partial(records.credit_note, record)
                    )
                else:
                    read = merge.read("sales invoice", invoice_id, partial(records.invoice, record))
                    found = merge.read("payment", invoice_id, partial(records.payments, record))
                    if found is None:
                        read = None
                    else:
                        payments = found
            if read is None:
                unread.add(invoice_id)
                continue
            # A record read again replaces what it held: its payments come with it.
            _forget(merge, invoice_id)
            if isinstance(read, CreditNote):
                merge.credit_notes[read.id] = read
            else:
                merge.invoices[read.id] = read
                merge.payments.update((payment.id, payment) for payment in payments)
        for invoice_id in gone:
            _forget(merge, invoice_id)
        return unread

    def read_invoices(self, invoice_ids: Sequence[str]) -> tuple[Invoice, ...]:
        wanted = [i for i in invoice_ids if i.isdigit()]
        rows = self._fetch("sales_invoices", wanted)

        def invoice_of(row: Mapping[str, Any]) -> Invoice | None:
            return None if records.is_credit_invoice(row) else records.invoice(row)

        return tuple(each_readable("Moneybird", "sales invoice", rows, invoice_of))

    def online_invoice_url(self, invoice: Invoice) -> str | None:
        return invoice.online_url

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        """Moneybird answers with a redirect to a link valid 30 seconds on its download
        host, which needs no token: ours is never sent there."""
        if not invoice.id.isdigit():
            return None
        answer = self._call("GET", f"sales_invoices/{invoice.id}/download_pdf.json", ok=(302,))
        location = answer.headers.get("Location") or answer.headers.get("location")
        if not location:
            return None
        response = self._downloads().download(location)
        return response.body if response.body.startswith(b"%PDF") else None

    def _downloads(self) -> HttpClient:
        client = getattr(self, "_download_client", None)
        if client is None:
            # The link is the key to the file: never shown, in a log or an error.
            client = HttpClient(self.title, attempts=2, private_links=True)
            self._download_client = client
        return client

    def platform_reminders(self) -> list[str]:
        """The invoice workflows whose steps Moneybird sends itself (``reminder_auto_send``),
        one sentence each (one call)."""
        rows = self._call("GET", "workflows.json").json()
        found = []
        for workflow in rows if isinstance(rows, list) else []:
            if not isinstance(workflow, dict) or workflow.get("active") is False:
                continue
            if str(workflow.get("type") or "") not in ("", "InvoiceWorkflow"):
                continue
            automatic = [
                step for step in workflow.get("steps") or [] if step.get("reminder_auto_send")
            ]
            if automatic:
                days = ", ".join(
                    str(step.get("reminder_delay") or step.get("due_interval") or "?")
                    for step in automatic
                )
                found.append(
                    f"Moneybird's invoice workflow {workflow.get('name') or workflow.get('id')!r} "
                    f"sends reminders automatically (steps after {days} days; Moneybird: "
                    "Settings, Workflows)."
                )
        return found

    # -- writing -----------------------------------------------------------------------------

    def write_notes(
        self, notes: Sequence[Note], *, check: Collection[str] = ()
    ) -> Mapping[str, str | None]:
        """Each note goes on every sales invoice it names, one call each. A note is
        written once every invoice has it; one in ``check`` is looked for on each invoice
        first, so only the invoices still missing it get it."""
        held: dict[str, set[str]] = {}
        failed: dict[str, str] = {}
        for position, note in enumerate(notes):
            for invoice_id in note.invoice_ids:
                try:
                    if note.id in check:
                        if invoice_id not in held:
                            held[invoice_id] = {n.id for n in self._notes_on(invoice_id)}
                        if note.id in held[invoice_id]:
                            continue
                    self._call(
                        "POST",
                        f"sales_invoices/{invoice_id}/notes.json",
                        json={"note": {"note": note_text_with_marker(note), "todo": False}},
                    )
                except AuthError as exc:
                    # Every other call would be refused alike: the rest wait for the next run.
                    for rest in notes[position:]:
                        failed.setdefault(rest.id, str(exc))
                    return {n.id: failed.get(n.id) for n in notes}
                except HttpError as exc:
                    failed.setdefault(note.id, f"invoice {invoice_id}: {exc}")
        return {note.id: failed.get(note.id) for note in notes}

    def _notes_on(self, invoice_id: str) -> list[Note]:
        if not invoice_id.isdigit():
            return []
        record = self._call("GET", f"sales_invoices/{invoice_id}.json").json()
        return _notes_of(record, self.clock)

    def existing_note_ids(self, notes: Iterable[Note]) -> set[str]:
        wanted = list(notes)
        held = {
            found.id
            for invoice_id in {n.invoice_ids[0] for n in wanted if n.invoice_ids}
            for found in self._notes_on(invoice_id)
        }
        return {note.id for note in wanted if note.id in held}

    def read_notes(self, among: Sequence[Invoice] | None = None) -> tuple[Note, ...]:
        """Kindly's notes, read back from the invoices (which carry their notes): one
        call per 100 invoices."""
        rows = list(self._pages("sales_invoices.json", {"filter": self._sent_filter()}))
        wanted = None if among is None else {invoice.id for invoice in among}
        merged: dict[str, Note] = {}
        for row in rows:
            if wanted is not None and str(row.get("id")) not in wanted:
                continue
            for note in _notes_of(row, self.clock):
                earlier = merged.get(note.id)
                merged[note.id] = (
                    note
                    if earlier is None
                    else replace(earlier, invoice_ids=earlier.invoice_ids + note.invoice_ids)
                )
        return tuple(merged.values())

    def send_invoice_email(self, invoice: Invoice, reference: str | None) -> None:
        """Moneybird e-mails the client itself, to the contact's invoice address: its
        payment reminder for the invoice (``send_reminders``, in the workflow's wording,
        counted in the invoice's ``reminder_count``), or the invoice again
        (``send_invoice``), as ``[moneybird] platform_mail`` says. No idempotency key: a
        lost answer leaves it in doubt."""
        if self.settings.platform_mail == "invoice":
            self._call(
                "PATCH",
                f"sales_invoices/{invoice.id}/send_invoice.json",
                json={"sales_invoice_sending": {"delivery_method": "Email"}},
            )
            return
        # A reminder names the invoice's workflow, style and identity, as Moneybird has them.
        record = self._call("GET", f"sales_invoices/{invoice.id}.json").json()
        reminder = {
            "contact_id": str(record["contact_id"]),
            "workflow_id": str(record["workflow_id"]),
            "document_style_id": str(record["document_style_id"]),
            "identity_id": str(record["identity_id"]),
            "sales_invoice_ids": [invoice.id],
            "delivery_method": "Email",
        }
        self._call(
            "POST",
            "sales_invoices/send_reminders.json",
            json={"sales_invoice_reminders": [reminder]},
        )

    # -- webhooks ----------------------------------------------------------------------------

    @classmethod
    def after_connect(cls, workspace: Workspace) -> str:
        url = cls._webhook_url(workspace)
        if not url:
            return ""
        # Read, subscribe and keep, one process at a time: two connecting at once would
        # each end the other's new webhook, or keep a secret no webhook has.
        with cls._webhooks_held(workspace):
            problems: list[str] = []
            secrets: dict[str, str] = dict(cls.stored_webhook_secrets(workspace.store))
            for connector in cls.open(workspace):
                try:
                    secret = connector.subscribe(url, renew=connector.administration not in secrets)
                except (HttpError, KindlyError) as exc:
                    problems.append(f"{connector.tenant.name}: {exc}")
                    continue
                if secret:
                    secrets[connector.administration] = secret
            cls._keep_secrets(workspace, secrets)
        if problems:
            return "Moneybird's webhooks could not be set up (" + "; ".join(problems) + ")."
        return f"Moneybird calls {url} when invoices, payments or contacts change."

    @classmethod
    def before_disconnect(cls, workspace: Workspace) -> str:
        url = cls._webhook_url(workspace)
        if not url or not cls.tenants(workspace):
            return ""
        with cls._webhooks_held(workspace):
            problems = []
            kept = dict(cls.stored_webhook_secrets(workspace.store))
            for connector in cls.open(workspace):
                try:
                    connector.unsubscribe(url)
                except (HttpError, KindlyError) as exc:
                    problems.append(f"{connector.tenant.name}: {exc}")
                else:
                    kept.pop(connector.administration, None)
            # A subscription still there keeps its secret: connecting again finds it usable.
            if kept:
                cls._keep_secrets(workspace, kept)
            else:
                workspace.store.delete_setting(cls.connection_scope(), "webhook_secrets")
        if problems:
            return (
                "The webhooks could not all be ended ("
                + "; ".join(problems)
                + "): remove them in Moneybird."
            )
        return "Moneybird's webhooks are ended."

    @classmethod
    def _webhooks_held(cls, workspace: Workspace) -> AbstractContextManager[object]:
        return workspace.store.lease(
            f"{cls.name}:webhooks", wait=WEBHOOKS_WAIT, doing="setting up Moneybird's webhooks"
        )

    @classmethod
    def _webhook_url(cls, workspace: Workspace) -> str:
        settings = cls.own_settings(workspace)
        assert isinstance(settings, MoneybirdSettings)
        return settings.webhook_url

    @classmethod
    def _keep_secrets(cls, workspace: Workspace, secrets: Mapping[str, str]) -> None:
        from cryptography.fernet import Fernet

        sealed = Fernet(secret_key()).encrypt(json.dumps(dict(secrets)).encode()).decode()
        workspace.store.set_setting(
            cls.connection_scope(), "webhook_secrets", sealed, workspace.now()
        )

    @classmethod
    def stored_webhook_secrets(cls, store: Any) -> Mapping[str, str]:
        """The secret of each administration's webhook, as Moneybird gave it when Kindly
        subscribed (kept encrypted)."""
        from cryptography.fernet import Fernet, InvalidToken

        sealed = store.get_setting(cls.connection_scope(), "webhook_secrets")
        if not sealed:
            return {}
        try:
            opened = json.loads(Fernet(secret_key()).decrypt(str(sealed).encode()))
        except (InvalidToken, ValueError):
            return {}
        return {str(k): str(v) for k, v in opened.items()} if isinstance(opened, dict) else {}

    @classmethod
    def webhook_key(cls, store: Any) -> str | None:
        own = super().webhook_key(store)
        if own:
            return own
        secrets = cls.stored_webhook_secrets(store)
        return json.dumps(dict(secrets)) if secrets else None

    def subscribe(self, url: str, *, renew: bool = False) -> str | None:
        """Subscribe this administration at ``url``; the new webhook's secret. One for
        ``url`` that exists already is kept (None: its secret was kept when it was made),
        unless ``renew``: Kindly holds no secret for it (lost with the key, or never
        kept), so it is ended and made again."""
        held = [
            row
            for row in self._call("GET", "webhooks.json").json() or []
            if isinstance(row, dict) and row.get("url") == url
        ]
        if held and not renew:
            return None
        for row in held:
            if str(row.get("id")).isdigit():
                self._call("DELETE", f"webhooks/{row['id']}.json", ok=(200, 204))
        made = self._call(
            "POST", "webhooks.json", json={"url": url, "enabled_events": list(WEBHOOK_EVENTS)}
        ).json()
        return str(made.get("secret") or "") or None

    def unsubscribe(self, url: str) -> int:
        ended = 0
        for row in self._call("GET", "webhooks.json").json() or []:
            if isinstance(row, dict) and row.get("url") == url and str(row.get("id")).isdigit():
                self._call("DELETE", f"webhooks/{row['id']}.json", ok=(200, 204))
                ended += 1
        return ended

    def is_handshake(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Moneybird asks the address when a webhook is made, before any secret exists:
        a request without ``Moneybird-Signature`` is that check (answered, never synced)."""
        return not any(name.lower() == "moneybird-signature" for name in headers)

    def verify_webhook(self, body: bytes, headers: Mapping[str, str], key: str) -> bool:
        """``Moneybird-Signature: t=<unix>,v1=<hex>`` (several v1 may come while a secret
        changes): HMAC-SHA256 of ``"{t}.{body}"`` under the administration's secret, and
        ``t`` within five minutes of now."""
        signature = next(
            (v for k, v in headers.items() if k.lower() == "moneybird-signature"), None
        )
        if not signature:
            return False
        parts = [part.strip().split("=", 1) for part in signature.split(",")]
        stamps = [value for name, value in (p for p in parts if len(p) == 2) if name == "t"]
        signed = [value for name, value in (p for p in parts if len(p) == 2) if name == "v1"]
        if len(stamps) != 1 or not stamps[0].isdigit() or not signed:
            return False
        sent = int(stamps[0])
        if abs(self.clock().timestamp() - sent) > SIGNATURE_TOLERANCE_SECONDS:
            return False
        secret = _secret_for(key, body)
        if secret is None:
            return False
        message = stamps[0].encode() + b"." + body
        return any(hmac_sha256_hex_matches(message, value, secret) for value in signed)

    def _payload(self, body: bytes) -> Mapping[str, Any] | None:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return None
        if not isinstance(data, dict) or str(data.get("administration_id")) != self.administration:
            return None
        return data

    def webhook_records(self, body: bytes) -> list[tuple[str, str]]:
        data = self._payload(body)
        if data is None or not data.get("entity_type") or not data.get("entity_id"):
            return []
        return [(str(data["entity_type"]), str(data["entity_id"]))]

    def webhook_event_ids(self, body: bytes, headers: Mapping[str, str] | None = None) -> list[str]:
        """The push by its signed body, not by its ``Idempotency-Key`` header, which no
        signature covers: a replay with a new key is the same push. Moneybird's retries of
        one push carry the same body."""
        import hashlib

        if self._payload(body) is None:
            return []
        return [f"moneybird:{hashlib.sha256(body).hexdigest()}"]


def _versions_from(bookmarks: Mapping[str, str]) -> dict[str, dict[str, int]] | None:
    try:
        data = json.loads(bookmarks["versions"])
    except (KeyError, ValueError):
        return None
    if not isinstance(data, dict) or not all(k in data for k in ("contacts", "invoices")):
        return None
    return {kind: {str(k): int(v) for k, v in data[kind].items()} for kind in data}


def _forget(merge: Merge, invoice_id: str) -> None:
    """Take an invoice (or credit invoice) and its payments out of the merge."""
    merge.invoices.pop(invoice_id, None)
    merge.credit_notes.pop(invoice_id, None)
    for payment_id in [p.id for p in merge.payments.values() if p.invoice_id == invoice_id]:
        del merge.payments[payment_id]


def _moved(known: Mapping[str, int], now: Mapping[str, int]) -> list[str]:
    """The ids new or with another version than last time."""
    return [record_id for record_id, version in now.items() if known.get(record_id) != version]


def _languages(rows: Iterable[Mapping[str, Any]]) -> dict[str, Language]:
    """Each contact's language: the one of its newest invoice read in this sync."""
    found: dict[str, tuple[str, Language]] = {}
    for row in rows:
        language = records.language_of(row.get("language"))
        contact = str(row.get("contact_id") or "")
        when = str(row.get("invoice_date") or "")
        if language and contact and (contact not in found or found[contact][0] <= when):
            found[contact] = (when, language)
    return {contact: language for contact, (_, language) in found.items()}


def _notes_of(record: Any, clock: Any) -> list[Note]:
    if not isinstance(record, dict):
        return []
    notes = []
    for entry in record.get("notes") or []:
        if not isinstance(entry, dict):
            continue
        created: datetime = moment(entry.get("created_at")) or clock()
        note = note_from_marker(
            str(entry.get("note") or ""),
            created_at=created,
            customer_id=str(record.get("contact_id") or ""),
            invoice_id=str(record.get("id") or ""),
        )
        if note is not None:
            notes.append(note)
    return notes


def _secret_for(key: str, body: bytes) -> str | None:
    """The secret to check ``body`` with: ``key`` itself, or, when Kindly keeps one per
    administration (a JSON object), the one of the administration the body names."""
    text = key.strip()
    if not text.startswith("{"):
        return key
    try:
        secrets = json.loads(text)
        administration = str(json.loads(body or b"null").get("administration_id"))
    except (ValueError, AttributeError):
        return None
    secret = secrets.get(administration) if isinstance(secrets, dict) else None
    return str(secret) if secret else None

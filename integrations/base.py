"""The small base every bookkeeping connector implements.

A connector maps one platform's records onto :mod:`plugin.core.model` and writes Kindly's notes
back. Class attributes describe it to the host: ``manifest.json`` is built from them (see
:mod:`plugin.app.manifest`), and a test fails when the two drift apart.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import ClassVar

from plugin.core.model import Invoice, LedgerSnapshot, Note
from plugin.core.policy import Overrides
from plugin.ports import Outcome, SyncResult

__all__ = ["BookkeepingConnector", "SyncResult"]


class BookkeepingConnector(abc.ABC):
    #: Short name used on the command line and in settings (``kindly connect NAME``).
    name: ClassVar[str]
    #: Human name shown by the host.
    title: ClassVar[str]
    #: "none" for local sources, "oauth2" for platforms.
    auth: ClassVar[str] = "none"
    oauth_scopes: ClassVar[tuple[str, ...]] = ()
    #: Path under `kindly serve` where the platform posts webhooks, if it has them.
    webhook_path: ClassVar[str | None] = None
    #: Told (resource, records read so far) during a long sync, for a progress display.
    progress: Callable[[str, int], None] | None = None

    @property
    def source_id(self) -> str:
        """Names this source in the store; one per organisation for multi-tenant platforms."""
        return self.name

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the data comes from, for messages (a folder, an organisation name)."""

    @abc.abstractmethod
    def read_snapshot(self) -> LedgerSnapshot:
        """Read and validate everything; raise before returning anything half-read."""

    @abc.abstractmethod
    def write_note(self, note: Note) -> None:
        """Record in the accounting system that a reminder went out."""

    @abc.abstractmethod
    def read_notes(self) -> tuple[Note, ...]:
        """The notes Kindly wrote earlier, so history can be rebuilt from the source of truth."""

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        """The invoice as a PDF to attach to its reminder (R6, R20), if the platform has it."""
        return None

    def sync(self, previous: LedgerSnapshot | None, bookmarks: Mapping[str, str]) -> SyncResult:
        """Bring ``previous`` up to date. Sources without change tracking read it all."""
        return SyncResult(self.read_snapshot())

    def read_invoices(self, invoice_ids: Sequence[str]) -> tuple[Invoice, ...]:
        """These invoices read fresh from the source, right before a reminder goes out (R3)."""
        wanted = set(invoice_ids)
        return tuple(i for i in self.read_snapshot().invoices if i.id in wanted)

    def existing_note_ids(self, notes: Iterable[Note]) -> set[str]:
        """Which of these notes the source holds already (a crash may have left some)."""
        held = {note.id for note in self.read_notes()}
        return {note.id for note in notes if note.id in held}

    def online_invoice_url(self, invoice: Invoice) -> str | None:
        """The link where the client sees and pays the invoice."""
        return invoice.online_url

    def group_settings(self) -> Mapping[str, Overrides]:
        """Settings by client group that the platform itself holds (D6), if it can."""
        return {}

    #: Whether the platform can e-mail an invoice itself (`email_invoice`).
    has_mailer: ClassVar[bool] = False

    def email_invoice(self, invoice: Invoice, reference: str | None = None) -> Outcome:
        """Have the platform e-mail the invoice with its own template; how that went.

        ``reference`` (the reminder's key) lets the platform drop a repeat of the same
        request. Connectors implement :meth:`send_invoice_email`.
        """
        from integrations.http import HttpError, delivery_status

        try:
            self.send_invoice_email(invoice, reference)
        except HttpError as exc:
            # Repeatable: the platform's mailer is asked with an idempotency key.
            status = delivery_status(exc, repeatable=True)
            return Outcome(status, f"{self.title} could not e-mail {invoice.number}: {exc}")
        return Outcome("sent", f"e-mailed by {self.title}")

    def send_invoice_email(self, invoice: Invoice, reference: str | None) -> None:
        """The platform's call that e-mails an invoice (with ``has_mailer``)."""
        raise NotImplementedError(f"{self.title} cannot e-mail invoices itself")

    def verify_webhook(self, body: bytes, headers: Mapping[str, str], key: str) -> bool:
        """Whether a webhook request really comes from the platform."""
        return False

    def webhook_records(self, body: bytes) -> list[tuple[str, str]]:
        """The (kind, id) of each record a verified webhook names."""
        return []

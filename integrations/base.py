"""The small base every bookkeeping connector implements.

A connector maps one platform's records onto :mod:`plugin.model` and writes Kindly's notes
back. Class attributes describe it to the host: ``manifest.json`` is built from them (see
:mod:`plugin.manifest`), and a test fails when the two drift apart.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from plugin.model import Invoice, LedgerSnapshot, Note

__all__ = ["BookkeepingConnector"]


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

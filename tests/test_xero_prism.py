"""Every request the Xero connector makes, checked against Xero's own OpenAPI description.

Prism (:mod:`tests.prism`) serves ../shared/specs/xero/xero_accounting.yaml: a request
that breaks the description is answered with an error, and the connector raises. The
answers are Xero's own examples, so the mapping is exercised on the platform's shapes too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from integrations.bookkeeping.xero import Tenant, XeroConnector, XeroSettings
from integrations.oauth import Token, TokenVault
from plugin.core.model import Note
from plugin.core.money import Money
from plugin.state.store import Store
from tests.prism import SPECS, serving
from tests.xero_harness import FakeTime

SPEC = SPECS / "xero" / "xero_accounting.yaml"
TENANT = "00000000-0000-0000-0000-000000000000"
NOW = datetime(2026, 11, 22, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def prism() -> Iterator[str]:
    with serving(SPEC, "Xero's OpenAPI description") as url:
        yield url


@pytest.fixture
def connector(prism: str, tmp_path: Path) -> Iterator[XeroConnector]:
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    vault = TokenVault(store, "xero", Fernet.generate_key(), clock=lambda: NOW)
    vault.save(Token("prism-access-token", "prism-refresh-token", NOW.replace(year=2027)))
    time = FakeTime()
    yield XeroConnector(
        XeroSettings(client_id="kindly", api_url=prism),
        vault,
        Tenant(TENANT, "Prism"),
        clock=lambda: NOW,
        sleep=time.sleep,
    )
    store.close()


def test_a_full_and_an_incremental_sync_are_valid_requests(connector: XeroConnector) -> None:
    full = connector.sync(None, {})
    # Xero's own examples, mapped: three invoices in NZD, one of them voided.
    numbers = {i.number: i for i in full.snapshot.invoices}
    assert {"INV-0001", "INV-0002", "INV-0003"} <= set(numbers)
    assert numbers["INV-0001"].status.value == "voided"
    assert numbers["INV-0003"].amount_due == Money.of("115", "NZD")
    # The second sync sends If-Modified-Since from the bookmarks: Prism checks its format.
    again = connector.sync(full.snapshot, full.bookmarks)
    assert (
        set(again.bookmarks)
        == set(full.bookmarks)
        == {
            "Contacts",
            "Invoices",
            "CreditNotes",
            "Payments",
        }
    )


def test_fresh_reads_links_notes_and_xero_email_are_valid_requests(
    connector: XeroConnector,
) -> None:
    invoices = connector.read_invoices(["d4956132-ed94-4dd7-9eaa-aa22dfdf06f2"])
    assert invoices
    invoice = invoices[0]
    assert connector.online_invoice_url(invoice)
    connector.write_note(
        Note(
            id="kindly-00112233445566778899aabbccddeeff",
            created_at=NOW,
            text="Kindly sent the first reminder by e-mail.",
            customer_id="a3675fc4-f8dd-4f03-ba5b-f1870566bcd7",
            invoice_ids=(invoice.id,),
            reminder_key="00112233445566778899aabbccddeeff",
            stage="first",
            channel="email",
        )
    )
    connector.existing_note_ids([])
    connector.email_invoice(invoice)

"""Every request the Fiken connector makes, checked against Fiken's own OpenAPI description
(../shared/specs/fiken/fiken-api-v2.yaml) with Prism (:mod:`tests.prism`): a request that
breaks it is answered with an error, and the connector raises.

Fiken's own examples break its schemas (an invoice line's ``account`` is a number where
the schema says text), and Prism will not serve those: its answers here are made from
the schemas instead (random values of the right types), so the test checks the requests,
and that odd records are left out with a warning rather than stopping the sync."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from integrations.bookkeeping.fiken import FikenConnector, FikenSettings
from integrations.bookkeeping.oauth_platform import Tenant
from integrations.http import FatalError
from integrations.oauth import Token, TokenVault
from plugin.core.model import Invoice
from plugin.core.money import Money
from plugin.core.vocabulary import DeliveryStatus
from plugin.state.store import Store
from tests.contract.harness import FakeTime
from tests.prism import SPECS, serving

SPEC = SPECS / "fiken" / "fiken-api-v2.yaml"
NOW = datetime(2026, 11, 22, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def prism() -> Iterator[str]:
    with serving(SPEC, "Fiken's OpenAPI description", dynamic=True) as url:
        yield url


@pytest.fixture
def connector(prism: str, tmp_path: Path) -> Iterator[FikenConnector]:
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    vault = TokenVault(store, "fiken", Fernet.generate_key(), clock=lambda: NOW)
    vault.save(Token("prism-access-token", "prism-refresh-token", NOW.replace(year=2027)))
    time = FakeTime()
    yield FikenConnector(
        FikenSettings(client_id="kindly", api_url=prism),
        vault,
        Tenant("fiken-demo-oppstart-as", "Prism"),
        company_country="NO",
        clock=lambda: NOW,
        sleep=time.sleep,
    )
    store.close()


def test_a_full_and_an_incremental_sync_are_valid_requests(connector: FikenConnector) -> None:
    full = connector.sync(None, {})
    again = connector.sync(full.snapshot, full.bookmarks)
    assert set(again.bookmarks) == set(full.bookmarks)


def test_fresh_reads_the_pdf_and_fikens_sending_are_valid_requests(
    connector: FikenConnector,
) -> None:
    invoice = Invoice(
        id="1234",
        number="10001",
        customer_id="5678",
        issue_date=date(2026, 10, 1),
        due_date=date(2026, 10, 31),
        total=Money.of("100.00", "NOK"),
        amount_due=Money.of("100.00", "NOK"),
    )
    refused = None
    try:
        connector.read_invoices([invoice.id, "4321"])
    except FatalError as exc:
        refused = exc
    # A made-up record Kindly refuses to read is fine; a request Prism refused is not.
    assert refused is None or refused.status is None, refused
    connector.invoice_pdf(invoice)
    outcome = connector.email_invoice(invoice)
    assert outcome.status is DeliveryStatus.SENT, outcome.detail

"""A QuickBooks Online connector wired to the fake QuickBooks, with time that passes only
when asked, and a small company to read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from integrations.bookkeeping.oauth_platform import Tenant
from integrations.bookkeeping.quickbooks import QuickBooksConnector, QuickBooksSettings
from integrations.http import CallBudget
from integrations.oauth import Token, TokenVault
from plugin.state.store import Store
from tests.contract.harness import FakeTime
from tests.fakes.quickbooks import FakeQuickBooks

__all__ = ["QuickBooksHarness", "connect_to_fake", "seed_small_company"]


@dataclass
class QuickBooksHarness:
    fake: FakeQuickBooks
    store: Store
    key: bytes
    time: FakeTime
    connector: QuickBooksConnector

    @property
    def vault(self) -> TokenVault:
        return self.connector.vault


def connect_to_fake(
    fake: FakeQuickBooks, folder: Path, **settings_changes: object
) -> QuickBooksHarness:
    store = Store.open(f"sqlite:///{folder / 'state.sqlite3'}")
    key = Fernet.generate_key()
    vault = TokenVault(store, "quickbooks", key, clock=lambda: fake.clock)
    vault.save(Token.from_response(fake.issue_tokens(), fake.clock))
    settings = QuickBooksSettings(
        client_id=fake.client_id,
        **fake.endpoints(),  # type: ignore[arg-type]
        **settings_changes,  # type: ignore[arg-type]
    )
    clock = FakeTime()
    connector = QuickBooksConnector(
        settings,
        vault,
        Tenant(fake.realm_id, fake.company_name),
        company_country="US",
        client_secret=fake.client_secret,
        clock=lambda: fake.clock,
        sleep=clock.sleep,
        budget=CallBudget(per_minute=450, clock=clock.monotonic, sleep=clock.sleep),
    )
    return QuickBooksHarness(fake, store, key, clock, connector)


def seed_small_company(fake: FakeQuickBooks) -> dict[str, dict[str, Any]]:
    """Three customers, five invoices, a part payment, a credit memo applied to an invoice,
    and a voided invoice."""
    firm = fake.add_customer_type("Reminders: firm")
    ada = fake.add_customer(
        "Ada's Bakery",
        CompanyName="Ada's Bakery LLC",
        GivenName="Ada",
        PrimaryEmailAddr={"Address": "ada@bakery.example, books@bakery.example"},
        FamilyName="Lovelace",
        PrimaryPhone={"FreeFormNumber": "(650) 555-3311"},
        BillAddr={
            "Line1": "4581 Finch St.",
            "City": "Bayshore",
            "CountrySubDivisionCode": "CA",
            "PostalCode": "94326",
            "Country": "USA",
        },
        CustomerTypeRef={"value": firm["Id"], "name": firm["Name"]},
    )
    bo = fake.add_customer(
        "Bo's Garage",
        BillAddr={
            "Line1": "12 High Street",
            "City": "London",
            "PostalCode": "SE10 9NF",
            "Country": "UK",
        },
        CurrencyRef={"value": "GBP", "name": "British Pound Sterling"},
    )
    cy = fake.add_customer("Cy Consulting")
    a1 = fake.add_invoice(ada, "1001", "1210.00", issued=date(2026, 9, 1), due=date(2026, 10, 1))
    a2 = fake.add_invoice(ada, "1002", "500.00", issued=date(2026, 10, 1), due=date(2026, 10, 31))
    fake.add_payment(ada, [(a2, "200.00")], on=date(2026, 11, 2), reference="CHK-1")
    b1 = fake.add_invoice(
        bo, "1003", "950.00", issued=date(2026, 9, 15), due=date(2026, 10, 15), currency="GBP"
    )
    c1 = fake.add_invoice(cy, "1004", "80.00", issued=date(2026, 10, 5), due=date(2026, 11, 4))
    memo = fake.add_credit_memo(cy, "CM-1", "30.00", on=date(2026, 11, 6))
    fake.add_payment(cy, [(c1, "30.00")], on=date(2026, 11, 6), credits=[(memo, "30.00")])
    void = fake.add_invoice(
        cy, "1005", "0", issued=date(2026, 11, 1), due=date(2026, 12, 1), PrivateNote="Voided"
    )
    return {"ada": ada, "bo": bo, "cy": cy, "a1": a1, "a2": a2, "b1": b1, "c1": c1, "void": void}

"""A Xero connector wired to the fake Xero, with time that passes only when asked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from integrations.bookkeeping.xero import Tenant, XeroConnector, XeroSettings
from integrations.http import CallBudget
from integrations.oauth import Token, TokenVault
from plugin.state.store import Store
from tests.contract.harness import FakeTime
from tests.fakes.xero import FakeXero

__all__ = ["FakeTime", "XeroHarness", "connect_to_fake", "seed_small_ledger"]


@dataclass
class XeroHarness:
    fake: FakeXero
    store: Store
    key: bytes
    time: FakeTime
    connector: XeroConnector

    @property
    def vault(self) -> TokenVault:
        return self.connector.vault


def connect_to_fake(fake: FakeXero, folder: Path, **settings_changes: object) -> XeroHarness:
    store = Store.open(f"sqlite:///{folder / 'state.sqlite3'}")
    key = Fernet.generate_key()
    vault = TokenVault(store, f"xero:{fake.tenant_id}", key, clock=lambda: fake.clock)
    vault.save(Token.from_response(fake.issue_tokens(), fake.clock))
    settings = XeroSettings(client_id=fake.client_id, **fake.endpoints(), **settings_changes)  # type: ignore[arg-type]
    clock = FakeTime()
    connector = XeroConnector(
        settings,
        vault,
        Tenant(fake.tenant_id, "Noordlicht Studio"),
        clock=lambda: fake.clock,
        sleep=clock.sleep,
        budget=CallBudget(per_minute=60, clock=clock.monotonic, sleep=clock.sleep),
    )
    return XeroHarness(fake, store, key, clock, connector)


def seed_small_ledger(fake: FakeXero) -> dict[str, dict[str, Any]]:
    """Three clients, five invoices, a part payment and a credit note."""
    ada = fake.add_contact(
        "Ada Vermeer",
        FirstName="Ada",
        LastName="Vermeer",
        Addresses=[
            {
                "AddressType": "POBOX",
                "AddressLine1": "Prinsengracht 263",
                "City": "Amsterdam",
                "PostalCode": "1016 GV",
                "Country": "Netherlands",
            }
        ],
        Phones=[{"PhoneType": "MOBILE", "PhoneNumber": "612345678", "PhoneCountryCode": "31"}],
        ContactGroups=[{"ContactGroupID": "g1", "Name": "Reminders: firm", "Status": "ACTIVE"}],
    )
    olav = fake.add_contact(
        "Fjord Bygg AS",
        Addresses=[{"AddressType": "POBOX", "City": "Bergen", "Country": "NO"}],
        ContactGroups=[{"ContactGroupID": "g2", "Name": "Language: en", "Status": "ACTIVE"}],
    )
    cleo = fake.add_contact(
        "Cleo Martin", Addresses=[{"AddressType": "STREET", "Country": "France"}]
    )
    a1 = fake.add_invoice(
        ada, "INV-0001", "1210.00", issued=date(2026, 9, 1), due=date(2026, 10, 1)
    )
    a2 = fake.add_invoice(
        ada, "INV-0002", "500.00", issued=date(2026, 10, 1), due=date(2026, 10, 31)
    )
    fake.add_payment(a2, "200.00", date(2026, 11, 2))
    o1 = fake.add_invoice(
        olav,
        "INV-0003",
        "12500.00",
        issued=date(2026, 9, 15),
        due=date(2026, 10, 15),
        currency="NOK",
        ExpectedPaymentDate="/Date(1796169600000+0000)/",
    )
    c1 = fake.add_invoice(
        cleo, "INV-0004", "80.00", issued=date(2026, 10, 5), due=date(2026, 11, 4)
    )
    fake.add_credit_note(cleo, "CN-0001", "30.00", date(2026, 11, 6), allocate_to=[(c1, "30.00")])
    draft = fake.add_invoice(
        cleo, "INV-0005", "99.00", issued=date(2026, 11, 1), due=date(2026, 12, 1), status="DRAFT"
    )
    return {
        "ada": ada,
        "olav": olav,
        "cleo": cleo,
        "a1": a1,
        "a2": a2,
        "o1": o1,
        "c1": c1,
        "draft": draft,
    }

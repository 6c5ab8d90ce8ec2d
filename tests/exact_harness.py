"""An Exact Online connector wired to the fake Exact Online, with time that passes only
when asked, and a small division to read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from integrations.bookkeeping.exact import ExactOnlineConnector, ExactOnlineSettings
from integrations.bookkeeping.oauth_platform import Tenant
from integrations.http import CallBudget
from integrations.oauth import Token, TokenVault
from plugin.state.store import Store
from tests.contract.harness import FakeTime
from tests.fakes.exact import FakeExactOnline

__all__ = ["ExactHarness", "connect_to_fake", "seed_small_division"]


@dataclass
class ExactHarness:
    fake: FakeExactOnline
    store: Store
    key: bytes
    time: FakeTime
    connector: ExactOnlineConnector

    @property
    def vault(self) -> TokenVault:
        return self.connector.vault


def connect_to_fake(fake: FakeExactOnline, folder: Path, **changes: object) -> ExactHarness:
    store = Store.open(f"sqlite:///{folder / 'state.sqlite3'}")
    key = Fernet.generate_key()
    vault = TokenVault(
        store, "exactonline", key, clock=lambda: fake.clock,
        margin=ExactOnlineConnector.refresh_margin,
    )  # fmt: skip
    vault.save(Token.from_response(fake.issue_tokens(), fake.clock))
    settings = ExactOnlineSettings(
        client_id=fake.client_id,
        **fake.endpoints(),  # type: ignore[arg-type]
        **changes,  # type: ignore[arg-type]
    )
    clock = FakeTime()
    connector = ExactOnlineConnector(
        settings,
        vault,
        Tenant(str(fake.division), fake.division_name),
        company_country="NL",
        client_secret=fake.client_secret,
        clock=lambda: fake.clock,
        sleep=clock.sleep,
        budget=CallBudget(per_minute=60, clock=clock.monotonic, sleep=clock.sleep),
    )
    return ExactHarness(fake, store, key, clock, connector)


def seed_small_division(fake: FakeExactOnline) -> dict[str, dict[str, Any]]:
    """Three accounts, five invoices (one paid in part, one paid), a credit note."""
    ada = fake.add_account(
        "Bakkerij Ada",
        Email="ada@bakkerij.example",
        Language="NL",
        AddressLine1="Prinsengracht 263",
        Postcode="1016 GV",
        City="Amsterdam",
        Country="NL",
        Phone="+31 20 555 0101",
    )
    karl = fake.add_account(
        "Karl GmbH", Email="karl@gmbh.example", Language="DE", City="Berlin", Country="DE"
    )
    chloe = fake.add_account(
        "Chloé SARL", Email="compta@chloe.example", Language="FR", Country="FR"
    )
    a1 = fake.add_invoice(ada, 1001, "1210.00", issued=date(2026, 9, 1), due=date(2026, 10, 1))
    a2 = fake.add_invoice(
        ada, 1002, "500.00", issued=date(2026, 10, 1), due=date(2026, 10, 31), open_amount="300.00"
    )
    k1 = fake.add_invoice(karl, 1003, "950.00", issued=date(2026, 9, 15), due=date(2026, 10, 15))
    c1 = fake.add_invoice(chloe, 1004, "80.00", issued=date(2026, 10, 5), due=date(2026, 11, 4))
    paid = fake.add_invoice(
        chloe, 1005, "40.00", issued=date(2026, 9, 5), due=date(2026, 10, 4), open_amount="0"
    )
    credit = fake.add_credit_note(chloe, 1006, "20.00", issued=date(2026, 11, 6))
    return {
        "ada": ada, "karl": karl, "chloe": chloe, "a1": a1, "a2": a2, "k1": k1, "c1": c1,
        "paid": paid, "credit": credit,
    }  # fmt: skip

"""A Moneybird connector wired to the fake Moneybird, with time that passes only when
asked, and a small administration to read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from integrations.bookkeeping.moneybird import MoneybirdConnector, MoneybirdSettings
from integrations.bookkeeping.oauth_platform import Tenant
from integrations.http import CallBudget
from integrations.oauth import Token, TokenVault
from plugin.state.store import Store
from tests.contract.harness import FakeTime
from tests.fakes.moneybird import FakeMoneybird

__all__ = ["MoneybirdHarness", "connect_to_fake", "fresh_token", "seed_small_administration"]


@dataclass
class MoneybirdHarness:
    fake: FakeMoneybird
    store: Store
    key: bytes
    time: FakeTime
    connector: MoneybirdConnector

    @property
    def vault(self) -> TokenVault:
        return self.connector.vault


def fresh_token(fake: FakeMoneybird) -> Token:
    return Token.from_response(fake.issue_tokens(), fake.clock)


def connect_to_fake(
    fake: FakeMoneybird, folder: Path, administration: str | None = None, **changes: object
) -> MoneybirdHarness:
    store = Store.open(f"sqlite:///{folder / 'state.sqlite3'}")
    key = Fernet.generate_key()
    vault = TokenVault(store, "moneybird", key, clock=lambda: fake.clock)
    vault.save(fresh_token(fake))
    settings = MoneybirdSettings(
        client_id=fake.client_id,
        **fake.endpoints(),  # type: ignore[arg-type]
        **changes,  # type: ignore[arg-type]
    )
    chosen = administration or fake.administration
    clock = FakeTime()
    connector = MoneybirdConnector(
        settings,
        vault,
        Tenant(chosen, fake.book(chosen).name),
        company_country="NL",
        client_secret=fake.client_secret,
        clock=lambda: fake.clock,
        sleep=clock.sleep,
        budget=CallBudget(per_minute=30, clock=clock.monotonic, sleep=clock.sleep),
    )
    return MoneybirdHarness(fake, store, key, clock, connector)


def seed_small_administration(fake: FakeMoneybird) -> dict[str, dict[str, Any]]:
    """Three contacts (one a person), five invoices (one paid in part, one paid, one with
    a direct debit on its way), a credit invoice, and a draft."""
    ada = fake.add_contact(
        "Bakkerij Ada B.V.",
        email="ada@bakkerij.example",
        send_invoices_to_email="facturen@bakkerij.example",
        send_invoices_to_attention="Ada Vermeer",
        address1="Prinsengracht 263",
        zipcode="1016 GV",
        city="Amsterdam",
        country="NL",
        phone="+31 20 555 0101",
    )
    karl = fake.add_contact(
        "Karl GmbH", email="karl@gmbh.example", city="Berlin", country="DE", zipcode="10115"
    )
    sam = fake.add_contact(
        None,  # type: ignore[arg-type]
        firstname="Sam",
        lastname="de Vries",
        email="sam@example.nl",
        country="NL",
    )
    a1 = fake.add_invoice(ada, 1001, "1210.00", issued=date(2026, 9, 1), due=date(2026, 10, 1))
    a2 = fake.add_invoice(ada, 1002, "500.00", issued=date(2026, 10, 1), due=date(2026, 10, 31))
    fake.pay(a2, "200.00", on=date(2026, 11, 2), reference="NL-BANK-1")
    k1 = fake.add_invoice(
        karl, 1003, "950.00", issued=date(2026, 9, 15), due=date(2026, 10, 15), language="de"
    )
    s1 = fake.add_invoice(
        sam,
        1004,
        "80.00",
        issued=date(2026, 10, 5),
        due=date(2026, 11, 4),
        state="pending_payment",
    )
    paid = fake.add_invoice(sam, 1005, "40.00", issued=date(2026, 9, 5), due=date(2026, 10, 4))
    fake.pay(paid, "40.00", on=date(2026, 10, 1))
    credit = fake.add_credit_invoice(k1, "-50.00", issued=date(2026, 11, 6))
    draft = fake.add_draft(ada, "99.00")
    return {
        "ada": ada, "karl": karl, "sam": sam, "a1": a1, "a2": a2, "k1": k1, "s1": s1,
        "paid": paid, "credit": credit, "draft": draft,
    }  # fmt: skip

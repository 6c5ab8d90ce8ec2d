"""A Pennylane connector wired to the fake Pennylane, with time that passes only when
asked, and a small company to read.

Two clocks stand in for waiting: ``time`` takes the HTTP client's backoff, and ``pace``
the call budget's waits, which also move the fake's clock on as far (so the fake's "25 in
five seconds" sees the calls spread as a real client would spread them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from integrations.bookkeeping.oauth_platform import Tenant
from integrations.bookkeeping.pennylane import (
    PennylaneBudget,
    PennylaneConnector,
    PennylaneSettings,
)
from integrations.oauth import Token, TokenVault
from plugin.state.store import Store
from tests.contract.harness import FakeTime
from tests.fakes.pennylane import FakePennylane

__all__ = [
    "PennylaneHarness",
    "connect_to_fake",
    "fresh_token",
    "seed_small_company",
]


@dataclass
class PennylaneHarness:
    fake: FakePennylane
    store: Store
    key: bytes
    #: The HTTP client's clock (backoff, Retry-After).
    time: FakeTime
    #: The call budget's clock (its waits for the next five-second window).
    pace: FakeTime
    connector: PennylaneConnector

    @property
    def vault(self) -> TokenVault:
        return self.connector.vault


def fresh_token(fake: FakePennylane, company: int | None = None) -> Token:
    return Token.from_response(fake.issue_tokens(company), fake.clock)


def connect_to_fake(
    fake: FakePennylane, folder: Path, company: int | None = None, **changes: object
) -> PennylaneHarness:
    """A connector on ``company`` (the fake's default one) with a fresh grant of its own."""
    store = Store.open(f"sqlite:///{folder / 'state.sqlite3'}")
    key = Fernet.generate_key()
    vault = TokenVault(store, "pennylane", key, clock=lambda: fake.clock)
    vault.save(fresh_token(fake, company))
    settings = PennylaneSettings(
        client_id=fake.client_id,
        **fake.endpoints(),  # type: ignore[arg-type]
        **changes,  # type: ignore[arg-type]
    )
    book = fake.book(company)
    time, pace = FakeTime(), FakeTime()

    def wait(seconds: float) -> None:
        pace.sleep(seconds)
        fake.tick(seconds=seconds)

    connector = PennylaneConnector(
        settings,
        vault,
        Tenant(str(book.id), book.name),
        company_country="FR",
        client_secret=fake.client_secret,
        clock=lambda: fake.clock,
        sleep=time.sleep,
        budget=PennylaneBudget(
            per_minute=PennylaneConnector.calls_per_minute, clock=pace.monotonic, sleep=wait
        ),
    )
    return PennylaneHarness(fake, store, key, time, pace, connector)


def seed_small_company(fake: FakePennylane) -> dict[str, dict[str, Any]]:
    """Four customers (a French company with someone to its attention, a German company
    writing in English, two persons: one in France, one in Germany who reads Spanish),
    six invoices (one paid in part, one paid, one with a credit note against it) and a
    draft."""
    dupont = fake.add_customer(
        "Boulangerie Dupont SARL",
        recipient="Marie Dupont",
        emails=["factures@dupont.example", "marie@dupont.example"],
        phone="+33 1 42 00 00 01",
        reg_no="552100554",
    )
    berlin = fake.add_customer(
        "Berliner Haus GmbH",
        billing_language="en_GB",
        emails=["rechnung@berliner-haus.example"],
        billing_address={
            "address": "Unter den Linden 5",
            "postal_code": "10117",
            "city": "Berlin",
            "country_alpha2": "DE",
        },
    )
    lucie = fake.add_customer("Lucie Bernard", kind="individual")
    pablo = fake.add_customer(
        "Pablo García",
        kind="individual",
        billing_language="es_ES",
        billing_address={
            "address": "Hauptstraße 1",
            "postal_code": "50667",
            "city": "Köln",
            "country_alpha2": "DE",
        },
    )
    a1 = fake.add_invoice(dupont, 1, "1234.56", issued=date(2026, 10, 1), due=date(2026, 10, 31))
    a2 = fake.add_invoice(dupont, 2, "500.00", issued=date(2026, 10, 5), due=date(2026, 11, 4))
    fake.pay(a2, "200.00", on=date(2026, 11, 2))
    b1 = fake.add_invoice(berlin, 3, "999.50", issued=date(2026, 10, 10), due=date(2026, 11, 9))
    credit = fake.add_credit_note(b1, "100.00", issued=date(2026, 11, 12))
    l1 = fake.add_invoice(lucie, 4, "80.00", issued=date(2026, 10, 15), due=date(2026, 11, 14))
    paid = fake.add_invoice(lucie, 5, "40.00", issued=date(2026, 9, 5), due=date(2026, 10, 5))
    fake.pay(paid, "40.00", on=date(2026, 10, 1))
    p1 = fake.add_invoice(pablo, 6, "250.50", issued=date(2026, 10, 20), due=date(2026, 11, 19))
    draft = fake.add_draft(dupont, "99.00")
    return {
        "dupont": dupont, "berlin": berlin, "lucie": lucie, "pablo": pablo, "a1": a1,
        "a2": a2, "b1": b1, "credit": credit, "l1": l1, "paid": paid, "p1": p1,
        "draft": draft,
    }  # fmt: skip

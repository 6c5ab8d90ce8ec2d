"""A Fiken connector wired to the fake Fiken, with time that passes only when asked, and a
small company to read.

Two clocks stand in for waiting: ``time`` takes the HTTP client's backoff, and ``pace``
the call budget's spacing, which also moves the fake's clock on as far (so the fake's
"four a second" sees the calls spread as a real client would spread them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from integrations.bookkeeping.fiken import FikenBudget, FikenConnector, FikenSettings
from integrations.bookkeeping.oauth_platform import Tenant
from integrations.oauth import Token, TokenVault
from plugin.state.store import Store
from tests.contract.harness import FakeTime
from tests.fakes.fiken import FakeFiken

__all__ = [
    "FikenHarness",
    "connect_to_fake",
    "delete_sale",
    "fresh_token",
    "open_company",
    "seed_small_company",
]


@dataclass
class FikenHarness:
    fake: FakeFiken
    store: Store
    key: bytes
    #: The HTTP client's clock (backoff, Retry-After).
    time: FakeTime
    #: The call budget's clock (the spacing between calls).
    pace: FakeTime
    connector: FikenConnector

    @property
    def vault(self) -> TokenVault:
        return self.connector.vault


def fresh_token(fake: FakeFiken) -> Token:
    return Token.from_response(fake.issue_tokens(), fake.clock)


def _connector(
    fake: FakeFiken, settings: FikenSettings, vault: TokenVault, slug: str
) -> tuple[FikenConnector, FakeTime, FakeTime]:
    time, pace = FakeTime(), FakeTime()

    def wait(seconds: float) -> None:
        pace.sleep(seconds)
        fake.tick(seconds=seconds)

    connector = FikenConnector(
        settings,
        vault,
        Tenant(slug, str(fake.book(slug).info["name"])),
        company_country="NO",
        client_secret=fake.client_secret,
        clock=lambda: fake.clock,
        sleep=time.sleep,
        # Its own record of the last call: its clock is a fake one of its own (the
        # process-wide record would mix clocks between tests).
        budget=FikenBudget(
            per_minute=FikenConnector.calls_per_minute,
            clock=pace.monotonic,
            sleep=wait,
            last_call=[],
        ),
    )
    return connector, time, pace


def connect_to_fake(
    fake: FakeFiken, folder: Path, company: str | None = None, **changes: object
) -> FikenHarness:
    store = Store.open(f"sqlite:///{folder / 'state.sqlite3'}")
    key = Fernet.generate_key()
    vault = TokenVault(store, "fiken", key, clock=lambda: fake.clock)
    vault.save(fresh_token(fake))
    settings = FikenSettings(
        client_id=fake.client_id,
        **fake.endpoints(),  # type: ignore[arg-type]
        **changes,  # type: ignore[arg-type]
    )
    connector, time, pace = _connector(fake, settings, vault, company or fake.company)
    return FikenHarness(fake, store, key, time, pace, connector)


def open_company(harness: FikenHarness, slug: str) -> FikenHarness:
    """Another company of the same connection: the same token, so the same Fiken user."""
    connector, time, pace = _connector(
        harness.fake, harness.connector.settings, harness.vault, slug
    )
    return FikenHarness(harness.fake, harness.store, harness.key, time, pace, connector)


def delete_sale(fake: FakeFiken, invoice_id: int | str) -> None:
    """The invoice's sale deleted in Fiken: kept, flagged ``deleted``, and changed today.
    (The fake has no endpoint for it; Fiken's is ``PATCH sales/{saleId}/delete``.)"""
    fake.sale(int(invoice_id))["deleted"] = True
    fake.update_invoice(int(invoice_id))


def seed_small_company(fake: FakeFiken) -> dict[str, dict[str, Any]]:
    """Four customers (a Norwegian business with a contact person, a German one writing in
    English, two persons: one in Norway, one in Germany with no language set), six
    invoices (one paid in part, one paid, one in euros with a credit note against it)."""
    fjell = fake.add_contact(
        "Fjellvann Bakeri AS",
        email="faktura@fjellvann.example",
        organizationNumber="912345678",
        contactPerson=[
            {"contactPersonId": 1, "name": "Ingrid Fjell", "email": "ingrid@fjellvann.example"}
        ],
    )
    berlin = fake.add_contact(
        "Berliner Haus GmbH",
        language="ENGLISH",
        email="rechnung@berliner-haus.example",
        organizationNumber="DE811907980",
        address={
            "streetAddress": "Unter den Linden 5",
            "city": "Berlin",
            "postCode": "10117",
            "country": "Tyskland",
        },
    )
    ola = fake.add_contact("Ola Nordmann", language=None)
    greta = fake.add_contact(
        "Greta Berg",
        language=None,
        address={"streetAddress": "Hauptstraße 1", "city": "Köln", "postCode": "50667",
                 "country": "Tyskland"},
    )  # fmt: skip
    a1 = fake.add_invoice(fjell, 10001, 1234567, issued=date(2026, 10, 1), due=date(2026, 10, 31))
    a2 = fake.add_invoice(fjell, 10002, 500000, issued=date(2026, 10, 5), due=date(2026, 11, 4))
    fake.pay(a2, 200000, on=date(2026, 11, 2))
    b1 = fake.add_invoice(
        berlin, 10003, 99950, issued=date(2026, 10, 10), due=date(2026, 11, 9), currency="EUR"
    )
    credit = fake.add_credit_note(b1, 10000, issued=date(2026, 11, 12))
    o1 = fake.add_invoice(ola, 10004, 80000, issued=date(2026, 10, 15), due=date(2026, 11, 14))
    paid = fake.add_invoice(ola, 10005, 40000, issued=date(2026, 9, 5), due=date(2026, 10, 5))
    fake.pay(paid, 40000, on=date(2026, 10, 1))
    g1 = fake.add_invoice(greta, 10006, 25050, issued=date(2026, 10, 20), due=date(2026, 11, 19))
    return {
        "fjell": fjell, "berlin": berlin, "ola": ola, "greta": greta, "a1": a1, "a2": a2,
        "b1": b1, "credit": credit, "o1": o1, "paid": paid, "g1": g1,
    }  # fmt: skip

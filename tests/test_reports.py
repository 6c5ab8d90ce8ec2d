"""The figures of `kindly report` and the web app's pictures: worked examples of the pure
functions, the command on the demo, and the pictures on the pages."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from plugin.app.cli import cli
from plugin.core.model import (
    CreditAllocation,
    CreditNote,
    Customer,
    Invoice,
    InvoiceStatus,
    LedgerSnapshot,
    Payment,
)
from plugin.core.money import Money
from plugin.core.reports import (
    Reminded,
    ageing,
    days_to_pay,
    paid_on,
    reminders_per_week,
)

ON = date(2026, 12, 1)


def _invoice(
    number: str, due: date, amount: str, *, currency: str = "EUR", due_left: str | None = None,
    status: InvoiceStatus = InvoiceStatus.OPEN,
) -> Invoice:  # fmt: skip
    return Invoice(
        id=number,
        number=number,
        customer_id="C1",
        issue_date=date(2026, 1, 1),
        due_date=due,
        total=Money.of(amount, currency),
        amount_due=Money.of(due_left if due_left is not None else amount, currency),
        status=status,
    )


def test_open_receivables_by_age_per_currency() -> None:
    snapshot = LedgerSnapshot(
        customers=(Customer(id="C1", name="Client"),),
        invoices=(
            _invoice("A", date(2026, 12, 1), "100"),  # due today: not yet overdue
            _invoice("B", date(2026, 11, 30), "200", due_left="150"),  # 1 day, part paid
            _invoice("C", date(2026, 10, 31), "300"),  # 31 days
            _invoice("D", date(2026, 10, 2), "400"),  # 60 days
            _invoice("E", date(2026, 9, 2), "500"),  # 90 days
            _invoice("F", date(2026, 9, 1), "600"),  # 91 days
            _invoice("G", date(2026, 9, 1), "700", currency="NOK"),
            _invoice("H", date(2026, 9, 1), "800", status=InvoiceStatus.DRAFT),
            _invoice("I", date(2026, 9, 1), "900", due_left="0", status=InvoiceStatus.PAID),
        ),
    )
    result = ageing(snapshot, ON)
    assert list(result) == ["EUR", "NOK"], "currencies are never added together"
    assert {name: str(m.amount) for name, m in result["EUR"].items()} == {
        "not_due": "100.00",
        "1_30": "150.00",
        "31_60": "700.00",
        "61_90": "500.00",
        "over_90": "600.00",
    }
    assert result["NOK"]["over_90"] == Money.of("700", "NOK")
    assert result["NOK"]["not_due"] == Money.of("0", "NOK")


def test_reminders_per_week_are_counted_by_monday_and_stage() -> None:
    sent = [
        Reminded("first", date(2026, 11, 30), ("A",)),  # a Monday
        Reminded("first", date(2026, 12, 6), ("B",)),  # the Sunday of that week
        Reminded("second", date(2026, 12, 2), ("C",)),
        Reminded("first", date(2026, 11, 29), ("D",)),  # the Sunday before
    ]
    assert reminders_per_week(sent) == {
        date(2026, 11, 23): {"first": 1},
        date(2026, 11, 30): {"first": 2, "second": 1},
    }


def test_days_to_pay_count_from_the_last_reminder_before_the_payment() -> None:
    paid = _invoice("A", date(2026, 10, 1), "100", due_left="0", status=InvoiceStatus.PAID)
    credited = _invoice("B", date(2026, 10, 1), "50", due_left="0", status=InvoiceStatus.PAID)
    early = _invoice("C", date(2026, 10, 1), "70", due_left="0", status=InvoiceStatus.PAID)
    still_open = _invoice("D", date(2026, 10, 1), "80")
    snapshot = LedgerSnapshot(
        customers=(Customer(id="C1", name="Client"),),
        invoices=(paid, credited, early, still_open),
        payments=(
            Payment("P1", "A", date(2026, 10, 20), Money.of("60", "EUR")),
            Payment("P2", "A", date(2026, 11, 3), Money.of("40", "EUR")),
            Payment("P3", "C", date(2026, 10, 5), Money.of("70", "EUR")),
        ),
        credit_notes=(
            CreditNote(
                "N1",
                "CN-1",
                "C1",
                date(2026, 10, 12),
                Money.of("50", "EUR"),
                allocations=(CreditAllocation("B", Money.of("50", "EUR")),),
            ),
        ),
    )
    assert paid_on(snapshot) == {
        "A": date(2026, 11, 3),
        "B": date(2026, 10, 12),
        "C": date(2026, 10, 5),
    }
    sent = [
        Reminded("first", date(2026, 10, 8), ("A", "B", "D")),
        Reminded("second", date(2026, 10, 22), ("A", "D")),
        Reminded("first", date(2026, 10, 9), ("C",)),  # after C was paid: no effect
    ]
    effects = days_to_pay(sent, snapshot, ["first", "second", "final"])
    assert list(effects) == ["first", "second", "final"]
    # A: paid in full on 3 November, 12 days after the second reminder (its last one).
    assert (effects["second"].paid, effects["second"].days) == (1, (12,))
    # B: credited 4 days after the first reminder. D: still open after the second.
    assert (effects["first"].paid, effects["first"].days, effects["first"].open) == (1, (4,), 0)
    assert effects["second"].open == 1
    assert effects["final"].paid == 0 and effects["final"].median_days is None
    assert effects["second"].median_days == Decimal(12)


def test_kindly_report_on_the_demo(demo_workspace: Path) -> None:
    runner = CliRunner()
    config = str(demo_workspace / "kindly.toml")
    at = "2026-11-22T13:00:00+00:00"
    assert runner.invoke(cli, ["--config", config, "sync", "--at", at]).exit_code == 0
    result = runner.invoke(cli, ["--config", config, "report", "ageing", "--json", "--at", at])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    from plugin.app.cli.base import open_workspace

    kindly = open_workspace(demo_workspace / "kindly.toml")
    open_eur = sum(
        (
            i.amount_due.amount
            for i in kindly.snapshot().invoices
            if i.is_open and i.currency == "EUR"
        ),
        Decimal(0),
    )
    kindly.store.close()
    eur = figures["currencies"]["EUR"]
    assert Decimal(eur["total"]) == open_eur
    assert sum(Decimal(v) for v in eur["buckets"].values()) == open_eur
    table = runner.invoke(cli, ["--config", config, "report", "ageing", "--at", at])
    assert "Open receivables by age on 2026-11-22" in table.output
    sent = runner.invoke(cli, ["--config", config, "run", "--at", at])
    assert sent.exit_code == 0, sent.output
    effect = json.loads(
        runner.invoke(cli, ["--config", config, "report", "effect", "--json"]).output
    )
    assert sum(sum(w["stages"].values()) for w in effect["weeks"]) >= 8
    assert effect["days_to_pay"][0]["stage"] == "courtesy"


def test_the_pages_draw_the_pictures_as_inline_svg(demo_workspace: Path, tmp_path: Path) -> None:
    import re

    from tests.fakes.smtp import start_smtp
    from tests.web_harness import sign_in, sync, token, web_app

    smtp = start_smtp(tmp_path)
    try:
        web = web_app(demo_workspace, smtp)
        client = web.app.test_client()
        assert sign_in(client) == 302
        page = sync(client, web.app, web.org)
        assert page.count('<svg class="chart bars"') == 4, "one per currency: EUR, GBP, NOK, VND"
        assert "Open receivables in EUR by age" in page
        # Each picture says its figures in words for a screen reader.
        desc = re.search(r'<desc id="[^"]+">([^<]+)</desc>', page)
        assert desc and "not yet due: " in desc.group(1)
        client.post(
            f"/o/{web.org}/send",
            data={
                "csrf_token": token(page),
                "key": re.findall(r'name="key" value="([^"]+)"', page),
            },
        )
        after = client.get(f"/o/{web.org}/").get_data(as_text=True)
        assert (
            '<svg class="chart stacked"' in after and "Reminders sent per week, by stage" in after
        )
        assert "style=" not in after.split("<main", 1)[1], "no inline style (the CSP)"
        one = client.get(f"/o/{web.org}/clients/C01").get_data(as_text=True)
        assert "Payment history: days late per invoice" in one
        assert re.search(r"paid \d+ days? late|paid on time", one)
    finally:
        smtp.stop()

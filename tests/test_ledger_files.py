"""The local ledger: the bookkeeping contract, JSON and CSV files read exactly, and every
mistake named precisely."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.bookkeeping.ledger import NOTES_FILE, LocalLedger
from plugin.app.demo import BUNDLED_LEDGER, materialise
from plugin.core.model import CustomerKind, InvoiceStatus, LedgerSnapshot, Note
from plugin.errors import LedgerError
from tests.contract import BookkeepingHarness, bookkeeping_contract, harness_factory

#: One record of a ledger file, as its JSON has it.
Record = dict[str, object]

CUSTOMERS: list[Record] = [
    {"id": "C1", "name": "Bakkerij", "country": "NL", "email": "a@b.example"},
    {
        "id": "C2",
        "name": "Fjord AS",
        "country": "NO",
        "email": ["x@f.example", "y@f.example"],
        "kind": "consumer",
        "tags": ["vip"],
    },
    {"id": "C3", "name": "Acme Inc", "country": "US", "timezone": "America/Chicago"},
]
INVOICES: list[Record] = [
    {
        "id": "I1",
        "number": "N1",
        "customer_id": "C1",
        "issue_date": "2026-10-01",
        "due_date": "2026-10-31",
        "currency": "EUR",
        "total": 100.10,
    },
    {
        "id": "I2",
        "number": "N2",
        "customer_id": "C1",
        "issue_date": "2026-10-01",
        "due_date": "2026-10-31",
        "currency": "EUR",
        "total": "250.00",
    },
    {
        "id": "I3",
        "number": "N3",
        "customer_id": "C2",
        "issue_date": "2026-10-01",
        "due_date": "2026-10-15",
        "currency": "NOK",
        "total": "1000",
        "amount_due": "400",
    },
    {
        "id": "I4",
        "number": "N4",
        "customer_id": "C3",
        "issue_date": "2026-10-01",
        "due_date": "2026-10-15",
        "currency": "USD",
        "total": "80",
        "status": "draft",
    },
]
PAYMENTS: list[Record] = [
    {"id": "P1", "invoice_id": "I1", "date": "2026-11-01", "amount": "40.05", "currency": "EUR"},
    {"id": "P2", "invoice_id": "I2", "date": "2026-11-02", "amount": "300", "currency": "EUR"},
]
CREDITS: list[Record] = [
    {
        "id": "K1",
        "number": "CN1",
        "customer_id": "C1",
        "date": "2026-11-03",
        "currency": "EUR",
        "total": "20.00",
        "allocations": [{"invoice_id": "I1", "amount": "10.00"}],
    },
]


def write_json(folder: Path, **files: list[Record]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, records in files.items():
        (folder / f"{stem}.json").write_text(json.dumps(records), encoding="utf-8")
    return folder


def ledger(tmp_path: Path, **overrides: list[Record]) -> Path:
    files = {
        "customers": CUSTOMERS,
        "invoices": INVOICES,
        "payments": PAYMENTS,
        "credit_notes": CREDITS,
    }
    files.update(overrides)
    return write_json(tmp_path / "ledger", **files)


def read(folder: Path) -> LedgerSnapshot:
    return LocalLedger(folder).read_snapshot()


@harness_factory(
    LocalLedger,
    lacks={
        "idempotent notes": "LocalLedger appends every write_note: the run keeps a repeat "
        "out by writing with write_notes(check=...), which looks first"
    },
)
def demo_ledger(folder: Path) -> Iterator[BookkeepingHarness]:
    """The demo's ledger: a small business with open, paid and part-paid invoices."""
    from plugin.app.demo import create_demo_workspace

    set_up = datetime(2026, 11, 22, 10, tzinfo=UTC)
    create_demo_workspace(folder / "demo", folder / "outbox", set_up)
    ledger_folder = folder / "demo" / "ledger"
    yield BookkeepingHarness(connector=LocalLedger(ledger_folder), source_name=str(ledger_folder))


TestLedgerContract = bookkeeping_contract(demo_ledger)


def test_a_json_ledger_reads_exactly(tmp_path: Path) -> None:
    snap = read(ledger(tmp_path))
    customers = snap.customers_by_id
    assert customers["C1"].language == "nl" and customers["C1"].timezone == "Europe/Amsterdam"
    assert customers["C2"].language == "nb" and customers["C2"].emails == (
        "x@f.example",
        "y@f.example",
    )
    assert customers["C2"].kind is CustomerKind.CONSUMER and customers["C2"].tags == {"vip"}
    invoices = snap.invoices_by_id
    assert invoices["I1"].total.amount == Decimal("100.10")  # a JSON number, read exactly
    # 100.10 - 40.05 paid - 10.00 credited
    assert invoices["I1"].amount_due.amount == Decimal("50.05")
    assert invoices["I1"].status is InvoiceStatus.OPEN
    assert invoices["I2"].amount_due.amount == 0  # overpaid: nothing owed, never negative
    assert invoices["I2"].status is InvoiceStatus.PAID
    assert invoices["I3"].amount_due.amount == Decimal("400")  # the tool's own figure wins
    assert invoices["I4"].status is InvoiceStatus.DRAFT
    assert snap.credit_notes[0].remaining_credit.amount == Decimal("10.00")


def csv_ledger(folder: Path, delimiter: str, decimal: str) -> Path:
    folder.mkdir(parents=True)
    d = delimiter
    amount = {"100.10": "100,10", "40.05": "40,05", "1000": "1.000,00"} if decimal == "," else {}

    def a(value: str) -> str:
        return amount.get(value, value)

    (folder / "customers.csv").write_text(
        "\ufeff"
        + d.join(["id", "name", "country", "email", "kind", "tags", "timezone"])
        + "\n"
        + d.join(["C1", "Bakkerij", "NL", "a@b.example", "", "", ""])
        + "\n"
        + "\n"
        + d.join(["C2", "Fjord AS", "NO", '"x@f.example;y@f.example"', "consumer", "vip", ""])
        + "\n"
        + d.join(["C3", "Acme Inc", "US", "", "", "", "America/Chicago"])
        + "\n",
        encoding="utf-8",
    )
    header = [
        "id",
        "number",
        "customer_id",
        "issue_date",
        "due_date",
        "currency",
        "total",
        "amount_due",
        "status",
        "disputed",
    ]
    rows = [
        ["I1", "N1", "C1", "2026-10-01", "2026-10-31", "EUR", a("100.10"), "", "", "no"],
        ["I2", "N2", "C1", "2026-10-01", "2026-10-31", "EUR", "250.00", "", "", ""],
        ["I3", "N3", "C2", "2026-10-01", "2026-10-15", "NOK", a("1000"), "400", "", "No"],
        ["I4", "N4", "C3", "2026-10-01", "2026-10-15", "USD", "80", "", "draft", ""],
    ]
    (folder / "invoices.csv").write_text(
        "\n".join(d.join(r) for r in [header, *rows]) + "\n", encoding="utf-8"
    )
    (folder / "payments.csv").write_text(
        d.join(["id", "invoice_id", "date", "amount", "currency"])
        + "\n"
        + d.join(["P1", "I1", "2026-11-01", a("40.05"), "EUR"])
        + "\n"
        + d.join(["P2", "I2", "2026-11-02", "300", "EUR"])
        + "\n",
        encoding="utf-8",
    )
    (folder / "credit_notes.csv").write_text(
        d.join(["id", "number", "customer_id", "date", "currency", "total"])
        + "\n"
        + d.join(["K1", "CN1", "C1", "2026-11-03", "EUR", "20.00"])
        + "\n",
        encoding="utf-8",
    )
    (folder / "credit_note_allocations.csv").write_text(
        d.join(["credit_note_id", "invoice_id", "amount"])
        + "\n"
        + d.join(["K1", "I1", "10.00"])
        + "\n",
        encoding="utf-8",
    )
    return folder


@pytest.mark.parametrize(("delimiter", "decimal"), [(",", "."), (";", ","), ("\t", ".")])
def test_csv_exports_read_the_same_as_json(tmp_path: Path, delimiter: str, decimal: str) -> None:
    from_json = read(ledger(tmp_path / "j"))
    from_csv = read(csv_ledger(tmp_path / "c", delimiter, decimal))
    for kind in ("customers", "invoices", "payments", "credit_notes"):
        assert sorted(getattr(from_csv, kind), key=repr) == sorted(
            getattr(from_json, kind), key=repr
        ), kind


def error_for(tmp_path: Path, **overrides: list[Record]) -> LedgerError:
    with pytest.raises(LedgerError) as caught:
        read(ledger(tmp_path, **overrides))
    return caught.value


def changed(records: list[Record], index: int, **fields: object) -> list[Record]:
    copy = [dict(r) for r in records]
    for name, value in fields.items():
        if value is None:
            copy[index].pop(name)
        else:
            copy[index][name] = value
    return copy


@pytest.mark.parametrize(
    ("stem", "records", "where", "field", "words"),
    [
        (
            "invoices",
            changed(INVOICES, 1, due_date=None),
            "record 2 (id I2)",
            "due_date",
            "required",
        ),
        (
            "invoices",
            changed(INVOICES, 1, colour="red"),
            "record 2 (id I2)",
            "colour",
            "not a known field",
        ),
        (
            "invoices",
            changed(INVOICES, 0, due_date="2026-02-30"),
            "record 1 (id I1)",
            "due_date",
            "not a date",
        ),
        (
            "invoices",
            changed(INVOICES, 0, total="12,3,4"),
            "record 1 (id I1)",
            "total",
            "not an amount",
        ),
        (
            "invoices",
            changed(INVOICES, 0, currency="EURO"),
            "record 1 (id I1)",
            "currency",
            "ISO 4217",
        ),
        (
            "invoices",
            changed(INVOICES, 0, currency="XYZ"),
            "record 1 (id I1)",
            "currency",
            "not an ISO 4217 code",
        ),
        (
            "invoices",
            changed(INVOICES, 2, customer_id="C9"),
            "record 3 (id I3)",
            "customer_id",
            "'C9', which is not in customers",
        ),
        (
            "invoices",
            changed(INVOICES, 0, due_date="2026-09-01"),
            "record 1 (id I1)",
            "due_date",
            "before the issue date",
        ),
        (
            "invoices",
            changed(INVOICES, 2, amount_due="2000"),
            "record 3 (id I3)",
            "amount_due",
            "more than the invoice total",
        ),
        ("invoices", changed(INVOICES, 1, id="I1"), "record 2 (id I1)", "id", "more than once"),
        (
            "invoices",
            changed(INVOICES, 3, status="sent"),
            "record 4 (id I4)",
            "status",
            "not one of",
        ),
        (
            "payments",
            changed(PAYMENTS, 0, currency="USD"),
            "record 1 (id P1)",
            "currency",
            "invoice I1 is in EUR",
        ),
        (
            "payments",
            changed(PAYMENTS, 1, invoice_id="I9"),
            "record 2 (id P2)",
            "invoice_id",
            "not in invoices",
        ),
        (
            "credit_notes",
            [{**CREDITS[0], "allocations": [{"invoice_id": "I3", "amount": "1"}]}],
            "record 1 (id K1)",
            "allocations.0.invoice_id",
            "is in NOK",
        ),
        (
            "credit_notes",
            [{**CREDITS[0], "allocations": [{"invoice_id": "I1", "amount": "25"}]}],
            "record 1 (id K1)",
            "allocations",
            "more than the credit note total",
        ),
        (
            "customers",
            changed(CUSTOMERS, 2, timezone=None),
            "record 3 (id C3)",
            "timezone",
            "several time zones",
        ),
        (
            "customers",
            changed(CUSTOMERS, 0, salutation="mrs"),
            "record 1 (id C1)",
            "salutation",
            "not one of",
        ),
        (
            "customers",
            changed(CUSTOMERS, 0, language="es"),
            "record 1 (id C1)",
            "language",
            "not one of",
        ),
    ],
)
def test_mistakes_name_the_file_the_record_and_the_field(
    tmp_path: Path, stem: str, records: list[Record], where: str, field: str, words: str
) -> None:
    error = error_for(tmp_path, **{stem: records})
    assert error.file.endswith(f"{stem}.json")
    assert error.record == where
    assert error.field == field
    assert words in error.reason
    assert f"{stem}.json, {where}, field '{field}'" in str(error)


def test_csv_mistakes_name_the_row(tmp_path: Path) -> None:
    folder = csv_ledger(tmp_path / "c", ";", ",")
    text = (
        (folder / "invoices.csv")
        .read_text(encoding="utf-8")
        .replace("2026-10-15;NOK", "15-10-2026;NOK")
    )
    (folder / "invoices.csv").write_text(text, encoding="utf-8")
    with pytest.raises(LedgerError) as caught:
        read(folder)
    assert caught.value.record == "row 4 (id I3)"
    assert caught.value.field == "due_date"


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("invoices.json", '[{"id": "I1",}]', "not valid JSON"),
        ("invoices.json", '{"id": "I1"}', "JSON array"),
        ("invoices.csv", "id,number\nI1,N1,extra\n", "more cells than the header"),
        ("invoices.csv", b"id,number\n\xff\xfe\n", "not UTF-8"),
        ("invoices.csv", "id,disputed\nI1,perhaps\n", "not yes or no"),
        ("invoices.csv", "id,total,total\nI1,4100.00,1.00\n", "names the column 'total' twice"),
    ],
)
def test_broken_files(tmp_path: Path, name: str, content: str | bytes, words: str) -> None:
    folder = write_json(tmp_path / "ledger", customers=CUSTOMERS)
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises(LedgerError) as caught:
        read(folder)
    assert words in str(caught.value)
    assert name in str(caught.value)


def test_json_errors_say_line_and_column(tmp_path: Path) -> None:
    folder = write_json(tmp_path / "ledger", customers=CUSTOMERS)
    (folder / "invoices.json").write_text('[\n  {"id": "I1",}\n]', encoding="utf-8")
    with pytest.raises(LedgerError, match=r"line 2, column"):
        read(folder)


def test_both_formats_or_none_is_an_error(tmp_path: Path) -> None:
    folder = ledger(tmp_path)
    (folder / "invoices.csv").write_text("id\n", encoding="utf-8")
    with pytest.raises(LedgerError, match=r"both invoices\.json and invoices\.csv"):
        read(folder)
    (folder / "invoices.csv").unlink()
    (folder / "customers.json").unlink()
    with pytest.raises(LedgerError, match=r"no customers\.json or customers\.csv"):
        read(folder)
    with pytest.raises(LedgerError, match="is not a folder"):
        read(tmp_path / "nowhere")


def _listing(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}


def test_a_bad_ledger_changes_nothing(tmp_path: Path) -> None:
    folder = ledger(tmp_path, payments=changed(PAYMENTS, 1, invoice_id="I9"))
    before = _listing(folder)
    with pytest.raises(LedgerError):
        read(folder)
    assert _listing(folder) == before


def note(n: int) -> Note:
    return Note(
        f"kindly-{n}",
        datetime.fromisoformat("2026-11-22T10:00:00+01:00"),
        f"Kindly sent reminder {n} – für Müller",
        "C1",
        ("I1",),
        f"k{n}",
        "first",
        "email",
    )


def test_notes_are_appended_and_read_back(tmp_path: Path) -> None:
    folder = ledger(tmp_path)
    before = _listing(folder)
    connector = LocalLedger(folder)
    connector.write_note(note(1))
    connector.write_note(note(2))
    assert connector.read_notes() == (note(1), note(2))
    after = _listing(folder)
    assert {k: v for k, v in after.items() if k != NOTES_FILE} == before
    assert read(folder).notes == (note(1), note(2))


def test_a_torn_last_line_is_ignored_and_never_merged(tmp_path: Path) -> None:
    folder = ledger(tmp_path)
    connector = LocalLedger(folder)
    connector.write_note(note(1))
    with open(folder / NOTES_FILE, "a", encoding="utf-8") as stream:
        stream.write('{"id": "kindly-torn", "crea')  # the process died mid-write
    assert connector.read_notes() == (note(1),)
    connector.write_note(note(2))
    assert connector.read_notes() == (note(1), note(2))


def test_a_corrupted_note_line_is_reported(tmp_path: Path) -> None:
    folder = ledger(tmp_path)
    (folder / NOTES_FILE).write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(LedgerError) as caught:
        LocalLedger(folder).read_notes()
    assert caught.value.record == "line 1"
    assert NOTES_FILE in caught.value.file


@pytest.mark.parametrize("today", [date(2026, 11, 22), date(2028, 2, 29), date(2027, 1, 1)])
def test_the_bundled_demo_ledger_is_a_real_small_business(tmp_path: Path, today: date) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    for source in BUNDLED_LEDGER.glob("*.json"):
        now = datetime.combine(today, time(16, 45), tzinfo=UTC)
        data = materialise(json.loads(source.read_text(encoding="utf-8")), now)
        (folder / source.name).write_text(json.dumps(data), encoding="utf-8")
    snap = read(folder)
    assert len(snap.customers) >= 12
    assert {c.language for c in snap.customers} == {"nl", "fr", "nb", "de", "vi", "en"}
    assert len(snap.invoices) >= 60
    assert {i.currency for i in snap.invoices} >= {"EUR", "NOK", "GBP", "VND"}
    partial = [i for i in snap.invoices if i.is_open and i.amount_due < i.total]
    assert partial, "a partial payment"
    assert snap.credit_notes and any(i.disputed for i in snap.invoices)
    assert any(c.kind is CustomerKind.CONSUMER and c.country == "NL" for c in snap.customers)
    assert snap.promises and len(snap.appointments) >= 4
    overdue = [i for i in snap.invoices if i.is_open and i.due_date < today]
    assert len(overdue) >= 10, "the demo always has something due"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("400"), places=2), max_size=6)
)
def test_amount_due_is_what_is_left_never_negative(payments: list[Decimal]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        records: list[Record] = [
            {
                "id": f"P{n}",
                "invoice_id": "I2",
                "date": "2026-11-01",
                "amount": str(amount),
                "currency": "EUR",
            }
            for n, amount in enumerate(payments)
        ]
        snap = read(ledger(base, payments=records, credit_notes=[]))
        due = snap.invoices_by_id["I2"].amount_due.amount
        assert due == max(Decimal("0"), Decimal("250.00") - sum(payments, Decimal(0)))
        assert due >= 0


def test_a_fresh_read_of_some_invoices_equals_the_full_read(demo_workspace: Path) -> None:
    """Right before sending, only the named invoices and what settles them are read; their
    balances (payments, credit notes) must come out as a full read gives them."""
    ledger = LocalLedger(demo_workspace / "ledger")
    full = {invoice.id: invoice for invoice in ledger.read_snapshot().invoices}
    settled = {p.invoice_id for p in ledger.read_snapshot().payments} | {
        a.invoice_id for c in ledger.read_snapshot().credit_notes for a in c.allocations
    }
    assert settled, "the demo has payments and credit notes to check against"
    some = sorted(settled)[:3] + sorted(set(full) - settled)[:2]
    fresh = {invoice.id: invoice for invoice in ledger.read_invoices(some)}
    assert fresh == {invoice_id: full[invoice_id] for invoice_id in some}
    assert ledger.read_invoices(["no-such-invoice"]) == ()


def test_a_whole_last_note_without_its_newline_is_kept(tmp_path: Path) -> None:
    """D22: an editor that drops the final newline must not cost the last note."""
    folder = ledger(tmp_path)
    connector = LocalLedger(folder)
    connector.write_notes([note(1), note(2)])
    path = folder / NOTES_FILE
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert connector.read_notes() == (note(1), note(2)), "a whole note is a note"
    connector.write_note(note(3))
    assert connector.read_notes() == (note(1), note(2), note(3))
    assert path.read_bytes().count(b"\n") == 3


def test_the_notes_file_is_never_a_link_out_of_the_folder(tmp_path: Path) -> None:
    """D23b: a notes file that is a symbolic link is neither written nor cut."""
    folder = ledger(tmp_path)
    elsewhere = tmp_path / "token.txt"
    elsewhere.write_text("TOKEN-WITHOUT-NEWLINE", encoding="utf-8")
    (folder / NOTES_FILE).symlink_to(elsewhere)
    connector = LocalLedger(folder)
    results = connector.write_notes([note(1)])
    assert results[note(1).id] is not None and "symbolic link" in str(results[note(1).id])
    assert elsewhere.read_text(encoding="utf-8") == "TOKEN-WITHOUT-NEWLINE"
    with pytest.raises(LedgerError, match="symbolic link"):
        connector.read_notes()


def test_a_pdf_that_links_out_of_the_folder_is_not_attached(tmp_path: Path) -> None:
    """D23a: pdf/<number>.pdf pointing at another file is refused, never sent."""
    folder = ledger(tmp_path)
    secret = tmp_path / "secret.pdf"
    secret.write_bytes(b"%PDF-1.4 not the invoice")
    (folder / "pdf").mkdir()
    invoice = read(folder).invoices[0]
    (folder / "pdf" / f"{invoice.number}.pdf").symlink_to(secret)
    with pytest.raises(LedgerError, match="leads out of the ledger folder"):
        LocalLedger(folder).invoice_pdf(invoice)
    # A pdf folder that is itself a link out is refused alike.
    (folder / "pdf" / f"{invoice.number}.pdf").unlink()
    (folder / "pdf").rmdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / f"{invoice.number}.pdf").write_bytes(b"%PDF-1.4 elsewhere")
    (folder / "pdf").symlink_to(outside)
    with pytest.raises(LedgerError, match="leads out of the ledger folder"):
        LocalLedger(folder).invoice_pdf(invoice)


@pytest.mark.parametrize(
    "address",
    [
        "administratie@bakkerijvandijk.example,attacker@evil.example",
        "Marieke <administratie@bakkerijvandijk.example>",
        "administratie@bakkerijvandijk.example;x@evil.example",
        "no-at-sign.example",
    ],
)
def test_an_e_mail_that_is_not_one_address_is_named(demo_workspace: Path, address: str) -> None:
    """D9: a comma must not make two recipients; the record and field are named."""
    from tests.test_delivery import set_customer

    set_customer(demo_workspace, "C01", email=address)
    with pytest.raises(LedgerError) as caught:
        LocalLedger(demo_workspace / "ledger").read_snapshot()
    assert caught.value.field == "email" and "C01" in str(caught.value.record)
    assert "is not one e-mail address" in str(caught.value)


def test_a_header_never_takes_two_addresses_for_one() -> None:
    from plugin.compose.email_message import mailbox

    assert mailbox("ar@noordlicht.example", "To") == "ar@noordlicht.example"
    with pytest.raises(ValueError, match="not one e-mail address"):
        mailbox("a@x.example,b@evil.example", "the To header")


# Built from parts, so that most examples come near the quick check's edges: hyphens
# where IDNA forbids them, Punycode, special-use names, long parts.
plain_addresses = st.builds(
    "{}@{}.{}".format,
    st.from_regex(r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]{1,70}", fullmatch=True),
    st.lists(st.from_regex(r"(xn--)?[a-z0-9-]{1,12}", fullmatch=True), min_size=1, max_size=4).map(
        ".".join
    ),
    st.one_of(
        st.from_regex(r"[a-zA-Z0-9-]{1,26}", fullmatch=True),
        st.sampled_from(["test", "local", "onion", "arpa", "invalid", "localhost", "example"]),
    ),
)


@settings(max_examples=2000, deadline=None)
@given(address=st.one_of(plain_addresses, st.emails(), st.text(max_size=80)))
def test_the_quick_check_of_an_address_accepts_only_what_email_validator_accepts(
    address: str,
) -> None:
    # Most addresses are accepted by a regular expression before email-validator is asked,
    # a hundred times faster; it must never let through what email-validator refuses.
    from email_validator import EmailNotValidError, validate_email

    from plugin.core.addresses import plainly_an_address

    if plainly_an_address(address):
        try:
            validate_email(address, check_deliverability=False, allow_smtputf8=True)
        except EmailNotValidError as exc:
            pytest.fail(f"{address!r} passed the quick check, but: {exc}")


def demo_records() -> list[tuple[str, dict[str, object]]]:
    kinds = {
        "customers": "customer",
        "invoices": "invoice",
        "payments": "payment",
        "credit_notes": "credit_note",
        "promises": "promise",
        "appointments": "appointment",
    }
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    return [
        (kind, materialise(record, now))
        for name, kind in kinds.items()
        for record in json.loads((BUNDLED_LEDGER / f"{name}.json").read_text(encoding="utf-8"))
    ]


# Values near the schema's edges: dates that are not days, digits that are not ASCII,
# amounts in every spelling, wrong types, and whatever JSON may hold.
edge_values = st.one_of(
    st.sampled_from(
        [
            "2026-02-30", "2026-13-01", "2026-1-01", "２０２６-01-01", "20260101", "2026-W01-1",
            "2026-12-01T14:30:00+01:00", "2026-12-01T25:00:00Z", "2026-12-01T14:30Z",
            "2026-12-01 14:30:00+01:00", "1234.50", "-0", "1e5", "١٢٣", "1,5", "EUR", "eur",
            "EURO", "NL", "nl", "http://x", "https://pay.example/1", "ftp://x", "", " ",
            "mr", "ms", "business", "consumer", "en", "vi", "xx",
        ]
    ),
    st.text(max_size=40),
    st.integers(),
    st.floats(allow_nan=True),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(st.text(max_size=5), st.integers()), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(data=st.data())
def test_the_quick_schema_check_passes_only_what_jsonschema_passes(data: st.DataObject) -> None:
    # Most records are passed by jsonschema-rs; only the rest are judged (and their errors
    # worded) by jsonschema. jsonschema-rs must never pass a record jsonschema refuses.
    from integrations.bookkeeping.ledger import _plainly_valid, _validator

    kind, record = data.draw(st.sampled_from(demo_records()))
    record = dict(record)
    for field in data.draw(st.lists(st.sampled_from([*record, "extra"]), max_size=3)):
        if data.draw(st.booleans()):
            record[field] = data.draw(edge_values)
        else:
            record.pop(field, None)
    if _plainly_valid(record, kind):
        errors = [error.message for error in _validator(kind).iter_errors(record)]
        assert errors == [], f"jsonschema-rs passed a {kind} that jsonschema refuses: {record}"


def test_the_bundled_ledger_passes_the_quick_check() -> None:
    from integrations.bookkeeping.ledger import _plainly_valid

    assert all(_plainly_valid(record, kind) for kind, record in demo_records())


@pytest.mark.parametrize(
    "address",
    ["ar@noordlicht.example", "a.b+c@mail.client-1.example.com", "x@y.co", "O'Neil@host.nl"],
)
def test_common_addresses_pass_the_quick_check(address: str) -> None:
    from plugin.core.addresses import plainly_an_address

    assert plainly_an_address(address)


@pytest.mark.parametrize(
    ("total", "words"),
    [
        ("0.004", "more decimals than EUR has (2)"),  # would round to 0.00: a "paid" invoice
        ("1" * 27, "too large"),  # 27 digits did not compute at all
        ("12345678901234567890123456", "too large"),
    ],
)
def test_amounts_are_exact_and_bounded(tmp_path: Path, total: str, words: str) -> None:
    """D1, D24, D26: an amount is refused, naming the record and field, never rounded."""
    invoices = [dict(INVOICES[0], total=total)]
    with pytest.raises(LedgerError) as caught:
        read(ledger(tmp_path, invoices=invoices, payments=[], credit_notes=[]))
    assert caught.value.field == "total" and words in str(caught.value)
    assert caught.value.record is not None and "I1" in caught.value.record


def test_a_csv_thousands_separator_is_refused_not_read_as_decimals(tmp_path: Path) -> None:
    """D24: "1,430" in a CSV is not 1.43 euro: it can be read two ways, so it is refused."""
    folder = csv_ledger(tmp_path / "c", ";", ",")
    text = (folder / "invoices.csv").read_text(encoding="utf-8")
    first_total = text.splitlines()[1].split(";")
    header = text.splitlines()[0].split(";")
    column = header.index("total")
    first_total[column] = "1,430"
    lines = text.splitlines()
    lines[1] = ";".join(first_total)
    (folder / "invoices.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(LedgerError) as caught:
        read(folder)
    assert caught.value.field == "total" and "two ways" in str(caught.value)
    assert caught.value.record == "row 2 (id I1)"
    # A bad cell is its record's problem, not the file's: a sync leaves out that invoice
    # (and names it) and reads every other.
    result = LocalLedger(folder).sync(None, {})
    assert "I1" not in {i.id for i in result.snapshot.invoices}
    assert {"I2", "I3", "I4"} <= {i.id for i in result.snapshot.invoices}
    assert any(
        "row 2 (id I1), field 'total': '1,430' can be read two ways" in w for w in result.warnings
    )


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("1430.004", "has more decimals than EUR has"),  # no thousands grouping: decimals
        ("0,431", "has more decimals than EUR has"),
        ("€ 1.430,00x", "'€ 1.430,00x' is not an amount such as 1234.50"),  # the cell as written
        ("maybe", "'maybe' is not an amount"),
    ],
)
def test_a_csv_amount_is_named_as_the_cell_says_it(tmp_path: Path, cell: str, words: str) -> None:
    folder = csv_ledger(tmp_path / "c", ",", ".")
    text = (folder / "invoices.csv").read_text(encoding="utf-8")
    (folder / "invoices.csv").write_text(
        text.replace(",250.00,", f',"{cell}",', 1), encoding="utf-8"
    )
    result = LocalLedger(folder).sync(None, {})
    (warning,) = [w for w in result.warnings if "invoices.csv" in w]
    assert "(id I2), field 'total'" in warning and words in warning, warning


@pytest.mark.parametrize(
    ("cell", "read_as"),
    [
        ("1234.50", "1234.50"),
        ("1234,50", "1234.50"),
        ("1.234,50", "1234.50"),
        ("1,234.50", "1234.50"),
        ("1,234,567", "1234567"),
        ("1 234,5", "1234.5"),
        ("1430", "1430"),
    ],
)
def test_csv_amounts_in_the_usual_ways(cell: str, read_as: str) -> None:
    from integrations.bookkeeping.ledger import _csv_amount

    assert _csv_amount(cell) == read_as


def test_a_sync_leaves_bad_records_out_and_names_them(tmp_path: Path) -> None:
    """Issue 16's rule for the ledger: a bad record is left out and named with its file,
    record and field; what depends on it goes with it; every other record is served.
    An invoice whose payment cannot be read is left out: what is owed is not known."""
    customers: list[Record] = [*CUSTOMERS, {"id": "C4", "name": "No Country"}]  # no country
    invoices: list[Record] = [
        *INVOICES,
        dict(INVOICES[0], id="I5", customer_id="C4"),  # its client is left out
        dict(INVOICES[0], id="I6", total="12.345"),  # more decimals than EUR has
    ]
    payments: list[Record] = [
        dict(PAYMENTS[0], amount="not money"),  # I1's payment: I1 is left out with it
        PAYMENTS[1],
    ]
    folder = ledger(tmp_path, customers=customers, invoices=invoices, payments=payments)
    result = LocalLedger(folder).sync(None, {})
    kept = {invoice.id for invoice in result.snapshot.invoices}
    assert kept == {"I2", "I3", "I4"}
    assert {c.id for c in result.snapshot.customers} == {"C1", "C2", "C3"}
    text = "\n".join(result.warnings)
    assert "customers.json, record 4 (id C4)" in text and "'country'" in text
    assert "invoices.json, record 5 (id I5)" in text and "'customer_id'" in text
    assert "invoices.json, record 6 (id I6)" in text and "'total'" in text
    assert "payments.json, record 1 (id P1)" in text and "'amount'" in text
    assert "record 1 (id I1)" in text and "a payment, credit note or promise to pay for it" in text
    assert all(line.endswith("(left out)") for line in result.warnings)
    # The strict read names the first of them and stops, as before.
    with pytest.raises(LedgerError):
        LocalLedger(folder).read_snapshot()


@pytest.mark.parametrize(
    ("timezone", "words"),
    [("Europe", "'Europe' is not an IANA time zone"), ("A" * 5000, "is not an IANA time zone")],
)
def test_a_time_zone_naming_a_folder_or_too_long_is_named(
    tmp_path: Path, timezone: str, words: str
) -> None:
    """D3: "Europe" is a folder of the time zone database, not a zone."""
    customers: list[Record] = [dict(CUSTOMERS[0], timezone=timezone), *CUSTOMERS[1:]]
    result = LocalLedger(ledger(tmp_path, customers=customers)).sync(None, {})
    assert {c.id for c in result.snapshot.customers} == {"C2", "C3"}
    (warning,) = [w for w in result.warnings if "customers.json" in w]
    assert "record 1 (id C1)" in warning and words in warning and len(warning) < 500


def test_a_lone_surrogate_is_named_not_stored(tmp_path: Path) -> None:
    """D4: "\\ud800" in a name could not be stored; it left everyone without a reminder."""
    folder = ledger(tmp_path)
    path = folder / "customers.json"
    path.write_text(
        path.read_text(encoding="utf-8").replace('"Bakkerij"', '"Bakkerij \\ud800"'),
        encoding="utf-8",
    )
    result = LocalLedger(folder).sync(None, {})
    assert "C1" not in {c.id for c in result.snapshot.customers}
    assert any("record 1 (id C1), field 'name'" in w and "surrogate" in w for w in result.warnings)


@pytest.mark.parametrize("content", ["[" * 100_000 + "]" * 100_000, "[" + "9" * 5000 + "]"])
def test_json_too_deep_or_too_long_is_an_unreadable_file(tmp_path: Path, content: str) -> None:
    """D2: the parser's own limits are a clear error naming the file."""
    folder = ledger(tmp_path)
    (folder / "invoices.json").write_text(content, encoding="utf-8")
    with pytest.raises(LedgerError) as caught:
        LocalLedger(folder).sync(None, {})
    assert "invoices.json" in caught.value.file and "Kindly can read" in str(caught.value)


@pytest.mark.parametrize(
    ("line", "words"), [(b'{"id": "\xff"}\n', "not UTF-8"), (b"[" * 50_000 + b"\n", "not a")]
)
def test_a_notes_line_not_utf8_or_too_deep_is_named(
    tmp_path: Path, line: bytes, words: str
) -> None:
    """D5."""
    folder = ledger(tmp_path)
    (folder / NOTES_FILE).write_bytes(line)
    with pytest.raises(LedgerError) as caught:
        LocalLedger(folder).read_notes()
    assert caught.value.record == "line 1" and words in str(caught.value)


def intake(attendee: Record) -> Record:
    """An appointment with one attendee."""
    return {
        "id": "A1",
        "title": "Intake",
        "start": "2026-12-03T10:00:00+01:00",
        "end": "2026-12-03T11:00:00+01:00",
        "attendees": [attendee],
    }


def test_an_attendee_with_a_bad_e_mail_leaves_its_appointment_out(tmp_path: Path) -> None:
    """D6: one appointment's bad address stops nobody's reminders."""
    appointments = [intake({"name": "M", "email": "not-an-address"})]
    result = LocalLedger(ledger(tmp_path, appointments=appointments)).sync(None, {})
    assert result.snapshot.appointments == ()
    assert len(result.snapshot.invoices) == len(INVOICES)
    assert any("field 'attendees.0.email'" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("phone", "words"),
    [
        ("call me maybe", "there is no phone number in it"),
        ("12", "too short for a phone number"),
        ("+31 6 5550 1234 5678 9", "too long for a phone number"),
    ],
)
def test_a_client_phone_that_is_no_number_is_named_at_read(
    tmp_path: Path, phone: str, words: str
) -> None:
    """D25: checked where it is read, so an SMS never goes to "call me maybe"; the client
    is kept without it (a placeholder such as "n/a" must not stop its e-mail reminders)."""
    customers: list[Record] = [dict(CUSTOMERS[0], phone=[phone, "+31 6 5550 1234"]), *CUSTOMERS[1:]]
    result = LocalLedger(ledger(tmp_path, customers=customers)).sync(None, {})
    kept = result.snapshot.customers_by_id
    assert set(kept) == {"C1", "C2", "C3"} and kept["C1"].phones == ("+31 6 5550 1234",)
    (warning,) = [w for w in result.warnings if "customers.json" in w]
    assert "record 1 (id C1), field 'phone'" in warning and words in warning
    assert warning.endswith("(ignored: the rest of the record is read; no SMS goes to it)")
    # The strict read (kindly connect ledger) names it and stops.
    with pytest.raises(LedgerError, match="is not a phone number"):
        LocalLedger(ledger(tmp_path / "strict", customers=customers)).read_snapshot()


def test_an_attendee_phone_that_is_no_number_is_dropped_from_the_appointment(
    tmp_path: Path,
) -> None:
    appointments = [intake({"name": "M", "email": "m@x.example", "phone": "+31 call me"})]
    result = LocalLedger(ledger(tmp_path, appointments=appointments)).sync(None, {})
    ((attendee,),) = [a.attendees for a in result.snapshot.appointments]
    assert attendee.email == "m@x.example" and attendee.phone is None
    assert any("field 'attendees.0.phone'" in w and "(ignored" in w for w in result.warnings)


def test_allocations_that_are_no_list_leave_out_their_credit_note(tmp_path: Path) -> None:
    """Found by the fuzzing campaign (docs/testing.md): `"allocations": 1` stopped the
    whole sync with an unexpected TypeError."""
    credits: list[Record] = [dict(CREDITS[0], allocations=1)]
    result = LocalLedger(ledger(tmp_path, credit_notes=credits)).sync(None, {})
    assert result.snapshot.credit_notes == ()
    assert any("(id K1), field 'allocations'" in w for w in result.warnings)
    assert len(result.snapshot.invoices) >= len(INVOICES) - 2


def test_a_key_given_twice_in_a_record_is_named(tmp_path: Path) -> None:
    """The review: JSON takes the last of two "total"s silently (4100.00, then 1.00)."""
    folder = ledger(tmp_path)
    path = folder / "invoices.json"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"total": "250.00"', '"total": "250.00", "total": "1.00"'))
    result = LocalLedger(folder).sync(None, {})
    assert "I2" not in {i.id for i in result.snapshot.invoices}
    assert any("(id I2), field 'total': is given twice" in w for w in result.warnings)
    # In a nested object too.
    credits: list[Record] = [dict(CREDITS[0])]
    path = ledger(tmp_path / "again", credit_notes=credits) / "credit_notes.json"
    path.write_text(
        path.read_text().replace('"amount": "10.00"', '"amount": "10.00", "amount": "1"')
    )
    nested = LocalLedger(path.parent).sync(None, {})
    assert any("field 'allocations.0.amount': is given twice" in w for w in nested.warnings)


def test_a_promise_for_nothing_is_named(tmp_path: Path) -> None:
    """The review: a promise of "-1" was taken."""
    promises: list[Record] = [
        {
            "invoice_id": "I2",
            "promised_date": "2026-12-10",
            "recorded_on": "2026-12-01",
            "amount": "-1",
        }
    ]
    result = LocalLedger(ledger(tmp_path, promises=promises)).sync(None, {})
    assert result.snapshot.promises == ()
    assert any(
        "field 'amount': a promise to pay is for more than nothing" in w for w in result.warnings
    )


def test_the_contact_persons_salutation_and_names_are_read(tmp_path: Path) -> None:
    """Review M1: greetings need them ("Sehr geehrte Frau Müller", "Hallo Katrin")."""
    customers = changed(CUSTOMERS, 0, salutation="ms", given_name="Katrin", family_name="Müller")
    (c1,) = [c for c in read(ledger(tmp_path, customers=customers)).customers if c.id == "C1"]
    assert (c1.salutation, c1.given_name, c1.family_name) == ("ms", "Katrin", "Müller")


@pytest.mark.parametrize("hour", range(24))
def test_the_demos_meetings_are_in_office_hours_and_within_a_day(hour: int) -> None:
    """Review (low): set up late, the demo's kick-off was at "23:00–00:30"."""
    from zoneinfo import ZoneInfo

    now = datetime(2026, 12, 2, hour, 30, tzinfo=UTC)
    for zone in ("Europe/Amsterdam", "Asia/Ho_Chi_Minh"):
        start = datetime.fromisoformat(materialise(f"now~office@{zone}", now))
        end = datetime.fromisoformat(materialise(f"now~office+1h30m@{zone}", now))
        local = start.astimezone(ZoneInfo(zone))
        assert 9 <= local.hour <= 16 and local.minute == 0
        # Its e-mail reminder (a day before) is due at once, its SMS (two hours) is not.
        assert timedelta(hours=3) <= start - now < timedelta(hours=24)
        assert end - start == timedelta(hours=1, minutes=30)


def test_a_notes_file_that_is_a_folder_is_named_not_a_crash(tmp_path: Path) -> None:
    """It opens (a folder does) and fails at the first read: the error names the file."""
    (tmp_path / NOTES_FILE).mkdir()
    with pytest.raises(LedgerError, match=f"{NOTES_FILE}.*cannot be read"):
        LocalLedger(tmp_path).read_notes()


def test_a_note_written_again_under_its_id_is_read_once(tmp_path: Path) -> None:
    ledger = LocalLedger(tmp_path)
    note = Note(
        id="kindly-abc",
        created_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        text="first reminder sent",
        customer_id="C01",
        invoice_ids=("I1",),
        reminder_key="abc",
        stage="first",
        channel="email",
    )
    ledger.write_note(note)
    ledger.write_note(note)
    assert ledger.read_notes() == (note,)

"""Property tests over everything that reads what a person or another program wrote: the
ledger reader (JSON and CSV), the settings parser, the notes file and the note marker,
and the e-mail headers built from client data.

Each property is the rule of issue 16: bad input gives a named error of Kindly's own (or
is read correctly), never another exception; a bad record leaves out only itself and what
depends on it; and client data never adds a header or a recipient.

In the suite these run a fixed, derandomised set of examples, so CI is the same every
time. ``KINDLY_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/test_fuzz.py`` runs a
longer, random campaign (docs/testing.md).
"""

from __future__ import annotations

import copy
import csv
import email
import email.policy
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.bookkeeping.ledger import NOTES_FILE, LocalLedger
from integrations.notes import read_marker
from plugin.compose.email_message import build_email, message_bytes
from plugin.compose.render import RenderedMessage
from plugin.config.settings import Settings, parse_settings, read_settings_file
from plugin.errors import ConfigError, KindlyError, LedgerError
from plugin.ports import SyncResult
from plugin.state.store import Store
from tests.test_ledger_files import CREDITS, CUSTOMERS, INVOICES, PAYMENTS, csv_ledger
from tests.test_render import reminder_for

CAMPAIGN = "KINDLY_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    max_examples=int(os.environ.get("KINDLY_FUZZ_EXAMPLES", "120")),
    derandomize=not CAMPAIGN,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
if not CAMPAIGN:
    # The suite keeps no examples between runs; a campaign keeps its finds in .hypothesis/.
    FUZZ = settings(FUZZ, database=None)

#: Text as files hold it: every code point, lone surrogates and controls included.
any_text = st.text(st.characters(codec=None), max_size=40)
#: Values JSON can hold, the awkward ones weighted in: huge and tiny numbers, deep lists.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**20, max_value=10**400)
    | st.floats()
    | any_text
    | st.sampled_from(["", "9999-12-31", "0001-01-01", "2026-02-30", "1e400", "-0", "1,430"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _json_line(value: Any) -> bytes:
    return _utf8(json.dumps(value))


LEDGER = {
    "customers": CUSTOMERS,
    "invoices": INVOICES,
    "payments": PAYMENTS,
    "credit_notes": CREDITS,
}
FIELDS = sorted({name for records in LEDGER.values() for record in records for name in record})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'store.db'}")
    yield opened
    opened.engine.dispose()


@pytest.fixture(scope="module")
def workspace_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return parse_settings(
        {"company": {"name": "Noordlicht Studio", "email": "ar@noordlicht.example"}},
        source=tmp_path_factory.mktemp("settings") / "kindly.toml",
    )


def _refusal(call: Callable[[], object], kind: type[KindlyError]) -> KindlyError | None:
    """The error of ``kind`` the call raised, or None; any other exception fails the test."""
    try:
        call()
    except kind as exc:
        return exc
    return None


def _sync(folder: Path, store: Store) -> SyncResult | None:
    """Read ``folder`` once and keep it: only a LedgerError may stop either (then None),
    and every record not named in a warning is kept."""
    results: list[SyncResult] = []
    refused = _refusal(lambda: results.append(LocalLedger(folder).sync(None, {})), LedgerError)
    if refused is not None:
        assert str(folder) in str(refused)
        return None
    (result,) = results
    for warning in result.warnings:
        assert str(folder) in warning, warning
        assert warning.endswith("(left out)") or "(ignored: " in warning, warning
    # What was read can be stored (a lone surrogate once could not, D4).
    store.replace_snapshot("fuzz", result.snapshot, datetime(2026, 12, 1, tzinfo=UTC))
    # Every invoice is read, or a line names the invoices file (its record, or one its
    # client, payment or credit note was in).
    naming = [w for w in result.warnings if "/invoices." in w]
    assert len(result.snapshot.invoices) + len(naming) >= len(INVOICES), result.warnings
    return result


@FUZZ
@given(
    kind=st.sampled_from(sorted(LEDGER)),
    index=st.integers(0, 3),
    field=st.sampled_from(FIELDS) | any_text,
    value=json_values,
)
def test_one_bad_value_in_a_json_ledger_leaves_out_only_its_record(
    store: Store, kind: str, index: int, field: str, value: Any
) -> None:
    files = copy.deepcopy(LEDGER)
    records = files[kind]
    records[index % len(records)][field] = value
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        for stem, content in files.items():
            (base / f"{stem}.json").write_text(json.dumps(content), encoding="utf-8")
        result = _sync(base, store)
        if result is None:
            return
        # A reader of one file never leaves a record of another file out but for its links.
        if kind in ("payments", "credit_notes"):
            assert {c.id for c in result.snapshot.customers} == {"C1", "C2", "C3"}
        if kind != "customers" and not (kind == "invoices" and index % 4 == 3):
            assert "I4" in {i.id for i in result.snapshot.invoices}


@FUZZ
@given(content=st.binary(max_size=200) | any_text.map(_utf8))
def test_any_bytes_in_a_ledger_file_are_read_or_named(store: Store, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        for stem, records in LEDGER.items():
            (base / f"{stem}.json").write_text(json.dumps(records), encoding="utf-8")
        (base / "invoices.json").write_bytes(content)
        _sync(base, store)


@FUZZ
@given(
    row=st.integers(0, 3), column=st.integers(0, 9), cell=any_text, decimal=st.sampled_from(".,")
)
def test_one_bad_cell_in_a_csv_ledger_is_read_or_named(
    store: Store, row: int, column: int, cell: str, decimal: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = csv_ledger(Path(folder) / "ledger", ";", decimal)
        path = base / "invoices.csv"
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8")), delimiter=";"))
        rows[1 + row][column] = cell.replace("\x00", "")
        out = io.StringIO()
        csv.writer(out, delimiter=";", lineterminator="\n").writerows(rows)
        try:
            path.write_text(out.getvalue(), encoding="utf-8")
        except UnicodeEncodeError:
            path.write_bytes(out.getvalue().encode("utf-8", "surrogatepass"))
        _sync(base, store)


SETTINGS: dict[str, dict[str, Any]] = {
    "company": {
        "name": "Noordlicht Studio",
        "email": "ar@noordlicht.example",
        "website": "https://noordlicht.example",
        "country": "NL",
    },
    "bank": {"iban": "NL91ABNA0417164300", "bic": "ABNANL2A"},
    "policy": {"first_reminder_after_days": 3, "minimum": {"EUR": "5.00"}},
    "clients": {"C01": {"tone": "firm", "pause_until": "2026-12-31"}},
    "appointments": {"reminders": ["24h email"]},
    "templates": {"time_limit": 5},
    "sms": {"limit": 160},
}
toml_values = st.recursive(
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | any_text
    | st.dates()
    | st.datetimes(timezones=st.none() | st.just(UTC)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)


@FUZZ
@given(
    section=st.sampled_from(sorted(SETTINGS)),
    key=st.sampled_from(
        [
            *sorted({key for table in SETTINGS.values() for key in table}),
            *["iban", "reply_to", "send_window", "pause_until", "language", "folder", "stages"],
        ]
    )
    | any_text,
    value=toml_values,
)
def test_any_value_in_kindly_toml_is_taken_or_named(section: str, key: str, value: Any) -> None:
    data = copy.deepcopy(SETTINGS)
    data[section][key] = value
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "kindly.toml"
        refused = _refusal(lambda: parse_settings(data, source=source), ConfigError)
        assert refused is None or str(source) in str(refused)


@FUZZ
@given(text=any_text | st.text(max_size=400))
def test_any_text_as_kindly_toml_is_read_or_named(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "kindly.toml"
        source.write_bytes(text.encode("utf-8", "surrogatepass"))
        refused = _refusal(
            lambda: parse_settings(read_settings_file(source), source=source), ConfigError
        )
        assert refused is None or str(source) in str(refused)


@FUZZ
@given(text=any_text | st.text(max_size=300))
def test_any_note_text_is_read_as_a_marker_or_not_at_all(text: str) -> None:
    marker = read_marker(text)
    assert marker is None or marker.note_id.startswith("kindly-")


@FUZZ
@given(
    lines=st.lists(st.binary(max_size=80) | json_values.map(json.dumps).map(str.encode), max_size=5)
)
def test_any_notes_file_is_read_or_named(lines: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        for stem, records in LEDGER.items():
            (base / f"{stem}.json").write_text(json.dumps(records), encoding="utf-8")
        (base / NOTES_FILE).write_bytes(b"\n".join(lines))
        refused = _refusal(LocalLedger(base).read_notes, LedgerError)
        assert refused is None or NOTES_FILE in str(refused)


HEADERS = ["From", "To", "Reply-To", "Subject", "Date", "Message-ID", "X-Kindly-Reminder"]
HEADERS += ["Content-Language", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"]


@FUZZ
@given(name=any_text, contact=any_text, number=any_text, subject=any_text, company=any_text)
def test_client_data_never_adds_a_header_or_a_recipient(
    workspace_settings: Settings, name: str, contact: str, number: str, subject: str, company: str
) -> None:
    reminder = reminder_for("en", 1)
    (invoice,) = reminder.invoices
    try:
        # The model itself refuses some (an empty number); the ledger reader names those.
        reminder = replace(
            reminder,
            customer=replace(reminder.customer, name=name or "x", contact_name=contact or None),
            invoices=(replace(invoice, number=number or "N1"),),
        )
        ours = replace(workspace_settings.company, name=company or "x")
        rendered = RenderedMessage(subject=subject, text="Dear client,\n", language="en")
        message = build_email(
            reminder,
            rendered,
            replace(workspace_settings, company=ours),
            datetime(2026, 12, 1, tzinfo=UTC),
        )
        raw = message_bytes(message, "\r\n")
    except (ValueError, UnicodeError):
        return  # refused, as it must be for a line break or a control character
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert sorted(parsed.keys()) == sorted(HEADERS)
    assert [a.addr_spec for a in parsed["To"].addresses] == ["ada@client.example"]
    assert [a.addr_spec for a in parsed["From"].addresses] == ["ar@noordlicht.example"]
    assert parsed.get_content().replace("\r\n", "\n") == "Dear client,\n"

"""The local ledger: a folder of JSON or CSV files, for the demo and any tool without an API.

    ledger/
      customers.json | customers.csv              required
      invoices.json  | invoices.csv               required
      payments.json  | payments.csv               optional
      credit_notes.json | credit_notes.csv        optional
      credit_note_allocations.csv                 optional (CSV companion of credit notes)
      promises.json  | promises.csv               optional (promises to pay)
      appointments.json | appointments.csv        optional
      kindly-notes.jsonl                          written by Kindly, append-only

The format is documented in docs/ledger-format.md and checked against
integrations/bookkeeping/ledger.schema.json. Kindly never rewrites the user's files: the only
file it writes is ``kindly-notes.jsonl``, one JSON note per line, appended and synced.

Reading is all-or-nothing: every file is parsed and every record checked (fields, then the
links between records) before a snapshot is returned, so a bad record stops the run before
anything is planned or sent, with an error naming the file, the record and the field.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from rich.markup import escape

from integrations.base import (
    BookkeepingConnector,
    Capability,
    ConnectorSettings,
    ConnectRequest,
    Workspace,
)
from plugin.config.locales import default_language, default_timezone
from plugin.config.settings import Settings
from plugin.core.addresses import plainly_an_address
from plugin.core.codec import from_jsonable, strings_in, to_jsonable
from plugin.core.model import (
    Appointment,
    AppointmentStatus,
    Attendee,
    CreditAllocation,
    CreditNote,
    Customer,
    CustomerKind,
    Invoice,
    InvoiceStatus,
    LedgerSnapshot,
    Note,
    Payment,
    PromiseToPay,
)
from plugin.core.money import Money, minor_unit_digits
from plugin.core.vocabulary import LANGUAGES, one_of
from plugin.errors import ConfigError, LedgerError
from plugin.ports import SyncResult

__all__ = ["NOTES_FILE", "LocalLedger"]

NOTES_FILE = "kindly-notes.jsonl"
SCHEMA_PATH = Path(__file__).parent / "ledger.schema.json"

# CSV cells that hold several values separate them with ";" or a line break.
_LIST_FIELDS = {"email", "phone", "tags", "address"}
_BOOL_FIELDS = {"disputed", "on_hold", "all_day"}
_AMOUNT_FIELDS = {"total", "amount_due", "amount"}
T = TypeVar("T")
_TRUE = {"true", "yes", "y", "1", "ja", "oui", "x"}
_FALSE = {"false", "no", "n", "0", "nee", "nei", "non", ""}


@dataclass(frozen=True, slots=True)
class _Record:
    """One raw record with where it came from, for error messages."""

    file: Path
    label: str  # "record 3" or "row 4"
    data: dict[str, Any]
    #: A CSV cell that could not be read: (field, why).
    problem: tuple[str, str] | None = None
    #: Its file was seen whole to hold no key given twice in an object and no lone
    #: surrogate, so the record need not be searched for either.
    plain: bool = False

    def where(self) -> str:
        record_id = self.data.get("id")
        return f"{self.label} (id {record_id})" if isinstance(record_id, str) else self.label

    def error(self, message: str, field: str | None = None) -> LedgerError:
        return LedgerError(self.file, message, record=self.where(), field=field)


def _root_schema(kind: str) -> dict[str, Any]:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{kind}"}


@cache
def _validator(kind: str) -> Any:
    """The schema's judge, whose errors Kindly turns into a bookkeeper's words."""
    import jsonschema

    return jsonschema.Draft202012Validator(
        _root_schema(kind), format_checker=jsonschema.FormatChecker()
    )


@cache
def _quick_validator(kind: str) -> Any:
    """The same schema compiled by jsonschema-rs: a record in a third of a microsecond,
    where ``jsonschema`` takes a hundred (most of a sync of a large ledger).

    It only lets a record through: one it does not pass is judged by :func:`_validator`,
    which has the final word and the words for the error. It checks the formats at least
    as strictly (a property test holds every record it passes to ``jsonschema``'s verdict).
    """
    import jsonschema_rs

    return jsonschema_rs.validator_for(_root_schema(kind), validate_formats=True)


def _plainly_valid(data: Any, kind: str) -> bool:
    try:
        return bool(_quick_validator(kind).is_valid(data))
    except (ValueError, TypeError, OverflowError):
        return False  # a value it cannot take (a lone surrogate, a huge number): ask jsonschema


def _friendly(error: Any, instance: dict[str, Any]) -> tuple[str | None, str]:
    """(field, message) for the most relevant schema error, in words a bookkeeper reads."""
    path = [str(part) for part in error.absolute_path]
    field = ".".join(path) if path else None
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return ".".join([*path, missing[0]]), "is required but missing"
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        known = ", ".join(sorted(error.schema.get("properties", {})))
        return ".".join([*path, unknown[0]]), f"is not a known field (known fields: {known})"
    value = error.instance
    # The most specific error may sit inside an anyOf; the amount's own description is
    # on the enclosing schema.
    described = [error.schema.get("description", "")]
    parent = error.parent
    while parent is not None:
        described.append(parent.schema.get("description", ""))
        parent = parent.parent
    if any("decimal amount" in text for text in described):
        return field, f"{value!r} is not an amount such as 1234.50"
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        return field, f"{value!r} is not one of: {allowed}"
    expected = error.schema.get("format") or error.schema.get("description", "")
    if expected == "date":
        return field, f"{value!r} is not a date written as YYYY-MM-DD"
    if expected == "date-time" or "ISO 8601" in expected:
        return (
            field,
            f"{value!r} is not a date and time with an offset, such as 2026-12-01T14:30+01:00",
        )
    if "decimal amount" in expected:
        return field, f"{value!r} is not an amount such as 1234.50"
    if error.schema.get("pattern") == "^[A-Z]{3}$":
        return field, f"{value!r} is not an ISO 4217 currency code such as EUR"
    if error.schema.get("pattern") == "^[A-Z]{2}$":
        return field, f"{value!r} is not a two-letter country code such as NL"
    return field, error.message


class _JsonObject(dict[str, Any]):
    """A JSON object that remembers a key it was given twice: JSON takes the last one
    silently, so ``"total": "4100.00", "total": "1.00"`` would be read as 1.00."""

    __slots__ = ("repeated",)
    repeated: str | None

    @classmethod
    def of(cls, pairs: list[tuple[str, Any]]) -> _JsonObject:
        made = cls(pairs)
        made.repeated = None
        if len(made) < len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    made.repeated = key
                    break
                seen.add(key)
        return made


def _repeated_key(value: Any, path: str = "") -> str | None:
    """The path of a key given twice in one object of ``value``, if any."""
    if isinstance(value, _JsonObject):
        if value.repeated is not None:
            return f"{path}.{value.repeated}".lstrip(".")
        for key, item in value.items():
            found = _repeated_key(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _repeated_key(item, f"{path}.{index}")
            if found is not None:
                return found
    return None


def _check(record: _Record, kind: str) -> None:
    if record.problem is not None:
        raise record.error(record.problem[1], record.problem[0])
    if not record.plain:
        repeated = _repeated_key(record.data)
        if repeated is not None:
            raise record.error(
                "is given twice in this record: which one is meant is not known", repeated
            )
        _refuse_broken_text(record)
    errors = (
        []
        if _plainly_valid(record.data, kind)
        else sorted(_validator(kind).iter_errors(record.data), key=lambda e: list(e.absolute_path))
    )
    if errors:
        import jsonschema

        field, message = _friendly(jsonschema.exceptions.best_match(errors), record.data)
        raise record.error(message, field)
    currency = record.data.get("currency")
    if currency is not None:
        try:
            minor_unit_digits(currency)
        except ValueError as exc:
            raise record.error(
                str(exc).removeprefix(f"currency {currency!r} "), "currency"
            ) from None


def _csv_amount(text: str) -> str:
    """Accept the ways spreadsheets write amounts: 1234.50, 1234,50, 1.234,50, 1,234.50,
    1,234,567; refuse what could be read two ways.

    With one mark only, three digits after it (1,430 or 1.430) may be a thousands
    separator or decimals: ValueError, rather than a guess that is a thousand times off.
    """
    cleaned = text.strip().replace(" ", "").replace("\u00a0", "").replace("'", "")
    if "," in cleaned and "." in cleaned:
        decimal_mark = "," if cleaned.rfind(",") > cleaned.rfind(".") else "."
        thousands = "." if decimal_mark == "," else ","
        return _plain_amount(text, cleaned.replace(thousands, "").replace(decimal_mark, "."))
    mark = "," if "," in cleaned else "." if "." in cleaned else None
    if mark is None:
        return _plain_amount(text, cleaned)
    whole, *groups = cleaned.split(mark)
    if len(groups) > 1:
        if all(len(group) == 3 for group in groups):
            return _plain_amount(text, whole + "".join(groups))  # 1,234,567: thousands only
        raise ValueError(f"{text!r} is not an amount such as 1234.50")
    digits = whole.lstrip("-+")
    if len(groups[0]) == 3 and 1 <= len(digits) <= 3 and not digits.startswith("0"):
        raise ValueError(
            f"{text!r} can be read two ways (thousands or decimals); write it as "
            f"{whole}{groups[0]} or with its decimals, such as {whole}{groups[0]}.00"
        )
    # Four digits before the mark, or a leading 0: no thousands grouping, so decimals
    # (more than the currency has are refused where the amount is read).
    return _plain_amount(text, f"{whole}.{groups[0]}")


def _plain_amount(cell: str, cleaned: str) -> str:
    """``cleaned`` if it is a plain decimal number; else the error names the cell as written."""
    if re.fullmatch(r"-?\d+(\.\d+)?", cleaned) is None:
        raise ValueError(f"{cell!r} is not an amount such as 1234.50")
    return cleaned


def _csv_row_to_json(
    row: dict[str, Any], file: Path, label: str
) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """The row as a JSON record, and the first cell that cannot be read (field, why): a
    problem of that record alone, which leaves it out, not of the file."""
    data: dict[str, Any] = {}
    problem: tuple[str, str] | None = None
    for raw_key, raw_value in row.items():
        if raw_key is None:
            raise LedgerError(file, "has more cells than the header has columns", record=label)
        key = raw_key.strip()
        value = (raw_value or "").strip()
        if key in _BOOL_FIELDS:
            lowered = value.lower()
            if lowered in _TRUE:
                data[key] = True
            elif lowered in _FALSE:
                data[key] = False
            elif problem is None:
                problem = (key, f"{value!r} is not yes or no")
        elif not value:
            continue
        elif key in _LIST_FIELDS:
            data[key] = [part.strip() for part in re.split(r"[;\n]", value) if part.strip()]
        elif key in _AMOUNT_FIELDS:
            try:
                data[key] = _csv_amount(value)
            except ValueError as exc:
                problem = problem or (key, str(exc))
        else:
            data[key] = value
    return data, problem


def _refuse_broken_text(record: _Record) -> None:
    """A lone surrogate ("\\ud800" in JSON) is not text: it could not be stored or sent."""
    for path, text in strings_in(record.data):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise record.error(
                "holds a character that is not text (a lone surrogate)", path or None
            ) from None


# JSON writes a lone surrogate only as an escape; this also finds a pair, or "\\ud800",
# which only makes the records be searched.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _read_json(file: Path) -> list[_Record]:
    repeats: list[_JsonObject] = []

    def objects_seen(pairs: list[tuple[str, Any]]) -> _JsonObject:
        made = _JsonObject.of(pairs)
        if made.repeated is not None:
            repeats.append(made)
        return made

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LedgerError(file, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        # parse_float=Decimal keeps 19.99 exactly 19.99.
        parsed = json.loads(text, parse_float=Decimal, object_pairs_hook=objects_seen)
    except json.JSONDecodeError as exc:
        raise LedgerError(
            file, f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except (RecursionError, ValueError) as exc:
        # Nested thousands deep, or an integer of thousands of digits: no ledger's.
        raise LedgerError(file, f"is not a ledger file Kindly can read ({exc})") from None
    if not isinstance(parsed, list):
        raise LedgerError(file, "must hold a JSON array of records, [ {...}, {...} ]")
    plain = not repeats and _SURROGATE_ESCAPE.search(text) is None
    records = []
    for index, item in enumerate(parsed, start=1):
        if not isinstance(item, dict):
            raise LedgerError(file, "is not a JSON object", record=f"record {index}")
        records.append(_Record(file, f"record {index}", item, plain=plain))
    return records


def _read_csv(file: Path) -> list[_Record]:
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LedgerError(
            file, f"is not UTF-8 text ({exc.reason} at byte {exc.start}); export it as CSV UTF-8"
        ) from None
    header = text.split("\n", 1)[0]
    # European spreadsheets export with ";" because "," is their decimal mark.
    delimiter = max(",;\t", key=header.count)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    records = []
    try:
        columns = [name.strip() for name in reader.fieldnames or ()]
        twice = sorted({name for name in columns if name and columns.count(name) > 1})
        if twice:
            # A row would keep the last of the two cells without a word.
            raise LedgerError(
                file, f"the header names the column {twice[0]!r} twice", record="row 1"
            )
        for row in reader:
            label = f"row {reader.line_num}"
            if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
                continue
            data, problem = _csv_row_to_json(row, file, label)
            records.append(_Record(file, label, data, problem))
    except csv.Error as exc:
        raise LedgerError(
            file, f"is not valid CSV: {exc}", record=f"row {reader.line_num}"
        ) from None
    return records


@contextmanager
def _fields_of(record: _Record) -> Iterator[None]:
    """Turn the model's ``field: message`` errors into errors that name file and record."""
    try:
        yield
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        if not message:
            field, message = "", str(exc)
        raise record.error(message, field or None) from None


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    return tuple(item for item in value if item.strip())


def _mailbox(record: _Record, address: str, field: str = "email") -> str:
    """An e-mail address, checked by email-validator (one address, no list)."""
    if plainly_an_address(address):
        return address
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise record.error(f"{address!r} is not one e-mail address: {exc}", field) from None
    return address


def _phones(
    record: _Record, numbers: Iterable[str], country: str, skipped: _Skipped, field: str = "phone"
) -> tuple[str, ...]:
    """The phone numbers that can be numbers (checked by phonenumbers); one that cannot
    ("n/a", "call me maybe") is named and dropped, and the record kept: its e-mail
    reminders need no phone, and an SMS goes to another number or falls back."""
    from plugin.deliver.phones import phone_problem

    kept = []
    for number in numbers:
        problem = phone_problem(number, country)
        if problem is None:
            kept.append(number)
        else:
            error = record.error(f"{number!r} is not a phone number: {problem}", field)
            skipped.ignore(error, "the rest of the record is read; no SMS goes to it")
    return tuple(kept)


#: No amount in a ledger reaches this many units of its currency: a larger one is a typo
#: or garbage (and 27 digits would not even compute).
AMOUNT_CEILING = Decimal(10) ** 15


def _money(value: Any, currency: str, field: str) -> Money:
    """An amount as the ledger writes it: exact, within the ceiling, and with no more
    decimals than the currency has. Rounding "1.430" EUR to 1.43 (a CSV's 1,430 read
    the English way) would claim a thousand euros too little without a word."""
    from decimal import InvalidOperation

    from plugin.core.money import minor_unit_digits

    try:
        exact = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{field}: {value!r} is not an amount such as 1234.50") from None
    if not exact.is_finite() or abs(exact) >= AMOUNT_CEILING:
        raise ValueError(f"{field}: {value!r} is not an amount Kindly can take (too large)")
    digits = minor_unit_digits(currency)
    exponent = exact.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > digits:
        raise ValueError(
            f"{field}: {value!r} has more decimals than {currency} has ({digits}); "
            "if a comma or point separates thousands, write the amount without it"
        )
    return Money.of(exact, currency)


def _date(value: str) -> date:
    return date.fromisoformat(value)


@dataclass(frozen=True)
class LedgerSettings(ConnectorSettings):
    """The ledger folder; `kindly connect ledger FOLDER` is the other way to name it."""

    path: Path | None = field(
        default=None,
        metadata={
            "path": True,
            "schema": {"description": "Folder of ledger files, relative to kindly.toml"},
        },
    )


class LocalLedger(BookkeepingConnector):
    """A folder of JSON or CSV files in the format of docs/ledger-format.md."""

    name: ClassVar[str] = "ledger"
    title: ClassVar[str] = "Local ledger (JSON or CSV files)"
    settings_type: ClassVar[type[ConnectorSettings]] = LedgerSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.NOTES, Capability.PDF, Capability.ONLINE_LINK}
    )

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)

    @classmethod
    def open(cls, workspace: Workspace) -> list[Self]:
        # kindly.toml says where the ledger is; otherwise `kindly connect ledger` did.
        configured = cls.configured_folder(workspace.settings)
        connected = workspace.store.get_setting(cls.connection_scope(), "path")
        folder = configured or (Path(connected) if connected else None)
        if folder is None:
            raise ConfigError(
                "no ledger is connected",
                hint="Run `kindly connect ledger FOLDER`, or set [ledger] path in kindly.toml.",
            )
        return [cls(folder)]

    @classmethod
    def configured_folder(cls, settings: Settings) -> Path | None:
        """The folder kindly.toml names in [ledger] path, if it names one."""
        own = cls.settings_of(settings)
        assert isinstance(own, LedgerSettings)
        return own.path

    @classmethod
    def connect(cls, workspace: Workspace, request: ConnectRequest) -> str:
        """Check the folder whole, and keep it only if it is sound."""
        if request.location is None:
            raise ConfigError(
                "which folder holds the ledger?", hint="Run: kindly connect ledger FOLDER"
            )
        folder = request.location.resolve()
        snapshot = cls(folder).read_snapshot()
        when = request.at or workspace.now()
        workspace.store.set_setting(cls.connection_scope(), "path", str(folder), when)
        message = (
            f"Connected the ledger in [bold]{escape(str(folder))}[/]: "
            f"{len(snapshot.customers)} clients, {len(snapshot.invoices)} invoices."
        )
        configured = cls.configured_folder(workspace.settings)
        if configured is not None and configured != folder:
            message += (
                f"\n[yellow]Note:[/] {escape(workspace.settings.where)} names another "
                f"ledger ({escape(str(configured))}) and wins; remove its [ledger] path to use "
                "this one."
            )
        return message

    @classmethod
    def connected(cls, workspace: Workspace) -> list[str] | None:
        configured = cls.configured_folder(workspace.settings)
        kept = workspace.store.get_setting(cls.connection_scope(), "path")
        folder = configured or (Path(kept) if kept else None)
        return [str(folder)] if folder else None

    @classmethod
    def disconnect(cls, workspace: Workspace) -> str:
        workspace.store.delete_setting(cls.connection_scope(), "path")
        return "Forgot the connected ledger folder."

    def __repr__(self) -> str:
        return f"LocalLedger({str(self.folder)!r})"

    @property
    def location(self) -> str:
        return str(self.folder)

    @property
    def notes_path(self) -> Path:
        return self.folder / NOTES_FILE

    # -- reading -----------------------------------------------------------------------

    def _file(self, stem: str, *, required: bool) -> Path | None:
        candidates = [self.folder / f"{stem}.{ext}" for ext in ("json", "csv")]
        present = [path for path in candidates if path.is_file()]
        if len(present) == 2:
            raise LedgerError(
                self.folder, f"has both {stem}.json and {stem}.csv; keep only one of them"
            )
        if not present:
            if required:
                raise LedgerError(
                    self.folder,
                    f"has no {stem}.json or {stem}.csv",
                    record=None,
                )
            return None
        return present[0]

    def _records(
        self,
        stem: str,
        kind: str,
        *,
        skipped: _Skipped,
        required: bool = False,
        keep: Callable[[_Record], bool] | None = None,
        unique: bool = True,
    ) -> list[_Record]:
        """The file's records, each checked against its schema; with ``keep``, only those
        it keeps are checked and returned. A record that fails goes to ``skipped``."""
        path = self._file(stem, required=required)
        if path is None:
            return []
        records = _read_json(path) if path.suffix == ".json" else _read_csv(path)
        if keep is not None:
            records = [record for record in records if keep(record)]
        checked = []
        for record in records:
            try:
                _check(record, kind)
            except LedgerError as exc:
                skipped.skip(exc, invoices=_invoices_named(record.data))
                if kind == "invoice" and isinstance(record.data.get("id"), str):
                    skipped.invoices_out.add(record.data["id"])
                continue
            checked.append(record)
        return _unique_ids(checked, skipped) if unique else checked

    def read_invoices(self, invoice_ids: Sequence[str]) -> tuple[Invoice, ...]:
        """The named invoices read fresh, with what settles them (R3).

        Only those invoices and the payments and credit notes that name them are read and
        checked: checking every record of a large ledger again costs more than sending.
        Links to clients were checked by the sync; here the amounts matter.
        """
        if not self.folder.is_dir():
            raise LedgerError(self.folder, "is not a folder")
        wanted = set(invoice_ids)

        def names_wanted(record: _Record) -> bool:
            return record.data.get("invoice_id") in wanted

        # A bad record here leaves its invoice out: its reminder is then not sent.
        skipped = _Skipped(strict=False)
        invoice_records = self._records(
            "invoices",
            "invoice",
            skipped=skipped,
            required=True,
            keep=lambda r: r.data.get("id") in wanted,
        )
        invoices_raw = {r.data["id"]: r for r in invoice_records}
        settled: dict[str, list[Money]] = {}
        for record in self._records(
            "payments", "payment", skipped=skipped, keep=names_wanted, unique=False
        ):
            try:
                payment = self._payment(record, invoices_raw)
            except LedgerError as exc:
                skipped.skip(exc, invoices=_invoices_named(record.data))
                continue
            settled.setdefault(payment.invoice_id, []).append(payment.amount)
        allocations = self._records(
            "credit_note_allocations",
            "allocation",
            skipped=skipped,
            keep=names_wanted,
            unique=False,
        )
        with_allocations = {r.data.get("credit_note_id") for r in allocations}
        credit_records = self._records(
            "credit_notes",
            "credit_note",
            skipped=skipped,
            unique=False,
            keep=lambda r: (
                r.data.get("id") in with_allocations
                or any(
                    isinstance(item, dict) and item.get("invoice_id") in wanted
                    for item in r.data.get("allocations") or ()
                )
            ),
        )
        for credit_note in self._credit_notes(
            credit_records,
            allocations,
            _AnyClient(),
            invoices=invoices_raw,
            skipped=skipped,
            only=wanted,
        ):
            for allocation in credit_note.allocations:
                settled.setdefault(allocation.invoice_id, []).append(allocation.amount)
        fresh = []
        for record in invoice_records:
            if record.data["id"] in skipped.tainted:
                continue
            try:
                fresh.append(self._invoice(record, settled))
            except LedgerError:
                continue
        return tuple(fresh)

    def read_snapshot(self) -> LedgerSnapshot:
        """Everything, checked; the first bad record raises LedgerError naming it."""
        return self._read(_Skipped(strict=True))

    def sync(self, previous: LedgerSnapshot | None, bookmarks: Mapping[str, str]) -> SyncResult:
        """Everything that can be read: a bad record is left out and named in the
        warnings, with what depends on it (an invoice whose payment cannot be read is not
        reminded), so one bad record never stops the other clients' reminders. Only a
        file that cannot be read at all stops the sync."""
        skipped = _Skipped(strict=False)
        snapshot = self._read(skipped)
        return SyncResult(snapshot, warnings=tuple(skipped.warnings))

    def _read(self, skipped: _Skipped) -> LedgerSnapshot:
        if not self.folder.is_dir():
            raise LedgerError(self.folder, "is not a folder")

        def records(stem: str, kind: str, **options: Any) -> list[_Record]:
            return self._records(stem, kind, skipped=skipped, **options)

        customer_records = records("customers", "customer", required=True)
        invoice_records = records("invoices", "invoice", required=True)
        payment_records = records("payments", "payment")
        credit_records = records("credit_notes", "credit_note")
        allocation_records = records("credit_note_allocations", "allocation", unique=False)
        promise_records = records("promises", "promise", unique=False)
        appointment_records = records("appointments", "appointment")

        customers: dict[str, Customer] = {}
        for record in customer_records:
            try:
                customers[record.data["id"]] = self._customer(record, skipped)
            except LedgerError as exc:
                skipped.skip(exc)
        invoices_raw: dict[str, _Record] = {}
        for record in invoice_records:
            try:
                _linked(record, "customer_id", customers, "customers")
            except LedgerError as exc:
                skipped.skip(exc)
                skipped.invoices_out.add(record.data["id"])
                continue
            invoices_raw[record.data["id"]] = record
        payments = []
        for record in payment_records:
            if record.data.get("invoice_id") in skipped.invoices_out:
                continue  # its invoice is left out, and named already
            try:
                payments.append(self._payment(record, invoices_raw))
            except LedgerError as exc:
                skipped.skip(exc, invoices=_invoices_named(record.data))
        credit_notes = self._credit_notes(
            credit_records,
            allocation_records,
            customers,
            invoices=invoices_raw,
            skipped=skipped,
        )
        settled: dict[str, list[Money]] = {}
        for payment in payments:
            settled.setdefault(payment.invoice_id, []).append(payment.amount)
        for credit_note in credit_notes:
            for allocation in credit_note.allocations:
                settled.setdefault(allocation.invoice_id, []).append(allocation.amount)
        invoices = []
        for invoice_id, record in invoices_raw.items():
            if invoice_id in skipped.tainted:
                skipped.skip(
                    record.error(
                        "is left out: a payment, credit note or promise to pay for it could "
                        "not be read, so what is still owed or promised is not known"
                    )
                )
                continue
            try:
                invoices.append(self._invoice(record, settled))
            except LedgerError as exc:
                skipped.skip(exc)
        kept = {invoice.id for invoice in invoices}
        promises = []
        for record in promise_records:
            if record.data.get("invoice_id") in skipped.invoices_out:
                continue
            try:
                promise = self._promise(record, invoices_raw)
            except LedgerError as exc:
                skipped.skip(exc)
                continue
            if promise.invoice_id in kept:
                promises.append(promise)
        appointments = []
        for record in appointment_records:
            try:
                appointments.append(self._appointment(record, customers, skipped))
            except LedgerError as exc:
                skipped.skip(exc)
        return LedgerSnapshot(
            customers=tuple(customers.values()),
            invoices=tuple(invoices),
            payments=tuple(p for p in payments if p.invoice_id in kept),
            credit_notes=tuple(credit_notes),
            promises=tuple(promises),
            appointments=tuple(appointments),
            notes=self.read_notes(),
        )

    def _customer(self, record: _Record, skipped: _Skipped) -> Customer:
        data = record.data
        country = data["country"]
        timezone = data.get("timezone") or default_timezone(country)
        if timezone is None:
            raise record.error(f"is needed: country {country} has several time zones", "timezone")
        with _fields_of(record):
            return Customer(
                id=data["id"],
                name=data["name"],
                contact_name=data.get("contact_name"),
                emails=tuple(_mailbox(record, a) for a in _strings(data.get("email"))),
                phones=_phones(record, _strings(data.get("phone")), country, skipped),
                language=one_of(
                    LANGUAGES, data.get("language") or default_language(country), "language"
                ),
                country=country,
                timezone=timezone,
                kind=CustomerKind(data.get("kind", "business")),
                tags=frozenset(_strings(data.get("tags"))),
                address=_strings(data.get("address")),
                salutation=data.get("salutation"),
                given_name=data.get("given_name"),
                family_name=data.get("family_name"),
            )

    def _payment(self, record: _Record, invoices: dict[str, _Record]) -> Payment:
        data = record.data
        invoice = _linked(record, "invoice_id", invoices, "invoices")
        if data["currency"] != invoice.data["currency"]:
            raise record.error(
                f"is {data['currency']}, but invoice {data['invoice_id']} is in "
                f"{invoice.data['currency']}",
                "currency",
            )
        with _fields_of(record):
            return Payment(
                id=data["id"],
                invoice_id=data["invoice_id"],
                date=_date(data["date"]),
                amount=_money(data["amount"], data["currency"], "amount"),
                reference=data.get("reference"),
            )

    def _credit_notes(
        self,
        credit_records: list[_Record],
        allocation_records: list[_Record],
        customers: Mapping[str, Customer],
        *,
        invoices: dict[str, _Record],
        skipped: _Skipped,
        only: set[str] | None = None,
    ) -> list[CreditNote]:
        """The credit notes and their allocations; with ``only``, allocations to other
        invoices than those are left out (a fresh read of a few invoices). A credit note
        that cannot be read goes to ``skipped``, with the invoices it would settle."""
        by_id = {r.data["id"]: r for r in credit_records}
        separate: dict[str, list[_Record]] = {}
        for record in allocation_records:
            try:
                if "credit_note_id" not in record.data:
                    raise record.error("is required but missing", "credit_note_id")
                _linked(record, "credit_note_id", by_id, "credit_notes")
            except LedgerError as exc:
                skipped.skip(exc, invoices=_invoices_named(record.data))
                continue
            separate.setdefault(record.data["credit_note_id"], []).append(record)

        notes = []
        for record in credit_records:
            settles = _invoices_named(record.data) + [
                invoice_id
                for allocation in separate.get(record.data["id"], [])
                for invoice_id in _invoices_named(allocation.data)
            ]
            try:
                notes.append(self._credit_note(record, separate, customers, invoices, only))
            except LedgerError as exc:
                skipped.skip(exc, invoices=settles)
        return notes

    def _credit_note(
        self,
        record: _Record,
        separate: Mapping[str, list[_Record]],
        customers: Mapping[str, Customer],
        invoices: Mapping[str, _Record],
        only: set[str] | None,
    ) -> CreditNote:
        data = record.data
        _linked(record, "customer_id", customers, "customers")
        allocations = []
        nested = [
            (record, item, f"allocations.{i}.")
            for i, item in enumerate(data.get("allocations", []))
        ]
        flat = [(r, r.data, "") for r in separate.get(data["id"], [])]
        for source, item, prefix in nested + flat:
            if only is not None and item.get("invoice_id") not in only:
                continue
            field = f"{prefix}invoice_id"
            invoice = invoices.get(item["invoice_id"])
            if invoice is None:
                raise source.error(
                    f"names invoice {item['invoice_id']!r}, which is not in invoices", field
                )
            if invoice.data["currency"] != data["currency"]:
                raise source.error(
                    f"invoice {item['invoice_id']} is in {invoice.data['currency']}, "
                    f"the credit note in {data['currency']}",
                    field,
                )
            if invoice.data["customer_id"] != data["customer_id"]:
                raise source.error(
                    f"invoice {item['invoice_id']} belongs to another customer", field
                )
            with _fields_of(source):
                allocations.append(
                    CreditAllocation(
                        invoice_id=item["invoice_id"],
                        amount=_money(item["amount"], data["currency"], f"{prefix}amount"),
                        date=_date(item["date"]) if item.get("date") else None,
                    )
                )
        with _fields_of(record):
            return CreditNote(
                id=data["id"],
                number=data["number"],
                customer_id=data["customer_id"],
                date=_date(data["date"]),
                total=_money(data["total"], data["currency"], "total"),
                allocations=tuple(allocations),
            )

    def _invoice(self, record: _Record, settled: dict[str, list[Money]]) -> Invoice:
        data = record.data
        currency = data["currency"]
        with _fields_of(record):
            total = _money(data["total"], currency, "total")
            if "amount_due" in data:
                # The accounting tool's own figure is the truth (D4).
                due = _money(data["amount_due"], currency, "amount_due")
            else:
                due = total - sum(settled.get(data["id"], []), Money.zero(currency))
                # Overpaid: nothing is owed; the surplus is the customer's credit to use.
                due = max(due, Money.zero(currency))
            status = InvoiceStatus(data.get("status", "open"))
            if status is InvoiceStatus.OPEN and not due.is_positive:
                status = InvoiceStatus.PAID
            return Invoice(
                id=data["id"],
                number=data["number"],
                customer_id=data["customer_id"],
                issue_date=_date(data["issue_date"]),
                due_date=_date(data["due_date"]),
                total=total,
                amount_due=due,
                status=status,
                online_url=data.get("online_url"),
                reference=data.get("reference"),
                disputed=bool(data.get("disputed", False)),
                on_hold=bool(data.get("on_hold", False)),
            )

    def _promise(self, record: _Record, invoices: dict[str, _Record]) -> PromiseToPay:
        data = record.data
        currency = _linked(record, "invoice_id", invoices, "invoices").data["currency"]
        if "amount" in data and _money(data["amount"], currency, "amount").amount <= 0:
            raise record.error("a promise to pay is for more than nothing", "amount")
        with _fields_of(record):
            return PromiseToPay(
                invoice_id=data["invoice_id"],
                promised_date=_date(data["promised_date"]),
                recorded_on=_date(data["recorded_on"]),
                amount=_money(data["amount"], currency, "amount") if "amount" in data else None,
                note=data.get("note"),
            )

    def _appointment(
        self, record: _Record, customers: dict[str, Customer], skipped: _Skipped
    ) -> Appointment:
        data = record.data
        if "customer_id" in data:
            _linked(record, "customer_id", customers, "customers")
        for index, item in enumerate(data.get("attendees", [])):
            if item.get("email"):
                _mailbox(record, item["email"], f"attendees.{index}.email")
        if data.get("attendee_email"):
            _mailbox(record, data["attendee_email"], "attendee_email")
        # A number without a calling code is read as one of the client's country; with no
        # client named, planning reads it in the company's (and skips it if it is none).
        linked = customers.get(data.get("customer_id") or "")

        def reachable(phone: Any, field: str) -> str | None:
            if not phone or not (linked or str(phone).lstrip().startswith("+")):
                return phone or None
            country = linked.country if linked else "ZZ"
            return next(iter(_phones(record, (str(phone),), country, skipped, field)), None)

        attendees = [
            Attendee(**(item | {"phone": reachable(item.get("phone"), f"attendees.{i}.phone")}))
            for i, item in enumerate(data.get("attendees", []))
        ]
        single = {
            key: data[f"attendee_{key}"]
            for key in ("name", "email", "phone")
            if f"attendee_{key}" in data
        }
        if single.get("phone"):
            single["phone"] = reachable(single["phone"], "attendee_phone")
        if single:
            attendees.append(Attendee(**single))
        with _fields_of(record):
            return Appointment(
                id=data["id"],
                title=data["title"],
                start=datetime.fromisoformat(data["start"]),
                end=datetime.fromisoformat(data["end"]),
                attendees=tuple(attendees),
                customer_id=data.get("customer_id"),
                location=data.get("location"),
                online_url=data.get("online_url"),
                status=AppointmentStatus(data.get("status", "confirmed")),
                all_day=bool(data.get("all_day", False)),
            )

    def invoice_pdf(self, invoice: Invoice) -> bytes | None:
        """``pdf/<number>.pdf`` (or ``pdf/<id>.pdf``) in the ledger folder, if it is there."""
        folder = self.folder / "pdf"
        for stem in (invoice.number, invoice.id):
            # An invoice number such as 2026/001 must not reach outside the folder.
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).lstrip(".")
            path = folder / f"{safe}.pdf"
            if path.is_file():
                return self._read_inside(path)
        return None

    def _read_inside(self, path: Path) -> bytes:
        """A file of the ledger folder, refusing one whose path leads out of it (a link).

        A PDF is attached to a reminder and sent to a client: a link planted in the
        folder must not make Kindly send a file from elsewhere.
        """
        inside = self.folder.resolve()
        if path.is_symlink() or not path.resolve().is_relative_to(inside):
            raise LedgerError(
                path, "leads out of the ledger folder (a symbolic link): it is not attached"
            )
        fd = _open_in_folder(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as stream:
            return stream.read()

    # -- notes ---------------------------------------------------------------------------

    def read_notes(self, among: Sequence[Invoice] | None = None) -> tuple[Note, ...]:
        if not self.notes_path.exists():
            return ()
        # A note written again under its id (two writers, or a store lost and the note
        # written anew) replaces the earlier line: the file is an append-only log.
        by_id = {note.id: note for _, note in self._iter_notes()}
        if among is None:
            return tuple(by_id.values())
        wanted = {invoice.id for invoice in among}
        return tuple(note for note in by_id.values() if wanted.intersection(note.invoice_ids))

    def _iter_notes(self) -> Iterator[tuple[int, Note]]:
        try:
            yield from self._read_notes_file()
        except OSError as exc:
            # A folder by that name, say: it opens, and fails at the first read.
            raise LedgerError(self.notes_path, f"cannot be read: {exc.strerror or exc}") from None

    def _read_notes_file(self) -> Iterator[tuple[int, Note]]:
        fd = _open_in_folder(self.notes_path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as stream:
            for number, raw in enumerate(stream, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    if not raw.endswith(b"\n"):
                        continue  # a torn last line, cut by the next append
                    raise LedgerError(
                        self.notes_path, "is not UTF-8 text", record=f"line {number}"
                    ) from None
                if not line.endswith("\n") and not _is_note(line):
                    # A crash during an append can leave a torn last line; the next append
                    # cuts it, so a torn line is never mistaken for a note. A whole note
                    # that only lacks its newline (an editor dropped it) is a note.
                    continue
                if not line.strip():
                    continue
                try:
                    yield number, from_jsonable(Note, json.loads(line))
                except (ValueError, TypeError, KeyError, RecursionError) as exc:
                    raise LedgerError(
                        self.notes_path, f"is not a Kindly note: {exc}", record=f"line {number}"
                    ) from None

    def write_note(self, note: Note) -> None:
        self._append([note])

    def write_notes(
        self, notes: Sequence[Note], *, check: Collection[str] = ()
    ) -> Mapping[str, str | None]:
        """The batch in one append and one fsync; those in ``check`` only if not there."""
        held: set[str] = set()
        if check and self.notes_path.exists():
            held = {note.id for _, note in self._iter_notes() if note.id in check}
        try:
            self._append([note for note in notes if note.id not in held])
        except OSError as exc:
            reason = f"could not write {self.notes_path}: {exc.strerror or exc}"
            return {note.id: None if note.id in held else reason for note in notes}
        except LedgerError as exc:
            return {note.id: None if note.id in held else str(exc) for note in notes}
        return {note.id: None for note in notes}

    def _append(self, notes: Sequence[Note]) -> None:
        if not notes:
            return
        lines = "".join(
            json.dumps(to_jsonable(note), ensure_ascii=False, sort_keys=True) + "\n"
            for note in notes
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        # O_APPEND makes each write land at the end even with two writers; fsync makes the
        # notes survive a power cut once this returns, since the run then marks them written.
        fd = _open_in_folder(self.notes_path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        try:
            _end_the_last_line(fd)
            data = lines.encode("utf-8")
            written = os.write(fd, data)
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)


def _open_in_folder(path: Path, flags: int) -> int:
    """Open a file of the ledger folder itself, never one a symbolic link points to.

    The notes file holds clients' data and is appended to; a link planted in the folder
    (a synced share, an export) must not make Kindly write, or cut, a file elsewhere.
    """
    try:
        # Only the user reads the notes: client ids, amounts and addresses.
        return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        if path.is_symlink():
            raise LedgerError(
                path,
                "is a symbolic link: Kindly reads and writes notes only in a file of the "
                "ledger folder itself",
            ) from None
        raise LedgerError(path, f"cannot be opened: {exc.strerror or exc}") from None


def _is_note(line: str) -> bool:
    try:
        from_jsonable(Note, json.loads(line))
    except (ValueError, TypeError, KeyError, RecursionError):
        return False
    return True


def _end_the_last_line(fd: int) -> None:
    """Make the next note start on a line of its own.

    A last line without its newline is either a whole note (a file saved by an editor that
    drops the final newline: it is ended, never cut) or what a crash left of a note being
    appended: that one is cut. The run that wrote a torn note had not marked it written, so
    it is written again.
    """
    size = os.fstat(fd).st_size
    if not size or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = size
    while start > 0:
        chunk = os.pread(fd, min(4096, start), max(0, start - 4096))
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            start = start - len(chunk) + newline + 1
            break
        start -= len(chunk)
    else:
        start = 0
    last = os.pread(fd, size - start, start)
    if _is_note(last.decode("utf-8", "replace")):
        os.write(fd, b"\n")
    else:
        os.ftruncate(fd, start)


class _Skipped:
    """The bad records of one read, and the invoices they leave in doubt.

    Strict (``read_snapshot``): the first bad record raises. Lenient (``sync``, the fresh
    read before sending): it is left out and named, and an invoice whose payment or
    credit note is among them is left out too, since what is owed is not known.
    """

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self.warnings: list[str] = []
        self.tainted: set[str] = set()
        #: Invoices left out themselves: what names them goes with them, unmentioned.
        self.invoices_out: set[str] = set()

    def skip(self, error: LedgerError, *, invoices: Iterable[str] = ()) -> None:
        if self.strict:
            raise error
        self.warnings.append(f"{error} (left out)")
        self.tainted.update(invoices)

    def ignore(self, error: LedgerError, why: str) -> None:
        """A value read without harm to the rest of its record (a phone number that is
        none, say "n/a"): the record is kept without it, and the value named."""
        if self.strict:
            raise error
        self.warnings.append(f"{error} (ignored: {why})")


def _invoices_named(data: Mapping[str, Any]) -> list[str]:
    """The invoices a payment, allocation or credit note names, as far as can be told."""
    named = [data.get("invoice_id")]
    allocations = data.get("allocations")
    for item in allocations if isinstance(allocations, list) else ():
        if isinstance(item, Mapping):
            named.append(item.get("invoice_id"))
    return [value for value in named if isinstance(value, str)]


def _unique_ids(records: list[_Record], skipped: _Skipped) -> list[_Record]:
    """The records whose id no other record of the file has. A repeated id is named at
    its repeat; the first record with it is left out too, as which one is right is not
    known."""
    counts = Counter(str(record.data.get("id")) for record in records)
    unique, firsts, seen = [], [], set()
    for record in records:
        record_id = str(record.data.get("id"))
        if counts[record_id] == 1:
            unique.append(record)
        elif record_id in seen:
            skipped.skip(_repeated(record, record_id), invoices=_invoices_named(record.data))
        else:
            seen.add(record_id)
            firsts.append(record)
    for record in firsts:
        record_id = str(record.data.get("id"))
        skipped.skip(_repeated(record, record_id), invoices=_invoices_named(record.data))
    return unique


def _repeated(record: _Record, record_id: str) -> LedgerError:
    return record.error(f"id {record_id!r} appears more than once in this file", "id")


class _AnyClient(dict[str, Customer]):
    """Stands for the clients in a fresh read of invoices, which does not read them again:
    the sync checked every link to a client."""

    def __missing__(self, key: str) -> Customer:
        return None  # type: ignore[return-value]


def _linked(record: _Record, field: str, targets: Mapping[str, T], file_stem: str) -> T:
    """The record another record points at, or an error naming the dangling link."""
    target_id = record.data[field]
    try:
        return targets[target_id]
    except KeyError:
        raise record.error(f"names {target_id!r}, which is not in {file_stem}", field) from None

"""Settings from ``kindly.toml``: the company, its bank, the policy and per-client choices.

The file is checked against ``plugin/schemas/settings.schema.json`` (the same schema the
plugin manifest publishes to the host), so a typo is reported with the file and the field
instead of being ignored. Paths in the file are relative to the file itself.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from plugin.errors import ConfigError
from plugin.model import CustomerKind
from plugin.money import Money

__all__ = [
    "CONFIG_FILE",
    "SETTINGS_SCHEMA_PATH",
    "Bank",
    "ClientSettings",
    "Company",
    "Policy",
    "Settings",
    "load_settings",
    "settings_schema",
]

CONFIG_FILE = "kindly.toml"
SETTINGS_SCHEMA_PATH = Path(__file__).parent / "schemas" / "settings.schema.json"


@dataclass(frozen=True, slots=True)
class Company:
    """The creditor, as the contact block of every reminder shows it (R8)."""

    name: str
    email: str
    reply_to: str | None = None
    website: str | None = None
    phone: str | None = None
    fax: str | None = None
    address: tuple[str, ...] = ()
    country: str = "NL"
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class Bank:
    account_holder: str | None = None
    iban: str | None = None
    bic: str | None = None
    account_number: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """The company-wide reminder policy."""

    first_reminder_after_days: int = 3
    tone: str = "friendly"
    channels: tuple[str, ...] = ("email",)
    minimum: Mapping[str, Money] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What the user chose for one client; None means "use the default"."""

    tone: str | None = None
    language: str | None = None
    channels: tuple[str, ...] | None = None
    pause_until: dt.date | None = None
    pause_reason: str | None = None
    excluded: bool = False
    kind: CustomerKind | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    company: Company
    bank: Bank = Bank()
    policy: Policy = Policy()
    clients: Mapping[str, ClientSettings] = field(default_factory=dict)
    connector: str = "ledger"
    ledger_path: Path | None = None
    outbox: Path = Path("outbox")
    store_url: str | None = None
    source: Path | None = None  # the file these came from

    def client(self, client_id: str) -> ClientSettings:
        return self.clients.get(client_id, ClientSettings())


@cache
def settings_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SETTINGS_SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def _jsonable(value: Any) -> Any:
    """TOML gives dates and times as objects; the schema checks their ISO text."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, float):
        # Floats cannot say 0.10 exactly; amounts must be written as strings.
        return {"float": value}
    return value


def validate_settings_data(data: Mapping[str, Any], file: Path | str) -> None:
    """Raise ConfigError naming the file and the field of the first problem."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(
        settings_schema(), format_checker=jsonschema.FormatChecker()
    )
    errors = list(validator.iter_errors(_jsonable(dict(data))))
    if not errors:
        return
    error = jsonschema.exceptions.best_match(errors)
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        if unknown:
            path = ".".join(filter(None, [path, unknown[0]]))
            known = ", ".join(sorted(error.schema.get("properties", {})))
            raise ConfigError(f"{file}: field {path!r} is not a known setting (known: {known})")
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        path = ".".join(filter(None, [path, missing[0]]))
        raise ConfigError(f"{file}: field {path!r} is required but missing")
    message = error.message
    if error.schema.get("format") == "date":
        message = f"{error.instance!r} is not a date; write it as 2026-12-01, without quotes"
    elif isinstance(error.instance, dict) and "float" in error.instance:
        message = f'{error.instance["float"]} must be written as a string, such as "5.00"'
    raise ConfigError(f"{file}: field {path or '(top level)'!r}: {message}")


def _iban_ok(iban: str) -> bool:
    """ISO 13616 check digits: a typo in an IBAN on a reminder sends money nowhere."""
    compact = iban.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    digits = "".join(str(int(char, 36)) for char in rearranged)
    return int(digits) % 97 == 1


def parse_settings(data: Mapping[str, Any], *, source: Path | None = None) -> Settings:
    """Build Settings from already-parsed TOML data, checking it first."""
    where = str(source) if source else CONFIG_FILE
    validate_settings_data(data, where)
    base = source.parent if source else Path.cwd()

    company_data = dict(data["company"])
    company_data["address"] = tuple(company_data.get("address", ()))
    company = Company(**company_data)

    bank = Bank(**data.get("bank", {}))
    if bank.iban and not _iban_ok(bank.iban):
        raise ConfigError(f"{where}: field 'bank.iban': {bank.iban!r} has wrong check digits")

    policy_data = dict(data.get("policy", {}))
    policy = Policy(
        first_reminder_after_days=policy_data.get("first_reminder_after_days", 3),
        tone=policy_data.get("tone", "friendly"),
        channels=tuple(policy_data.get("channels", ("email",))),
        minimum={
            currency: _minimum(currency, amount, where)
            for currency, amount in policy_data.get("minimum", {}).items()
        },
    )

    clients = {}
    for client_id, client_data in data.get("clients", {}).items():
        pause = client_data.get("pause_until")
        clients[str(client_id)] = ClientSettings(
            tone=client_data.get("tone"),
            language=client_data.get("language"),
            channels=tuple(client_data["channels"]) if "channels" in client_data else None,
            pause_until=dt.date.fromisoformat(pause) if isinstance(pause, str) else pause,
            pause_reason=client_data.get("pause_reason"),
            excluded=client_data.get("excluded", False),
            kind=CustomerKind(client_data["kind"]) if "kind" in client_data else None,
        )

    ledger_path = data.get("ledger", {}).get("path")
    store_url = _resolve_sqlite_path(data.get("store", {}).get("url") or None, base)
    return Settings(
        company=company,
        bank=bank,
        policy=policy,
        clients=clients,
        connector=data.get("connector", "ledger"),
        ledger_path=(base / ledger_path).resolve() if ledger_path else None,
        outbox=(base / data.get("delivery", {}).get("outbox", "outbox")).resolve(),
        store_url=store_url,
        source=source,
    )


def _resolve_sqlite_path(url: str | None, base: Path) -> str | None:
    """A relative SQLite path in kindly.toml means beside kindly.toml, not the current folder."""
    prefix = "sqlite:///"
    if url is None or not url.startswith(prefix):
        return url
    path = url[len(prefix) :]
    if not path or path.startswith(("/", ":memory:")):
        return url
    return prefix + str(base / path)


def _minimum(currency: str, amount: str | int, where: str) -> Money:
    try:
        return Money.of(Decimal(str(amount)), currency)
    except ValueError as exc:
        raise ConfigError(f"{where}: field 'policy.minimum.{currency}': {exc}") from None


def load_settings(path: Path) -> Settings:
    """Read and check a kindly.toml."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist",
            hint="Run `kindly init` to write one, or `kindly demo` to try Kindly on sample data.",
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_settings(data, source=path.resolve())

"""Settings from ``kindly.toml``: the company, its bank, the policy and per-client choices.

The file is checked against ``plugin/config/settings.schema.json``, Kindly's own part of the
schema the plugin manifest publishes; the app (:mod:`plugin.app.wiring`) adds the sections
of the connectors the file names. A typo is reported with the file and the field instead
of being ignored. Paths in the file are relative to the file itself.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from plugin.core.businessdays import SendWindow
from plugin.core.model import CustomerKind
from plugin.core.money import Money
from plugin.core.policy import (
    DEFAULT_APPOINTMENT_POLICY,
    DEFAULT_MINIMUM,
    DEFAULT_POLICY,
    WORDED_STAGES,
    Anchor,
    AppointmentPolicy,
    BehaviourRules,
    ChargeSettings,
    Defaults,
    Overrides,
    Policy,
    Stage,
    parse_rule,
)
from plugin.core.vocabulary import EmailVia, Language
from plugin.errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "SETTINGS_SCHEMA_PATH",
    "Bank",
    "Company",
    "Defaults",
    "Settings",
    "TemplateBudget",
    "core_settings_schema",
    "load_settings",
]

CONFIG_FILE = "kindly.toml"
SETTINGS_SCHEMA_PATH = Path(__file__).parent / "settings.schema.json"


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
    #: The signature per language, where [company] signature gives one per language.
    signatures: Mapping[str, str] = field(default_factory=dict)
    #: Who signs appointment reminders, per language; none: the company's name alone.
    appointment_signatures: Mapping[str, str] = field(default_factory=dict)
    sms_sender: str | None = None  # the short name an SMS starts with
    #: Of the notes in the accounting system; default: the country's.
    language: Language | None = None
    city: str | None = None  # where letters are dated from


def signature_in(company: Company, language: str) -> str | None:
    """Who signs a message in ``language``: its own signature, else the company's
    language's, else the one signature given."""
    if company.signatures:
        own = company.language or ""
        return (
            company.signatures.get(language)
            or company.signatures.get(own)
            or next(iter(company.signatures.values()))
        )
    return company.signature


def appointment_signature_in(company: Company, language: str) -> str | None:
    """Who signs an appointment reminder in ``language``: ``[company]
    appointment_signature``, else nobody but the company's name (review M3: a meeting
    reminder signed by the accounts department reads oddly)."""
    signatures = company.appointment_signatures
    if not signatures:
        return None
    return (
        signatures.get(language)
        or signatures.get(company.language or "")
        or signatures.get("*")
        or next(iter(signatures.values()))
    )


@dataclass(frozen=True, slots=True)
class Bank:
    account_holder: str | None = None
    iban: str | None = None
    bic: str | None = None
    account_number: str | None = None


PASSWORD_VARIABLE = "KINDLY_SMTP_PASSWORD"  # noqa: S105 (a variable name)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    security: str = "starttls"  # "starttls", "tls" or "none"
    username: str | None = None
    password: str | None = None
    #: Seconds for the greeting and each command's answer (RFC 5321 section 4.5.3.2: 5 min).
    timeout: float = 300.0
    #: Seconds for the answer to the end of a message (RFC 5321: 10 minutes).
    final_timeout: float = 600.0
    #: Tries again within the run after a 4xx or a connection lost before the final dot.
    retries: int = 3
    #: Seconds before the first of those tries, doubled for each next one.
    retry_wait: float = 2.0
    #: Connections a send uses at once, each with its own messages (plugin/run.py).
    connections: int = 1

    def __repr__(self) -> str:
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"username={self.username!r})"
        )


@dataclass(frozen=True, slots=True)
class TemplateBudget:
    """What one reminder's own templates ([templates] folder) may use; over it, that
    reminder fails, naming the template and line, and the others go out."""

    #: Seconds to render one message's templates.
    time_limit: float = 5.0
    #: Characters one template may write.
    output_limit: int = 1_000_000
    #: Megabytes of memory the templates may take beyond what Kindly needs to run them.
    memory_limit: int = 256


@dataclass(frozen=True, slots=True)
class Settings:
    company: Company
    bank: Bank = Bank()
    defaults: Defaults = field(default_factory=Defaults)
    policies: Mapping[str, Policy] = field(default_factory=lambda: {"default": DEFAULT_POLICY})
    groups: Mapping[str, Overrides] = field(default_factory=dict)
    clients: Mapping[str, Overrides] = field(default_factory=dict)
    invoices: Mapping[str, Overrides] = field(default_factory=dict)
    #: The accounting system: a bookkeeping connector's name (its section holds its settings).
    connector: str = "ledger"
    outbox: Path = Path("outbox")
    #: "outbox" (.eml files), "smtp", or "platform" (the accounting system's own e-mail).
    email_via: EmailVia = EmailVia.OUTBOX
    #: Seconds a send waits for another Kindly sending for the same organisation.
    send_wait: float = 0.0
    #: Send although the accounting system sends payment reminders itself (the user chose).
    beside_platform_reminders: bool = False
    store_url: str | None = None
    #: The workspace's name in a store shared with other workspaces ("" for its own).
    store_workspace: str = ""
    source: Path | None = None  # the file these came from
    #: What errors name as the settings' place where that is not ``source`` ("db:acme":
    #: held in the database; ``source`` is then where its relative paths start).
    origin: str | None = None
    templates: Path | None = None  # a folder of the user's own templates
    template_budget: TemplateBudget = TemplateBudget()
    sms_limit: int = 160
    sms_transliterate: str = "auto"
    charges: ChargeSettings = field(default_factory=ChargeSettings)
    smtp: SmtpSettings | None = None
    #: The SMS gateway connector [sms] gateway names, if any.
    sms_gateway: str | None = None
    #: The calendar connector [calendar] type names ("": the default one), if appointments
    #: come from a calendar.
    calendar: str | None = None
    #: The connectors' own sections of kindly.toml, as read (checked against the schema).
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Appointment reminder policies by calendar name; "" is the default.
    appointment_policies: Mapping[str, AppointmentPolicy] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """The settings' place, as messages name it."""
        return self.origin or (str(self.source) if self.source else CONFIG_FILE)

    def client(self, client_id: str) -> Overrides:
        return self.clients.get(client_id, Overrides())

    def with_client_overrides(self, overrides: Mapping[str, Overrides]) -> Settings:
        """Settings made with `kindly clients set` win over kindly.toml for that client."""
        clients = dict(self.clients)
        for client_id, newer in overrides.items():
            older = clients.get(client_id, Overrides())
            merged = {
                item.name: getattr(newer, item.name)
                if getattr(newer, item.name) is not None
                else getattr(older, item.name)
                for item in fields(Overrides)
            }
            clients[client_id] = Overrides(**merged)
        return replace(self, clients=clients)


@cache
def core_settings_schema() -> dict[str, Any]:
    """The schema of Kindly's own settings, without the connectors' sections."""
    schema: dict[str, Any] = json.loads(SETTINGS_SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


#: Sections of kindly.toml that are Kindly's own; any other table is a connector's.
CORE_SECTIONS = frozenset(core_settings_schema()["properties"])


def lenient_settings_schema() -> dict[str, Any]:
    """The core schema with any other table taken as some connector's section, unchecked:
    for reading settings without the connectors at hand (the app checks them all)."""
    schema = dict(core_settings_schema())
    schema["additionalProperties"] = {"type": "object"}
    return schema


class _TomlDate(str):
    """A TOML date or time, as the ISO text the schema checks; it is a string only where
    the schema takes a date ("format": "date"), not where it takes text."""

    __slots__ = ()


def _jsonable(value: Any) -> Any:
    """TOML gives dates and times as objects; the schema checks their ISO text."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return _TomlDate(value.isoformat())
    return value


@cache
def _settings_validator_class() -> Any:
    """Draft 2020-12, but a TOML date where text is expected (``folder = 2026-01-01``)
    is refused instead of read as its ISO text."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    plain_type = base.VALIDATORS["type"]

    def type_(validator: Any, types: Any, instance: Any, schema: Mapping[str, Any]) -> Any:
        if isinstance(instance, _TomlDate) and schema.get("format") != "date":
            yield jsonschema.ValidationError(
                f"{instance!s} is a date or time, where a text is expected; "
                "put it in quotes if it is meant"
            )
            return
        yield from plain_type(validator, types, instance, schema)

    return jsonschema.validators.extend(base, {"type": type_})  # type: ignore[no-untyped-call]


# Line breaks and other controls: "$" in the schema's patterns (Python's re) also matches
# before a final newline, so "NL91…\n" would pass as an IBAN; and no setting is a text of
# several lines (a signature's lines are a list).
_SETTING_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _refuse_control_characters(data: Mapping[str, Any], file: Path | str) -> None:
    from plugin.core.codec import strings_in

    for path, text in strings_in(data):
        if _SETTING_CONTROLS.search(text):
            raise ConfigError(
                f"{file}: field {path!r} holds a line break or another control character",
                hint="Write the value on one line; a list of lines goes in [ ... ].",
            )


def validate_settings_data(
    data: Mapping[str, Any], file: Path | str, schema: Mapping[str, Any] | None = None
) -> None:
    """Raise ConfigError naming the file and the field of the first problem.

    ``schema`` is the whole settings schema, connectors' sections included (the app's
    ``settings_schema()``); without it, only Kindly's own sections are checked.
    """
    import jsonschema

    _refuse_control_characters(data, file)
    validator = _settings_validator_class()(
        schema or lenient_settings_schema(), format_checker=jsonschema.FormatChecker()
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
    if error.validator == "pattern" and error.schema.get("description"):
        # The pattern is for Kindly; the description says it in words.
        message = f"{error.instance!r} is not what it takes: {error.schema['description']}"
    if isinstance(error.instance, str) and _may_be_secret(path, error.instance):
        # jsonschema's message starts with the value: a secret put in the wrong place
        # must not be printed back (to a terminal, a log, a CI job's output).
        message = message.replace(repr(error.instance), "the value given (not shown)", 1)
        if "key" in path.rsplit(".", 1)[-1] or "secret" in path or "token" in path:
            message += "; secrets go in environment variables, never in kindly.toml"
    if error.schema.get("format") == "date":
        message = f"{error.instance!r} is not a date; write it as 2026-12-01, without quotes"
    elif isinstance(error.instance, float):
        # A float cannot say 0.10 exactly, so amounts are written as strings.
        message = f'{error.instance} must be written as a string, such as "5.00"'
    raise ConfigError(f"{file}: field {path or '(top level)'!r}: {message}")


_SECRET_WORDS = ("key", "secret", "token", "password", "passwd")
# A URL with a user and password before the host: https://user:pw@host/...
_USERINFO = re.compile(r"//[^/\s]*@")


def _may_be_secret(path: str, value: str) -> bool:
    """Whether a refused setting's value may be a secret, and so is not shown."""
    field = path.rsplit(".", 1)[-1].lower()
    return any(word in field for word in _SECRET_WORDS) or bool(_USERINFO.search(value))


def _bank_problem(iban: str | None, bic: str | None) -> str | None:
    """What is wrong with the IBAN or BIC, checked by schwifty: the check digits, the
    length and the account format of the IBAN's country, the BIC's form. A typo in an
    IBAN on a reminder sends money nowhere."""
    from schwifty import BIC, IBAN
    from schwifty.exceptions import SchwiftyException

    if iban:
        try:
            IBAN(iban)
        except SchwiftyException as exc:
            return f"field 'bank.iban': {iban!r} is not a valid IBAN ({exc})"
    if bic:
        try:
            BIC(bic)
        except SchwiftyException as exc:
            return f"field 'bank.bic': {bic!r} is not a valid BIC ({exc})"
    return None


def parse_settings(
    data: Mapping[str, Any],
    *,
    source: Path | None = None,
    schema: Mapping[str, Any] | None = None,
    origin: str | None = None,
) -> Settings:
    """Build Settings from already-parsed TOML data, checking it against ``schema`` first.
    ``origin``: what messages name where not ``source`` (settings held in the database)."""
    where = origin or (str(source) if source else CONFIG_FILE)
    validate_settings_data(data, where, schema)
    base = source.parent if source else Path.cwd()

    company_data = dict(data["company"])
    company_data["address"] = tuple(company_data.get("address", ()))
    if isinstance(company_data.get("signature"), Mapping):
        company_data["signatures"] = dict(company_data.pop("signature"))
    # One string signs in every language: kept as the "*" entry.
    appointment = company_data.pop("appointment_signature", None)
    if appointment is not None:
        company_data["appointment_signatures"] = (
            dict(appointment) if isinstance(appointment, Mapping) else {"*": appointment}
        )
    company = Company(**company_data)

    bank = Bank(**data.get("bank", {}))
    if bank.iban or bank.bic:
        problem = _bank_problem(bank.iban, bank.bic)
        if problem is not None:
            raise ConfigError(f"{where}: {problem}")

    policy_data = dict(data.get("policy", {}))
    defaults = Defaults(
        tone=policy_data.get("tone", "friendly"),
        channels=tuple(policy_data.get("channels", ("email",))),
        # Given currencies replace the defaults' (a 0 turns one off); the others keep theirs.
        minimum={
            **DEFAULT_MINIMUM,
            **_minimums(policy_data.get("minimum", {}), "policy.minimum", where),
        },
        policy=policy_data.get("name", DEFAULT_POLICY.name),
        charges=bool(data.get("charges", {}).get("enabled", False)),
    )
    own_templates = bool(data.get("templates", {}).get("folder"))
    policies = {"default": _default_policy(policy_data, where, own_templates)}
    for name, policy in data.get("policies", {}).items():
        if name == "default":
            raise ConfigError(
                f"{where}: field 'policies.default': the default policy is set in [policy]"
            )
        policies[name] = _policy(name, policy, where, own_templates)
    groups = {
        name: _overrides(v, f"groups.{name}", where) for name, v in data.get("groups", {}).items()
    }
    clients = {
        str(cid): _overrides(v, f"clients.{cid}", where)
        for cid, v in data.get("clients", {}).items()
    }
    invoices = {
        str(iid): _overrides(v, f"invoices.{iid}", where)
        for iid, v in data.get("invoices", {}).items()
    }
    for scope, levels in (
        ("policy", {"": defaults.policy}),
        ("groups", groups),
        ("clients", clients),
        ("invoices", invoices),
    ):
        for key, level in levels.items():
            name = level if isinstance(level, str) else level.policy
            if name is not None and name not in policies:
                known = ", ".join(sorted(policies))
                path = f"{scope}.{key}.policy" if key else "policy.name"
                raise ConfigError(f"{where}: field {path!r}: no policy {name!r} (known: {known})")

    store_url = _resolve_sqlite_path(data.get("store", {}).get("url") or None, base)
    return Settings(
        company=company,
        bank=bank,
        defaults=defaults,
        policies=policies,
        groups=groups,
        clients=clients,
        invoices=invoices,
        connector=data.get("connector", "ledger"),
        outbox=(base / data.get("delivery", {}).get("outbox", "outbox")).resolve(),
        send_wait=float(data.get("delivery", {}).get("wait", 0.0)),
        beside_platform_reminders=bool(
            data.get("delivery", {}).get("beside_platform_reminders", False)
        ),
        email_via=EmailVia(
            data.get("delivery", {}).get("email_via", "smtp" if data.get("smtp") else "outbox")
        ),
        store_url=store_url,
        store_workspace=data.get("store", {}).get("workspace", ""),
        source=source,
        origin=origin,
        templates=(base / data["templates"]["folder"]).resolve()
        if data.get("templates", {}).get("folder")
        else None,
        template_budget=_template_budget(data.get("templates", {})),
        sms_limit=data.get("sms", {}).get("limit", 160),
        sms_transliterate=data.get("sms", {}).get("transliterate", "auto"),
        charges=ChargeSettings(
            jurisdiction=data.get("charges", {}).get("jurisdiction"),
            contract_rate=_decimal(data.get("charges", {}).get("contract_rate")),
            vat_on_costs=_decimal(data.get("charges", {}).get("vat_on_costs")),
        ),
        smtp=_smtp(data.get("smtp")),
        sms_gateway=data.get("sms", {}).get("gateway"),
        appointment_policies=_appointment_policies(data.get("appointments", {}), where),
        calendar=data["calendar"].get("type", "") if data.get("calendar") else None,
        sections={
            name: value
            for name, value in data.items()
            if name not in CORE_SECTIONS and isinstance(value, Mapping)
        }
        | {name: data[name] for name in ("calendar", "sms") if isinstance(data.get(name), Mapping)},
    )


def _appointment_policies(data: Mapping[str, Any], where: str) -> dict[str, AppointmentPolicy]:
    def policy(section: Mapping[str, Any], path: str, base: AppointmentPolicy) -> AppointmentPolicy:
        rules = base.rules
        if "reminders" in section:
            try:
                rules = tuple(parse_rule(text) for text in section["reminders"])
            except ValueError as exc:
                raise ConfigError(f"{where}: field '{path}.reminders': {exc}") from None
        quiet_start, quiet_end = base.quiet_start, base.quiet_end
        if "quiet_hours" in section:
            text = section["quiet_hours"]
            if text == "none":
                quiet_start = quiet_end = None
            else:
                first, _, last = text.partition("-")
                try:
                    quiet_start, quiet_end = (
                        dt.time.fromisoformat(first),
                        dt.time.fromisoformat(last),
                    )
                except ValueError:
                    raise ConfigError(
                        f"{where}: field '{path}.quiet_hours': {text!r} is not like '21:00-08:00'"
                    ) from None
        return AppointmentPolicy(rules, quiet_start, quiet_end)

    default = policy(data, "appointments", DEFAULT_APPOINTMENT_POLICY)
    found = {"": default}
    for name, section in data.get("calendars", {}).items():
        found[name] = policy(section, f"appointments.calendars.{name}", default)
    return found


def _smtp(data: Mapping[str, Any] | None) -> SmtpSettings | None:
    import os

    if not data:
        return None
    security = data.get("security", "starttls")
    default_port = {"starttls": 587, "tls": 465, "none": 25}[security]
    return SmtpSettings(
        host=data["host"],
        port=data.get("port", default_port),
        security=security,
        username=data.get("username"),
        password=os.environ.get(PASSWORD_VARIABLE),
        timeout=float(data.get("timeout", 300.0)),
        final_timeout=float(data.get("final_timeout", 600.0)),
        retries=int(data.get("retries", 3)),
        retry_wait=float(data.get("retry_wait", 2.0)),
        connections=int(data.get("connections", 1)),
    )


def _decimal(value: str | int | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _resolve_sqlite_path(url: str | None, base: Path) -> str | None:
    """A relative SQLite path in kindly.toml means beside kindly.toml, not the current folder."""
    prefix = "sqlite:///"
    if url is None or not url.startswith(prefix):
        return url
    path = url[len(prefix) :]
    if not path or path.startswith(("/", ":memory:")):
        return url
    return prefix + str(base / path)


def _minimums(raw: Mapping[str, Any], path: str, where: str) -> dict[str, Money]:
    result = {}
    for currency, amount in raw.items():
        try:
            value = Decimal(str(amount))
            if not value.is_finite() or not 0 <= value < 10**15:
                raise ValueError(f"{amount!r} is not an amount from 0 up to 10^15")
            result[currency] = Money.exact(value, currency)
        except (ValueError, ArithmeticError) as exc:
            raise ConfigError(f"{where}: field '{path}.{currency}': {exc}") from None
    return result


def overrides_from_data(raw: Mapping[str, Any]) -> Overrides:
    """Overrides kept as JSON in the store (by `kindly clients set`)."""
    return _overrides(raw, "clients", "the store")


def _overrides(raw: Mapping[str, Any], path: str, where: str) -> Overrides:
    pause = raw.get("pause_until")
    return Overrides(
        tone=raw.get("tone"),
        language=raw.get("language"),
        channels=tuple(raw["channels"]) if "channels" in raw else None,
        policy=raw.get("policy"),
        pause_until=dt.date.fromisoformat(pause) if isinstance(pause, str) else pause,
        pause_reason=raw.get("pause_reason"),
        excluded=raw.get("excluded"),
        kind=CustomerKind(raw["kind"]) if "kind" in raw else None,
        consolidate=raw.get("consolidate"),
        minimum=_minimums(raw["minimum"], f"{path}.minimum", where) if "minimum" in raw else None,
        formality=raw.get("formality"),
        charges=raw.get("charges"),
    )


def _common_policy_parts(raw: Mapping[str, Any], path: str, where: str) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    for key in ("gap_days", "promise_grace_days"):
        if key in raw:
            parts[key] = raw[key]
    if "send_window" in raw:
        try:
            parts["send_window"] = SendWindow.parse(raw["send_window"])
        except ValueError as exc:
            raise ConfigError(f"{where}: field '{path}.send_window': {exc}") from None
    if "behaviour" in raw:
        parts["behaviour"] = BehaviourRules(**raw["behaviour"])
    return parts


def _default_policy(raw: Mapping[str, Any], where: str, own_templates: bool) -> Policy:
    if "stages" in raw:
        shorthand = [key for key in ("first_reminder_after_days", "courtesy") if key in raw]
        if shorthand:
            raise ConfigError(
                f"{where}: field 'policy.{shorthand[0]}': the stages are written out in "
                "policy.stages; set it there"
            )
        stages = _stages(raw["stages"], "policy", where, own_templates)
        try:
            return Policy("default", stages, **_common_policy_parts(raw, "policy", where))
        except ValueError as exc:
            raise ConfigError(f"{where}: field 'policy': {exc}") from None
    policy = DEFAULT_POLICY.with_courtesy(bool(raw.get("courtesy", False)))
    if "first_reminder_after_days" in raw:
        days = raw["first_reminder_after_days"]
        policy = replace(
            policy,
            stages=tuple(
                replace(stage, days=days) if stage.name == "first" else stage
                for stage in policy.stages
            ),
        )
    return replace(policy, **_common_policy_parts(raw, "policy", where))


def _template_budget(raw: Mapping[str, Any]) -> TemplateBudget:
    default = TemplateBudget()
    return TemplateBudget(
        time_limit=float(raw.get("time_limit", default.time_limit)),
        output_limit=raw.get("output_limit", default.output_limit),
        memory_limit=raw.get("memory_limit", default.memory_limit),
    )


def _stages(
    items: Sequence[Mapping[str, Any]], path: str, where: str, own_templates: bool
) -> tuple[Stage, ...]:
    stages: list[Stage] = []
    for index, item in enumerate(items):
        try:
            stages.append(
                Stage(
                    name=item["name"],
                    anchor=Anchor(item["after"]),
                    days=item["days"],
                    business_days=item.get("business_days", False),
                    channels=tuple(item["channels"]) if "channels" in item else None,
                    tone=item.get("tone"),
                    template=item.get("template"),
                    charges=item.get("charges", False),
                    enabled=item.get("enabled", True),
                    on_broken_promise=item.get("on_broken_promise", False),
                )
            )
        except ValueError as exc:
            raise ConfigError(f"{where}: field '{path}.stages.{index}': {exc}") from None
        # A stage Kindly has no words for would go out with an empty subject; a folder of
        # the user's own templates may have words for it.
        if not stages[-1].worded and not own_templates:
            words = ", ".join(sorted(WORDED_STAGES))
            raise ConfigError(
                f"{where}: field '{path}.stages.{index}.template': Kindly has no "
                f"words for a stage called {stages[-1].template_name!r}; set its template to "
                f"one of {words}"
            )
    return tuple(stages)


def _policy(name: str, raw: Mapping[str, Any], where: str, own_templates: bool) -> Policy:
    stages = _stages(raw["stages"], f"policies.{name}", where, own_templates)
    try:
        return Policy(name, stages, **_common_policy_parts(raw, f"policies.{name}", where))
    except ValueError as exc:
        raise ConfigError(f"{where}: field 'policies.{name}': {exc}") from None


def load_settings(path: Path, schema: Mapping[str, Any] | None = None) -> Settings:
    """Read and check a kindly.toml (against ``schema``, see :func:`validate_settings_data`)."""
    return parse_settings(read_settings_file(path), source=path.resolve(), schema=schema)


def read_settings_file(path: Path) -> dict[str, Any]:
    """A kindly.toml's data, unchecked; errors name the file."""
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
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None

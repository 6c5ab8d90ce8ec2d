"""A client's own settings, as `kindly clients set` and the web app change them: checked
once, here, and kept in the store, where they win over kindly.toml for that client."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from plugin.core.vocabulary import CHANNELS, FORMALITIES, LANGUAGES, TONES
from plugin.errors import KindlyError

if TYPE_CHECKING:
    from plugin.core.model import PromiseToPay
    from plugin.run import Kindly

__all__ = [
    "ClientSettingError",
    "change_client",
    "checked",
    "platform_groups",
    "promise_for",
    "write_platform_group",
]


class ClientSettingError(KindlyError):
    """A value a client's setting cannot take; ``field`` names the setting."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def checked(kindly: Kindly, values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as the store keeps them; None values are left out. Raises
    ClientSettingError naming the first setting that is wrong."""
    choices = {
        "tone": TONES,
        "language": LANGUAGES,
        "formality": FORMALITIES,
        "kind": ("business", "consumer"),
    }
    kept: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if name in choices:
            if value not in choices[name]:
                raise ClientSettingError(
                    name, f"{value!r} is not a {name}; choose from {', '.join(choices[name])}"
                )
        elif name == "channels":
            if isinstance(value, str):
                value = [part.strip() for part in value.split(",") if part.strip()]
            unknown = [channel for channel in value if channel not in CHANNELS]
            if unknown or not value:
                raise ClientSettingError(
                    name,
                    f"unknown channel {unknown[0] if unknown else '(none)'}; "
                    f"choose from {', '.join(CHANNELS)}",
                )
            value = list(value)
        elif name == "policy":
            if value not in kindly.settings.policies:
                known = ", ".join(sorted(kindly.settings.policies))
                raise ClientSettingError(name, f"no policy {value!r} (known: {known})")
        elif name == "pause_until":
            if isinstance(value, datetime):
                value = value.date()
            if isinstance(value, str):
                try:
                    value = date.fromisoformat(value)
                except ValueError:
                    wrong = f"{value!r} is not a date (YYYY-MM-DD)"
                    raise ClientSettingError(name, wrong) from None
            value = value.isoformat()
        elif name == "pause_reason":
            value = " ".join(str(value).split())[:200]
        elif name in ("excluded", "consolidate"):
            value = bool(value)
        else:
            raise ClientSettingError(name, f"{name!r} is not a client setting")
        kept[name] = value
    return kept


def change_client(
    kindly: Kindly,
    client: str,
    values: Mapping[str, Any],
    now: datetime,
    *,
    reset: bool = False,
    resume: bool = False,
) -> None:
    """Keep ``values`` (checked first) as ``client``'s own settings; ``reset`` forgets
    every one made before, ``resume`` lifts a pause made this way."""
    from plugin.run import CLIENT_SCOPE

    kept = checked(kindly, values)
    scope = CLIENT_SCOPE + client
    store = kindly.store
    if reset:
        for key in store.settings_in(scope).get(scope, {}):
            store.delete_setting(scope, key)
    if resume:
        store.delete_setting(scope, "pause_until")
        store.delete_setting(scope, "pause_reason")
    for key, value in kept.items():
        store.set_setting(scope, key, value, now)
    kindly.reread_client_settings()


def promise_for(
    kindly: Kindly,
    client: str,
    invoice: str,
    until: str | date,
    amount: str | None,
    note: str | None,
    now: datetime,
) -> PromiseToPay:
    """A promise to pay as the user states it (`kindly clients promise`, the web app):
    for one of the client's open invoices, named by number or id; until a day from today
    on; for at most what is due. Raises ClientSettingError naming the field."""
    from decimal import Decimal, InvalidOperation

    from plugin.core.model import PromiseToPay
    from plugin.core.money import Money

    snapshot = kindly.snapshot()
    found = next(
        (
            i
            for i in snapshot.invoices
            if i.customer_id == client and invoice in (i.id, i.number) and i.is_open
        ),
        None,
    )
    if found is None:
        raise ClientSettingError("invoice", f"{invoice!r} is not an open invoice of this client")
    if isinstance(until, str):
        try:
            until = date.fromisoformat(until)
        except ValueError:
            raise ClientSettingError("until", f"{until!r} is not a date (YYYY-MM-DD)") from None
    if until < now.date():
        raise ClientSettingError("until", f"{until.isoformat()} is in the past")
    promised = None
    if amount:
        try:
            promised = Money.of(Decimal(amount.replace(",", ".")), found.currency)
        except (InvalidOperation, ValueError):
            raise ClientSettingError("amount", f"{amount!r} is not an amount") from None
        if not promised.is_positive or promised > found.amount_due:
            raise ClientSettingError(
                "amount", f"{amount} is not between 0 and the {found.amount_due} due"
            )
    text = " ".join((note or "").split())[:200] or None
    return PromiseToPay(found.id, until, now.date(), promised, text)


#: The settings a platform can hold as client groups (integrations.fields.group_settings),
#: and the fields of Overrides each one sets.
GROUPED: Mapping[str, tuple[str, ...]] = {
    "reminders": ("tone", "excluded"),
    "language": ("language",),
    "kind": ("kind",),
}


def platform_groups(kindly: Kindly, client: str) -> list[dict[str, Any]]:
    """For each setting the accounting system holds as client groups ("Reminders: firm",
    "Language: nl"): what its groups say for this client, what Kindly uses and which side
    wins, and the group that would say Kindly's value, to write it there. Empty where the
    system holds no groups. Groups kindly.toml sets win over the system's of the same name."""
    from plugin.core.planning import settings_for
    from plugin.run import client_overrides

    offered = dict(kindly.source.group_settings())
    if not offered:
        return []
    snapshot = kindly.snapshot()
    customer = next(c for c in snapshot.customers if c.id == client)
    resolved = settings_for(kindly.settings, customer)
    own = client_overrides(kindly.store).get(client)
    rows = []
    for setting, names in GROUPED.items():
        groups = {
            name: overrides
            for name, overrides in offered.items()
            if any(getattr(overrides, field) is not None for field in names)
        }
        if not groups:
            continue
        value = (
            "off"
            if setting == "reminders" and resolved.excluded
            else str(getattr(resolved, names[0]))
        )
        field = "excluded" if value == "off" else names[0]
        current = sorted(tag for tag in customer.tags if tag in groups)
        source = resolved.sources[field]
        if source == "client":
            wins = "kindly" if own is not None and getattr(own, field) is not None else "file"
        elif source.startswith("group "):
            in_file = source.removeprefix("group ") in kindly.file_settings.groups
            wins = "file" if in_file else "platform"
        else:
            wins = "default"
        target = next(
            (
                name
                for name, overrides in groups.items()
                if str(getattr(overrides, field)) == (str(True) if value == "off" else value)
            ),
            None,
        )
        rows.append(
            {
                "setting": setting,
                "value": value,
                "groups": current,
                "wins": wins,
                "source": source,
                "target": target,
                "leaving": [name for name in current if name != target],
                # Worth offering where Kindly's own setting (not a default) is not yet
                # what the system says.
                "offer": target is not None and wins in ("kindly", "file") and current != [target],
            }
        )
    return rows


def write_platform_group(kindly: Kindly, client: str, setting: str) -> str:
    """Put the client in the system's group that says what Kindly uses for ``setting``,
    out of its other groups of that setting; the group written."""
    row = next((r for r in platform_groups(kindly, client) if r["setting"] == setting), None)
    if row is None or row["target"] is None:
        raise ClientSettingError("setting", f"{kindly.source.title} holds no group for {setting!r}")
    kindly.source.put_in_group(client, row["target"], row["leaving"])
    return str(row["target"])

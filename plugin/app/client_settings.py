"""A client's own settings, as `kindly clients set` and the web app change them: checked
once, here, and kept in the store, where they win over kindly.toml for that client."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from plugin.core.vocabulary import CHANNELS, FORMALITIES, LANGUAGES, TONES
from plugin.errors import KindlyError

if TYPE_CHECKING:
    from plugin.run import Kindly

__all__ = ["ClientSettingError", "change_client", "checked"]


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

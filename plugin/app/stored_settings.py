"""A workspace's settings held in the database instead of a kindly.toml.

Workers serving many organisations reach one database, not each organisation's files: a
workspace's company-level settings (what a kindly.toml says: the company, the bank, the
policies, the connector's section) can be one TOML document in the store, under the
workspace's name. ``kindly settings import`` puts a kindly.toml there, ``kindly settings
export`` gives it back with the user's comments; every command takes ``--config db:NAME``,
and the scheduler, ``kindly status`` and ``kindly serve`` take ``--workspace db:`` for every
workspace the database holds settings for. The database is KINDLY_STORE_URL's: a locator
never carries an address or a password into task arguments or logs.

A document is checked with the same rules and messages as the file, naming ``db:NAME``, and
only one that passes is saved. A change names the version it started from and is saved
with one conditional statement (:meth:`Store.save_settings_document`), so of two changes
made from the same version one is refused rather than undoing the other.

Paths a document names (a ledger folder, the outbox, the user's own templates) start from
the workspace's data folder, ``KINDLY_DATA_DIR/NAME`` (by default in the user's data
directory); ``[store]`` has no place in it, the store being the database that holds it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from plugin.errors import ConfigError

if TYPE_CHECKING:
    from tomlkit.toml_document import TOMLDocument

    from plugin.config.settings import Settings
    from plugin.state.store import Store

__all__ = [
    "ALL_STORED",
    "PREFIX",
    "ChangedMeanwhile",
    "change_stored",
    "data_folder",
    "export_settings",
    "import_settings",
    "is_held",
    "is_stored",
    "locator",
    "name_of",
    "nothing_held",
    "open_stored",
    "place_key",
    "settings_of_document",
    "stored_locators",
]

#: ``db:NAME`` names a workspace whose settings the database holds.
PREFIX = "db:"
#: Every workspace whose settings the database holds.
ALL_STORED = PREFIX
STORE_VARIABLE = "KINDLY_STORE_URL"


class ChangedMeanwhile(ConfigError):
    """The settings changed after the page that asks for the change was shown."""


DATA_VARIABLE = "KINDLY_DATA_DIR"


def is_stored(config: str | Path) -> bool:
    return str(config).startswith(PREFIX)


def locator(name: str) -> str:
    return PREFIX + name


def name_of(config: str | Path) -> str:
    """The workspace ``db:NAME`` names, checked as the store checks names."""
    from plugin.state.store import check_workspace

    name = str(config)[len(PREFIX) :]
    if name in (".", ".."):
        # It names the workspace's data folder too.
        raise ConfigError(f"{config!s}: {name!r} is not a workspace's name")
    if not name:
        raise ConfigError(
            f"{config!s} names no workspace",
            hint="Write db:NAME for one workspace held in the database.",
        )
    try:
        return check_workspace(name)
    except ValueError as exc:
        raise ConfigError(f"{config!s}: {exc}") from None


def place_key(config: str | Path) -> str:
    """How tasks and pages name a workspace's settings: db:NAME, or the file's full path."""
    return str(config) if is_stored(config) else str(Path(config).resolve())


def nothing_held(config: str | Path, name: str) -> ConfigError:
    """The error for a workspace whose settings the database does not hold."""
    return ConfigError(
        f"{config!s}: the database holds no settings for the workspace {name!r}",
        hint=f"Put a kindly.toml there: kindly settings import FILE --as {name}",
    )


def database_url() -> str:
    url = os.environ.get(STORE_VARIABLE)
    if not url:
        raise ConfigError(
            "settings held in the database (db:NAME) need the database's address",
            hint=f"Set {STORE_VARIABLE} to it, e.g. postgresql://kindly@db.example/kindly.",
        )
    return url


def data_folder(name: str) -> Path:
    """Where the relative paths of the workspace ``name``'s settings start."""
    root = os.environ.get(DATA_VARIABLE)
    if root:
        return Path(root).resolve() / name
    from platformdirs import user_data_path

    return user_data_path("kindly", appauthor=False) / "workspaces" / name


def settings_of_document(name: str, text: str, origin: str | None = None) -> Settings:
    """The settings the document says, checked as a kindly.toml is; errors name
    ``origin`` (the file being imported), else db:NAME."""
    from plugin.app.settings_schema import settings_from

    where = origin or locator(name)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    if "store" in data:
        raise ConfigError(
            f"{where}: field 'store': settings held in the database are kept in that "
            f"database, under the workspace {name!r}",
            hint="Remove [store]; the database is the one KINDLY_STORE_URL names.",
        )
    settings = settings_from(data, data_folder(name) / "kindly.toml", origin=where)
    return replace(settings, store_workspace=name)


def open_stored(config: str | Path, *, shared: bool = False) -> tuple[Settings, Store]:
    """The settings the database holds for ``db:NAME``, and the workspace's store."""
    from plugin.state.store import Store

    name = name_of(config)
    store = Store.open(database_url(), name, shared=shared)
    try:
        document = store.settings_document()
        if document is None:
            raise nothing_held(config, name)
        return settings_of_document(name, document.text), store
    except BaseException:
        store.close()
        raise


def is_held(name: str, *, shared: bool = False) -> bool:
    """Whether the database holds settings for the workspace ``name``; ``shared``: on the
    connections this process shares among workspaces (see :meth:`Store.open`)."""
    from plugin.state.store import Store

    store = Store.open(database_url(), name_of(locator(name)), shared=shared)
    try:
        return store.settings_document() is not None
    finally:
        store.close()


def stored_locators(*, shared: bool = False) -> list[str]:
    """``db:NAME`` of every workspace whose settings the database holds (read at each
    call: a workspace imported meanwhile is seen at the next)."""
    from plugin.state.store import Store

    store = Store.open(database_url(), shared=shared)
    try:
        return [locator(name) for name in store.workspaces_with_settings()]
    finally:
        store.close()


def import_settings(path: Path, name: str, at: datetime, *, replace: bool = False) -> list[str]:
    """Hold the kindly.toml at ``path`` as the settings of the workspace ``name``, with its
    comments. Returns what was left out, for the user to read: ``[store]``, which the
    database replaces. Nothing is saved unless the whole document passes."""
    import tomlkit

    from plugin.config.settings import read_settings_file
    from plugin.state.store import Store

    read_settings_file(path)  # its own messages: missing, not UTF-8, not TOML
    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    left_out = []
    if "store" in document:
        del document["store"]
        left_out.append(f"[store] of {path}: the workspace's store is the database now")
    text = tomlkit.dumps(document)
    settings_of_document(name_of(locator(name)), text, origin=str(path))
    store = Store.open(database_url(), name)
    try:
        if store.save_settings_document(text, at, seen=None, replace=replace) is None:
            raise ConfigError(
                f"{locator(name)}: the database holds settings for {name!r} already",
                hint="Add --replace to put these in their place (kindly settings export "
                "keeps a copy of the ones there).",
            )
    finally:
        store.close()
    return left_out


def export_settings(config: str | Path) -> str:
    """The document held for ``db:NAME``, as it was saved (comments and all). Not checked:
    settings that no longer pass are what a user exports to put right."""
    from plugin.state.store import Store

    name = name_of(config)
    store = Store.open(database_url(), name)
    try:
        document = store.settings_document()
    finally:
        store.close()
    if document is None:
        raise nothing_held(config, name)
    return document.text


def change_stored(
    store: Store,
    change: Callable[[TOMLDocument], None],
    *,
    seen: str | None,
    at: datetime,
) -> Settings:
    """Apply ``change`` to the document held for the store's workspace and save it if the
    result passes and no other change came first. ``seen``: the version the user's page
    showed (None: not checked, the change is made to the newest)."""
    import tomlkit

    where = locator(store.workspace)
    for _attempt in range(3):
        held = store.settings_document()
        if held is None:
            raise nothing_held(where, store.workspace)
        if seen is not None and held.version != seen:
            break
        document = tomlkit.parse(held.text)
        change(document)
        text = tomlkit.dumps(document)
        settings = settings_of_document(store.workspace, text)
        if store.save_settings_document(text, at, seen=held.version) is not None:
            return settings
        if seen is not None:
            break
    raise ChangedMeanwhile(
        f"{where} changed after this page was shown; nothing was saved",
        hint="Look at the page again: it shows the settings as they are now.",
    )

"""Changing a workspace's settings from the web app's settings page: its kindly.toml, or
the document the database holds for it (:mod:`plugin.app.stored_settings`).

The change is made to the file as tomlkit reads it, so the user's comments, order and
layout stay. The result is checked with the same rules and messages as loading the file
(:func:`plugin.app.wiring.load_settings`'s), and only a file that passes is written, in one
step: a temporary file beside it, flushed to disk, renamed over it. A page shows the
file's version; a change made on a page older than the file (someone edited it meanwhile,
in an editor or another tab) is refused rather than undoing theirs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tomllib
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomlkit
from tomlkit.toml_document import TOMLDocument

from plugin.app.stored_settings import ChangedMeanwhile, change_stored, is_stored, nothing_held
from plugin.config.settings import Settings
from plugin.errors import ConfigError

if TYPE_CHECKING:
    from plugin.state.store import Store

__all__ = [
    "ChangedMeanwhile",
    "change_settings",
    "change_settings_file",
    "settings_label",
    "shown_settings",
    "version_of",
]


def settings_label(config: str | Path) -> str:
    """What the page says the settings are saved in: the file's name, or db:NAME."""
    return str(config) if is_stored(config) else Path(config).name


def shown_settings(config: str | Path, store: Store) -> tuple[Settings, str]:
    """The settings a page shows and their version (see :func:`version_of`), from one
    read: a change saved between two reads would otherwise be undone by the page's."""
    from plugin.app.settings_schema import settings_from
    from plugin.app.stored_settings import settings_of_document

    if is_stored(config):
        held = store.settings_document()
        if held is None:
            raise nothing_held(config, store.workspace)
        return settings_of_document(store.workspace, held.text), held.version
    path = Path(config)
    text = path.read_bytes()
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return settings_from(data, path), hashlib.sha256(text).hexdigest()[:32]


def change_settings(
    config: str | Path,
    change: Callable[[TOMLDocument], None],
    *,
    seen: str | None,
    store: Store,
    at: datetime,
) -> Settings:
    """Apply ``change`` where the workspace's settings are: the database's document (a
    conditional save) or the kindly.toml (under the store's lock); see
    :func:`change_settings_file` for what is checked and refused."""
    if is_stored(config):
        return change_stored(store, change, seen=seen, at=at)
    return change_settings_file(
        Path(config), change, seen=seen, lock=store.exclusive("kindly.toml")
    )


def version_of(path: Path) -> str:
    """What a page remembers of the file it showed: a digest of its bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:32]


def change_settings_file(
    path: Path,
    change: Callable[[TOMLDocument], None],
    *,
    seen: str | None,
    lock: AbstractContextManager[Any] | None = None,
) -> Settings:
    """Apply ``change`` to kindly.toml at ``path`` and write it if the result is valid.

    ``seen`` is :func:`version_of` the file as the user saw it (None: not checked).
    ``lock`` is held from reading to writing, so two processes do not each write over the
    other's change (the web app gives the store's lock). Raises ConfigError naming the
    file and field, ChangedMeanwhile, and leaves the file as it was on any error."""
    from plugin.app.settings_schema import settings_from

    with lock or contextlib.nullcontext():
        before = path.read_bytes()
        if seen is not None and hashlib.sha256(before).hexdigest()[:32] != seen:
            raise ChangedMeanwhile(
                f"{path} changed after this page was shown; nothing was saved",
                hint="Look at the page again: it shows the file as it is now.",
            )
        try:
            document = tomlkit.parse(before.decode("utf-8"))
        except (UnicodeDecodeError, tomlkit.exceptions.ParseError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        change(document)
        text = tomlkit.dumps(document)
        # The same rules and messages as loading the file: they name kindly.toml's fields.
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: the change would not be valid TOML: {exc}") from None
        settings = settings_from(data, path)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            with temporary.open("x", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, path.stat().st_mode & 0o777)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        _sync_folder(path.parent)
    return settings


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); where a folder cannot be opened, skip."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)

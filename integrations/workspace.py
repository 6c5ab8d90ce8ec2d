"""What a connector is handed: the workspace it opens in, the part of Kindly's store it may
use, and what `kindly connect` was given.

Kept apart from :mod:`integrations.base` so that :mod:`integrations.oauth`, which base names in
its sign-in hooks, can name these without importing base back.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from plugin.config.settings import Settings

__all__ = ["ConnectRequest", "ConnectorState", "SettingsTransaction", "Workspace"]


class SettingsTransaction(Protocol):
    """Settings read and written while holding a lock (``ConnectorState.exclusive``)."""

    def get_setting(self, scope: str, key: str) -> Any: ...
    def set_setting(self, scope: str, key: str, value: Any, at: datetime) -> None: ...


class ConnectorState(SettingsTransaction, Protocol):
    """The part of Kindly's store a connector may use: its settings (JSON values), its
    tokens, and locks that serialise token refreshes across processes."""

    def delete_setting(self, scope: str, key: str) -> None: ...
    def exclusive(self, name: str) -> typing.ContextManager[SettingsTransaction]: ...
    def mutex(self, name: str) -> typing.ContextManager[None]:
        """Held for a moment, around one call to a platform: one process at a time, among
        every process using the store."""
        ...

    def lease(self, name: str, *, wait: float, doing: str) -> typing.ContextManager[object]:
        """Held across calls to a platform (a transaction must not be): one process at a
        time makes a change of several steps."""
        ...

    @property
    def identity(self) -> str:
        """Names this workspace's store among every Kindly that shares the workers'
        Redis (a limit counted per token is counted per connection of a workspace)."""
        ...


@dataclass(frozen=True)
class Workspace:
    """What the app hands a connector to open or connect it."""

    settings: Settings
    store: ConnectorState
    now: Callable[[], datetime]
    #: With several organisations connected: the one asked for (--org).
    organisation: str | None = None


@dataclass(frozen=True)
class ConnectRequest:
    """What `kindly connect NAME [LOCATION]` was given."""

    location: Path | None = None
    refresh_token: str | None = field(default=None, repr=False)
    #: When the connection counts as made (--at); the tokens keep the real clock.
    at: datetime | None = None
    open_browser: Callable[[str], object] = lambda url: None
    say: Callable[[str], None] = lambda text: None

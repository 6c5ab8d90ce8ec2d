"""The composition root's wiring: which connector stands behind each port of a workspace.

Everything here is driven by the registry (:mod:`integrations.registry`): kindly.toml names
a bookkeeping connector (``connector = NAME``), a calendar (``[calendar] type``) and an SMS
gateway (``[sms] gateway``); each is opened by its own class, from its own section. The
settings schema is Kindly's own, completed with every registered connector's section.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from plugin.app.settings_schema import settings_from, settings_schema
from plugin.config import settings as config

if TYPE_CHECKING:
    from integrations.base import BookkeepingConnector, CalendarConnector, Workspace
    from plugin.config.settings import Settings
    from plugin.ports import LedgerSource, SmsGateway
    from plugin.state.store import Store

__all__ = [
    "connector_of",
    "load_settings",
    "open_calendar",
    "open_settings_and_store",
    "open_sources",
    "open_store",
    "settings_schema",
    "share_connections",
    "sms_gateway_factory",
    "workspace_files",
    "workspace_for",
]


def _now() -> datetime:
    return datetime.now(UTC)


def load_settings(place: str | Path) -> Settings:
    """Read and check a workspace's settings against the whole schema, connectors'
    sections too: its kindly.toml, or for ``db:NAME`` those the database holds."""
    from plugin.app import stored_settings

    if stored_settings.is_stored(place):
        settings, store = stored_settings.open_stored(place, shared=_sharing)
        store.close()
        return settings
    path = Path(place)
    return settings_from(config.read_settings_file(path), path)


def open_settings_and_store(place: str | Path) -> tuple[Settings, Store]:
    """A workspace's settings and its store, opened once."""
    from plugin.app import stored_settings

    if stored_settings.is_stored(place):
        return stored_settings.open_stored(place, shared=_sharing)
    settings = load_settings(place)
    return settings, open_store(settings)


#: Whether this process serves many workspaces (a worker): see share_connections.
_sharing = False


def share_connections() -> None:
    """From now on, the workspaces this process opens share one connection pool per
    database (a worker serving many workspaces of one PostgreSQL database)."""
    global _sharing
    _sharing = True


def workspace_files(paths: Sequence[str]) -> list[str]:
    """Each workspace's settings: a kindly.toml itself, for a folder every
    ``*/kindly.toml`` in it, ``db:NAME`` as it is, and for ``db:`` every workspace whose
    settings the database holds (read at each call: a workspace added is seen at the next)."""
    from plugin.app import stored_settings

    found: dict[str, None] = {}
    for path in paths:
        if path == stored_settings.ALL_STORED:
            stored = stored_settings.stored_locators(shared=_sharing)
            found.update((locator, None) for locator in stored)
            continue
        if stored_settings.is_stored(path):
            found[path] = None
            continue
        configs = sorted(Path(path).glob("*/kindly.toml")) if Path(path).is_dir() else [Path(path)]
        # A workspace named twice (a --config inside a --workspace folder) is one.
        found.update((str(config.resolve()), None) for config in configs)
    return list(found)


def open_store(settings: Settings) -> Store:
    from plugin.state.store import Store

    return Store.open(
        os.environ.get("KINDLY_STORE_URL") or settings.store_url,
        settings.store_workspace,
        shared=_sharing,
    )


def workspace_for(settings: Settings, store: Store, organisation: str | None = None) -> Workspace:
    from integrations.base import Workspace

    return Workspace(settings, store, _now, organisation)


def open_sources(
    settings: Settings, store: Store, organisation: str | None = None
) -> list[BookkeepingConnector]:
    """The accounting system kindly.toml names: one source, or one per organisation."""
    from integrations.base import BookkeepingConnector, ConnectorKind
    from integrations.registry import connector_class

    cls = connector_class(settings.connector, ConnectorKind.BOOKKEEPING)
    assert issubclass(cls, BookkeepingConnector)
    return list(cls.open(workspace_for(settings, store, organisation)))


def open_calendar(settings: Settings, store: Store) -> CalendarConnector | None:
    """The calendar [calendar] names, or None."""
    if settings.calendar is None:
        return None
    from integrations.base import CalendarConnector, ConnectorKind
    from integrations.registry import connector_class

    cls = connector_class(calendar_name(settings) or "", ConnectorKind.CALENDAR)
    assert issubclass(cls, CalendarConnector)
    return cls.open(workspace_for(settings, store))


def calendar_name(settings: Settings) -> str | None:
    """The calendar connector kindly.toml names, or None."""
    from integrations.registry import DEFAULT_CALENDAR

    if settings.calendar is None:
        return None
    return settings.calendar or DEFAULT_CALENDAR


def sms_gateway_factory(settings: Settings, store: Store) -> Callable[[], SmsGateway] | None:
    """Builds the SMS gateway [sms] names when a reminder first needs it (it wants a token)."""
    gateway = settings.sms_gateway
    if gateway is None:
        return None

    def build() -> SmsGateway:
        from integrations.base import ConnectorKind, SmsGatewayConnector
        from integrations.registry import connector_class

        cls = connector_class(gateway, ConnectorKind.SMS)
        assert issubclass(cls, SmsGatewayConnector)
        return cls.open(workspace_for(settings, store))

    return build


def connector_of(source: LedgerSource) -> BookkeepingConnector:
    """The connector behind a workspace's source (the wiring made it, so it is one)."""
    from integrations.base import BookkeepingConnector

    assert isinstance(source, BookkeepingConnector)
    return source

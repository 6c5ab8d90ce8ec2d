"""The composition root's wiring: which connector stands behind each port of a workspace.

Everything here is driven by the registry (:mod:`integrations.registry`): kindly.toml names
a bookkeeping connector (``connector = NAME``), a calendar (``[calendar] type``) and an SMS
gateway (``[sms] gateway``); each is opened by its own class, from its own section. The
settings schema is Kindly's own, completed with every registered connector's section.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def settings_schema(data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Kindly's settings schema with the connectors' sections in it: every registered
    connector's (the manifest's), or with ``data`` only those a kindly.toml uses, so that
    reading settings imports no connector it does not name."""
    from integrations.base import ConnectorKind
    from integrations.registry import DEFAULT_CALENDAR, connector_class, names

    schema = copy.deepcopy(config.core_settings_schema())
    properties = schema["properties"]
    properties["connector"]["enum"] = names(ConnectorKind.BOOKKEEPING)
    for name in names(ConnectorKind.BOOKKEEPING):
        if data is not None and name not in data and data.get("connector", "ledger") != name:
            continue
        cls = connector_class(name)
        section = cls.settings_type.json_schema()
        if cls.webhook is not None:
            # The key is a secret: refused in kindly.toml, with where it goes instead.
            section["properties"]["webhook_key"] = {
                "type": "string",
                "description": f"Not here: set {cls.webhook.key_variable}",
                "maxLength": 0,
            }
        properties[cls.section()] = section
    if data is None or "calendar" in data:
        _shared_section(
            properties,
            "calendar",
            "type",
            ConnectorKind.CALENDAR,
            "Where appointments come from: a CalDAV server (Nextcloud, iCloud, Fastmail, "
            "Radicale; the password only in KINDLY_CALDAV_PASSWORD), Google Calendar or "
            "Outlook (kindly connect google|outlook)",
            default=DEFAULT_CALENDAR,
        )
    if data is None or "sms" in data:
        _shared_section(
            properties,
            "sms",
            "gateway",
            ConnectorKind.SMS,
            "The SMS gateway; its token only in KINDLY_SMS_TOKEN",
        )
    return schema


def _shared_section(
    properties: dict[str, Any],
    section: str,
    selector: str,
    kind: Any,
    description: str,
    default: str | None = None,
) -> None:
    """One table for the connectors of a kind, the one in use named by ``selector``: each
    connector's fields are allowed there, and its required ones required when chosen."""
    from integrations.registry import connector_classes

    classes = connector_classes(kind)
    table = properties.setdefault(
        section, {"type": "object", "additionalProperties": False, "properties": {}}
    )
    if selector == "type":
        table["description"] = description
    fields = table["properties"]
    fields[selector] = {"type": "string", "enum": [cls.name for cls in classes]}
    if selector != "type":
        fields[selector]["description"] = description
    branches = []
    for cls in classes:
        own = cls.settings_type.json_schema()
        for name, field_schema in own["properties"].items():
            fields.setdefault(name, field_schema)
        if own.get("required"):
            chosen: dict[str, Any] = {"properties": {selector: {"const": cls.name}}}
            if cls.name != default:
                chosen["required"] = [selector]
            branches.append({"if": chosen, "then": {"required": own["required"]}})
    if branches:
        table["allOf"] = branches


def load_settings(path: Path) -> Settings:
    """Read and check a kindly.toml against the whole schema, connectors' sections too."""
    return settings_from(config.read_settings_file(path), path)


def settings_from(data: Mapping[str, Any], path: Path) -> Settings:
    """Settings from kindly.toml's data, checked as :func:`load_settings` checks the file."""
    settings = config.parse_settings(data, source=path.resolve(), schema=settings_schema(data))
    if settings.templates is not None:
        from plugin.compose.render import check_overrides

        check_overrides(settings)
    return settings


#: Whether this process serves many workspaces (a worker): see share_connections.
_sharing = False


def share_connections() -> None:
    """From now on, the workspaces this process opens share one connection pool per
    database (a worker serving many workspaces of one PostgreSQL database)."""
    global _sharing
    _sharing = True


def workspace_files(paths: Sequence[str]) -> list[str]:
    """The kindly.toml of each workspace: a path itself, or for a folder every
    ``*/kindly.toml`` in it (read at each call: a workspace added is seen at the next)."""
    found: dict[str, None] = {}
    for path in map(Path, paths):
        configs = sorted(path.glob("*/kindly.toml")) if path.is_dir() else [path]
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

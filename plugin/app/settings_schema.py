"""Kindly's settings schema, completed with every registered connector's section, and
settings checked against it: what a kindly.toml says, or a document the database holds
(:mod:`plugin.app.stored_settings`), by the same rules and messages.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plugin.config import settings as config

if TYPE_CHECKING:
    from plugin.config.settings import Settings

__all__ = ["settings_from", "settings_schema"]


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


def settings_from(data: Mapping[str, Any], path: Path, origin: str | None = None) -> Settings:
    """Settings from kindly.toml's data, checked as :func:`load_settings` checks the file;
    ``origin``: what messages name where the settings are not the file at ``path``."""
    settings = config.parse_settings(
        data, source=path.resolve(), schema=settings_schema(data), origin=origin
    )
    if settings.templates is not None:
        from plugin.compose.render import check_overrides

        check_overrides(settings)
    return settings

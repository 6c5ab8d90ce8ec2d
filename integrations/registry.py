"""Every connector Kindly has, by name; the app builds what kindly.toml names from here.

Entries are "module:Class" strings, imported only when used, so `kindly --help` loads no
connector. A connector written elsewhere (a test, another package) joins with one line:
``register(MyConnector)``.
"""

from __future__ import annotations

import importlib

from integrations.base import Connector, ConnectorKind
from plugin.errors import ConfigError

__all__ = ["CONNECTORS", "connector_class", "connector_classes", "names", "register"]

#: name -> (kind, "module:Class").
CONNECTORS: dict[str, tuple[ConnectorKind, str]] = {
    "ledger": (ConnectorKind.BOOKKEEPING, "integrations.bookkeeping.ledger:LocalLedger"),
    "xero": (ConnectorKind.BOOKKEEPING, "integrations.bookkeeping.xero:XeroConnector"),
    "quickbooks": (
        ConnectorKind.BOOKKEEPING,
        "integrations.bookkeeping.quickbooks:QuickBooksConnector",
    ),
    "exactonline": (
        ConnectorKind.BOOKKEEPING,
        "integrations.bookkeeping.exact:ExactOnlineConnector",
    ),
    "moneybird": (
        ConnectorKind.BOOKKEEPING,
        "integrations.bookkeeping.moneybird:MoneybirdConnector",
    ),
    "fiken": (ConnectorKind.BOOKKEEPING, "integrations.bookkeeping.fiken:FikenConnector"),
    "pennylane": (
        ConnectorKind.BOOKKEEPING,
        "integrations.bookkeeping.pennylane:PennylaneConnector",
    ),
    "caldav": (ConnectorKind.CALENDAR, "integrations.calendars.caldav:CalDAVCalendar"),
    "google": (ConnectorKind.CALENDAR, "integrations.calendars.google:GoogleCalendar"),
    "outlook": (ConnectorKind.CALENDAR, "integrations.calendars.outlook:OutlookCalendar"),
    "twilio": (ConnectorKind.SMS, "integrations.sms.gateways:TwilioGateway"),
    "messagebird": (ConnectorKind.SMS, "integrations.sms.gateways:MessageBirdGateway"),
}
_registered: dict[str, type[Connector]] = {}
_replaced: dict[str, tuple[ConnectorKind, str]] = {}
#: The calendar a [calendar] section without a type means.
DEFAULT_CALENDAR = "caldav"


def register(cls: type[Connector]) -> type[Connector]:
    """Add a connector class (usable as a decorator); one of the same name is replaced
    until :func:`unregister`."""
    if cls.name in CONNECTORS and cls.name not in _replaced:
        _replaced[cls.name] = CONNECTORS[cls.name]
    CONNECTORS[cls.name] = (cls.kind, f"{cls.__module__}:{cls.__qualname__}")
    _registered[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a connector added with :func:`register` (tests clean up with it), and give
    back the one it replaced, if any."""
    _registered.pop(name, None)
    if name in _replaced:
        # In its old place: the manifest lists connectors in the registry's order.
        CONNECTORS[name] = _replaced.pop(name)
    else:
        CONNECTORS.pop(name, None)


def names(kind: ConnectorKind | None = None) -> list[str]:
    return [name for name, (k, _) in CONNECTORS.items() if kind is None or k is kind]


def connector_class(name: str, kind: ConnectorKind | None = None) -> type[Connector]:
    """The class of connector ``name``; ConfigError naming the known ones if there is none."""
    entry = CONNECTORS.get(name)
    if entry is None or (kind is not None and entry[0] is not kind):
        known = ", ".join(names(kind))
        what = f"{kind} connector" if kind else "connector"
        raise ConfigError(f"unknown {what} {name!r}; Kindly knows: {known}")
    if name in _registered:
        return _registered[name]
    module_name, class_name = entry[1].split(":")
    cls: type[Connector] = getattr(importlib.import_module(module_name), class_name)
    return cls


def connector_classes(kind: ConnectorKind | None = None) -> list[type[Connector]]:
    return [connector_class(name) for name in names(kind)]

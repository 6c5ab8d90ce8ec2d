"""Connector names mapped to their classes, imported only when used."""

from __future__ import annotations

import importlib

from integrations.base import BookkeepingConnector
from plugin.errors import ConfigError

__all__ = ["BOOKKEEPING_CONNECTORS", "bookkeeping_connector_class"]

#: name -> "module:Class". Kept as strings so `kindly --help` imports no connector.
BOOKKEEPING_CONNECTORS: dict[str, str] = {
    "ledger": "integrations.bookkeeping.ledger:LocalLedger",
    "xero": "integrations.bookkeeping.xero:XeroConnector",
}


def bookkeeping_connector_class(name: str) -> type[BookkeepingConnector]:
    try:
        target = BOOKKEEPING_CONNECTORS[name]
    except KeyError:
        known = ", ".join(sorted(BOOKKEEPING_CONNECTORS))
        raise ConfigError(f"unknown connector {name!r}; Kindly knows: {known}") from None
    module_name, class_name = target.split(":")
    cls: type[BookkeepingConnector] = getattr(importlib.import_module(module_name), class_name)
    return cls

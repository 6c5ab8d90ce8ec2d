"""Turn the core's frozen dataclasses into JSON-ready values and back, losslessly.

The store keeps synced records as JSON; this module is the one place that knows how
Money, dates, enums and nested records look there. Decoding is driven by the dataclass's
own type hints, so a new field needs no codec change.

    >>> from plugin.core.money import Money
    >>> to_jsonable(Money.of("12.5", "EUR"))
    {'amount': '12.50', 'currency': 'EUR'}
    >>> from_jsonable(Money, {'amount': '12.50', 'currency': 'EUR'})
    Money('12.50', 'EUR')
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

from plugin.core.money import Money

__all__ = ["from_jsonable", "strings_in", "to_jsonable"]

T = TypeVar("T")


def strings_in(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every text in decoded JSON or TOML, with its dotted path ("attendees.0.email")."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from strings_in(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings_in(item, f"{path}.{index}")


def to_jsonable(value: Any) -> Any:
    """A value made only of dict, list, str, int, bool and None."""
    if value is None or (isinstance(value, bool | int | str) and not isinstance(value, enum.Enum)):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, frozenset):
        return sorted(to_jsonable(item) for item in value)
    if isinstance(value, tuple | list):
        return [to_jsonable(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot encode {type(value).__name__}")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_jsonable(kind: type[T], data: Any) -> T:
    """Rebuild a value of ``kind`` from what :func:`to_jsonable` made."""
    return typing.cast(T, _decode(kind, data))


def _decode(kind: Any, data: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        if data is None:
            return None
        if len(options) != 1:
            raise TypeError(f"cannot decode the union {kind}")
        return _decode(options[0], data)
    if origin is typing.Literal:
        if data not in typing.get_args(kind):
            raise TypeError(f"{data!r} is not one of {typing.get_args(kind)}")
        return data
    if origin is tuple:
        (item_kind, _ellipsis) = typing.get_args(kind)
        return tuple(_decode(item_kind, item) for item in data)
    if origin in (dict, Mapping):
        key_kind, value_kind = typing.get_args(kind)
        return {_decode(key_kind, key): _decode(value_kind, item) for key, item in data.items()}
    if origin is frozenset:
        (item_kind,) = typing.get_args(kind)
        return frozenset(_decode(item_kind, item) for item in data)
    if kind is Money:
        return Money.of(data["amount"], data["currency"])
    if kind is Decimal:
        return Decimal(data)
    if kind is datetime:
        return datetime.fromisoformat(data)
    if kind is date:
        return date.fromisoformat(data)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(data)
    if kind in (str, int, bool):
        if not isinstance(data, kind):
            raise TypeError(f"expected {kind.__name__}, got {type(data).__name__}")
        return data
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        names = [f.name for f in dataclasses.fields(kind) if f.init]
        return kind(**{name: _decode(hints[name], data[name]) for name in names if name in data})
    raise TypeError(f"cannot decode {kind}")

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
from collections.abc import Callable, Iterator, Mapping
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
    cls: Any = type(value)  # typeshed does not count a class as Hashable for the cache
    return _encoder(cls)(value)


# The way to encode or decode each type is worked out once per type: a sync of 100,000
# records otherwise asked every value for its type a dozen times over (most of the time it
# took to store them).


@cache
def _encoder(cls: Any) -> Callable[[Any], Any]:
    if issubclass(cls, enum.Enum):
        return _enum_value
    if cls is type(None) or issubclass(cls, bool | int | str):
        return _same
    if cls is Money:
        return _money
    if issubclass(cls, Decimal):
        return str
    if issubclass(cls, datetime | date):
        return _isoformat
    if issubclass(cls, frozenset):
        return _sorted_items
    if issubclass(cls, tuple | list):
        return _items
    if issubclass(cls, Mapping):
        return _mapping
    if dataclasses.is_dataclass(cls):
        return _record_encoder(cls)
    return _unencodable


def _record_encoder(cls: Any) -> Callable[[Any], Any]:
    # A field declared as text, a number or a flag (or None) is JSON as it is: asking each
    # such value for its type was most of the work for a record.
    hints = _hints(cls)
    fields = tuple(
        (field.name, _is_plain(hints.get(field.name))) for field in dataclasses.fields(cls)
    )

    def encode(value: Any) -> dict[str, Any]:
        return {
            name: getattr(value, name) if plain else to_jsonable(getattr(value, name))
            for name, plain in fields
        }

    return encode


_PLAIN = (str, int, bool, type(None))


def _is_plain(hint: Any) -> bool:
    if hint in _PLAIN:
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return all(type(arg) in _PLAIN for arg in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return all(_is_plain(arg) for arg in typing.get_args(hint))
    return False


def _same(value: Any) -> Any:
    return value


def _enum_value(value: enum.Enum) -> Any:
    return value.value


def _money(value: Money) -> dict[str, str]:
    return {"amount": str(value.amount), "currency": value.currency}


def _isoformat(value: date) -> str:
    return value.isoformat()


def _sorted_items(value: frozenset[Any]) -> list[Any]:
    return sorted(to_jsonable(item) for item in value)


def _items(value: tuple[Any, ...] | list[Any]) -> list[Any]:
    return [to_jsonable(item) for item in value]


def _mapping(value: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(key): to_jsonable(item) for key, item in value.items()}


def _unencodable(value: Any) -> Any:
    raise TypeError(f"cannot encode {type(value).__name__}")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_jsonable(kind: type[T], data: Any) -> T:
    """Rebuild a value of ``kind`` from what :func:`to_jsonable` made."""
    key: Any = kind  # as in to_jsonable
    return typing.cast(T, _decoder(key)(data))


@cache
def _decoder(kind: Any) -> Callable[[Any], Any]:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        if len(options) != 1:
            return _refusing(f"cannot decode the union {kind}")
        option = _decoder(options[0])
        return lambda data: None if data is None else option(data)
    if origin is typing.Literal:
        allowed = typing.get_args(kind)
        return lambda data: (
            data if data in allowed else _refuse(f"{data!r} is not one of {allowed}")
        )
    if origin is tuple:
        (item_kind, _ellipsis) = typing.get_args(kind)
        item = _decoder(item_kind)
        return lambda data: tuple(map(item, data))
    if origin in (dict, Mapping):
        key_kind, value_kind = typing.get_args(kind)
        key, value = _decoder(key_kind), _decoder(value_kind)
        return lambda data: {key(k): value(v) for k, v in data.items()}
    if origin is frozenset:
        (item_kind,) = typing.get_args(kind)
        item = _decoder(item_kind)
        return lambda data: frozenset(map(item, data))
    if kind is Money:
        return lambda data: Money.of(data["amount"], data["currency"])
    if kind is Decimal:
        return Decimal
    if kind is datetime:
        return datetime.fromisoformat
    if kind is date:
        return date.fromisoformat
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind
    if kind in (str, int, bool):
        return lambda data: (
            data
            if isinstance(data, kind)
            else _refuse(f"expected {kind.__name__}, got {type(data).__name__}")
        )
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _record_decoder(kind)
    return _refusing(f"cannot decode {kind}")


def _record_decoder(kind: type) -> Callable[[Any], Any]:
    hints = _hints(kind)
    fields = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(kind) if f.init]

    def decode(data: Any) -> Any:
        return kind(**{name: field(data[name]) for name, field in fields if name in data})

    return decode


def _refuse(message: str) -> Any:
    raise TypeError(message)


def _refusing(message: str) -> Callable[[Any], Any]:
    return lambda data: _refuse(message)

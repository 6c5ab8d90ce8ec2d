"""Webhooks from accounting platforms: verify the signature, and only then read the body.

A connector gives :func:`receive` its platform's two halves, a ``verify`` that checks the
signature of the raw body and a ``parse`` that turns the body into events
(:class:`WebhookEvent`), so the order cannot be got wrong: a body whose signature does
not match is never parsed, and raises :class:`WebhookRejected` (a 401 for the platform).

    >>> import base64, hashlib, hmac
    >>> body = b'{"events": [{"eventCategory": "INVOICE", "resourceId": "I1", "tenantId": "T1"}]}'
    >>> signature = base64.b64encode(hmac.new(b"key", body, hashlib.sha256).digest()).decode()
    >>> def verify(body, headers, key):
    ...     return hmac_sha256_base64_matches(body, headers.get("X-Xero-Signature"), key)
    >>> def parse(body):
    ...     return events_from_json(body, under="events", kind="eventCategory",
    ...                             record_id="resourceId", tenant="tenantId")
    >>> [event.record_id for event in receive(body, {"x-xero-signature": signature}, "key",
    ...                                       verify=verify, parse=parse)]
    ['I1']

Signatures are compared in constant time, as bytes: a header with more than ASCII in it
is a wrong signature, not an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "WebhookEvent",
    "WebhookRejected",
    "events_from_json",
    "hmac_sha256_base64_matches",
    "hmac_sha256_hex_matches",
    "receive",
]


class WebhookRejected(Exception):
    """The webhook's signature does not match: it is not from the platform."""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One change a webhook announces: what kind of record, which one, in which
    organisation (None when the platform does not say)."""

    kind: str
    record_id: str
    tenant: str | None
    #: The event as the platform sent it, for what the common fields leave out.
    raw: Mapping[str, Any] = field(repr=False)


def hmac_sha256_base64_matches(body: bytes, signature: str | None, key: str) -> bool:
    """Whether ``signature`` is base64(HMAC-SHA256(body, key)): Xero and QuickBooks."""
    if not signature or not key:
        return False
    expected = base64.b64encode(_hmac_sha256(key, body))
    return hmac.compare_digest(expected, _as_bytes(signature.strip()))


def hmac_sha256_hex_matches(body: bytes, signature: str | None, key: str) -> bool:
    """Whether ``signature`` is hex(HMAC-SHA256(body, key)), in either case: Exact Online
    sends it in capitals, Moneybird (over ``f"{t}.".encode() + body``) in small letters."""
    if not signature or not key:
        return False
    expected = _hmac_sha256(key, body).hex().encode("ascii")
    return hmac.compare_digest(expected, _as_bytes(signature.strip().lower()))


def receive(
    body: bytes,
    headers: Mapping[str, str],
    key: str,
    *,
    verify: Callable[[bytes, Mapping[str, str], str], bool],
    parse: Callable[[bytes], Iterable[WebhookEvent]],
) -> list[WebhookEvent]:
    """The events of a webhook whose signature ``verify`` accepts.

    ``verify`` gets the raw body, the headers (looked up in any case) and the key;
    ``parse`` is called only after it said yes. Raises :class:`WebhookRejected` when it
    said no.
    """
    if not verify(body, _Headers(headers), key):
        raise WebhookRejected("the webhook's signature does not match")
    return list(parse(body))


def events_from_json(
    body: bytes,
    *,
    under: str | None,
    kind: str,
    record_id: str,
    tenant: str | None = None,
) -> list[WebhookEvent]:
    """The events of a JSON body, by the names of their fields.

    The events are the list under ``under`` (Xero: ``"events"``), or with ``under=None``
    the body itself: a list of events (QuickBooks' CloudEvents) or one event (Moneybird).
    An entry without a kind or a record id names nothing to sync and is left out, and a
    body that is not JSON gives no events: it was signed, so it is the platform's, and
    answering with an error would only make it send the same body again.
    """
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return []
    if under is not None:
        data = data.get(under) if isinstance(data, Mapping) else None
    entries = data if isinstance(data, list) else [data]
    events = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        event_kind, event_record = _text(entry.get(kind)), _text(entry.get(record_id))
        if event_kind is None or event_record is None:
            continue
        organisation = _text(entry.get(tenant)) if tenant is not None else None
        events.append(WebhookEvent(event_kind, event_record, organisation, entry))
    return events


class _Headers(Mapping[str, str]):
    """Request headers, whatever case the server or the platform wrote their names in."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._by_name = {name.lower(): value for name, value in headers.items()}

    def __getitem__(self, name: str) -> str:
        return self._by_name[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


def _hmac_sha256(key: str, body: bytes) -> bytes:
    return hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()


def _as_bytes(text: str) -> bytes:
    # compare_digest refuses a str with more than ASCII; as bytes it is a mismatch.
    return text.encode("utf-8", "replace")


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None

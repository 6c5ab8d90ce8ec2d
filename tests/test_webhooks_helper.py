"""Webhook signatures, and receive(): verified first, parsed only then."""

from __future__ import annotations

import base64
import doctest
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import pytest

import integrations.webhooks
from integrations.webhooks import (
    WebhookEvent,
    WebhookRejected,
    events_from_json,
    hmac_sha256_base64_matches,
    hmac_sha256_hex_matches,
    receive,
)

KEY = "webhook-key-from-the-developer-portal"
XERO_BODY = json.dumps(
    {
        "events": [
            {
                "resourceUrl": "https://api.xero.com/api.xro/2.0/Invoices/I1",
                "resourceId": "I1",
                "eventDateUtc": "2026-11-22T10:00:00.000",
                "eventType": "UPDATE",
                "eventCategory": "INVOICE",
                "tenantId": "T1",
                "tenantType": "ORGANISATION",
            },
            {
                "resourceId": "CN1",
                "eventCategory": "CREDITNOTE",
                "tenantId": "T2",
                "data": {"Type": "ACCRECCREDIT", "Status": "AUTHORISED"},
            },
        ],
        "firstEventSequence": 1,
        "lastEventSequence": 2,
        "entropy": "S0m3r4Nd0mt3xt",
    }
).encode()

# RFC 4231, test case 2: HMAC-SHA256 worked out by someone other than us.
RFC_KEY = "Jefe"
RFC_BODY = b"what do ya want for nothing?"
RFC_HEX = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def base64_signature(body: bytes, key: str = KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def xero_verify(body: bytes, headers: Mapping[str, str], key: str) -> bool:
    return hmac_sha256_base64_matches(body, headers.get("x-xero-signature"), key)


def xero_parse(body: bytes) -> list[WebhookEvent]:
    return events_from_json(
        body, under="events", kind="eventCategory", record_id="resourceId", tenant="tenantId"
    )


class CountingParse:
    """A parse that remembers every body it was given."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, body: bytes) -> list[WebhookEvent]:
        self.bodies.append(body)
        return xero_parse(body)


def test_the_worked_example_in_the_docstring_holds() -> None:
    result = doctest.testmod(integrations.webhooks)
    assert result.attempted >= 4 and result.failed == 0


# -- signatures --------------------------------------------------------------------------


def test_a_published_hmac_sha256_vector_matches_in_hex_and_in_base64() -> None:
    assert hmac_sha256_hex_matches(RFC_BODY, RFC_HEX, RFC_KEY)
    as_base64 = base64.b64encode(bytes.fromhex(RFC_HEX)).decode()
    assert hmac_sha256_base64_matches(RFC_BODY, as_base64, RFC_KEY)


def test_hex_matches_in_capitals_too_as_exact_online_sends_it() -> None:
    assert hmac_sha256_hex_matches(RFC_BODY, RFC_HEX.upper(), RFC_KEY)


def test_the_right_signature_is_accepted_with_blank_space_around_it() -> None:
    assert hmac_sha256_base64_matches(XERO_BODY, base64_signature(XERO_BODY), KEY)
    assert hmac_sha256_base64_matches(XERO_BODY, f" {base64_signature(XERO_BODY)}\r\n", KEY)


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "   ",
        base64_signature(XERO_BODY, "another key"),
        base64_signature(XERO_BODY + b" "),
        base64_signature(XERO_BODY)[:-2],
        base64_signature(XERO_BODY).lower(),
        RFC_HEX,
        "é" + base64_signature(XERO_BODY)[1:],
        "\ud800" * 44,
    ],
)
def test_a_wrong_or_absent_base64_signature_is_refused(signature: str | None) -> None:
    assert not hmac_sha256_base64_matches(XERO_BODY, signature, KEY)


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        RFC_HEX[:-1] + "0",
        RFC_HEX[:-2],
        base64.b64encode(bytes.fromhex(RFC_HEX)).decode(),
        "ü" * 64,
        RFC_HEX[:-1] + "ß",
    ],
)
def test_a_wrong_or_absent_hex_signature_is_refused(signature: str | None) -> None:
    assert not hmac_sha256_hex_matches(RFC_BODY, signature, RFC_KEY)


def test_without_a_key_nothing_matches() -> None:
    # An HMAC under the empty key is easy to forge: an unset key must refuse everything.
    empty_key_base64 = base64_signature(XERO_BODY, "")
    assert not hmac_sha256_base64_matches(XERO_BODY, empty_key_base64, "")
    empty_key_hex = hmac.new(b"", RFC_BODY, hashlib.sha256).hexdigest()
    assert not hmac_sha256_hex_matches(RFC_BODY, empty_key_hex, "")


# -- receive: verify, then parse ---------------------------------------------------------


@pytest.mark.parametrize("name", ["x-xero-signature", "X-Xero-Signature", "X-XERO-SIGNATURE"])
def test_a_signed_webhook_is_parsed_whatever_case_its_header_names_are_in(name: str) -> None:
    parse = CountingParse()
    events = receive(
        XERO_BODY, {name: base64_signature(XERO_BODY)}, KEY, verify=xero_verify, parse=parse
    )
    assert [(e.kind, e.record_id, e.tenant) for e in events] == [
        ("INVOICE", "I1", "T1"),
        ("CREDITNOTE", "CN1", "T2"),
    ]
    assert parse.bodies == [XERO_BODY]


def test_verify_sees_the_headers_in_any_case_it_asks_for_them() -> None:
    seen: list[str | None] = []

    def verify(body: bytes, headers: Mapping[str, str], key: str) -> bool:
        seen.extend([headers.get("Intuit-Signature"), headers.get("intuit-signature")])
        seen.append("present" if "INTUIT-SIGNATURE" in headers else "absent")
        return True

    receive(b"[]", {"intuit-SIGNATURE": "sig"}, KEY, verify=verify, parse=lambda body: [])
    assert seen == ["sig", "sig", "present"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-xero-signature": ""},
        {"x-xero-signature": base64_signature(XERO_BODY, "not the key")},
        {"x-xero-signature": "ÿ" * 44},
        {"x-other-signature": base64_signature(XERO_BODY)},
    ],
)
def test_an_unsigned_or_wrongly_signed_webhook_is_rejected_and_never_parsed(
    headers: dict[str, str],
) -> None:
    parse = CountingParse()
    with pytest.raises(WebhookRejected, match="signature does not match"):
        receive(XERO_BODY, headers, KEY, verify=xero_verify, parse=parse)
    assert parse.bodies == []


def test_the_body_is_checked_as_it_arrived_not_as_parsed() -> None:
    # The same JSON with other spacing is another body, and so another signature.
    reformatted = json.dumps(json.loads(XERO_BODY), indent=2).encode()
    parse = CountingParse()
    with pytest.raises(WebhookRejected):
        receive(
            reformatted,
            {"x-xero-signature": base64_signature(XERO_BODY)},
            KEY,
            verify=xero_verify,
            parse=parse,
        )
    assert parse.bodies == []


def test_events_keep_the_platforms_own_payload() -> None:
    events = receive(
        XERO_BODY,
        {"x-xero-signature": base64_signature(XERO_BODY)},
        KEY,
        verify=xero_verify,
        parse=xero_parse,
    )
    sent = json.loads(XERO_BODY)["events"]
    assert [dict(event.raw) for event in events] == sent
    assert events[1].raw["data"] == {"Type": "ACCRECCREDIT", "Status": "AUTHORISED"}
    assert "raw" not in repr(events[0])


# -- events from JSON --------------------------------------------------------------------


def test_quickbooks_cloud_events_are_a_list_at_the_top() -> None:
    body = json.dumps(
        [
            {
                "specversion": "1.0",
                "id": "e1",
                "type": "qbo.invoice.updated.v1",
                "intuitentityid": "145",
                "intuitaccountid": "9341",
                "data": {},
            }
        ]
    ).encode()
    events = events_from_json(
        body, under=None, kind="type", record_id="intuitentityid", tenant="intuitaccountid"
    )
    assert [(e.kind, e.record_id, e.tenant) for e in events] == [
        ("qbo.invoice.updated.v1", "145", "9341")
    ]


def test_a_moneybird_webhook_is_one_event() -> None:
    body = json.dumps(
        {
            "administration_id": 123,
            "entity_type": "SalesInvoice",
            "entity_id": "456",
            "action": "sales_invoice_state_changed_to_paid",
            "entity": {"id": "456", "state": "paid"},
        }
    ).encode()
    (event,) = events_from_json(
        body, under=None, kind="entity_type", record_id="entity_id", tenant="administration_id"
    )
    assert (event.kind, event.record_id, event.tenant) == ("SalesInvoice", "456", "123")
    assert event.raw["entity"] == {"id": "456", "state": "paid"}


def test_without_a_tenant_field_the_tenant_is_none() -> None:
    (event,) = events_from_json(b'{"kind": "x", "id": 7}', under=None, kind="kind", record_id="id")
    assert (event.kind, event.record_id, event.tenant) == ("x", "7", None)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"null",
        b"[]",
        b'{"events": null}',
        b'{"events": "INVOICE"}',
        b'{"events": [1, "two", null]}',
        b'{"events": [{"eventCategory": "INVOICE"}]}',
        b'{"events": [{"resourceId": "I1"}]}',
        b'{"events": [{"eventCategory": "INVOICE", "resourceId": ""}]}',
        b'{"events": [{"eventCategory": "INVOICE", "resourceId": {"id": "I1"}}]}',
        b'[{"events": []}]',
    ],
)
def test_a_body_that_names_no_record_gives_no_events(body: bytes) -> None:
    assert xero_parse(body) == []


def test_an_intent_to_receive_body_gives_no_events() -> None:
    body = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"X"}'
    assert (
        receive(
            body,
            {"x-xero-signature": base64_signature(body)},
            KEY,
            verify=xero_verify,
            parse=xero_parse,
        )
        == []
    )


def test_a_webhook_event_is_a_value() -> None:
    raw: dict[str, Any] = {"resourceId": "I1"}
    assert WebhookEvent("INVOICE", "I1", None, raw) == WebhookEvent("INVOICE", "I1", None, raw)
    with pytest.raises(AttributeError):
        WebhookEvent("INVOICE", "I1", None, raw).kind = "CONTACT"  # type: ignore[misc]

"""Contract suites a connector's own test file generates for itself, Singer-style
(``singer_sdk.testing.get_tap_test_class``)::

    from tests.contract import bookkeeping_contract, http_contract

    TestXeroContract = bookkeeping_contract(xero_harness)
    TestXeroHttp = http_contract(xero_http_harness)

Each generator takes a harness factory (:func:`harness_factory`: the connector class and a
generator that starts the fake platform and yields a harness) and returns a test class.
Cases the connector cannot support by its ``capabilities`` are skipped with a reason that
names the capability; what it lacks beyond them (paging, retries within a run, idempotent
note writes) its factory says in ``lacks``.

- :func:`bookkeeping_contract`: snapshot, fresh reads, notes, repr; incremental sync with
  bookmarks (INCREMENTAL); webhook signatures and records (WEBHOOKS).
- :func:`http_contract`: paging, 429, 5xx, 4xx, 401 and 403, network failures, secrets.
- :func:`calendar_contract`: the window, incremental sync, expired sync state, the horizon.
- :func:`sms_gateway_contract`: sent, refused, temporary, unconfirmed, wrong token.
"""

from .bookkeeping import bookkeeping_contract
from .calendars import calendar_contract
from .harness import (
    BookkeepingHarness,
    CalendarHarness,
    EventSpec,
    FakeTime,
    Guest,
    HarnessFactory,
    HttpHarness,
    SmsGatewayHarness,
    harness_factory,
)
from .http import http_contract
from .sms import sms_gateway_contract

__all__ = [
    "BookkeepingHarness",
    "CalendarHarness",
    "EventSpec",
    "FakeTime",
    "Guest",
    "HarnessFactory",
    "HttpHarness",
    "SmsGatewayHarness",
    "bookkeeping_contract",
    "calendar_contract",
    "harness_factory",
    "http_contract",
    "sms_gateway_contract",
]

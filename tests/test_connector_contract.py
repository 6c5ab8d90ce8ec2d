"""The contract every connector passes; a new platform adds its harness to the lists below.

Two suites:

- **Every connector** (the local ledger too): a snapshot that holds together, fresh reads
  of named invoices, notes written once and found again, no secret in a repr.
- **Every HTTP connector** (Xero, Google Calendar, Outlook), against its fake on loopback:
  paging to the end, a 429 then success (waiting as ``Retry-After`` says), 5xx retried
  then given up, a 401 then one refresh, every kind of network failure sorted as
  retriable, and no token in any repr, error or log line.

The network failures come from a real socket that misbehaves on purpose: it refuses,
hangs up, stalls, or cuts an answer short.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from integrations.base import BookkeepingConnector
from integrations.bookkeeping.ledger import LocalLedger
from integrations.http import AuthError, FatalError, HttpClient, RetriableError
from plugin.core.model import Note
from tests.fakes.xero import FakeXero, Fault
from tests.xero_harness import FakeTime, connect_to_fake, seed_small_ledger

# -- harnesses ------------------------------------------------------------------------------


@dataclass
class HttpHarness:
    """One HTTP connector on its fake platform, in terms the contract can drive."""

    connector: Any
    time: FakeTime
    seed: Callable[[int], None]
    fail_list_call: Callable[[int, dict[str, str], int], None]
    revoke_access: Callable[[], None]
    refreshes: Callable[[], int]
    list_calls: Callable[[], int]
    point_at: Callable[[str], None]
    secrets: Callable[[], list[str]]
    page_size: int
    #: Read everything the connector reads in a sync; how many records came back.
    read: Callable[[], int]


def xero_harness(folder: Path) -> Iterator[HttpHarness]:
    fake = FakeXero()
    fake.start()
    xero = connect_to_fake(fake, folder)
    contact = fake.add_contact("Paging Client")

    def seed(count: int) -> None:
        for n in range(count):
            fake.add_invoice(
                contact, f"P-{n:05d}", "10.00", issued=date(2026, 6, 1), due=date(2026, 7, 1)
            )

    def fail(status: int, headers: dict[str, str], times: int) -> None:
        body = {"Title": "Error", "Detail": "injected"}
        fake.fail_next("/api.xro/2.0/Contacts", *[Fault(status, headers, body)] * times)

    def point_at(url: str) -> None:
        xero.connector.settings = replace(xero.connector.settings, api_url=url)

    def secrets() -> list[str]:
        token = xero.vault.load()
        assert token is not None
        return [token.access_token, token.refresh_token]

    yield HttpHarness(
        connector=xero.connector,
        time=xero.time,
        seed=seed,
        fail_list_call=fail,
        revoke_access=fake.expire_access_tokens,
        refreshes=lambda: fake.refreshes,
        list_calls=lambda: fake.calls["GET /api.xro/2.0/Invoices"],
        point_at=point_at,
        secrets=secrets,
        page_size=1000,
        read=lambda: len(xero.connector.read_snapshot().invoices),
    )
    xero.store.close()
    fake.stop()


def _calendar_harness(folder: Path, kind: str) -> Iterator[HttpHarness]:
    from cryptography.fernet import Fernet

    from integrations.calendars.google import GoogleCalendar, GoogleCalendarSettings
    from integrations.calendars.outlook import OutlookCalendar, OutlookCalendarSettings
    from integrations.oauth import Token, TokenVault
    from plugin.state.store import Store
    from tests.fakes.google_calendar import FakeGoogleCalendar
    from tests.fakes.graph_calendar import FakeGraphCalendar

    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    fake: Any = FakeGoogleCalendar() if kind == "google" else FakeGraphCalendar()
    fake.page_size = 3
    fake.start()
    store = Store.open(f"sqlite:///{folder / 'state.sqlite3'}")
    vault = TokenVault(store, kind, Fernet.generate_key(), clock=lambda: now)
    vault.save(Token(fake.access_token, f"{kind}-refresh", now + timedelta(hours=1)))
    renewed: list[str] = []

    def renew(token: Token) -> Token:
        renewed.append(token.refresh_token)
        return Token(fake.access_token, token.refresh_token, now + timedelta(hours=1))

    time = FakeTime()
    calendar: Any
    if kind == "google":
        calendar = GoogleCalendar(
            GoogleCalendarSettings(api_url=fake.url), vault, renew, sleep=time.sleep
        )
    else:
        calendar = OutlookCalendar(
            OutlookCalendarSettings(api_url=fake.url), vault, renew, sleep=time.sleep
        )
    count = {"n": 0}

    def seed(number: int) -> None:
        for _ in range(number):
            count["n"] += 1
            start = now + timedelta(days=1, minutes=count["n"])
            stamp = {"dateTime": start.isoformat(), "timeZone": "UTC"}
            end = {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "UTC"}
            if kind == "outlook":
                stamp["dateTime"] = stamp["dateTime"][:19]
                end["dateTime"] = end["dateTime"][:19]
            fake.put(
                {
                    "id": f"ev{count['n']}",
                    "subject": "x",
                    "summary": "x",
                    "start": stamp,
                    "end": end,
                }
            )

    def point_at(url: str) -> None:
        calendar.settings = replace(calendar.settings, api_url=url)

    def revoke() -> None:
        fake.access_token = "a-new-access-token"

    before = len(fake.calls) if kind == "google" else 0

    yield HttpHarness(
        connector=calendar,
        time=time,
        seed=seed,
        fail_list_call=lambda status, headers, times: fake.faults.extend(
            [(status, headers)] * times
        ),
        revoke_access=revoke,
        refreshes=lambda: len(renewed),
        list_calls=lambda: (len(fake.calls) - before) if kind == "google" else fake.calls,
        point_at=point_at,
        secrets=lambda: [fake.access_token, f"{kind}-refresh"],
        page_size=3,
        read=lambda: len(calendar.appointments(now)),
    )
    store.close()
    fake.stop()


HTTP_HARNESSES: dict[str, Callable[[Path], Iterator[HttpHarness]]] = {
    "xero": xero_harness,
    "google": lambda folder: _calendar_harness(folder, "google"),
    "outlook": lambda folder: _calendar_harness(folder, "outlook"),
}


@pytest.fixture(params=sorted(HTTP_HARNESSES))
def http(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HttpHarness]:
    yield from HTTP_HARNESSES[request.param](tmp_path)


# -- every HTTP connector ------------------------------------------------------------------------


def test_paging_reads_to_the_end(http: HttpHarness) -> None:
    http.seed(http.page_size * 2 + 1)
    assert http.read() == http.page_size * 2 + 1
    assert http.list_calls() == 3, "two full pages and a short one, nothing more"


def test_a_429_waits_as_told_then_succeeds(http: HttpHarness) -> None:
    http.seed(3)
    http.fail_list_call(429, {"Retry-After": "17", "X-Rate-Limit-Problem": "minute"}, 1)
    assert http.read() == 3
    assert 17 in http.time.sleeps, "Retry-After was honoured"


def test_5xx_is_retried_with_backoff_then_given_up(http: HttpHarness) -> None:
    http.seed(1)
    http.fail_list_call(503, {}, 2)
    assert http.read() == 1
    waits = list(http.time.sleeps)
    assert len(waits) == 2 and all(0 <= w <= 2 for w in waits)
    http.time.sleeps.clear()
    attempts = http.connector.http.attempts
    http.fail_list_call(500, {}, attempts)
    with pytest.raises(RetriableError, match=f"gave up after {attempts} attempts"):
        http.read()
    assert len(http.time.sleeps) == attempts - 1


def test_a_4xx_is_fatal_at_once(http: HttpHarness) -> None:
    http.fail_list_call(400, {}, 1)
    with pytest.raises(FatalError) as caught:
        http.read()
    assert not isinstance(caught.value, RetriableError) and caught.value.status == 400
    assert http.time.sleeps == []


def test_a_401_refreshes_once_and_carries_on(http: HttpHarness) -> None:
    http.seed(2)
    http.revoke_access()
    assert http.read() == 2
    assert http.refreshes() == 1


def test_a_403_asks_to_connect_again(http: HttpHarness) -> None:
    http.fail_list_call(403, {}, 1)
    with pytest.raises(AuthError) as caught:
        http.read()
    assert "kindly connect" in (caught.value.hint or "")


class MisbehavingServer:
    """A TCP server that fails in one chosen way on every connection."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.connections = 0
        self.open: list[socket.socket] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/api"

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            if self.mode == "hang up":
                conn.close()
            elif self.mode == "stall":
                self.open.append(conn)  # read nothing, answer nothing
            elif self.mode == "cut short":
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 5000\r\n\r\n{"Contacts": ['
                )
                conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self.open:
            conn.close()


@pytest.mark.parametrize("mode", ["refused", "hang up", "stall", "cut short"])
def test_network_failures_are_retriable(http: HttpHarness, mode: str) -> None:
    if mode == "refused":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        http.point_at(f"http://127.0.0.1:{port}/api")
        server = None
    else:
        server = MisbehavingServer(mode)
        http.point_at(server.url)
    # A short read timeout: a stalled server is given up on quickly, not waited for.
    http.connector.http.timeout = (2.0, 0.2)
    attempts = http.connector.http.attempts
    try:
        with pytest.raises(RetriableError, match=f"gave up after {attempts} attempts"):
            http.read()
    finally:
        if server is not None:
            server.close()
    if server is not None:
        assert server.connections == attempts
    assert len(http.time.sleeps) == attempts - 1


def test_no_secret_in_any_repr_error_or_log_line(
    http: HttpHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    http.seed(1)
    http.read()
    http.fail_list_call(401, {}, 2)
    errors: list[BaseException] = []
    try:
        http.read()
    except AuthError as exc:
        errors.append(exc)
    secrets = http.secrets()
    assert errors, "two 401s in a row end in an AuthError"
    texts = [repr(http.connector), repr(http.connector.http), caplog.text]
    texts += [str(e) + repr(e) + str(getattr(e, "hint", "")) for e in errors]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert "Bearer" not in caplog.text or "Bearer ***" in caplog.text


def test_the_http_module_is_the_only_one_that_imports_requests() -> None:
    root = Path(__file__).resolve().parents[1]
    importers = sorted(
        str(path.relative_to(root))
        for folder in ("plugin", "integrations")
        for path in (root / folder).rglob("*.py")
        if any(
            line.strip().startswith(("import requests", "from requests"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    )
    assert importers == ["integrations/http.py"]


def test_redaction_masks_query_secrets_and_bearer_tokens() -> None:
    client = HttpClient("Test", secrets=lambda: ["s3cr3t-value"])
    assert client.redact("token s3cr3t-value and Bearer abc.def") == "token *** and Bearer ***"


# -- every connector ---------------------------------------------------------------------------


@contextlib.contextmanager
def ledger_connector(tmp_path: Path) -> Iterator[BookkeepingConnector]:
    from plugin.app.demo import create_demo_workspace

    workspace = tmp_path / "demo"
    create_demo_workspace(workspace, tmp_path / "outbox", datetime(2026, 11, 22, 10, tzinfo=UTC))
    yield LocalLedger(workspace / "ledger")


@contextlib.contextmanager
def xero_connector(tmp_path: Path) -> Iterator[BookkeepingConnector]:
    fake = FakeXero()
    fake.start()
    harness = connect_to_fake(fake, tmp_path)
    seed_small_ledger(fake)
    try:
        yield harness.connector
    finally:
        harness.store.close()
        fake.stop()


CONNECTORS = {"ledger": ledger_connector, "xero": xero_connector}


@pytest.fixture(params=sorted(CONNECTORS))
def connector(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BookkeepingConnector]:
    with CONNECTORS[request.param](tmp_path) as made:
        yield made


def test_a_snapshot_holds_together(connector: BookkeepingConnector) -> None:
    snapshot = connector.read_snapshot()
    customers = snapshot.customers_by_id
    assert snapshot.invoices and customers
    for invoice in snapshot.invoices:
        assert invoice.customer_id in customers
    for payment in snapshot.payments:
        assert payment.invoice_id in snapshot.invoices_by_id
    assert connector.source_id and connector.location


def test_fresh_reads_return_the_named_invoices(connector: BookkeepingConnector) -> None:
    snapshot = connector.read_snapshot()
    wanted = [invoice.id for invoice in snapshot.invoices[:3]]
    fresh = connector.read_invoices(wanted)
    assert sorted(i.id for i in fresh) == sorted(wanted)
    assert {i.id: i for i in fresh} == {i: snapshot.invoices_by_id[i] for i in wanted}


def test_a_note_is_written_once_and_found_again(connector: BookkeepingConnector) -> None:
    snapshot = connector.read_snapshot()
    invoice = next(i for i in snapshot.invoices if i.is_open)
    note = Note(
        id="kindly-00112233445566778899aabbccddeeff",
        created_at=datetime(2026, 11, 22, 10, tzinfo=UTC),
        text="Kindly sent the first reminder by e-mail.",
        customer_id=invoice.customer_id,
        invoice_ids=(invoice.id,),
        reminder_key="00112233445566778899aabbccddeeff",
        stage="first",
        channel="email",
    )
    assert connector.existing_note_ids([note]) == set()
    connector.write_note(note)
    assert connector.existing_note_ids([note]) == {note.id}
    found = [n for n in connector.read_notes() if n.id == note.id]
    assert len(found) == 1 and found[0].reminder_key == note.reminder_key


def test_a_repr_names_the_source_and_nothing_secret(connector: BookkeepingConnector) -> None:
    text = repr(connector)
    assert type(connector).__name__ in text
    assert "token" not in text.lower() and "secret" not in text.lower()

"""The contract every connector on HTTP passes, against its fake on loopback:
``http_contract(factory)``.

Paging to the end (where it pages); a 429 then success, waiting as ``Retry-After`` says; 5xx
retried with backoff, then given up; a 4xx fatal at once; a 401 refreshed once (OAuth) or
an AuthError asking to connect again (basic, API key); a 403 asking to connect again;
every kind of network failure (refused, hung up, stalled, cut short) retriable; and no
secret in any repr, error or log line. A connector that asks once and leaves a failure to
the next run (an SMS gateway: a message must not go twice) gets, instead of the retry
cases, cases that check it asked exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from integrations.http import AuthError, FatalError, HttpError, RetriableError

from .generate import suite
from .harness import HarnessFactory, HttpHarness
from .network import MODES, MisbehavingServer, refused_url

__all__ = ["HttpContract", "http_contract"]

#: Connectors whose credentials renew themselves on a 401; the others ask to connect again.
REFRESHING_AUTH = frozenset({"oauth2"})


def _sleeps(http: HttpHarness) -> list[float]:
    assert http.time is not None, "a connector that retries sleeps on the harness's clock"
    return http.time.sleeps


class HttpContract:
    factory: ClassVar[HarnessFactory[HttpHarness]]

    @pytest.fixture
    def http(self, tmp_path: Path) -> Iterator[HttpHarness]:
        with self.factory(tmp_path) as made:
            yield made

    def test_paging_reads_to_the_end(self, http: HttpHarness) -> None:
        assert http.page_size > 0
        http.seed(http.page_size * 2 + 1)
        assert http.read() == http.page_size * 2 + 1
        assert http.list_calls() == 3, "two full pages and a short one, nothing more"

    # -- a connector that retries within the run -------------------------------------------

    def test_a_429_waits_as_told_then_succeeds(self, http: HttpHarness) -> None:
        http.seed(3)
        http.fail_list_call(429, {"Retry-After": "17", "X-Rate-Limit-Problem": "minute"}, 1)
        assert http.read() == 3
        assert 17 in _sleeps(http), "Retry-After was honoured"

    def test_5xx_is_retried_with_backoff_then_given_up(self, http: HttpHarness) -> None:
        http.seed(1)
        http.fail_list_call(503, {}, 2)
        assert http.read() == 1
        waits = list(_sleeps(http))
        assert len(waits) == 2 and all(0 <= w <= 2 for w in waits)
        _sleeps(http).clear()
        attempts = http.connector.http.attempts
        assert attempts > 1
        http.fail_list_call(500, {}, attempts)
        with pytest.raises(RetriableError, match=f"gave up after {attempts} attempts"):
            http.read()
        assert len(_sleeps(http)) == attempts - 1

    def test_a_4xx_is_fatal_at_once(self, http: HttpHarness) -> None:
        http.fail_list_call(400, {}, 1)
        with pytest.raises(FatalError) as caught:
            http.read()
        assert not isinstance(caught.value, RetriableError) and caught.value.status == 400
        assert _sleeps(http) == []

    @pytest.mark.parametrize("mode", MODES)
    def test_network_failures_are_retriable(self, http: HttpHarness, mode: str) -> None:
        server = None if mode == "refused" else MisbehavingServer(mode)
        http.point_at(refused_url() if server is None else server.url)
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
        assert len(_sleeps(http)) == attempts - 1

    # -- a connector that asks once ------------------------------------------------------------

    @pytest.mark.parametrize("status", [400, 429, 503])
    def test_a_failure_is_asked_once_and_left_to_the_next_run(
        self, http: HttpHarness, status: int
    ) -> None:
        http.seed(1)
        http.fail_list_call(status, {"Retry-After": "1"}, 1)
        before = http.list_calls()
        failure: HttpError | None = None
        try:
            came_through = http.read()
        except HttpError as exc:
            failure, came_through = exc, 0
        assert came_through == 0
        assert not isinstance(failure, AuthError), "a failure, not a refused credential"
        assert http.list_calls() - before == 1, "asked once, not again within the run"
        assert http.time is None or http.time.sleeps == []

    @pytest.mark.parametrize("mode", MODES)
    def test_network_failures_are_asked_once(self, http: HttpHarness, mode: str) -> None:
        server = None if mode == "refused" else MisbehavingServer(mode)
        http.point_at(refused_url() if server is None else server.url)
        http.connector.http.timeout = (2.0, 0.2)
        try:
            try:
                came_through = http.read()
            except RetriableError:
                came_through = 0
        finally:
            if server is not None:
                server.close()
        assert came_through == 0
        if server is not None:
            assert server.connections == 1, "asked once: it may have arrived"

    # -- credentials -----------------------------------------------------------------------

    def test_a_401_refreshes_once_and_carries_on(self, http: HttpHarness) -> None:
        http.seed(2)
        http.revoke_access()
        assert http.read() == 2
        assert http.refreshes() == 1

    def test_a_401_asks_to_connect_again(self, http: HttpHarness) -> None:
        http.seed(2)
        assert http.read() >= 1
        http.revoke_access()
        with pytest.raises(AuthError) as caught:
            http.read()
        assert caught.value.status == 401
        assert "kindly connect" in (caught.value.hint or "")
        text = str(caught.value) + repr(caught.value)
        for secret in http.secrets():
            assert secret not in text

    def test_a_403_asks_to_connect_again(self, http: HttpHarness) -> None:
        http.fail_list_call(403, {}, 1)
        with pytest.raises(AuthError) as caught:
            http.read()
        assert caught.value.status == 403
        assert "kindly connect" in (caught.value.hint or "")

    def test_no_secret_in_any_repr_error_or_log_line(
        self, http: HttpHarness, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        http.seed(1)
        http.read()
        assert "kindly.http" in {record.name for record in caplog.records}, "calls are logged"
        http.fail_list_call(401, {}, 2)
        errors: list[BaseException] = []
        try:
            http.read()
        except AuthError as exc:
            errors.append(exc)
        secrets = http.secrets()
        assert secrets and all(secrets)
        assert errors, "two 401s in a row end in an AuthError"
        texts = [repr(http.connector), repr(http.connector.http), caplog.text]
        texts += [str(e) + repr(e) + str(getattr(e, "hint", "")) for e in errors]
        for text in texts:
            for secret in secrets:
                assert secret not in text
        assert "Bearer" not in caplog.text or "Bearer ***" in caplog.text


RETRY_CASES = (
    "test_a_429_waits_as_told_then_succeeds",
    "test_5xx_is_retried_with_backoff_then_given_up",
    "test_a_4xx_is_fatal_at_once",
    "test_network_failures_are_retriable",
)
ASKED_ONCE_CASES = (
    "test_a_failure_is_asked_once_and_left_to_the_next_run",
    "test_network_failures_are_asked_once",
)


def http_contract(factory: HarnessFactory[HttpHarness]) -> type:
    """The HTTP contract for ``factory``'s connector, as a test class: assign it to a
    ``Test...`` name in the connector's test file.

    A connector that lacks "retries" gets the asked-once cases instead of the retry
    cases; one that lacks "paging" skips the paging case; an OAuth connector refreshes on
    a 401, any other asks to connect again.
    """
    refreshes = factory.connector_class.auth in REFRESHING_AUTH
    leave_out = list(ASKED_ONCE_CASES if "retries" not in factory.lacks else RETRY_CASES)
    leave_out.append(
        "test_a_401_asks_to_connect_again"
        if refreshes
        else "test_a_401_refreshes_once_and_carries_on"
    )
    return suite(
        HttpContract,
        factory,
        skip={"test_paging_reads_to_the_end": factory.lacks.get("paging")},
        leave_out=leave_out,
    )

"""The one HTTP module (integrations/http.py), on its own; every connector on HTTP also
runs the HTTP contract (tests/contract/http.py) from its own test file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from integrations.http import FatalError, HttpClient


def test_redaction_masks_query_secrets_and_bearer_tokens() -> None:
    client = HttpClient("Test", secrets=lambda: ["s3cr3t-value"])
    assert client.redact("token s3cr3t-value and Bearer abc.def") == "token *** and Bearer ***"


def test_a_name_that_does_not_resolve_never_delivered_anything() -> None:
    """urllib3 wraps a failed DNS look-up as NameResolutionError inside MaxRetryError:
    the request never left, so an SMS failing so is sent again on the next run."""
    import socket

    import requests
    from urllib3 import HTTPConnectionPool
    from urllib3.connection import HTTPConnection
    from urllib3.exceptions import MaxRetryError, NameResolutionError, ProtocolError

    from integrations.http import RetriableError, _never_connected, delivery_status

    host = "gateway.invalid"
    unresolved = NameResolutionError(host, HTTPConnection(host), socket.gaierror())
    pool = HTTPConnectionPool(host)
    wrapped = requests.ConnectionError(MaxRetryError(pool, "/x", reason=unresolved))
    assert _never_connected(wrapped)
    dropped = requests.ConnectionError(ProtocolError("Connection aborted."))
    assert not _never_connected(dropped)
    never_sent, maybe_sent = RetriableError("x"), RetriableError("x", maybe_received=True)
    assert delivery_status(never_sent, repeatable=False) == "temporary"
    assert delivery_status(maybe_sent, repeatable=False) == "unconfirmed"


def test_the_platform_mailer_waits_on_anything_but_a_refusal() -> None:
    """With an idempotency key, a retry cannot e-mail twice: only a 4xx refusal is final."""
    from integrations.http import FatalError, RetriableError, delivery_status

    assert delivery_status(RetriableError("x", maybe_received=True), repeatable=True) == "temporary"
    assert delivery_status(FatalError("x", status=None), repeatable=True) == "temporary"
    assert delivery_status(FatalError("x", status=501), repeatable=True) == "temporary"
    assert delivery_status(FatalError("x", status=400), repeatable=True) == "permanent"


def test_a_window_budget_waits_for_the_longer_of_its_own_window_and_the_platforms() -> None:
    """Three calls fill our window of five seconds while the platform says none is left
    until a reset 58 seconds away: the fourth call waits the 58 seconds, and not our 5."""
    from integrations.http import WindowBudget

    now = [1_000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    budget = WindowBudget(
        burst=3, window=60.0, per_minute=1000, clock=lambda: now[0], sleep=sleep,
        wall_clock=lambda: 1_700_000_000 + now[0], reset_header="ratelimit-reset",
    )  # fmt: skip
    for _ in range(3):
        budget.before_call()
        now[0] += 1
    reset = 1_700_000_000 + now[0] + 58
    budget.after_call({"ratelimit-remaining": "0", "ratelimit-reset": str(int(reset))}, None)
    budget.before_call()
    assert slept == [pytest.approx(58, abs=1)]
    # A reset given as seconds from now (the IETF draft's form) is waited out too.
    budget.after_call({"ratelimit-remaining": "0", "ratelimit-reset": "7"}, None)
    budget.before_call()
    assert slept[-1] == pytest.approx(7, abs=0.01)
    # A "remaining" without a reset forgets the old reset: a whole window after the last
    # call, not a reset long past.
    budget.after_call({"ratelimit-remaining": "5", "ratelimit-reset": str(int(reset))}, None)
    budget.after_call({"ratelimit-remaining": "0"}, None)
    assert budget.window_reset is None


def test_a_download_never_follows_https_down_to_http(tmp_path: Path) -> None:
    """A signed link on https redirected to http: refused before the key travels in
    clear, and the error shows no part of the link's query."""
    import ssl

    from tests.fakes.http_server import base_url, serve, stop
    from tests.fakes.smtp import self_signed

    cert, key = self_signed(tmp_path)
    asked: list[str] = []

    def plain_file(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        asked.append(path)
        return 200, b"%PDF", {}

    plain = serve(plain_file)
    target = base_url(plain) + "/file.pdf?signature=abc123secret"
    secure = serve(lambda method, path, headers, body: (302, b"", {"Location": target}))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    secure.socket = context.wrap_socket(secure.socket, server_side=True)
    try:
        client = HttpClient("Test", attempts=1, private_links=True)
        client.session.verify = str(cert)
        client.session.trust_env = False  # else REQUESTS_CA_BUNDLE wins over verify
        start = base_url(secure).replace("http://", "https://") + "/pdf?key=abc123secret"
        with pytest.raises(FatalError) as refused:
            client.download(start)
        assert "led to" in str(refused.value) and "abc123secret" not in str(refused.value)
        assert asked == [], "nothing asked over http"
        # From http to http is followed.
        assert client.download(target).body == b"%PDF" and len(asked) == 1
    finally:
        stop(secure)
        stop(plain)

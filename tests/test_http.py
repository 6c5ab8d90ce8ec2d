"""The one HTTP module (integrations/http.py), on its own; every connector on HTTP also
runs the HTTP contract (tests/contract/http.py) from its own test file."""

from __future__ import annotations

from integrations.http import HttpClient


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

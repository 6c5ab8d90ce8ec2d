"""The one HTTP module (integrations/http.py), on its own; every connector on HTTP also
runs the HTTP contract (tests/contract/http.py) from its own test file."""

from __future__ import annotations

from integrations.http import HttpClient


def test_redaction_masks_query_secrets_and_bearer_tokens() -> None:
    client = HttpClient("Test", secrets=lambda: ["s3cr3t-value"])
    assert client.redact("token s3cr3t-value and Bearer abc.def") == "token *** and Bearer ***"

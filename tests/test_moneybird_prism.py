"""Every request the Moneybird connector makes, checked against Moneybird's own OpenAPI
description (../shared/specs/moneybird/openapi.yml) with Prism (:mod:`tests.prism`).

Prism cannot load the file as published: its paths end in ``{format}`` (".json" or
".xml"), a path parameter Prism will not match against a suffix, and its request bodies
are declared as ``application/*``, which Prism matches to no request (and so checks no
body). The test writes a temporary copy with ``{format}`` replaced by ``.json`` in the
path keys, the format parameter taken out, the bodies named ``application/json`` and
``unevaluatedProperties: false`` (which Prism ignores) also said as
``additionalProperties: false``, and serves that. The answers are Moneybird's own examples, so the
mapping is exercised on the platform's shapes too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from integrations.bookkeeping.moneybird import MoneybirdConnector, MoneybirdSettings
from integrations.bookkeeping.oauth_platform import Tenant
from integrations.oauth import Token, TokenVault
from plugin.core.model import Note
from plugin.state.store import Store
from tests.contract.harness import FakeTime
from tests.prism import SPECS, serving

SPEC = SPECS / "moneybird" / "openapi.yml"
NOW = datetime(2026, 11, 22, 9, tzinfo=UTC)


def loadable_copy(spec: Path, folder: Path) -> Path:
    """The description with ``.json`` paths, as Prism can serve it."""
    document: dict = yaml.safe_load(spec.read_text(encoding="utf-8"))  # type: ignore[type-arg]
    document["paths"] = {
        path.replace("{format}", ".json"): _without_format(item)
        for path, item in document["paths"].items()
    }
    document = _closed(document)  # type: ignore[assignment]
    copy = folder / "moneybird-openapi.json.yml"
    copy.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return copy


def _closed(node: object) -> object:
    """``unevaluatedProperties: false`` as ``additionalProperties: false`` where a schema
    lists its properties itself: Prism ignores the first, so a field Kindly made up would
    pass."""
    if isinstance(node, list):
        return [_closed(each) for each in node]
    if not isinstance(node, dict):
        return node
    closed = {key: _closed(value) for key, value in node.items()}
    composed = any(key in closed for key in ("allOf", "anyOf", "oneOf", "$ref"))
    if closed.get("unevaluatedProperties") is False and "properties" in closed and not composed:
        closed["additionalProperties"] = False
    return closed


def _without_format(item: dict) -> dict:  # type: ignore[type-arg]
    def keep(parameter: object) -> bool:
        reference = parameter.get("$ref", "") if isinstance(parameter, dict) else ""
        named = parameter.get("name") if isinstance(parameter, dict) else None
        return not re.search(r"/format$", str(reference)) and named != "format"

    cleaned = dict(item)
    for method, operation in list(cleaned.items()):
        # Moneybird declares request bodies as "application/*", which Prism matches to no
        # request: named as JSON, what Kindly sends is checked against the schema.
        content = (
            (operation.get("requestBody") or {}).get("content")
            if isinstance(operation, dict)
            else None
        )
        if isinstance(content, dict) and "application/*" in content:
            body = {
                **operation["requestBody"],
                "content": {"application/json": content["application/*"]},
            }
            cleaned[method] = {**operation, "requestBody": body}
    if "parameters" in cleaned:
        cleaned["parameters"] = [p for p in cleaned["parameters"] if keep(p)]
    for method, operation in list(cleaned.items()):
        if isinstance(operation, dict) and "parameters" in operation:
            cleaned[method] = {
                **operation,
                "parameters": [p for p in operation["parameters"] if keep(p)],
            }
    return cleaned


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not SPEC.exists():
        pytest.skip(f"Moneybird's OpenAPI description is not at {SPEC}")
    copy = loadable_copy(SPEC, tmp_path_factory.mktemp("moneybird-spec"))
    with serving(copy, "Moneybird's OpenAPI description") as url:
        yield url


@pytest.fixture
def connector(prism: str, tmp_path: Path) -> Iterator[MoneybirdConnector]:
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    vault = TokenVault(store, "moneybird", Fernet.generate_key(), clock=lambda: NOW)
    vault.save(Token("prism-access-token", "prism-refresh-token", NOW.replace(year=2027)))
    time = FakeTime()
    yield MoneybirdConnector(
        MoneybirdSettings(client_id="kindly", api_url=prism),
        vault,
        Tenant("123", "Prism"),
        clock=lambda: NOW,
        sleep=time.sleep,
    )
    store.close()


def test_a_full_and_an_incremental_sync_are_valid_requests(
    connector: MoneybirdConnector,
) -> None:
    full = connector.sync(None, {})
    assert full.snapshot.invoices or full.snapshot.credit_notes, "Moneybird's examples mapped"
    again = connector.sync(full.snapshot, full.bookmarks)
    assert set(again.bookmarks) == set(full.bookmarks) == {"versions"}


def test_fresh_reads_notes_mail_workflows_and_webhooks_are_valid_requests(
    connector: MoneybirdConnector,
) -> None:
    full = connector.sync(None, {})
    invoice = next(iter(full.snapshot.invoices))
    assert connector.read_invoices([invoice.id]) is not None
    connector.write_note(
        Note(
            id="kindly-00112233445566778899aabbccddeeff",
            created_at=NOW,
            text="Kindly sent the first reminder by e-mail.",
            customer_id=invoice.customer_id,
            invoice_ids=(invoice.id,),
            reminder_key="00112233445566778899aabbccddeeff",
            stage="first",
            channel="email",
        )
    )
    connector.email_invoice(invoice)
    assert isinstance(connector.platform_reminders(), list)
    connector.subscribe("https://kindly.example/webhooks/moneybird")

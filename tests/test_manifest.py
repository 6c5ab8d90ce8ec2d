"""manifest.json is valid, and says what the code does."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from integrations import registry
from integrations.base import BookkeepingConnector
from plugin import __version__
from plugin.app.cli import cli
from plugin.app.manifest import CONNECTORS_DOC, MANIFEST_SCHEMA_PATH, build_manifest, connectors_doc
from plugin.app.wiring import settings_schema
from plugin.config.initconfig import render_settings_file
from plugin.config.settings import _jsonable, parse_settings

from .conftest import REPO


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REPO / "manifest.json").read_text(encoding="utf-8"))
    return loaded


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_manifest_matches_its_schema(manifest: dict[str, Any]) -> None:
    schema = json.loads(MANIFEST_SCHEMA_PATH.read_text(encoding="utf-8"))
    validator(schema).validate(manifest)
    assert (REPO / manifest["$schema"]).resolve() == MANIFEST_SCHEMA_PATH.resolve()


def test_manifest_is_what_the_code_builds(manifest: dict[str, Any]) -> None:
    assert manifest == build_manifest(), "run `make manifest` and commit manifest.json"


def test_manifest_agrees_with_the_code(manifest: dict[str, Any]) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == manifest["id"]
    assert manifest["version"] == __version__
    assert {c["name"] for c in manifest["connectors"]} == set(registry.names())
    for entry in manifest["connectors"]:
        connector = registry.connector_class(entry["name"])
        assert entry["kind"] == connector.kind
        assert entry["oauth_scopes"] == list(connector.oauth_scopes)
        assert entry["webhook_path"] == (connector.webhook.path if connector.webhook else None)
    for command in manifest["commands"]:
        assert command["name"] in cli.commands
        assert command["invoke"] == ["kindly", command["name"]]
    scripts = pyproject["project"]["scripts"]
    assert manifest["entry_point"]["command"] in scripts


def test_a_new_connector_makes_the_committed_manifest_drift(manifest: dict[str, Any]) -> None:
    """The equality check above catches a connector added without `make manifest`."""

    class Drifted(BookkeepingConnector):
        name = "drifted"
        title = "Drifted"

    registry.register(Drifted)
    try:
        built = build_manifest()
        assert "drifted" in {c["name"] for c in built["connectors"]}
        assert "drifted" in built["settings_schema"]["properties"]["connector"]["enum"]
        assert manifest != built
        assert (REPO / CONNECTORS_DOC).read_text(encoding="utf-8") != connectors_doc()
    finally:
        registry.unregister("drifted")
    assert manifest == build_manifest()


def test_the_connectors_page_is_what_the_code_builds() -> None:
    committed = (REPO / CONNECTORS_DOC).read_text(encoding="utf-8")
    assert committed == connectors_doc(), "run `make manifest` and commit docs/connectors.md"


def example_configs() -> list[tuple[str, dict[str, Any]]]:
    documented = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", documented, re.DOTALL)
    assert block, "docs/configuration.md has a TOML example"
    answers = {
        "company_name": "Acme",
        "email": "ar@acme.example",
        "address": "1 Road | Town",
        "country": "GB",
        "iban": "GB82 WEST 1234 5698 7654 32",
        "ledger": "books",
    }
    return [
        ("docs/configuration.md", tomllib.loads(block.group(1))),
        ("kindly init", tomllib.loads(render_settings_file(answers))),
    ]


@pytest.mark.parametrize(("where", "config"), example_configs(), ids=lambda v: str(v)[:20])
def test_the_settings_schema_accepts_the_example_configs(
    manifest: dict[str, Any], where: str, config: dict[str, Any]
) -> None:
    validator(manifest["settings_schema"]).validate(_jsonable(config))
    parse_settings(config, source=Path("/tmp/kindly.toml"), schema=settings_schema())


def test_the_settings_schema_accepts_the_demo_config(
    manifest: dict[str, Any], demo_workspace: Path
) -> None:
    config = tomllib.loads((demo_workspace / "kindly.toml").read_text(encoding="utf-8"))
    validator(manifest["settings_schema"]).validate(_jsonable(config))


def test_the_settings_schema_rejects_a_misspelt_setting(manifest: dict[str, Any]) -> None:
    config = {
        "company": {"name": "Acme", "email": "ar@acme.example"},
        "policy": {"frist_reminder_after_days": 3},
    }
    with pytest.raises(jsonschema.ValidationError):
        validator(manifest["settings_schema"]).validate(config)


def test_a_connector_with_a_webhook_route_says_it_takes_webhooks() -> None:
    from integrations.base import Capability

    for connector in registry.connector_classes():
        takes = Capability.WEBHOOKS in connector.capabilities
        assert takes == (connector.webhook is not None), connector.name

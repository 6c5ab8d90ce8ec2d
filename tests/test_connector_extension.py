"""A new accounting platform takes one class, registered in one line, and nothing else.

This file defines a throwaway bookkeeping connector and its fake platform, registers it,
and runs `kindly connect`, `sync`, `plan` and `send` through the CLI, with the notes
written back to the platform. No module of Kindly is edited for it: the settings
schema, the CLI and the wiring all follow the registry. It also checks the rule that
keeps it so: no platform's name in `plugin/` outside the composition root (`plugin/app/`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Self

import pytest
from click.testing import CliRunner

from integrations import registry
from integrations.base import (
    BookkeepingConnector,
    Capability,
    ConnectorSettings,
    ConnectRequest,
    Workspace,
)
from integrations.http import HttpClient
from plugin.app.cli import cli
from plugin.core.model import Customer, Invoice, LedgerSnapshot, Note
from plugin.core.money import Money
from plugin.errors import ConfigError
from tests.fakes.http_server import base_url, serve, stop

from .conftest import REPO

TOKEN = "throwaway-token-0123456789"
AT = "2026-11-24T10:00:00+01:00"


class ThrowawayPlatform:
    """A tiny accounting API: two clients, three invoices, notes by POST."""

    def __init__(self) -> None:
        due = date(2026, 11, 10)
        self.customers = [
            {"id": "k1", "name": "Kees Koffie", "email": "kees@koffie.example", "lang": "nl"},
            {"id": "k2", "name": "Anna Atelier", "email": "anna@atelier.example", "lang": "en"},
        ]
        self.invoices: list[dict[str, Any]] = [
            {
                "id": "i1",
                "no": "T-1",
                "client": "k1",
                "due": due,
                "total": "120.00",
                "owed": "120.00",
            },
            {
                "id": "i2",
                "no": "T-2",
                "client": "k2",
                "due": due,
                "total": "80.00",
                "owed": "80.00",
            },
            {"id": "i3", "no": "T-3", "client": "k2", "due": due, "total": "50.00", "owed": "0.00"},
        ]
        self.notes: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.server = serve(self.handle)
        self.url = base_url(self.server)

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        self.calls.append(f"{method} {path.split('?')[0]}")
        if headers.get("Authorization") != f"Token {TOKEN}":
            return 401, {"error": "unknown token"}, {}
        if method == "GET" and path == "/customers":
            return 200, self.customers, {}
        if method == "GET" and path.startswith("/invoices"):
            return 200, [{**i, "due": i["due"].isoformat()} for i in self.invoices], {}
        if method == "GET" and path == "/notes":
            return 200, self.notes, {}
        if method == "POST" and path == "/notes":
            note = json.loads(body)
            if note["id"] not in {n["id"] for n in self.notes}:
                self.notes.append(note)
            return 201, note, {}
        return 404, {"error": "not found"}, {}


@dataclass(frozen=True)
class ThrowawaySettings(ConnectorSettings):
    """Where the throwaway platform is."""

    api_url: str = field(metadata={"base_url": True, "schema": {"pattern": "^https?://"}})


class ThrowawayBooks(BookkeepingConnector):
    name: ClassVar[str] = "throwaway"
    title: ClassVar[str] = "Throwaway Books"
    auth: ClassVar[str] = "api_key"
    settings_type: ClassVar[type[ConnectorSettings]] = ThrowawaySettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.NOTES})

    def __init__(self, settings: ThrowawaySettings, token: str) -> None:
        self.api_url = settings.api_url
        self.http = HttpClient(
            self.title,
            authorize=lambda: {"Authorization": f"Token {token}"},
            secrets=lambda: [token],
        )

    @classmethod
    def open(cls, workspace: Workspace) -> list[Self]:
        token = workspace.store.get_setting("connection:throwaway", "token")
        if not token:
            raise ConfigError("Throwaway Books is not connected")
        settings = cls.settings_of(workspace.settings)
        assert isinstance(settings, ThrowawaySettings)
        return [cls(settings, token)]

    @classmethod
    def connect(cls, workspace: Workspace, request: ConnectRequest) -> str:
        settings = cls.settings_of(workspace.settings)
        assert isinstance(settings, ThrowawaySettings) and request.refresh_token
        cls(settings, request.refresh_token).http.request("GET", f"{settings.api_url}/customers")
        workspace.store.set_setting(
            "connection:throwaway", "token", request.refresh_token, workspace.now()
        )
        return "Connected Throwaway Books."

    @property
    def location(self) -> str:
        return "Throwaway Books"

    def read_snapshot(self) -> LedgerSnapshot:
        customers = self.http.request("GET", f"{self.api_url}/customers").json()
        invoices = self.http.request("GET", f"{self.api_url}/invoices").json()
        return LedgerSnapshot(
            customers=tuple(
                Customer(
                    id=c["id"],
                    name=c["name"],
                    emails=(c["email"],),
                    language=c["lang"],
                    country="NL",
                    timezone="Europe/Amsterdam",
                )
                for c in customers
            ),
            invoices=tuple(
                Invoice(
                    id=i["id"],
                    number=i["no"],
                    customer_id=i["client"],
                    issue_date=date.fromisoformat(i["due"]) - timedelta(days=14),
                    due_date=date.fromisoformat(i["due"]),
                    total=Money.of(Decimal(i["total"]), "EUR"),
                    amount_due=Money.of(Decimal(i["owed"]), "EUR"),
                )
                for i in invoices
            ),
        )

    def write_note(self, note: Note) -> None:
        payload = {"id": note.id, "text": note.text, "invoices": list(note.invoice_ids)}
        self.http.request("POST", f"{self.api_url}/notes", json=payload)

    def read_notes(self, among: Sequence[Invoice] | None = None) -> tuple[Note, ...]:
        return ()


@pytest.fixture
def platform() -> Iterator[ThrowawayPlatform]:
    made = ThrowawayPlatform()
    registry.register(ThrowawayBooks)  # the one line a new connector needs
    try:
        yield made
    finally:
        registry.unregister(ThrowawayBooks.name)
        stop(made.server)


def write_config(folder: Path, platform: ThrowawayPlatform) -> Path:
    config = folder / "kindly.toml"
    config.write_text(
        f"""connector = "throwaway"

[company]
name = "Noordlicht Studio B.V."
email = "ar@noordlicht.example"
country = "NL"

[policy]
send_window = "always"

[delivery]
outbox = "outbox"

[store]
url = "sqlite:///state.sqlite3"

[throwaway]
api_url = "{platform.url}/"
""",
        encoding="utf-8",
    )
    return config


def test_a_connector_defined_here_runs_through_the_whole_cli(
    platform: ThrowawayPlatform, tmp_path: Path
) -> None:
    runner = CliRunner()
    base = ["--config", str(write_config(tmp_path, platform))]
    connected = runner.invoke(cli, [*base, "connect", "throwaway", "--refresh-token", TOKEN])
    assert connected.exit_code == 0, connected.output
    assert "Connected Throwaway Books" in connected.output
    synced = runner.invoke(cli, [*base, "sync", "--at", AT])
    assert synced.exit_code == 0, synced.output
    assert "2 clients, 3 invoices (2 open)" in synced.output
    planned = runner.invoke(cli, [*base, "plan", "--json", "--at", AT])
    assert planned.exit_code == 0, planned.output
    reminders = json.loads(planned.output)["reminders"]
    assert sorted(r["invoices"][0] for r in reminders) == ["T-1", "T-2"]
    assert {r["stage"] for r in reminders} == {"first"}
    sent = runner.invoke(cli, [*base, "send", "--at", AT])
    assert sent.exit_code == 0, sent.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
    assert sorted(n["invoices"][0] for n in platform.notes) == ["i1", "i2"]
    again = runner.invoke(cli, [*base, "send", "--at", AT])
    assert again.exit_code == 0 and "Sent nothing new" in again.output
    assert len(platform.notes) == 2
    assert platform.calls.count("POST /notes") == 2


def test_its_section_is_checked_like_any_other(platform: ThrowawayPlatform, tmp_path: Path) -> None:
    config = write_config(tmp_path, platform)
    config.write_text(
        config.read_text(encoding="utf-8").replace("api_url", "api_adress"), encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "sync"])
    assert result.exit_code == 1
    assert "throwaway.api_adress" in result.output and "not a known setting" in result.output


def test_the_connectors_page_and_manifest_would_list_it(platform: ThrowawayPlatform) -> None:
    from plugin.app.manifest import build_manifest, connectors_doc

    assert "| `throwaway` | bookkeeping | Throwaway Books |" in connectors_doc()
    assert "throwaway" in build_manifest()["settings_schema"]["properties"]


def test_no_platform_is_named_in_the_core_outside_the_composition_root() -> None:
    platforms = [name for name in registry.names() if name != "ledger"]
    pattern = re.compile("|".join(platforms), re.IGNORECASE)
    found = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted((REPO / "plugin").rglob("*"))
        if path.is_file()
        and path.suffix in (".py", ".json", ".j2", ".md")
        and "app" not in path.relative_to(REPO / "plugin").parts[:1]
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


def test_registering_a_name_again_replaces_it_until_unregistered() -> None:
    class OtherLedger(ThrowawayBooks):
        name: ClassVar[str] = "ledger"

    registry.register(OtherLedger)
    try:
        assert registry.connector_class("ledger") is OtherLedger
    finally:
        registry.unregister("ledger")
    assert registry.connector_class("ledger").__name__ == "LocalLedger"
    assert registry.names()[0] == "ledger", "back in its place"


def test_a_connector_section_without_a_required_setting_names_the_file_and_field(
    tmp_path: Path,
) -> None:
    from plugin.config.settings import parse_settings

    config = tmp_path / "kindly.toml"
    settings = parse_settings(
        {"company": {"name": "Acme", "email": "ar@acme.example"}, "calendar": {"type": "google"}},
        source=config,
    )
    google = registry.connector_class("google")
    with pytest.raises(ConfigError, match=r"kindly\.toml: field 'calendar\.client_id' is required"):
        google.settings_of(settings)

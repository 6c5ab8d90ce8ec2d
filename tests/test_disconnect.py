"""`kindly disconnect NAME` for every connector that connects: revoked at the platform where
it can be, forgotten here in any case, and a sync afterwards asks to connect again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from plugin.app.cli import cli
from tests.fakes.google_calendar import FakeGoogleCalendar


@pytest.fixture
def fake() -> Iterator[FakeGoogleCalendar]:
    server = FakeGoogleCalendar()
    server.start()
    yield server
    server.stop()


def google_config(demo_workspace: Path, fake: FakeGoogleCalendar) -> Path:
    config = demo_workspace / "kindly.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text + fake.calendar_section(), encoding="utf-8")
    return config


def test_disconnect_google_revokes_the_grant_and_forgets_the_tokens(
    fake: FakeGoogleCalendar, demo_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KINDLY_SECRET_KEY", Fernet.generate_key().decode())
    base = ["--config", str(google_config(demo_workspace, fake))]
    runner = CliRunner()
    connected = runner.invoke(
        cli, [*base, "connect", "google", "--refresh-token", "google-refresh"]
    )
    assert connected.exit_code == 0, connected.output
    assert runner.invoke(cli, [*base, "sync"]).exit_code == 0

    disconnected = runner.invoke(cli, [*base, "disconnect", "google"])
    assert disconnected.exit_code == 0, disconnected.output
    assert "Disconnected Google" in disconnected.output
    assert fake.revoked == ["google-refresh"]

    after = runner.invoke(cli, [*base, "sync"])
    assert after.exit_code == 1
    assert "google is not connected" in after.output
    assert "kindly connect google" in after.output
    again = runner.invoke(cli, [*base, "disconnect", "google"])
    assert again.exit_code == 0 and fake.revoked == ["google-refresh"], "nothing left to revoke"


def test_disconnect_the_ledger_forgets_the_folder(demo_workspace: Path, tmp_path: Path) -> None:
    config = demo_workspace / "kindly.toml"
    # Without [ledger] path the folder comes from `kindly connect ledger` alone.
    text = config.read_text(encoding="utf-8")
    without = re.sub(r'\[ledger\]\npath = "ledger".*\n', "", text)
    assert without != text
    config.write_text(without, encoding="utf-8")
    base = ["--config", str(config)]
    runner = CliRunner()
    connected = runner.invoke(cli, [*base, "connect", "ledger", str(demo_workspace / "ledger")])
    assert connected.exit_code == 0, connected.output
    assert runner.invoke(cli, [*base, "sync"]).exit_code == 0
    disconnected = runner.invoke(cli, [*base, "disconnect", "ledger"])
    assert "Forgot the connected ledger" in disconnected.output
    after = runner.invoke(cli, [*base, "sync"])
    assert after.exit_code == 1 and "no ledger is connected" in after.output


def test_an_unknown_connector_names_the_known_ones(demo_workspace: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--config", str(demo_workspace / "kindly.toml"), "disconnect", "sage"]
    )
    assert result.exit_code == 2, "a usage error, as for any argument click refuses"
    assert "unknown connector 'sage'" in result.output and "xero" in result.output


def test_disconnect_a_calendar_kindly_toml_no_longer_names_forgets_its_tokens(
    fake: FakeGoogleCalendar, demo_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KINDLY_SECRET_KEY", Fernet.generate_key().decode())
    config = google_config(demo_workspace, fake)
    base = ["--config", str(config)]
    runner = CliRunner()
    connect = [*base, "connect", "google", "--refresh-token", "google-refresh"]
    assert runner.invoke(cli, connect).exit_code == 0
    # The user moves to a CalDAV calendar, then disconnects Google.
    text = config.read_text(encoding="utf-8")
    start = text.index("[calendar]")
    config.write_text(
        text[:start] + '[calendar]\ntype = "caldav"\nurl = "http://127.0.0.1:9/dav/"\n',
        encoding="utf-8",
    )
    result = runner.invoke(cli, [*base, "disconnect", "google"])
    assert result.exit_code == 0, result.output
    assert "Forgot the Google Calendar tokens" in result.output
    assert fake.revoked == [], "without the app's settings there is nothing to revoke with"
    from plugin.app.wiring import load_settings, open_store

    store = open_store(load_settings(config))
    assert store.get_setting("secret:google", "token") is None

"""Shared fixtures: a materialised demo ledger and settings that point at it."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from integrations.bookkeeping.ledger import LocalLedger
from plugin.app.demo import create_demo_workspace
from plugin.config.settings import Settings, load_settings
from plugin.core.model import LedgerSnapshot

# The contract suites live outside the test modules: rewrite their asserts too, so a
# failing case says what it compared.
pytest.register_assert_rewrite("tests.contract")

#: The day the demo fixtures are set up; every test that needs "now" derives it from this.
DEMO_DAY = date(2026, 11, 22)
DEMO_NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo workspace made once per session; tests copy it rather than change it."""
    base = tmp_path_factory.mktemp("demo-template")
    create_demo_workspace(base / "workspace", base / "outbox", DEMO_NOW)
    return base / "workspace"


@pytest.fixture
def demo_workspace(demo_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the demo workspace; its outbox is tmp_path/outbox."""
    target = tmp_path / "workspace"
    shutil.copytree(demo_template, target)
    # The outbox is written relative to the workspace, so the copy writes beside itself.
    assert '"../outbox"' in (target / "kindly.toml").read_text(encoding="utf-8")
    return target


@pytest.fixture
def demo_settings(demo_workspace: Path) -> Settings:
    return load_settings(demo_workspace / "kindly.toml")


@pytest.fixture
def demo_snapshot(demo_workspace: Path) -> LedgerSnapshot:
    return LocalLedger(demo_workspace / "ledger").read_snapshot()

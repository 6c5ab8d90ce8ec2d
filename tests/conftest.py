"""Shared fixtures: a materialised demo ledger and settings that point at it."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

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


# -- a real database: SQLite, or PostgreSQL where one runs ----------------------------------

POSTGRES_URL = os.environ.get(
    "KINDLY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_or_skip() -> None:
    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}: {type(exc).__name__}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'kindly.sqlite3'}"
        return
    yield from _postgres_schema()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of the test's own (a schema), or a skip where none runs."""
    yield from _postgres_schema()


def _postgres_schema() -> Iterator[str]:
    _postgres_or_skip()
    # Each test gets a schema of its own, dropped afterwards, so tests never meet.
    schema = f"kindly_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

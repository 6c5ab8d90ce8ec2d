"""The schema revision the store expects is the newest migration, and migrations apply."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from plugin.state.store import MIGRATIONS, SCHEMA_REVISION, Store, metadata


def test_the_store_expects_the_newest_migration() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


def test_migrations_build_the_tables_the_store_uses(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'k.sqlite3'}")
    assert store.schema_revision() == SCHEMA_REVISION
    inspector = sa.inspect(store.engine)
    for table in metadata.sorted_tables:
        migrated = {column["name"] for column in inspector.get_columns(table.name)}
        assert migrated == set(table.columns.keys()), table.name
    store.close()


def test_the_calendars_old_state_is_dropped_and_nothing_else(tmp_path: Path) -> None:
    """Calendars wrote their state into the settings before they kept it as a bookmark."""
    from datetime import UTC, datetime

    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    old = Store(engine)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    old.set_setting("calendar:google:primary", "state", {"events": {"e1": {}}}, now)
    old.set_setting("calendar:caldav:https://dav.example/a/", "state", {"items": {}}, now)
    old.set_setting("connection:ledger", "path", "/books", now)
    old.set_setting("client:C1", "tone", "firm", now)
    store = Store.open(url)
    assert store.schema_revision() == SCHEMA_REVISION
    assert store.settings_in("calendar:") == {}
    assert store.get_setting("connection:ledger", "path") == "/books"
    assert store.get_setting("client:C1", "tone") == "firm"
    store.close()

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
        key = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert key == [column.name for column in table.primary_key.columns], table.name
    store.close()


def _engine_at(url: str, revision: str) -> sa.Engine:
    """A new database migrated to an older ``revision``, as an older Kindly left it."""
    from alembic import command

    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return engine


def test_the_calendars_old_state_is_dropped_and_nothing_else(tmp_path: Path) -> None:
    """Calendars wrote their state into the settings before they kept it as a bookmark."""
    from datetime import UTC, datetime

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = _engine_at(url, "0003")
    now = datetime(2026, 12, 1, tzinfo=UTC).isoformat()
    with old.begin() as connection:
        for scope, key, value in (
            ("calendar:google:primary", "state", '{"events": {"e1": {}}}'),
            ("calendar:caldav:https://dav.example/a/", "state", '{"items": {}}'),
            ("connection:ledger", "path", '"/books"'),
            ("client:C1", "tone", '"firm"'),
        ):
            connection.execute(
                sa.text("INSERT INTO settings VALUES (:scope, :key, :value, :now)"),
                {"scope": scope, "key": key, "value": value, "now": now},
            )
    old.dispose()
    store = Store.open(url)
    assert store.schema_revision() == SCHEMA_REVISION
    assert store.settings_in("calendar:") == {}
    assert store.get_setting("connection:ledger", "path") == "/books"
    assert store.get_setting("client:C1", "tone") == "firm"
    store.close()


def test_reminders_logged_as_sent_but_unconfirmed_become_unconfirmed(tmp_path: Path) -> None:
    """Before 0005 an unconfirmed reminder was "sent" with "unconfirmed" in its detail."""
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = _engine_at(url, "0004")
    row = {
        "source": "ledger",
        "customer_id": "C1",
        "invoice_ids": "[]",
        "invoice_numbers": "[]",
        "stage": "first",
        "channel": "email",
        "recipient": "a@example.com",
        "amount": "1",
        "currency": "EUR",
        "planned_at": "2026-12-01T10:00:00+00:00",
        "sent_at": "2026-12-01T10:00:00+00:00",
    }
    details = {
        "k1": "unconfirmed: the connection dropped after the message was handed over",
        "k2": "smtp: interrupted after handing over; sent (unconfirmed)",
        "k3": "accepted by the SMTP server",
    }
    with engine.begin() as connection:
        for key, detail in details.items():
            connection.execute(
                sa.text(
                    "INSERT INTO reminders (key, source, customer_id, invoice_ids, "
                    "invoice_numbers, stage, channel, recipient, amount, currency, status, "
                    "planned_at, sent_at, detail) VALUES (:key, :source, :customer_id, "
                    ":invoice_ids, :invoice_numbers, :stage, :channel, :recipient, :amount, "
                    ":currency, 'sent', :planned_at, :sent_at, :detail)"
                ),
                {**row, "key": key, "detail": detail},
            )
    engine.dispose()
    store = Store.open(url)
    statuses = {key: store.reminder(key).status for key in details}  # type: ignore[union-attr]
    assert statuses == {"k1": "unconfirmed", "k2": "unconfirmed", "k3": "sent"}
    store.close()


def test_a_store_of_one_company_becomes_the_empty_workspace_with_nothing_lost(
    store_url: str,
) -> None:
    """0007 puts every row an earlier Kindly kept under the empty workspace name, with the
    workspace first in every key (SQLite copies its tables, PostgreSQL alters them)."""
    from datetime import UTC, datetime

    engine = _engine_at(store_url, "0006")
    stamp = "2026-12-01T10:00:00+00:00"
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO records VALUES ('ledger', 'invoices', 'I1', '{}', :t)"),
            {"t": stamp},
        )
        connection.execute(
            sa.text("INSERT INTO bookmarks VALUES ('ledger', 'snapshot', :v, :t)"),
            {"v": stamp, "t": stamp},
        )
        connection.execute(
            sa.text("INSERT INTO settings VALUES ('client:C1', 'tone', '\"firm\"', :t)"),
            {"t": stamp},
        )
        connection.execute(
            sa.text(
                "INSERT INTO reminders (key, source, customer_id, invoice_ids, invoice_numbers,"
                " stage, channel, recipient, amount, currency, status, planned_at) VALUES"
                " ('k1', 'ledger', 'C1', '[\"I1\"]', '[\"1\"]', 'first', 'email',"
                " 'a@example.com', '10.00', 'EUR', 'sent', :t)"
            ),
            {"t": stamp},
        )
        connection.execute(
            sa.text(
                "INSERT INTO scheduled_runs VALUES ('ledger', 'z', '2026-12-01', :c, :t, 'ok')"
            ),
            {"c": stamp, "t": stamp},
        )
    engine.dispose()
    store = Store.open(store_url)
    try:
        assert store.schema_revision() == SCHEMA_REVISION
        assert store.get_setting("client:C1", "tone") == "firm"
        assert store.get_bookmark("ledger", "snapshot") == stamp
        assert [r.key for r in store.reminders("ledger")] == ["k1"]
        assert store.runs_done("ledger") == {"z": datetime(2026, 12, 1, tzinfo=UTC).date()}
        with store.engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT workspace, record_id FROM records"))
            assert [tuple(row) for row in rows] == [("", "I1")]
        # The same key in another workspace is another row.
        other = store.in_workspace("acme")
        assert other.reminders("ledger") == []
        assert other.get_setting("client:C1", "tone") is None
    finally:
        store.close()

"""The store's tables, as SQLAlchemy Core describes them: :mod:`plugin.state.store` and
:mod:`plugin.state.leases` both use them, and the migrations in ``migrations/`` make them
(tests/test_migrations.py checks that the two agree).

Every table starts with ``workspace``: one database (PostgreSQL) may hold many workspaces,
each a customer of Kindly with its own settings, connections and tokens, clients, reminders,
notes and accounts. A :class:`~plugin.state.store.Store` is bound to one workspace and every
statement it makes names it. A single company's store uses the empty name.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "WORKSPACE_LENGTH",
    "bookmarks",
    "leases",
    "metadata",
    "records",
    "reminders",
    "scheduled_runs",
    "settings",
    "settings_documents",
    "workspace_column",
]

metadata = sa.MetaData()

#: The longest workspace name.
WORKSPACE_LENGTH = 100


def workspace_column() -> sa.Column[str]:
    """The first column of every table, and the first part of its key."""
    return sa.Column("workspace", sa.String(WORKSPACE_LENGTH), primary_key=True, server_default="")


records = sa.Table(
    "records",
    metadata,
    workspace_column(),
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("record_id", sa.String(200), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("synced_at", sa.String(40), nullable=False),
)
bookmarks = sa.Table(
    "bookmarks",
    metadata,
    workspace_column(),
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("resource", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)
reminders = sa.Table(
    "reminders",
    metadata,
    workspace_column(),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("invoice_ids", sa.Text, nullable=False),
    sa.Column("invoice_numbers", sa.Text, nullable=False),
    sa.Column("stage", sa.String(40), nullable=False),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("amount", sa.String(40), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("planned_at", sa.String(40), nullable=False),
    sa.Column("sent_at", sa.String(40)),
    sa.Column("note_written_at", sa.String(40)),
    sa.Column("message_id", sa.Text),
    sa.Column("detail", sa.Text),
    sa.Column("invoice_stages", sa.Text),
    sa.Column("charges", sa.Text),
    sa.Column("note_claimed_at", sa.String(40)),
)
settings = sa.Table(
    "settings",
    metadata,
    workspace_column(),
    sa.Column("scope", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

#: Who is sending for an organisation (plugin/state/leases.py).
leases = sa.Table(
    "leases",
    metadata,
    workspace_column(),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(100), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("process_started", sa.String(40)),
    sa.Column("acquired_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
)

#: The runs a scheduler handed to the workers (plugin/app/workers.py): one per organisation
#: (``source``), zone and local day.
scheduled_runs = sa.Table(
    "scheduled_runs",
    metadata,
    workspace_column(),
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("zone", sa.String(200), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("claimed_at", sa.String(40), nullable=False),
    sa.Column("done_at", sa.String(40), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
)

#: A workspace's company-level settings (what a kindly.toml says), held in the database
#: instead of a file (plugin/app/stored_settings.py): the TOML text as the user wrote it,
#: and its version, which a change names to be saved (compare and swap).
settings_documents = sa.Table(
    "settings_documents",
    metadata,
    workspace_column(),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("changed_at", sa.String(40), nullable=False),
)

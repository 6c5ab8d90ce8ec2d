"""Workspaces: one database holds many, every row names its own.

Every table gains ``workspace`` as the first column of its key (the empty name for the
rows already there: a store made by an earlier Kindly is one workspace's, unchanged).

PostgreSQL changes the tables in place; SQLite cannot change a primary key, so each of its
tables is copied into a new one with the new key, all in the migration's transaction.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: Each table and the columns of its old key.
KEYS = {
    "records": ("source", "kind", "record_id"),
    "bookmarks": ("source", "resource"),
    "reminders": ("key",),
    "settings": ("scope", "key"),
    "leases": ("name",),
    "scheduled_runs": ("source", "zone", "day"),
}


def _workspace() -> sa.Column[str]:
    return sa.Column("workspace", sa.String(100), nullable=False, server_default="")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table, key in KEYS.items():
            op.add_column(table, _workspace())
            op.drop_constraint(f"{table}_pkey", table, type_="primary")
            op.create_primary_key(f"{table}_pkey", table, ["workspace", *key])
    else:
        for table, key in KEYS.items():
            _copy_with_key(bind, table, ["workspace", *key])
    op.drop_index("ix_reminders_source_customer", table_name="reminders", if_exists=True)
    op.create_index(
        "ix_reminders_source_customer", "reminders", ["workspace", "source", "customer_id"]
    )


def _copy_with_key(bind: sa.engine.Connection, table: str, key: list[str]) -> None:
    old = sa.Table(table, sa.MetaData(), autoload_with=bind)
    columns = [
        sa.Column(
            column.name,
            column.type,
            nullable=column.nullable and column.name not in key,
            primary_key=column.name in key,
        )
        for column in old.columns
    ]
    new_name = f"{table}_0007"
    op.create_table(new_name, _workspace_key(), *columns)
    names = ", ".join(f'"{column.name}"' for column in old.columns)
    # Names of Kindly's own tables and columns, read from the database: no user input.
    op.execute(f'INSERT INTO "{new_name}" ({names}) SELECT {names} FROM "{table}"')  # noqa: S608
    op.drop_table(table)
    op.rename_table(new_name, table)


def _workspace_key() -> sa.Column[str]:
    return sa.Column("workspace", sa.String(100), primary_key=True, server_default="")


def downgrade() -> None:
    raise NotImplementedError("a store that holds workspaces cannot go back to one")

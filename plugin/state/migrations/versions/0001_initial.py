"""The first tables: synced records, sync bookmarks, the reminder log and settings.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "records",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(40), primary_key=True),
        sa.Column("record_id", sa.String(200), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("synced_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "bookmarks",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("resource", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "reminders",
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
    )
    op.create_index("ix_reminders_source_customer", "reminders", ["source", "customer_id"])
    op.create_table(
        "settings",
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("settings")
    op.drop_index("ix_reminders_source_customer", table_name="reminders")
    op.drop_table("reminders")
    op.drop_table("bookmarks")
    op.drop_table("records")

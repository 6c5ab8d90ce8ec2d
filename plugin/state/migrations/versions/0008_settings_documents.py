"""Company-level settings held in the database: one TOML document per workspace.

- ``settings_documents``: what a kindly.toml says, for a workspace that keeps its
  settings in the database (many organisations on workers reach no file). ``version`` is
  a digest of the text: a change is saved only where the version it started from is
  still there, with one conditional statement.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings_documents",
        sa.Column("workspace", sa.String(100), primary_key=True, server_default=""),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("changed_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("settings_documents")

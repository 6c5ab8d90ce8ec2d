"""Remember the stage each invoice reached, not only the reminder's.

A consolidated reminder goes out at the stage of its most advanced invoice; the others
keep their own stage, so none is pushed ahead (or ever goes back).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reminders") as batch:
        batch.add_column(sa.Column("invoice_stages", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reminders") as batch:
        batch.drop_column("invoice_stages")

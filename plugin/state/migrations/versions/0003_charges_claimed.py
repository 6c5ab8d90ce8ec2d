"""Remember the charges each reminder claimed.

Norway allows two reminder fees in six months, and the second only after the first one's
deadline: the planner has to know which reminders carried a fee. The note written back
and `kindly history` show what was claimed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reminders") as batch:
        batch.add_column(sa.Column("charges", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reminders") as batch:
        batch.drop_column("charges")

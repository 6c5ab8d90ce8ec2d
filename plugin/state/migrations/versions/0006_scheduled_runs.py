"""Scheduled runs: one row per organisation, zone and local day that a scheduler handed
to the workers.

- ``scheduled_runs``: claimed (``claimed_at``) with one conditional statement, so two
  schedulers never queue the same run; marked done (``done_at``) by the worker that ran
  it. A claim left without ``done_at`` longer than the queue's redelivery time may be
  queued again: the run itself is idempotent.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduled_runs",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("zone", sa.String(200), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("claimed_at", sa.String(40), nullable=False),
        sa.Column("done_at", sa.String(40), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("scheduled_runs")

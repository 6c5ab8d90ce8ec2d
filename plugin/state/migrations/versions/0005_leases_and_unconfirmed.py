"""Run leases, note claims, and "unconfirmed" as a status of its own.

- ``leases``: one row per organisation while a `kindly send` works on it: who holds it
  (host, process, when it started) and until when it is renewed. On PostgreSQL the lease
  itself is an advisory lock and the row only tells the next sender who is in the way; on
  SQLite the row is the lease.
- ``reminders.note_claimed_at``: when a sender set out to write the reminder's note. A
  note claimed and not marked written may be there in part (a crash, a failed call): the
  next try looks on each record before writing to it.
- A reminder whose delivery was never confirmed (the line dropped after the message was
  handed over, or a crash in that window) was logged as "sent" with "unconfirmed" in its
  detail, and `kindly history` showed it as sent. It becomes status "unconfirmed".

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("process_started", sa.String(40)),
        sa.Column("acquired_at", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
    )
    with op.batch_alter_table("reminders") as batch:
        batch.add_column(sa.Column("note_claimed_at", sa.String(40), nullable=True))
    reminders = sa.table(
        "reminders",
        sa.column("status", sa.String),
        sa.column("detail", sa.Text),
        sa.column("planned_at", sa.String),
        sa.column("note_written_at", sa.String),
        sa.column("note_claimed_at", sa.String),
    )
    op.execute(
        reminders.update()
        .where(
            reminders.c.status == "sent",
            sa.or_(
                reminders.c.detail.like("unconfirmed:%"),
                reminders.c.detail.like("%(unconfirmed)"),
            ),
        )
        .values(status="unconfirmed")
    )
    # A note pending from before may have been written by a run that died before saying
    # so: its next try looks first, as for a note claimed and not marked written.
    op.execute(
        reminders.update()
        .where(
            reminders.c.note_written_at.is_(None),
            reminders.c.status.in_(("sent", "unconfirmed", "failed")),
        )
        .values(note_claimed_at=reminders.c.planned_at)
    )


def downgrade() -> None:
    reminders = sa.table("reminders", sa.column("status", sa.String))
    op.execute(reminders.update().where(reminders.c.status == "unconfirmed").values(status="sent"))
    with op.batch_alter_table("reminders") as batch:
        batch.drop_column("note_claimed_at")
    op.drop_table("leases")

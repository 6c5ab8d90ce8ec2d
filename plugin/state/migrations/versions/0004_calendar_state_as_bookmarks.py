"""Calendars keep their state as bookmarks saved with the snapshot; drop the old copies.

Before, each calendar connector wrote its sync token and the events it had seen into the
settings table (scope ``calendar:…``, key ``state``) on its own. Those rows are no longer
read: the next sync reads each calendar in full once and keeps its state as a bookmark.
The rows hold attendees' addresses and event texts, so they are deleted rather than left.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    settings = sa.table("settings", sa.column("scope", sa.String), sa.column("key", sa.String))
    op.execute(
        settings.delete().where(settings.c.scope.like("calendar:%"), settings.c.key == "state")
    )


def downgrade() -> None:
    """Nothing to restore: an older Kindly reads its calendars in full once."""

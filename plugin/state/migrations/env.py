"""Alembic environment: Kindly runs migrations itself, on the connection the store opened."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Kindly's migrations run through plugin.state.store.Store, which passes a connection"
    )

context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

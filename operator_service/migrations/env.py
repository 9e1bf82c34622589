"""Alembic's environment: migrations run on the connection the store passes in
(`config.attributes["connection"]`), inside the store's transaction and lock."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through operator_service.store (ReceiptStore or migrate), "
        "which passes its connection"
    )
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()

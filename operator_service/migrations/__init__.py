"""The operator store's schema migrations (Alembic), one history for SQLite and PostgreSQL.

`operator_service.store.ReceiptStore` runs them on open (`upgrade`); a new revision is made
with `alembic -c operator_service/migrations/alembic.ini revision -m "..."` and written by hand
with `op.*` calls that both databases accept (tests/operator_service/test_shared_store.py migrates
both from empty and from the first revision).
"""

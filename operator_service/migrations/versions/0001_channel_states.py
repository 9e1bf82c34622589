"""Receipts as channel states: receipts, batches, channel positions (schema version 2).

This is the schema zkmeter wrote before it used Alembic; a database of that version (its
`meta.schema_version` is 2 and it has no `alembic_version`) is stamped at this revision and
upgraded from here.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: Row ids: INTEGER PRIMARY KEY (the rowid) in SQLite, BIGSERIAL in PostgreSQL.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "receipts",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("payer", sa.Text, nullable=False),
        sa.Column("operator", sa.Text, nullable=False),
        sa.Column("model_id", sa.BigInteger, nullable=False),
        sa.Column("nonce", sa.BigInteger, nullable=False),
        # cumulative tokens (< 2^128) and rate caps (< 2^256) exceed 64 bits: decimal text
        sa.Column("cumulative_tokens", sa.Text, nullable=False),
        sa.Column("max_rate_per_k_tokens", sa.Text, nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
        sa.Column("request_hash", sa.LargeBinary, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("signer", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("batch_seq", sa.BigInteger),
        sa.Column("admitted_at", sa.Double, nullable=False),
        sa.UniqueConstraint("payer", "operator", "model_id", "nonce"),
        sqlite_autoincrement=True,
    )
    op.create_index("receipts_state", "receipts", ["state", "id"])
    op.create_index("receipts_batch", "receipts", ["batch_seq"])
    op.create_table(
        "batches",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("log_size", sa.Integer, nullable=False),
        sa.Column("receipt_count", sa.Integer, nullable=False),
        sa.Column("public_json", sa.Text),
        sa.Column("proof", sa.LargeBinary),
        sa.Column("blinding_json", sa.Text),
        sa.Column("proof_path", sa.Text),
        sa.Column("tx_hash", sa.Text),
        sa.Column("gas_used", sa.BigInteger),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("proven_at", sa.Double),
        sa.Column("submitted_at", sa.Double),
        sa.Column("settled_at", sa.Double),
    )
    op.create_table(
        "channels",
        sa.Column("payer", sa.Text, primary_key=True),
        sa.Column("operator", sa.Text, primary_key=True),
        sa.Column("model_id", sa.BigInteger, primary_key=True),
        sa.Column("last_admitted", sa.BigInteger, nullable=False),
        sa.Column("last_cumulative", sa.Text, nullable=False),
    )
    op.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '2')")


def downgrade() -> None:
    for table in ("channels", "batches", "receipts", "meta"):
        op.drop_table(table)

"""A store shared by several processes: payer versions, batch claims, batcher leadership.

- `payers(payer, operator) -> version`: every admission that touches a payer's channels
  increments its version in the same transaction, only if it is still the version the
  admitting process read (compare and set). Intake processes cache payer state in memory and
  a stale cache loses the race instead of admitting twice or beyond credit. Holding and
  releasing a payer's receipts bump it too.
- `batches.claimed_by`, `batches.claim_expires`: a proving worker's lease on a batch.
- `leadership(name) -> epoch, holder, since`: the batcher's fencing token; every batcher
  write checks the epoch it was elected with.
- an index on receipts (payer, state) for the per-payer reads of admission and holding.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payers",
        sa.Column("payer", sa.Text, primary_key=True),
        sa.Column("operator", sa.Text, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.execute(
        "INSERT INTO payers (payer, operator, version) "
        "SELECT DISTINCT payer, operator, 1 FROM receipts"
    )
    op.add_column("batches", sa.Column("claimed_by", sa.Text))
    op.add_column("batches", sa.Column("claim_expires", sa.Double))
    op.create_table(
        "leadership",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("holder", sa.Text),
        sa.Column("since", sa.Double),
    )
    op.execute("INSERT INTO leadership (name, epoch) VALUES ('batcher', 0)")
    op.create_index("receipts_payer_state", "receipts", ["payer", "state"])
    op.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    op.drop_index("receipts_payer_state", "receipts")
    op.drop_table("leadership")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("claim_expires")
        batch.drop_column("claimed_by")
    op.drop_table("payers")

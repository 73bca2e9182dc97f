"""Webhook receipts: on the embedded broker, what a webhook answered 202 for is kept until it is applied

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_receipts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("partition", sa.Integer()),
        sa.Column("offset", sa.BigInteger()),
        sa.Column("key", sa.String(200)),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_receipts_position", "webhook_receipts", ["topic", "partition", "offset"])


def downgrade() -> None:
    op.drop_index("ix_webhook_receipts_position", "webhook_receipts")
    op.drop_table("webhook_receipts")

"""Ticket replies: help centre, exemplars, sources

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A ticket reply's sentence -> source mapping, shown to the agent and sent apart from the customer's text.
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("citations", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("drafts") as batch:
        batch.drop_column("citations")

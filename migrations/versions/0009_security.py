"""Security: signatures of Slack requests already run, so a replay within Slack's window runs nothing

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_slack_requests",
        sa.Column("signature", sa.String(100), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_seen_slack_requests_seen_at", "seen_slack_requests", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_seen_slack_requests_seen_at", table_name="seen_slack_requests")
    op.drop_table("seen_slack_requests")

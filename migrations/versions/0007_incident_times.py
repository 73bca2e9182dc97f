"""Incident firing windows, stale alerts

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        # Empty for incidents from before: their one window is opened_at..closed_at (incident_times.windows_of).
        batch.add_column(sa.Column("windows", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    # The best we know of when an existing alert was last sent: its row's last change.
    op.execute("UPDATE alerts SET last_seen_at = updated_at")


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("last_seen_at")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("windows")

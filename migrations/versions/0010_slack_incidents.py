"""Incidents in Slack: channels, roles, captured messages, status updates, follow-ups

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Captured messages, notes and roles are timeline_entries rows (source_ref "slack:<channel>:<ts>");
    # status updates are drafts of kind status_update: only the channel itself needs a table.
    op.create_table(
        "incident_channels",
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("channel_id", sa.String(40), nullable=False, unique=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("lead", sa.String(40)),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("summary_ts", sa.String(40)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("incident_channels")

"""Incident analysis: log templates and per-incident signatures, change events, correlated services, the
analysis stored with each draft, the template miner's saved state

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("services", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("log_events") as batch:
        batch.add_column(sa.Column("template_key", sa.String(32), nullable=True))
        batch.add_column(sa.Column("host", sa.String(200), nullable=True))
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("analysis", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "incident_signatures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id"), nullable=False, index=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("template_key", sa.String(32), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("host_count", sa.Integer(), nullable=False),
        sa.Column("per_minute", sa.JSON(), nullable=False),
        sa.Column("first_log_id", sa.Integer(), nullable=True),
        sa.UniqueConstraint("incident_id", "service", "template_key", name="uq_signature"),
    )
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("service", sa.String(200), nullable=False, index=True),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("log_id", sa.Integer(), nullable=True),
    )
    op.create_table(
        "miner_states",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Incidents opened before correlation have one service.
    op.execute("UPDATE incidents SET services = json_build_array(service)" if op.get_bind().dialect.name ==
               "postgresql" else "UPDATE incidents SET services = json_array(service)")


def downgrade() -> None:
    op.drop_table("miner_states")
    op.drop_table("changes")
    op.drop_table("incident_signatures")
    with op.batch_alter_table("drafts") as batch:
        batch.drop_column("analysis")
    with op.batch_alter_table("log_events") as batch:
        batch.drop_column("host")
        batch.drop_column("template_key")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("services")

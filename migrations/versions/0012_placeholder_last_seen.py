"""Placeholders remember when they were last seen, so retention can delete those of log scopes no one uses;
their index on scope alone goes (the unique (scope, digest) index serves look-ups by scope)

Revision ID: 0012
Revises: 0011

A log scope (`log:<service>`) gains a placeholder per distinct address or name a service ever logged; without a
time of use they could never be deleted (a kept line may share one with a purged line). Rows stored so far are
stamped with the migration's time: they are kept for one retention period from now.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("placeholders") as batch:
        batch.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True)))
    # A typed column, so SQLite gets the same text form as the ORM writes (its comparisons are on text).
    placeholders = sa.table("placeholders", sa.column("last_seen_at", sa.DateTime(timezone=True)))
    op.execute(placeholders.update().values(last_seen_at=datetime.now(UTC)))
    op.create_index("ix_placeholders_last_seen_at", "placeholders", ["last_seen_at"])
    op.drop_index("ix_placeholders_scope", "placeholders")


def downgrade() -> None:
    op.create_index("ix_placeholders_scope", "placeholders", ["scope"])
    op.drop_index("ix_placeholders_last_seen_at", "placeholders")
    with op.batch_alter_table("placeholders") as batch:
        batch.drop_column("last_seen_at")

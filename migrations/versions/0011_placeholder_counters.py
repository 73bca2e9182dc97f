"""Placeholder counters: the last number per scope and entity type (ingest read it by sorting the scope's rows)

Revision ID: 0011
Revises: 0010

Filled from the placeholders stored so far (a scope without a row has none).
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "placeholder_counters",
        sa.Column("scope", sa.String(100), primary_key=True),
        sa.Column("entity_type", sa.String(60), primary_key=True),
        sa.Column("last", sa.Integer(), nullable=False),
    )
    last: dict[tuple[str, str], int] = {}
    pattern = re.compile(r"<([A-Z_]+)_(\d+)>")
    for scope, placeholder in op.get_bind().execute(sa.text("SELECT scope, placeholder FROM placeholders")):
        m = pattern.fullmatch(placeholder)
        if m:
            last[(scope, m[1])] = max(last.get((scope, m[1]), 0), int(m[2]))
    counters = sa.table("placeholder_counters", sa.column("scope", sa.String), sa.column("entity_type", sa.String),
                        sa.column("last", sa.Integer))
    rows = [{"scope": scope, "entity_type": kind, "last": n} for (scope, kind), n in last.items()]
    for i in range(0, len(rows), 1000):
        op.bulk_insert(counters, rows[i:i + 1000])


def downgrade() -> None:
    op.drop_table("placeholder_counters")

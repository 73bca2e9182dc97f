"""Consumer offsets stored with the effects of each batch (exactly-once by offsets); the per-message digest table
goes. Each (topic, partition) the old table saw starts from just after the last message it recorded, for every
group (the old table knew no groups: opsdraft/offsets.py reads these rows as LEGACY_GROUP)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consumer_offsets",
        sa.Column("group_id", sa.String(200), primary_key=True),
        sa.Column("topic", sa.String(200), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("ahead", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(
        "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset, ahead, updated_at) "
        "SELECT '', topic, partition, MAX(\"offset\") + 1, '[]', MAX(at) FROM consumed_messages "
        "GROUP BY topic, partition"
    )
    op.drop_table("consumed_messages")


def downgrade() -> None:
    op.create_table(
        "consumed_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("topic", "digest", name="uq_consumed_topic_digest"),
    )
    op.drop_table("consumer_offsets")

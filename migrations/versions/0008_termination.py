"""保单提前终止: each policy's refund in its application, a policy's end date and refund once ended,
and the index that finds a policy's pending application

Revision ID: 0008_termination
Revises: 0007_perf
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_termination"
down_revision = "0004_hardening"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("termination_policy", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refund", sa.Numeric(precision=12, scale=2), nullable=True))
        batch_op.create_index("ix_termination_policy_policy_id", ["policy_id"], unique=False)
    with op.batch_alter_table("policy", schema=None) as batch_op:
        batch_op.add_column(sa.Column("terminated_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("refund", sa.Numeric(precision=12, scale=2), nullable=True))


def downgrade():
    with op.batch_alter_table("policy", schema=None) as batch_op:
        batch_op.drop_column("refund")
        batch_op.drop_column("terminated_on")
    with op.batch_alter_table("termination_policy", schema=None) as batch_op:
        batch_op.drop_index("ix_termination_policy_policy_id")
        batch_op.drop_column("refund")

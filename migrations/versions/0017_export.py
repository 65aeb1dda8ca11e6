"""export (issue 11): the index 即将到期订单 and its export read — 打印生效 policies in (到期日期, id)
order, so a month (or the first 200,000 rows) comes in order without a sort (see models/policy.py)

Revision ID: 0017_export
Revises: 0008_termination
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_export"
down_revision = "0008_termination"
branch_labels = None
depends_on = None

EFFECTIVE_SQL = "status = 'EFFECTIVE'"


def upgrade():
    with op.batch_alter_table("policy", schema=None) as batch_op:
        batch_op.create_index(
            "ix_policy_effective_expiry",
            ["expiry_date", "id"],
            unique=False,
            postgresql_where=sa.text(EFFECTIVE_SQL),
            sqlite_where=sa.text(EFFECTIVE_SQL),
        )


def downgrade():
    with op.batch_alter_table("policy", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_effective_expiry")

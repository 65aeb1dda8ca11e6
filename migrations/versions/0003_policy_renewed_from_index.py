"""index policy.renewed_from_id (partial): the FK check of each deleted policy

Revision ID: 0003_renewed_from_index
Revises: 0002_provenance_no_fk
"""
from alembic import op
import sqlalchemy as sa

revision = "0003_renewed_from_index"
down_revision = "0002_provenance_no_fk"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_policy_renewed_from_id", "policy", ["renewed_from_id"], unique=False,
                    postgresql_where=sa.text("renewed_from_id IS NOT NULL"),
                    sqlite_where=sa.text("renewed_from_id IS NOT NULL"))


def downgrade():
    op.drop_index("ix_policy_renewed_from_id", table_name="policy")

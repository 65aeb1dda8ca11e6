"""perf (issue 13): one pass per file — the stage 业务校验 keeps for 业务办理

- batch_stage: one row per checked data row (outcome, normalised values, the facts it was checked
  on); UNLOGGED on PostgreSQL (a work table: no WAL, emptied by a crash)
- import_batch.stage_key: what the stage was checked for
- policy: indexes on columns most rows leave empty only where set (保单号 unique once assigned,
  receipt, import batch), so a new policy and each state change of one not yet effective write no
  entry into them; 10 % free space on each page (fillfactor 90: applies to pages written from now
  on, or to all after VACUUM FULL / pg_repack)

Revision ID: 0007_perf
Revises: 0016_batch_jobs
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_perf"
down_revision = "0016_batch_jobs"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "batch_stage",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("row_no", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=30), nullable=True),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("warnings", sa.String(length=200), nullable=False),
        sa.Column("id_number", sa.String(length=18), nullable=True),
        sa.Column("name", sa.String(length=50), nullable=True),
        sa.Column("gender", sa.String(length=1), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=True),
        sa.Column("shares", sa.Integer(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("key_kind", sa.String(length=3), nullable=True),
        sa.Column("key_value", sa.String(length=30), nullable=True),
        sa.Column("member_version", sa.Integer(), nullable=True),
        sa.Column("in_flight", sa.Boolean(), nullable=True),
        sa.Column("same_period", sa.Boolean(), nullable=True),
        sa.Column("live_shares", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("batch_id", "row_no", name=op.f("pk_batch_stage")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE batch_stage SET UNLOGGED")
    with op.batch_alter_table("import_batch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage_key", sa.String(length=64), nullable=True))

    op.create_index(
        "uq_policy_no",
        "policy",
        ["policy_no"],
        unique=True,
        postgresql_where=sa.text("policy_no IS NOT NULL"),
        sqlite_where=sa.text("policy_no IS NOT NULL"),
    )
    op.create_index(
        "ix_policy_receipt",
        "policy",
        ["receipt_id"],
        postgresql_where=sa.text("receipt_id IS NOT NULL"),
        sqlite_where=sa.text("receipt_id IS NOT NULL"),
    )
    op.create_index(
        "ix_policy_import_batch",
        "policy",
        ["import_batch_id"],
        postgresql_where=sa.text("import_batch_id IS NOT NULL"),
        sqlite_where=sa.text("import_batch_id IS NOT NULL"),
    )
    with op.batch_alter_table("policy", schema=None) as batch_op:
        batch_op.drop_constraint("uq_policy_policy_no", type_="unique")
        batch_op.drop_index("ix_policy_receipt_id")
        batch_op.drop_index("ix_policy_import_batch_id")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE policy SET (fillfactor = 90)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE policy RESET (fillfactor)")
    with op.batch_alter_table("policy", schema=None) as batch_op:
        batch_op.create_index("ix_policy_import_batch_id", ["import_batch_id"], unique=False)
        batch_op.create_index("ix_policy_receipt_id", ["receipt_id"], unique=False)
        batch_op.create_unique_constraint("uq_policy_policy_no", ["policy_no"])
    op.drop_index("ix_policy_import_batch", table_name="policy")
    op.drop_index("ix_policy_receipt", table_name="policy")
    op.drop_index("uq_policy_no", table_name="policy")
    with op.batch_alter_table("import_batch", schema=None) as batch_op:
        batch_op.drop_column("stage_key")
    op.drop_table("batch_stage")

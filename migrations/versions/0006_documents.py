"""documents: receipts keep their parameters and PDF bytes, 作废, and which policies they covered

Revision ID: 0006_documents
Revises: 0003_renewed_from_index
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_documents"
down_revision = "0003_renewed_from_index"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("receipt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=20), server_default="VALID", nullable=False))
        batch_op.create_check_constraint(op.f("ck_receipt_receiptstatus"), "status IN ('VALID', 'VOID')")
        batch_op.add_column(sa.Column("params", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("pdf", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("void_pdf", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("void_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("voided_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("voided_at", sa.DateTime(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_receipt_voided_by_id_user"), "user", ["voided_by_id"], ["id"])

    op.create_table(
        "receipt_policy",
        sa.Column("receipt_id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["policy_id"], ["policy.id"], name=op.f("fk_receipt_policy_policy_id_policy")),
        sa.ForeignKeyConstraint(["receipt_id"], ["receipt.id"], name=op.f("fk_receipt_policy_receipt_id_receipt")),
        sa.PrimaryKeyConstraint("receipt_id", "policy_id", name=op.f("pk_receipt_policy")),
    )
    op.create_index(op.f("ix_receipt_policy_policy_id"), "receipt_policy", ["policy_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_receipt_policy_policy_id"), table_name="receipt_policy")
    op.drop_table("receipt_policy")
    with op.batch_alter_table("receipt", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_receipt_voided_by_id_user"), type_="foreignkey")
        batch_op.drop_constraint(op.f("ck_receipt_receiptstatus"), type_="check")
        batch_op.drop_column("voided_at")
        batch_op.drop_column("voided_by_id")
        batch_op.drop_column("void_reason")
        batch_op.drop_column("void_pdf")
        batch_op.drop_column("params")
        batch_op.drop_column("pdf")
        batch_op.drop_column("status")

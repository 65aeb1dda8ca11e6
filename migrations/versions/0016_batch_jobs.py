"""batch jobs: a big file is checked/processed by a background worker (校验中, 办理中, 已中断) and the
batch remembers which run is under way

Revision ID: 0016_batch_jobs
Revises: 0005_applications
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_batch_jobs"
down_revision = "0005_applications"
branch_labels = None
depends_on = None

OLD = ("uploaded", "checked", "processed", "failed")
NEW = OLD + ("checking", "processing", "interrupted")


def _status_check(values) -> str:
    return "status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade():
    with op.batch_alter_table("import_batch", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_import_batch_batchstatus"), type_="check")
        batch_op.create_check_constraint(op.f("ck_import_batch_batchstatus"), _status_check(NEW))
        batch_op.add_column(sa.Column("job_id", sa.String(length=36), nullable=True))


def downgrade():
    op.execute(
        "UPDATE import_batch SET status = CASE WHEN checked_at IS NULL THEN 'uploaded' ELSE 'checked' END"
        " WHERE status IN ('checking', 'processing', 'interrupted')"
    )
    with op.batch_alter_table("import_batch", schema=None) as batch_op:
        batch_op.drop_column("job_id")
        batch_op.drop_constraint(op.f("ck_import_batch_batchstatus"), type_="check")
        batch_op.create_check_constraint(op.f("ck_import_batch_batchstatus"), _status_check(OLD))

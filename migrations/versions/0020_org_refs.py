"""org references kept once per statement (issue 13): on PostgreSQL member.org_id and policy.org_id
are checked by statement-level triggers instead of per-row foreign keys (models/integrity.py);
SQLite keeps the foreign keys as they were.

Revision ID: 0020_org_refs
Revises: 0018_audit
"""

from alembic import op

from models.integrity import create_statements, drop_statements

revision = "0020_org_refs"
down_revision = "0018_audit"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint("fk_member_org_id_org", "member", type_="foreignkey")
    op.drop_constraint("fk_policy_org_id_org", "policy", type_="foreignkey")
    for sql in create_statements():
        op.execute(sql)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for sql in drop_statements():
        op.execute(sql)
    op.create_foreign_key("fk_member_org_id_org", "member", "org", ["org_id"], ["id"])
    op.create_foreign_key("fk_policy_org_id_org", "policy", "org", ["org_id"], ["id"])

"""audit (issue 13, lever 4): set-based audit — an action on several records is ONE audit row
naming them (entity_ids: integer[] with a GIN index on PostgreSQL, a JSON array on SQLite) and
their number (entity_count); a single-record row keeps entity_id.  Existing rows stay as they are
(single-record rows: entity_count 1, entity_ids NULL).

Revision ID: 0018_audit
Revises: 0017_export
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018_audit"
down_revision = "0017_export"
branch_labels = None
depends_on = None

ID_LIST = sa.JSON(none_as_null=True).with_variant(postgresql.ARRAY(sa.Integer), "postgresql")
GROUPED_SQL = "entity_ids IS NOT NULL"


def upgrade():
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entity_ids", ID_LIST, nullable=True))
        batch_op.add_column(sa.Column("entity_count", sa.Integer(), server_default="1", nullable=False))
        batch_op.alter_column("entity_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_check_constraint("one_or_many", "(entity_id IS NULL) <> (entity_ids IS NULL)")
        batch_op.create_index(
            "ix_audit_log_entity_ids",
            ["entity_ids"],
            unique=False,
            postgresql_using="gin",
            postgresql_with={"fastupdate": "off"},
            postgresql_where=sa.text(GROUPED_SQL),
            sqlite_where=sa.text(GROUPED_SQL),
        )


def downgrade():
    # a grouped row becomes a row per record again (what every row was before this revision)
    conn = op.get_bind()
    columns = "created_at, user_id, action, entity, entity_id, before, after"
    if conn.dialect.name == "postgresql":
        each = "unnest(a.entity_ids) AS e(value)"
    else:
        each = "json_each(a.entity_ids) AS e"
    op.execute(
        f"INSERT INTO audit_log ({columns}) SELECT a.created_at, a.user_id, a.action, a.entity, e.value, "
        f"a.before, a.after FROM audit_log a, {each} WHERE a.entity_ids IS NOT NULL"
    )
    op.execute("DELETE FROM audit_log WHERE entity_ids IS NOT NULL")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_entity_ids")
        batch_op.drop_constraint(batch_op.f("ck_audit_log_one_or_many"), type_="check")
        batch_op.alter_column("entity_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("entity_count")
        batch_op.drop_column("entity_ids")

"""indexes (issue 13): the index diet of policy — 上报 and 打回 update in place (HOT)

- policy.phase: the status, with 新建/打回/上报 as one phase IN_FLIGHT; a stored column the database
  computes from the status (models/policy.py PHASE_SQL).  The indexes name the phase instead of the
  status, so a state change within the in-flight phase (上报, 打回, 重新上报) touches no indexed column
  and PostgreSQL can write the new row version on its page without index entries.
- uq_policy_in_flight, uq_policy_live_period, ix_policy_effective_expiry: the same rows, their WHERE
  by phase.
- ix_policy_org_status_product → ix_policy_org_phase_product; ix_policy_status_product →
  ix_policy_phase_product.
- ix_policy_expiry_date dropped: every query by 到期日期 is of 打印生效 policies
  (ix_policy_effective_expiry).
- st_policy_list: extended statistics of the list filters' columns (status is checked on the row now).
- policy vacuumed and analyzed after 1 % of its rows changed (a big 上报 clears visibility-map bits).
- member.name: the pattern operator class, so that 姓名's prefix search uses it in any collation.
- member.import_batch_id indexed only where set (members entered on the form have none).

Adding the stored column rewrites the policy table (about 20 s per 3M rows on 2 cores, the table
locked meanwhile): run it in a quiet hour.

Revision ID: 0019_indexes
Revises: 0020_org_refs
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_indexes"
down_revision = "0020_org_refs"
branch_labels = None
depends_on = None

IN_FLIGHT = ("NEW", "RETURNED", "REPORTED")
PHASE_SQL = "CASE WHEN status IN ({}) THEN 'IN_FLIGHT' ELSE status END".format(", ".join(f"'{s}'" for s in IN_FLIGHT))

OLD = {
    "uq_policy_in_flight": "status IN ('NEW', 'RETURNED', 'REPORTED')",
    "uq_policy_live_period": "status IN ('AGENCY_REPORTED', 'EFFECTIVE')",
    "ix_policy_effective_expiry": "status = 'EFFECTIVE'",
}
NEW = {
    "uq_policy_in_flight": "phase = 'IN_FLIGHT'",
    "uq_policy_live_period": "phase IN ('AGENCY_REPORTED', 'EFFECTIVE')",
    "ix_policy_effective_expiry": "phase = 'EFFECTIVE'",
}
COLUMNS = {
    "uq_policy_in_flight": ["member_id", "product_id"],
    "uq_policy_live_period": ["member_id", "product_id", "expected_effective_date"],
    "ix_policy_effective_expiry": ["expiry_date", "id"],
}


def _partial(name: str, where: dict) -> None:
    op.create_index(
        name,
        "policy",
        COLUMNS[name],
        unique=name.startswith("uq_"),
        postgresql_where=sa.text(where[name]),
        sqlite_where=sa.text(where[name]),
    )


def upgrade():
    for name in (*COLUMNS, "ix_policy_org_status_product", "ix_policy_status_product", "ix_policy_expiry_date"):
        op.drop_index(name, table_name="policy")
    phase = sa.Column("phase", sa.String(length=20), sa.Computed(PHASE_SQL, persisted=True), nullable=True)
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a stored generated column only by building the table again
        with op.batch_alter_table("policy", recreate="always") as batch_op:
            batch_op.add_column(phase)
    else:
        op.add_column("policy", phase)
    op.create_index("ix_policy_org_phase_product", "policy", ["org_id", "phase", "product_id", "id"])
    op.create_index("ix_policy_phase_product", "policy", ["phase", "product_id", "id"])
    for name in COLUMNS:
        _partial(name, NEW)
    if op.get_bind().dialect.name == "postgresql":
        # the list filters' combinations (models/policy.py POLICY_LIST_STATISTICS), counted now
        op.execute("CREATE STATISTICS st_policy_list (mcv) ON org_id, phase, status, product_id FROM policy")
        op.execute("ANALYZE policy")
        # VACUUM (and ANALYZE) after 1 % of the rows changed: models/policy.py POLICY_AUTOVACUUM
        op.execute(
            "ALTER TABLE policy SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.01)"
        )

    # 姓名 search is a prefix (LIKE '王伟%'): a btree of the default operator class serves it only
    # in the C collation (PostgreSQL 15 counts C.UTF-8 out): the pattern class does in any
    op.drop_index("ix_member_name", table_name="member")
    op.create_index("ix_member_name", "member", ["name"], postgresql_ops={"name": "varchar_pattern_ops"})
    op.drop_index("ix_member_import_batch_id", table_name="member")
    op.create_index(
        "ix_member_import_batch",
        "member",
        ["import_batch_id"],
        postgresql_where=sa.text("import_batch_id IS NOT NULL"),
        sqlite_where=sa.text("import_batch_id IS NOT NULL"),
    )


def downgrade():
    op.drop_index("ix_member_import_batch", table_name="member")
    op.create_index("ix_member_import_batch_id", "member", ["import_batch_id"])
    op.drop_index("ix_member_name", table_name="member")
    op.create_index("ix_member_name", "member", ["name"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE policy RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor)")
        op.execute("DROP STATISTICS IF EXISTS st_policy_list")
    for name in (*COLUMNS, "ix_policy_org_phase_product", "ix_policy_phase_product"):
        op.drop_index(name, table_name="policy")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("policy", recreate="always") as batch_op:
            batch_op.drop_column("phase")
    else:
        op.drop_column("policy", "phase")
    op.create_index("ix_policy_org_status_product", "policy", ["org_id", "status", "product_id", "id"])
    op.create_index("ix_policy_status_product", "policy", ["status", "product_id", "id"])
    op.create_index("ix_policy_expiry_date", "policy", ["expiry_date"])
    for name in COLUMNS:
        _partial(name, OLD)

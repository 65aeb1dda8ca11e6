"""hardening (issue 15): the enrolment rules as unique indexes, server-side sessions, the login throttle

- uq_policy_in_flight: one 新建/打回/上报 policy per (member, product)     (IN_FLIGHT)
- uq_policy_live_period: one live policy per (member, product, 预期生效时间) (DUPLICATE)
- user_session: the session behind the cookie's random token
- login_failure: wrong passwords by address and username (growing delays)

Existing duplicates (from the race these indexes close) stop the upgrade with a list of the
policies to sort out first; nothing is changed for them.

Revision ID: 0004_hardening
Revises: 0007_perf
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_hardening"
down_revision = "0007_perf"
branch_labels = None
depends_on = None

IN_FLIGHT = "status IN ('NEW', 'RETURNED', 'REPORTED')"
LIVE = "status IN ('AGENCY_REPORTED', 'EFFECTIVE')"


def _refuse_duplicates(key: str, where: str, what: str) -> None:
    rows = (
        op.get_bind()
        .execute(
            sa.text(
                f"SELECT member_id, product_id, COUNT(*) AS n, MIN(id) AS first_id, MAX(id) AS last_id "
                f"FROM policy WHERE {where} GROUP BY {key} HAVING COUNT(*) > 1 ORDER BY member_id LIMIT 50"
            )
        )
        .all()
    )
    if rows:
        listed = "; ".join(f"member {r.member_id} product {r.product_id}: {r.n} policies (ids {r.first_id}…{r.last_id})" for r in rows)
        raise RuntimeError(
            f"Cannot add the {what} guard: these members already have more than one such policy. "
            f"Delete or return the extra ones, then upgrade again. {listed}"
        )


def upgrade():
    _refuse_duplicates("member_id, product_id", IN_FLIGHT, "IN_FLIGHT (one in-flight policy per member and product)")
    _refuse_duplicates(
        "member_id, product_id, expected_effective_date", LIVE, "DUPLICATE (one live policy per member, product and date)"
    )
    op.create_index(
        "uq_policy_in_flight",
        "policy",
        ["member_id", "product_id"],
        unique=True,
        postgresql_where=sa.text(IN_FLIGHT),
        sqlite_where=sa.text(IN_FLIGHT),
    )
    op.create_index(
        "uq_policy_live_period",
        "policy",
        ["member_id", "product_id", "expected_effective_date"],
        unique=True,
        postgresql_where=sa.text(LIVE),
        sqlite_where=sa.text(LIVE),
    )
    op.create_table(
        "user_session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_user_session_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_session")),
    )
    op.create_index(op.f("ix_user_session_user_id"), "user_session", ["user_id"], unique=False)
    op.create_index(op.f("ix_user_session_expires_at"), "user_session", ["expires_at"], unique=False)
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failure")),
    )
    op.create_index("ix_login_failure_ip_failed_at", "login_failure", ["ip", "failed_at"], unique=False)
    op.create_index(
        "ix_login_failure_username_ip_failed_at", "login_failure", ["username", "ip", "failed_at"], unique=False
    )


def downgrade():
    op.drop_index("ix_login_failure_username_ip_failed_at", table_name="login_failure")
    op.drop_index("ix_login_failure_ip_failed_at", table_name="login_failure")
    op.drop_table("login_failure")
    op.drop_index(op.f("ix_user_session_expires_at"), table_name="user_session")
    op.drop_index(op.f("ix_user_session_user_id"), table_name="user_session")
    op.drop_table("user_session")
    op.drop_index("uq_policy_live_period", table_name="policy")
    op.drop_index("uq_policy_in_flight", table_name="policy")

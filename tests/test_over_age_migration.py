"""Migration 0005: over-age exceptions granted before the request screen existed keep working, as
requests approved by the agency above the member's unit."""

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from test_migrations import empty_database  # noqa: F401  (the fixture)

from app import create_app
from models import db


@pytest.mark.committed
def test_existing_exception_flags_become_agency_approved_requests(empty_database):  # noqa: F811
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database, "SECRET_KEY": "x", "SMS_BACKEND": "memory"})
    with app.app_context():
        upgrade(revision="0003_renewed_from_index")
        now = "2026-01-01 00:00:00"
        with db.engine.begin() as conn:
            for i, (code, path, level, parent) in enumerate(
                [("0101", "/0101/", "agency", None), ("010101", "/0101/010101/", "unit", 1)], start=1
            ):
                conn.execute(
                    sa.text(
                        "INSERT INTO org (id, code, name, level, parent_id, path, active) VALUES (:i, :c, :c, :l, :p, :path, :t)"
                    ),
                    dict(i=i, c=code, l=level, p=parent, path=path, t=True),
                )
            conn.execute(
                sa.text(
                    'INSERT INTO "user" (id, username, display_name, password_hash, phone, org_id, role, active, '
                    "failed_attempts, login_code_tries, created_at, updated_at) VALUES "
                    "(7, 'agency1', '', 'x', '+8613800000004', 1, 'agency_staff', :t, 0, 0, :n, :n)"
                ),
                dict(t=True, n=now),
            )
            for mid, flag in ((1, True), (2, False)):
                conn.execute(
                    sa.text(
                        "INSERT INTO member (id, member_no, id_number, name, gender, birth_date, org_id, status, "
                        "over_age_exception, over_age_note, created_at, updated_at, version) VALUES "
                        "(:i, :no, :idn, :name, 'M', '1965-03-01', 2, 'CONFIRMED', :f, :note, :n, :n, 1)"
                    ),
                    dict(
                        i=mid,
                        no=f"{mid:010d}",
                        idn=f"11010519650301{mid:03d}X"[:18],
                        name=f"老{mid}",
                        f=flag,
                        note="局级干部" if flag else None,
                        n=now,
                    ),
                )
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT member_id, org_id, status, decided_by_id, reason FROM over_age_application")
            ).all()
            approver = conn.execute(sa.text("SELECT over_age_approved_by_id FROM member WHERE id = 1")).scalar()
        assert [tuple(r) for r in rows] == [(1, 2, "APPROVED", 7, "局级干部")]
        assert approver == 7
        db.engine.dispose()

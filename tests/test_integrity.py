"""No member and no policy without its unit: on PostgreSQL the org references are kept once per
statement (models/integrity.py) instead of by per-row foreign keys, with the same guarantees —
whichever way a row is written (the ORM, INSERT … SELECT, COPY), moved, or its unit deleted."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
import sqlalchemy as sa

from batch.sql import CopyRows, bulk_insert
from models import Member, Org, OrgLevel, Policy, Product, db
from models.integrity import STATEMENT_CHECKED

MISSING = 987654321  # no org has this id


@pytest.fixture
def pg(ctx):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the statement triggers are PostgreSQL's (SQLite keeps the declared foreign keys)")


def _unit(code: str) -> Org:
    parent = db.session.scalar(sa.select(Org).where(Org.level == OrgLevel.AGENCY).limit(1))
    org = Org(code=code, name=f"测试单位{code}", level=OrgLevel.UNIT, parent_id=parent.id, path=f"{parent.path}{code}/")
    db.session.add(org)
    db.session.flush()
    return org


def _member(org_id: int, n: int) -> Member:
    m = Member(
        member_no=f"T{n:09d}",
        id_number=f"11010519800101{n:04d}"[:18],
        name="测试",
        gender="M",
        birth_date=dt.date(1980, 1, 1),
        org_id=org_id,
    )
    db.session.add(m)
    return m


def _raw_member_row(org_id: int, n: int) -> tuple:
    now = dt.datetime(2026, 12, 1, 8, 0)
    return (f"T{n:09d}", f"1101051980010{n:05d}"[:18], "测试", "M", dt.date(1980, 1, 1), org_id, "NEW",
            dt.date(2026, 12, 1), False, now, now, 1)  # fmt: skip


RAW_COLUMNS = ["member_no", "id_number", "name", "gender", "birth_date", "org_id", "status", "admitted_on",
               "over_age_exception", "created_at", "updated_at", "version"]  # fmt: skip


def test_on_postgresql_the_org_references_are_triggers_and_no_longer_per_row_foreign_keys(app, pg):
    fks = {
        (r.table, r.column)
        for r in db.session.execute(
            sa.text(
                "SELECT c.conrelid::regclass::text AS table, a.attname AS column FROM pg_constraint c "
                "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
                "WHERE c.contype = 'f' AND c.confrelid = 'org'::regclass"
            )
        )
    }
    assert not fks & set(STATEMENT_CHECKED)
    triggers = set(
        db.session.scalars(sa.text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE '%org%'"))
    )
    assert {"member_org_insert", "member_org_update", "policy_org_insert", "policy_org_update"} <= triggers
    assert {"org_refs_delete", "org_refs_update"} <= triggers


def test_a_member_cannot_be_admitted_to_a_unit_that_does_not_exist(app, pg):
    _member(MISSING, 1)
    with pytest.raises(sa.exc.IntegrityError, match="fk_member_org_id_org"):
        db.session.flush()


def test_a_batch_written_by_copy_cannot_name_a_unit_that_does_not_exist(app, pg):
    unit = db.session.scalar(sa.select(Org.id).where(Org.level == OrgLevel.UNIT).limit(1))
    rows = CopyRows([_raw_member_row(unit, 1), _raw_member_row(MISSING, 2), _raw_member_row(unit, 3)])
    with pytest.raises(sa.exc.IntegrityError, match="fk_member_org_id_org"):
        bulk_insert(db.session, Member.__table__, RAW_COLUMNS, rows)


def test_rows_of_existing_units_are_written_by_copy_and_insert_select(app, pg):
    unit = db.session.scalar(sa.select(Org.id).where(Org.level == OrgLevel.UNIT).limit(1))
    bulk_insert(db.session, Member.__table__, RAW_COLUMNS, CopyRows([_raw_member_row(unit, n) for n in range(1, 4)]))
    db.session.execute(
        sa.insert(Member.__table__).from_select(
            RAW_COLUMNS,
            sa.select(
                *[
                    sa.func.replace(Member.member_no, "T", "U")
                    if c == "member_no"
                    else sa.func.replace(Member.id_number, "110105", "110106")
                    if c == "id_number"
                    else Member.__table__.c[c]
                    for c in RAW_COLUMNS
                ]  # fmt: skip
            ).where(Member.member_no.like("T%")),
        )
    )
    written = db.session.scalars(
        sa.select(Member.member_no).where(Member.member_no.like("_00000000_"), Member.member_no.notlike("0%"))
    ).all()
    assert sorted(written) == ["T000000001", "T000000002", "T000000003", "U000000001", "U000000002", "U000000003"]


def test_a_policy_cannot_name_a_unit_that_does_not_exist(app, pg):
    member = db.session.scalar(sa.select(Member).limit(1))
    product = db.session.scalar(sa.select(Product).limit(1))
    db.session.add(
        Policy(
            member_id=member.id,
            product_id=product.id,
            org_id=MISSING,
            shares=1,
            amount=product.price,
            expected_effective_date=dt.date(2027, 1, 1),
            expiry_date=dt.date(2027, 12, 31),
        )  # fmt: skip
    )
    with pytest.raises(sa.exc.IntegrityError, match="fk_policy_org_id_org"):
        db.session.flush()


def test_moving_a_member_to_a_unit_that_does_not_exist_is_refused_and_to_one_that_does_is_not(app, pg):
    unit = _unit("T90001")
    member = db.session.scalar(sa.select(Member).limit(1))
    db.session.execute(sa.update(Member).where(Member.id == member.id).values(org_id=unit.id))
    with pytest.raises(sa.exc.IntegrityError, match="fk_member_org_id_org"):
        db.session.execute(sa.update(Member).where(Member.id == member.id).values(org_id=MISSING))


def test_a_unit_that_still_has_members_cannot_be_deleted(app, pg):
    unit = _unit("T90002")
    _member(unit.id, 7)
    db.session.flush()
    with pytest.raises(sa.exc.IntegrityError, match="fk_member_org_id_org"):
        db.session.execute(sa.delete(Org).where(Org.id == unit.id))


def test_a_unit_that_still_has_policies_cannot_be_deleted(app, pg):
    unit = _unit("T90003")
    policy = db.session.scalar(sa.select(Policy).limit(1))
    db.session.execute(sa.update(Policy).where(Policy.id == policy.id).values(org_id=unit.id))
    with pytest.raises(sa.exc.IntegrityError, match="fk_policy_org_id_org"):
        db.session.execute(sa.delete(Org).where(Org.id == unit.id))


def test_an_empty_unit_can_be_deleted(app, pg):
    unit = _unit("T90004")
    assert db.session.execute(sa.delete(Org).where(Org.id == unit.id)).rowcount == 1


@pytest.mark.committed
def test_deleting_a_unit_waits_for_the_batch_that_names_it_and_is_then_refused(app, pg):
    """The foreign key's lock, kept: the write key-share locks the unit, so a DELETE of it waits."""
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as admin:
        admin.autocommit = True
        parent_id, parent_path = admin.execute(
            "SELECT id, path FROM org WHERE level = 'agency' ORDER BY id LIMIT 1"
        ).fetchone()
        org_id = admin.execute(
            "INSERT INTO org (code, name, level, parent_id, path, active) "
            "VALUES ('T90005', '测试', 'unit', %s, %s, true) RETURNING id",
            (parent_id, f"{parent_path}T90005/"),
        ).fetchone()[0]
    try:
        with psycopg.connect(url) as writer, psycopg.connect(url) as deleter:
            now = dt.datetime(2026, 12, 1, 8, 0)
            writer.execute(
                f"INSERT INTO member ({', '.join(RAW_COLUMNS)}) VALUES "
                "('T900000005', '110105198001019005', '测试', 'M', '1980-01-01', %s, 'NEW', '2026-12-01', false, %s, %s, 1)",
                (org_id, now, now),
            )
            deleter.execute("SET lock_timeout = '300ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                deleter.execute("DELETE FROM org WHERE id = %s", (org_id,))
            deleter.rollback()
            writer.commit()
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                deleter.execute("DELETE FROM org WHERE id = %s", (org_id,))
            deleter.rollback()
    finally:
        with psycopg.connect(url) as admin:
            admin.autocommit = True
            admin.execute("DELETE FROM member WHERE member_no = 'T900000005'")
            admin.execute("DELETE FROM org WHERE id = %s", (org_id,))

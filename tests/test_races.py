"""Races a clerk can cause by pressing a button at the wrong moment (issue 15, items 3 and 8): the
database keeps the enrolment rules itself, and whoever loses a race gets the rules' messages, never a
500 and never a second policy.  Two threads on PostgreSQL (like the concurrent-report test); the
rules as unique indexes are checked on both databases."""

from __future__ import annotations

import io
import threading
from datetime import date

import openpyxl
import pytest
import sqlalchemy as sa
from test_policies_entry import EFF, make_member, make_policy

import batch.policies as policies_kind
from batch import BatchFileError, check_batch, create_batch, process_batch
from models import AuditLog, BatchStatus, ImportBatch, ImportRow, Member, Policy, PolicyStatus, Product, User, db
from models.audit import audit_rows_naming
from models.storage import result_path, upload_path
from rules.products import policy_expiry

STEMS = "甲乙丙丁戊己庚辛壬癸"  # names take no digits


def _postgresql_only(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("two writers at once need PostgreSQL (TEST_DATABASE_URL); SQLite has a single writer")


def _policies_file(members: list[dict]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["姓名", "身份证号", "份数", "投保金额"])
    for m in members:
        ws.append([m["name"], m["id_number"], 1, 50])
    for row in ws.iter_rows(min_row=2):
        row[1].number_format = "@"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _cleanup(app, member_ids: list[int], batch_ids: list[int]):
    with app.app_context():
        policy_ids = sa.select(Policy.id).where(Policy.member_id.in_(member_ids))
        db.session.execute(sa.delete(AuditLog).where(AuditLog.id.in_(audit_rows_naming("policy", policy_ids))))
        db.session.execute(sa.delete(Policy).where(Policy.member_id.in_(member_ids)))
        db.session.execute(sa.delete(Member).where(Member.id.in_(member_ids)))
        db.session.execute(sa.delete(ImportRow).where(ImportRow.batch_id.in_(batch_ids)))
        for b in db.session.scalars(sa.select(ImportBatch).where(ImportBatch.id.in_(batch_ids))):
            for path in (upload_path(b), result_path(b)):
                path.unlink(missing_ok=True)
        db.session.execute(sa.delete(AuditLog).where(AuditLog.id.in_(audit_rows_naming("import_batch", batch_ids))))
        db.session.execute(sa.delete(ImportBatch).where(ImportBatch.id.in_(batch_ids)))
        db.session.commit()


def _run_in_threads(app, *jobs):
    """Run each job(user) in its own thread and app context at the same moment."""
    barrier = threading.Barrier(len(jobs))
    outcomes, errors = [None] * len(jobs), []

    def run(i, job):
        try:
            with app.app_context():
                user = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
                barrier.wait(timeout=30)
                outcomes[i] = job(user)
        except BatchFileError as exc:
            outcomes[i] = exc
        except Exception as exc:  # pragma: no cover - shown by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes, errors


@pytest.mark.committed
def test_the_same_policies_file_processed_as_two_batches_at_the_same_moment_enrols_each_member_once(app, monkeypatch):
    """Issue 15 item 3: both batches checked, 业务办理 pressed for both at once.  Was: 10 members
    each with two P01 policies for the same period."""
    _postgresql_only(app)
    members, batch_ids = [], []
    try:
        members = [make_member(app, f"测竞争{STEMS[k]}") for k in range(10)]
        data = _policies_file(members)
        with app.app_context():
            user = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
            params = {"product": "P01", "effective": EFF.isoformat()}
            batches = [create_batch("policies", data, f"投保{k}.xlsx", user, params) for k in (1, 2)]
            batch_ids = [b.id for b in batches]
            for b in batches:
                assert check_batch(b, user).ok_count == 10  # both checked: nobody is enrolled yet
        # both pass their re-check before either writes: the database alone must stop the second
        both_checked = threading.Barrier(2)
        real_write = policies_kind.create_policies
        waited = threading.local()

        def write_after_both_checked(*args, **kwargs):
            if not getattr(waited, "done", False):
                waited.done = True
                both_checked.wait(timeout=30)
            return real_write(*args, **kwargs)

        monkeypatch.setattr(policies_kind, "create_policies", write_after_both_checked)

        def process(batch_id):
            def job(user):
                out = process_batch(db.session.get(ImportBatch, batch_id), user)
                return batch_id, out.created, [(str(r.code), r.message) for r in out.results]

            return job

        outcomes, errors = _run_in_threads(app, process(batch_ids[0]), process(batch_ids[1]))
        assert errors == []
        assert sorted(created for _, created, _ in outcomes) == [0, 10]
        loser_id, _, results = next(o for o in outcomes if o[1] == 0)
        assert {code for code, _ in results} == {"IN_FLIGHT"}
        assert all("有在途业务" in message for _, message in results)
        with app.app_context():
            per_member = db.session.execute(
                sa.select(Policy.member_id, sa.func.count())
                .where(Policy.member_id.in_([m["id"] for m in members]))
                .group_by(Policy.member_id)
            ).all()
            assert sorted(n for _, n in per_member) == [1] * 10
            stored = db.session.scalars(sa.select(ImportRow.code).where(ImportRow.batch_id == loser_id)).all()
            assert stored == ["IN_FLIGHT"] * 10
            assert db.session.get(ImportBatch, loser_id).status == BatchStatus.PROCESSED
    finally:
        _cleanup(app, [m["id"] for m in members], batch_ids)


@pytest.mark.committed
def test_one_batch_processed_twice_at_the_same_moment_is_done_once_and_the_second_is_told(app):
    """Issue 15 item 8: 业务办理 of one batch posted twice at once.  Was: psycopg's UniqueViolation
    escaping the IntegrityError handler (a 500; the data stayed right)."""
    _postgresql_only(app)
    members, batch_ids = [], []
    try:
        members = [make_member(app, f"测重复{STEMS[k]}") for k in range(5)]
        with app.app_context():
            user = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
            b = create_batch(
                "policies", _policies_file(members), "投保.xlsx", user, {"product": "P01", "effective": EFF.isoformat()}
            )
            batch_ids = [b.id]
            check_batch(b, user)

        def process(user):
            return process_batch(db.session.get(ImportBatch, batch_ids[0]), user).created

        outcomes, errors = _run_in_threads(app, process, process)
        assert errors == []
        refused = [o for o in outcomes if isinstance(o, BatchFileError)]
        done = [o for o in outcomes if not isinstance(o, BatchFileError)]
        assert done == [5]
        assert len(refused) == 1 and "办理过，不会重复办理" in str(refused[0])
        with app.app_context():
            n = db.session.scalar(
                sa.select(sa.func.count()).select_from(Policy).where(Policy.member_id.in_([m["id"] for m in members]))
            )
            assert n == 5
    finally:
        _cleanup(app, [m["id"] for m in members], batch_ids)


# --- the rules as unique indexes (both databases) ---------------------------------------------------------


def _policy(member: dict, product: Product, status: PolicyStatus, start: date) -> Policy:
    return Policy(
        member_id=member["id"],
        product_id=product.id,
        org_id=db.session.get(Member, member["id"]).org_id,
        shares=1,
        amount=product.price,
        expected_effective_date=start,
        expiry_date=policy_expiry(start, product.term_months),
        status=status,
    )


def test_the_database_refuses_a_second_in_flight_policy_of_a_product(app, ctx):
    m = make_member(app, "测索引甲")
    p01 = db.session.scalar(sa.select(Product).where(Product.code == "P01"))
    db.session.add(_policy(m, p01, PolicyStatus.NEW, EFF))
    db.session.flush()
    with db.session.begin_nested():
        db.session.add(_policy(m, p01, PolicyStatus.REPORTED, date(EFF.year + 1, 1, 1)))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.flush()


def test_the_database_refuses_a_second_live_policy_of_the_same_date_but_not_overlapping_ones(app, ctx):
    """DUPLICATE is a key; OVER_SHARES is not: live policies of other dates overlap freely."""
    m = make_member(app, "测索引乙")
    p03 = db.session.scalar(sa.select(Product).where(Product.code == "P03"))
    db.session.add(_policy(m, p03, PolicyStatus.EFFECTIVE, EFF))
    db.session.add(_policy(m, p03, PolicyStatus.AGENCY_REPORTED, date(EFF.year, EFF.month, 15)))  # overlapping
    db.session.add(_policy(m, p03, PolicyStatus.TERMINATED, EFF))  # ended: not live
    db.session.add(_policy(m, p03, PolicyStatus.NEW, EFF))  # in flight: the other key
    db.session.flush()
    with db.session.begin_nested():
        db.session.add(_policy(m, p03, PolicyStatus.AGENCY_REPORTED, EFF))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.flush()


def test_the_office_sending_a_policy_back_while_the_member_has_another_in_flight_skips_it(app, ctx):
    """office 打回 (代办处已上报 → 上报) of a policy whose member has meanwhile another one in flight:
    that row is skipped and counted, the others go back, and nothing fails."""
    from actions.workflow import run_transition
    from models import POLICY_WORKFLOW, scoped

    office = db.session.scalar(sa.select(User).where(User.username == "office1"))
    a, b = make_member(app, "测打回甲"), make_member(app, "测打回乙")
    live_a = make_policy(app, a, "P03", PolicyStatus.AGENCY_REPORTED)
    make_policy(app, a, "P03", PolicyStatus.NEW, start=date(EFF.year + 1, EFF.month, 1))
    live_b = make_policy(app, b, "P03", PolicyStatus.AGENCY_REPORTED)
    ids = scoped(sa.select(Policy.id).where(Policy.id.in_([live_a, live_b])), Policy, office)
    t = POLICY_WORKFLOW.get("office-return")
    result = run_transition(POLICY_WORKFLOW, t, ids, office, expected=2, reason="金额有误")
    db.session.commit()
    assert (result.done, result.skipped) == (1, 1)
    assert db.session.get(Policy, live_a).status == PolicyStatus.AGENCY_REPORTED
    assert db.session.get(Policy, live_b).status == PolicyStatus.REPORTED


def test_a_policy_of_the_date_of_a_late_confirmed_live_one_is_a_duplicate(app, ctx):
    """A live policy confirmed late starts on its confirmation day, but its 预期生效时间 is still
    taken: a new one with that date could never be reported (uq_policy_live_period)."""
    from batch.enrolment import EnrolContext, EnrolRequest, check_enrolments

    m = make_member(app, "测迟确认")
    pid = make_policy(app, m, "P03", PolicyStatus.EFFECTIVE, shares=1)
    pol = db.session.get(Policy, pid)
    pol.effective_date = date(EFF.year, EFF.month, 20)
    db.session.commit()
    clerk = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
    p03 = db.session.scalar(sa.select(Product).where(Product.code == "P03"))
    [r] = check_enrolments([EnrolRequest(row=2, member_id=m["id"], shares=1)], EnrolContext(clerk, p03, EFF))
    assert r.code.value == "DUPLICATE"

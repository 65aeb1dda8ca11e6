"""Two offices confirming and two agencies issuing receipts at the same moment (PostgreSQL):
保单号 and 收据号 stay unique and gap-free, and no policy is numbered or receipted twice."""

from __future__ import annotations

import threading
from datetime import date

import pytest
import sqlalchemy as sa
from test_policies_entry import make_member, make_policy

from models import AuditLog, Counter, Member, Org, Policy, PolicyStatus, Receipt, ReceiptPolicy, User, db, scoped
from models.audit import audit_rows_naming

pytestmark = pytest.mark.committed
YEAR = date.today().year


@pytest.fixture
def pg(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite has a single writer: concurrency needs PostgreSQL (TEST_DATABASE_URL)")
        counters = {c.name: c.value for c in db.session.scalars(sa.select(Counter))}
    made = {"members": [], "policies": []}
    yield made
    with app.app_context():
        pids, mids = made["policies"], made["members"]
        rids = db.session.scalars(
            sa.select(ReceiptPolicy.receipt_id).where(ReceiptPolicy.policy_id.in_(pids)).distinct()
        ).all()
        db.session.execute(sa.update(Policy).where(Policy.id.in_(pids)).values(receipt_id=None))
        db.session.execute(sa.delete(ReceiptPolicy).where(ReceiptPolicy.receipt_id.in_(rids)))
        db.session.execute(sa.delete(AuditLog).where(AuditLog.id.in_(audit_rows_naming("receipt", rids))))
        db.session.execute(sa.delete(Receipt).where(Receipt.id.in_(rids)))
        db.session.execute(sa.delete(AuditLog).where(AuditLog.id.in_(audit_rows_naming("policy", pids))))
        db.session.execute(sa.delete(Policy).where(Policy.id.in_(pids)))
        db.session.execute(sa.delete(Member).where(Member.id.in_(mids)))
        for name, value in counters.items():  # the numbers handed out here are gone with their rows
            db.session.execute(sa.update(Counter).where(Counter.name == name).values(value=value))
        db.session.commit()


def _make(app, made, org, n, status, name):
    ids = []
    for k in range(n):
        m = make_member(app, f"{name}{org[-1]}{k:02d}", org=org)
        made["members"].append(m["id"])
        ids.append(make_policy(app, m, "P03", status))
    made["policies"] += ids
    return ids


def _run_at_once(app, jobs):
    """Run each (username, fn(query_ids, user)) in its own thread and transaction, started together."""
    barrier = threading.Barrier(len(jobs))
    results, errors = [None] * len(jobs), []

    def work(i, username, fn):
        try:
            with app.app_context():
                user = db.session.scalar(sa.select(User).where(User.username == username))
                barrier.wait(timeout=20)
                results[i] = fn(user)
                db.session.commit()
        except Exception as exc:  # pragma: no cover - shown by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, u, f)) for i, (u, f) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    return results


def test_two_offices_confirming_at_once_get_unique_gap_free_policy_numbers(app, pg):
    from actions.effective import confirm_effective

    east = _make(app, pg, "010101", 30, PolicyStatus.AGENCY_REPORTED, "测并发生效")
    west = _make(app, pg, "010102", 25, PolicyStatus.AGENCY_REPORTED, "测并发生效")
    with app.app_context():
        before = db.session.scalar(sa.select(Counter.value).where(Counter.name == f"policy_no:{YEAR}")) or 0

    def confirming(ids):
        def fn(user):
            return confirm_effective(scoped(sa.select(Policy.id).where(Policy.id.in_(ids)), Policy, user), user)

        return fn

    # the second office's query overlaps the first's: every row is confirmed once
    results = _run_at_once(app, [("office1", confirming(east)), ("office1", confirming(east + west))])
    assert sum(r.done for r in results) == len(east) + len(west)
    with app.app_context():
        numbers = db.session.scalars(sa.select(Policy.policy_no).where(Policy.id.in_(east + west))).all()
        after = db.session.scalar(sa.select(Counter.value).where(Counter.name == f"policy_no:{YEAR}"))
        statuses = set(db.session.scalars(sa.select(Policy.status).where(Policy.id.in_(east + west))))
    assert statuses == {PolicyStatus.EFFECTIVE}
    seqs = sorted(int(n[6:]) for n in numbers)
    assert seqs == list(range(before + 1, before + len(east) + len(west) + 1))  # unique, no gaps
    assert after == before + len(east) + len(west)


def test_two_agencies_issuing_receipts_at_once_get_unique_gap_free_numbers(app, pg):
    from actions.receipts import ReceiptRefused, create_receipt

    east = _make(app, pg, "010101", 12, PolicyStatus.REPORTED, "测并发收据")
    west = _make(app, pg, "010102", 9, PolicyStatus.REPORTED, "测并发收据")
    with app.app_context():
        before = db.session.scalar(sa.select(Counter.value).where(Counter.name == f"receipt_no:{YEAR}")) or 0

    def issuing(ids):
        def fn(user):
            try:
                r = create_receipt(scoped(sa.select(Policy.id).where(Policy.id.in_(ids)), Policy, user), user)
                return r.receipt_no
            except ReceiptRefused:
                return None

        return fn

    # two agency staff for two units, and a third asking for the first unit again at the same moment
    results = _run_at_once(app, [("agency1", issuing(east)), ("agency1", issuing(west)), ("agency1", issuing(east))])
    issued = [r for r in results if r]
    assert len(issued) == 2  # the repeated request found nothing left to receipt
    assert sorted(int(n[5:]) for n in issued) == [before + 1, before + 2]
    with app.app_context():
        per_policy = db.session.execute(
            sa.select(ReceiptPolicy.policy_id, sa.func.count())
            .where(ReceiptPolicy.policy_id.in_(east + west))
            .group_by(ReceiptPolicy.policy_id)
        ).all()
        assert sorted(p for p, _ in per_policy) == sorted(east + west)
        assert {n for _, n in per_policy} == {1}
        payers = dict(
            db.session.execute(
                sa.select(Receipt.receipt_no, Org.code).join(Org).where(Receipt.receipt_no.in_(issued))
            ).all()
        )
        assert sorted(payers.values()) == ["010101", "010102"]
        assert db.session.scalar(sa.select(Counter.value).where(Counter.name == f"receipt_no:{YEAR}")) == before + 2

"""保单提前终止 at the same moment (PostgreSQL): two office users approving one application make one
effect; two clerks putting one policy into an application make one application."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from test_policies_entry import make_member, make_policy

from models import (
    TERMINATION_WORKFLOW,
    ApplicationStatus,
    AuditLog,
    Member,
    Policy,
    PolicyStatus,
    TerminationApplication,
    User,
    db,
    scoped,
    termination_policy,
)
from models.audit import audit_entries, audit_rows_naming

pytestmark = pytest.mark.committed
START = date.today() - timedelta(days=90)


@pytest.fixture
def pg(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite has a single writer: concurrency needs PostgreSQL (TEST_DATABASE_URL)")
    made = {"members": [], "policies": []}
    yield made
    with app.app_context():
        pids, mids = made["policies"], made["members"]
        apps = db.session.scalars(
            sa.select(termination_policy.c.application_id).where(termination_policy.c.policy_id.in_(pids)).distinct()
        ).all()
        db.session.execute(sa.delete(termination_policy).where(termination_policy.c.application_id.in_(apps)))
        db.session.execute(
            sa.delete(AuditLog).where(AuditLog.id.in_(audit_rows_naming("termination_application", apps)))
        )
        db.session.execute(sa.delete(TerminationApplication).where(TerminationApplication.id.in_(apps)))
        db.session.execute(sa.delete(AuditLog).where(AuditLog.id.in_(audit_rows_naming("policy", pids))))
        db.session.execute(sa.delete(Policy).where(Policy.id.in_(pids)))
        db.session.execute(sa.delete(Member).where(Member.id.in_(mids)))
        db.session.commit()


def _make(app, made, n, name):
    ids = []
    for k in range(n):
        m = make_member(app, f"{name}{k}")
        made["members"].append(m["id"])
        ids.append(make_policy(app, m, "P03", PolicyStatus.EFFECTIVE, start=START))
    made["policies"] += ids
    return ids


def _run_at_once(app, jobs):
    """Each (username, fn(user)) in its own thread, session and transaction, started together."""
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


def test_two_approvals_of_one_application_at_once_end_its_policies_once(app, pg):
    from actions.terminations import create_application
    from actions.workflow import workflow_actions

    ids = _make(app, pg, 3, "测并发终止")
    with app.app_context():
        clerk = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
        a = create_application(
            sa.select(Policy.id).where(Policy.id.in_(ids)), clerk, "会员退休", "", date.today() + timedelta(days=7)
        )
        a.status = ApplicationStatus.SUBMITTED
        db.session.commit()
        app_id = a.id
    approve = next(x for x in workflow_actions(TERMINATION_WORKFLOW) if x.name == "approve")

    def approving(user):
        query = scoped(sa.select(TerminationApplication.id), TerminationApplication, user)
        return approve.run(query.where(TerminationApplication.id == app_id), user, expected=1)

    results = _run_at_once(app, [("office1", approving), ("office1", approving)])
    assert sorted(r.done for r in results) == [0, 1]  # one approved it, the other found it decided
    with app.app_context():
        assert db.session.get(TerminationApplication, app_id).status == ApplicationStatus.APPROVED
        statuses = set(db.session.scalars(sa.select(Policy.status).where(Policy.id.in_(ids))))
        assert statuses == {PolicyStatus.TERMINATED}
        e = audit_entries()
        ended = db.session.scalars(
            sa.select(e.c.entity_id).where(e.c.entity == "policy", e.c.action == "terminate", e.c.entity_id.in_(ids))
        ).all()
        assert sorted(ended) == sorted(ids)  # each policy named once by the audit: ended once
        approvals = db.session.scalar(
            sa.select(sa.func.count()).where(
                AuditLog.entity == "termination_application",
                AuditLog.action == "approve",
                AuditLog.entity_id == app_id,
            )
        )
        assert approvals == 1


def test_two_clerks_putting_one_policy_into_an_application_at_once_make_one(app, pg):
    from actions.terminations import TerminationRefused, create_application

    ids = _make(app, pg, 1, "测并发申请")

    def applying(user):
        try:
            a = create_application(
                sa.select(Policy.id).where(Policy.id.in_(ids)), user, "会员退休", "", date.today() + timedelta(days=7)
            )
            return a.id
        except TerminationRefused as exc:
            return str(exc)

    results = _run_at_once(app, [("clerk1", applying), ("clerk1", applying)])
    made = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, str)]
    assert len(made) == 1 and len(refused) == 1
    assert f"在申请 {made[0]} 中" in refused[0]
    with app.app_context():
        links = db.session.scalar(sa.select(sa.func.count()).where(termination_policy.c.policy_id.in_(ids)))
        assert links == 1

"""Benchmark: 当前查询结果上报 of 100,000 新建 policies with their audit rows (DESIGN.md §11: ≤ 2 s).

    .venv/bin/python bench/report_query.py [--rows 100000] [--rebuild]

The data is gen_large.py's `bench_large` (built once, reused; --rebuild): its 上报 unit holds
exactly --rows 新建 policies (a different --rows rebuilds it).  As that unit's clerk, the ids are
what 投保管理 builds for the list filtered by 选择状态 = 新建 (`PolicyView.current_ids()` in a request
for `/admin/policies/?status=NEW`: the filter within the clerk's org scope); the confirmation
page's count (`summarize`, reported as summary_s, not part of the budget) gives `expected`; then
the measured part: `actions.policies.unit_report(ids, user, expected)` and the commit — one
UPDATE … RETURNING with its audit INSERT … SELECT (one audit row naming all the policies).
Measured in a fresh interpreter; the policies go back to 新建 afterwards (gen_large.restore).  One
JSON line on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import gen_large  # noqa: E402
from common import Timer, log  # noqa: E402

BUDGET_S = 2.0
RATIO_TARGET = 1.5  # seconds ≤ 1.5 × the floor (a bare UPDATE … SET status of the same rows), issue 13
LIST_URL = "/admin/policies/?status=NEW"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--rows", type=int, default=100_000, help="新建 policies of the unit (its data set's --report-rows)"
    )
    gen_large.add_arguments(ap, report_rows=False)
    ap.add_argument("--show-statements", action="store_true")
    ap.add_argument("--measure", nargs=2, metavar=("URL", "UPLOAD_DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        common.emit(measure(*args.measure, args.show_statements))
        return
    meta = gen_large.ensure_from_args(args, report_rows=args.rows)
    url = meta["url"]
    common.scratch_copy(url, "policy")  # the floor's target, as the data set is before the 上报
    with tempfile.TemporaryDirectory(prefix="bench-report.") as tmp:
        try:
            result = common.measure_child(
                __file__, ["--measure", url, tmp] + (["--show-statements"] if args.show_statements else [])
            )
        finally:
            gen_large.restore(url)
    if result["rows"] != args.rows:
        raise SystemExit(f"reported {result['rows']} rows, expected {args.rows}")
    out = {**result, "generate_s": meta["generate_s"], "reused": meta["reused"]}
    out["budget_ok"] = out["seconds"] <= BUDGET_S
    out["ratio_ok"] = out["ratio"] <= RATIO_TARGET
    out.update(common.machine_load())
    common.emit(out)


def measure(url: str, upload_dir: str, show: bool) -> dict:
    import sqlalchemy as sa
    from flask import g

    from actions import summarize
    from actions.policies import unit_report
    from actions.workflow import bulk_action
    from models import POLICY_WORKFLOW, AuditLog, Policy, PolicyStatus, User, db
    from models.audit import audit_entries

    UNIT_REPORT = bulk_action(POLICY_WORKFLOW, POLICY_WORKFLOW.get("report"))

    app = common.make_app(url, upload_dir)
    load_1m = round(os.getloadavg()[0], 2)
    admin = app.extensions["admin"][0]
    view = next(v for v in admin._views if getattr(v, "endpoint", None) == "policies")
    with app.test_request_context(LIST_URL):
        user = db.session.scalar(sa.select(User).where(User.username == gen_large.REPORT_CLERK))
        g.user = user
        uid, org_id = user.id, user.org_id
        ids = view.current_ids()
        with Timer() as summary_t:
            summary = summarize(Policy, ids, UNIT_REPORT)
        expected = summary.actionable
        counter = common.StatementCounter(db.engine)
        with Timer() as run:
            result = unit_report(ids, user, expected=expected)
            db.session.commit()
        statements, listed = counter.count, counter.statements
        counter.close()
        db.session.remove()
        # the audit: one row naming every policy reported (models/audit.py), read back per policy
        audit_rows = db.session.scalar(
            sa.select(sa.func.count()).select_from(AuditLog).where(AuditLog.action == "report", AuditLog.user_id == uid)
        )
        e = audit_entries()
        audited = sa.select(e.c.entity_id).where(e.c.entity == "policy", e.c.action == "report", e.c.user_id == uid)
        reported = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Policy)
            .where(Policy.org_id == org_id, Policy.status == PolicyStatus.REPORTED, Policy.id.in_(audited))
        )
        done_ids = list(db.session.scalars(audited))
        db.session.remove()
    # the floor: a bare UPDATE … SET status of the same rows on a copy of the policy table
    floor_s = common.floor_update(url, "policy", done_ids, "status", PolicyStatus.REPORTED.value)
    if show:
        log("statements:")
        for s in listed:
            print("    " + s, file=sys.stderr)
    if not (result.done == expected == len(done_ids) == len(set(done_ids)) == reported):
        raise SystemExit(
            f"mismatch: expected {expected}, done {result.done}, policies audited {len(done_ids)}, now 上报 {reported}"
        )
    log(
        f"{result.message}; confirmation page count {summary.actionable} (人数 {summary.headcount}, "
        f"金额 {summary.total}) in {summary_t.s} s"
    )
    return {
        "rows": result.done,
        "seconds": run.s,
        "total_s": run.s,
        "floor_s": floor_s,
        "ratio": round(run.s / floor_s, 2),
        "audit_rows": audit_rows,
        "audited_policies": len(done_ids),
        "statements": statements,
        "skipped": result.skipped,
        "summary_s": summary_t.s,
        "load_avg_1m": load_1m,
    }


if __name__ == "__main__":
    main()

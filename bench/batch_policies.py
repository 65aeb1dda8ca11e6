"""Benchmark: a 50,000-row 投保 upload (模板批量投保) against 1M members / 3M policies (DESIGN.md §11:
check + process ≤ 2 s together, peak RSS ≤ 300 MB).

    .venv/bin/python bench/batch_policies.py [--rows 50000] [--rebuild] [--breakdown] [--profile F]

The data is gen_large.py's `bench_large` (built once, reused; --rebuild).  The upload
(姓名, 身份证号, 份数, 投保金额) names members of the 投保 unit (~80,000 members): ~98 % CONFIRMED members
with no P03 in flight and no P03 of the same period (份数 1 or 2, the amount as a number, as text or
left empty), ~2 % failures of every kind the database decides (MEMBER_MISSING, NOT_IN_UNIT,
NAME_MISMATCH, NOT_CONFIRMED, IN_FLIGHT, DUPLICATE, OVER_SHARES, DUP_IN_FILE) and of the file
itself (ID_CHECKSUM, ID_LENGTH, ID_EMPTY, NAME_SPACE, SHARES_RANGE, AMOUNT_MISMATCH).  Parameters as
the CLI takes them: product P03, 预期生效时间 the first day of next month.

Measured in a fresh interpreter (ru_maxrss is the work's), through the CLI's code path:
create_batch → check_batch → process_batch, each in its own session as separate requests
would be.  Afterwards the uploaded policies are deleted again (gen_large.restore).  One JSON line
on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import gen_large  # noqa: E402
from common import Timer, connect, log  # noqa: E402

from batch.enrolment import POLICY_COLUMNS  # noqa: E402

BUDGET_S = 2.0
BUDGET_RSS_MB = 300
RATIO_TARGET = 1.3  # total ≤ 1.3 × the floor measured in the same run (issue 13)
PRODUCT = "P03"
PRICE = Decimal("20.00")
MAX_SHARES = 5
FAILURE_KINDS = [
    "MEMBER_MISSING",
    "NOT_IN_UNIT",
    "NAME_MISMATCH",
    "NOT_CONFIRMED",
    "IN_FLIGHT",
    "DUPLICATE",
    "OVER_SHARES",
    "DUP_IN_FILE",
    "ID_CHECKSUM",
    "ID_LENGTH",
    "ID_EMPTY",
    "NAME_SPACE",
    "SHARES_RANGE",
    "AMOUNT_MISMATCH",
]


def next_month_first(today: date) -> date:
    return date(today.year + (today.month == 12), today.month % 12 + 1, 1)


# --- the upload --------------------------------------------------------------------------------


def unit_members(url: str, unit_id: int, product_id: int, effective: date) -> list[tuple]:
    """(name, id_number, status, in_flight, same_period, live_shares) of the unit's members, for P03
    as batch.enrolment sees it."""
    from rules.products import policy_expiry

    end = policy_expiry(effective, 12)
    with connect(url) as conn:
        return conn.execute(
            """SELECT m.name, m.id_number, m.status,
                      coalesce(bool_or(p.status IN ('NEW', 'RETURNED', 'REPORTED')), false),
                      coalesce(bool_or(p.status IN ('AGENCY_REPORTED', 'EFFECTIVE')
                               AND coalesce(p.effective_date, p.expected_effective_date) = %(start)s), false),
                      coalesce(sum(p.shares) FILTER (WHERE p.status IN ('AGENCY_REPORTED', 'EFFECTIVE')
                               AND p.expiry_date >= %(start)s
                               AND coalesce(p.effective_date, p.expected_effective_date) <= %(end)s), 0)
               FROM member m LEFT JOIN policy p ON p.member_id = m.id AND p.product_id = %(product)s
               WHERE m.org_id = %(unit)s GROUP BY m.id ORDER BY m.id""",
            {"unit": unit_id, "product": product_id, "start": effective, "end": end},
        ).fetchall()


def other_members(url: str, unit_id: int, n: int) -> list[tuple]:
    with connect(url) as conn:
        return conn.execute(
            "SELECT name, id_number FROM member WHERE org_id <> %s AND status = 'CONFIRMED' ORDER BY id DESC LIMIT %s",
            (unit_id, n),
        ).fetchall()


def amount_cell(shares: int, r: float):
    """How clerks fill 投保金额: a number, text, or nothing (份数 × 每份金额)."""
    value = PRICE * shares
    if r < 0.6:
        return int(value)
    if r < 0.8:
        return f"{value:.2f}"
    if r < 0.9:
        return float(value)
    return None


def build_upload(
    rows: int, members: list[tuple], others: list[tuple], first_missing: int, seed: int
) -> tuple[list[list], dict]:
    rng = random.Random(seed)
    ids = common.IdNumbers()
    names = common.name_pool()
    ok = [m for m in members if m[2] == "CONFIRMED" and not m[3] and not m[4]]
    rng.shuffle(ok)
    pools = {
        "NOT_CONFIRMED": [m for m in members if m[2] != "CONFIRMED"],
        "IN_FLIGHT": [m for m in members if m[2] == "CONFIRMED" and m[3]],
        "DUPLICATE": [m for m in members if m[2] == "CONFIRMED" and not m[3] and m[4]],
        "OVER_SHARES": [m for m in ok if m[5] >= 2],
        "NOT_IN_UNIT": list(others),
    }
    n_fail = round(rows * 0.02)
    n_ok = rows - n_fail
    for pool in pools.values():
        rng.shuffle(pool)
    pools["OVER_SHARES"] = pools["OVER_SHARES"][: n_fail // len(FAILURE_KINDS) + 1]
    over = set(m[1] for m in pools["OVER_SHARES"])
    ok = [m for m in ok if m[1] not in over]
    if len(ok) < n_ok + n_fail:
        raise SystemExit(f"the 投保 unit has {len(ok)} eligible members, fewer than {n_ok + n_fail} needed")
    valid_rows = []
    for k in range(n_ok):
        name, number, _status, _fl, _same, live = ok[k]
        shares = 2 if rng.random() < 0.15 and live + 2 <= MAX_SHARES else 1
        valid_rows.append([name, number, shares, amount_cell(shares, rng.random())])
    spare = iter(ok[n_ok:])  # eligible members not otherwise in the file
    expected: dict[str, int] = {}
    failed_rows = []
    missing_k = first_missing
    for j in range(n_fail):
        kind = FAILURE_KINDS[j % len(FAILURE_KINDS)]
        pool = pools.get(kind)
        if pool is not None and not pool:
            kind = "NAME_MISMATCH"  # the data has none of that kind left
        if kind in pools:
            m = pools[kind].pop()
            name, number = m[0], m[1]
        elif kind == "MEMBER_MISSING":
            name, number = names[missing_k % len(names)], ids[missing_k]
            missing_k += 1
        elif kind == "DUP_IN_FILE":
            name, number = valid_rows[rng.randrange(len(valid_rows))][:2]
        else:
            name, number = next(spare)[:2]
        shares, amount = 1, amount_cell(1, rng.random())
        if kind == "NAME_MISMATCH":
            name = name + "某"
        elif kind == "OVER_SHARES":
            shares, amount = MAX_SHARES - 1, int(PRICE * (MAX_SHARES - 1))
        elif kind == "ID_CHECKSUM":
            number = number[:17] + ("0" if number[17] != "0" else "1")
        elif kind == "ID_LENGTH":
            number = number[:17]
        elif kind == "ID_EMPTY":
            number = None
        elif kind == "NAME_SPACE":
            name = name[0] + " " + name[1:]
        elif kind == "SHARES_RANGE":
            shares, amount = MAX_SHARES + 1, None
        elif kind == "AMOUNT_MISMATCH":
            amount = int(PRICE) + 10
        expected[kind] = expected.get(kind, 0) + 1
        failed_rows.append([name, number, shares, amount])
    out = valid_rows + failed_rows
    rng.shuffle(out)
    return out, expected


# --- the parent: data, upload, child, clean-up -----------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=50_000)
    gen_large.add_arguments(ap)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--profile", help="write cProfile stats of check+process to this file")
    ap.add_argument("--show-statements", action="store_true", help="list the statements on stderr")
    ap.add_argument("--breakdown", action="store_true", help="add the seconds of each phase (timing wrappers)")
    ap.add_argument("--measure", nargs=4, metavar=("URL", "FILE", "UPLOAD_DIR", "EFFECTIVE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        common.emit(measure(*args.measure, args.profile, args.show_statements, args.breakdown))
        return

    meta = gen_large.ensure_from_args(args)
    url = meta["url"]
    common.scratch_copy(url, "policy")  # the floor's target, as the data set is before the upload
    effective = next_month_first(date.today())
    with tempfile.TemporaryDirectory(prefix="bench-policies.") as tmp:
        tmp = Path(tmp)
        with Timer() as up:
            members = unit_members(url, meta["batch_unit"]["id"], meta["products"][PRODUCT], effective)
            others = other_members(url, meta["batch_unit"]["id"], 500)
            rows, expected = build_upload(args.rows, members, others, meta["params"]["members"] + 10_000_000, args.seed)
            path = tmp / f"投保_{args.rows}.xlsx"
            path.write_bytes(common.xlsx_bytes(rows, ["姓名", "身份证号", "份数", "投保金额"]))
        log(
            f"upload of {len(rows)} rows ({len(members)} members in the unit; failures planned {expected}) "
            f"{path.stat().st_size / 1e6:.1f} MB in {up.s} s; measuring …"
        )
        extra = (
            (["--profile", args.profile] if args.profile else [])
            + (["--show-statements"] if args.show_statements else [])
            + (["--breakdown"] if args.breakdown else [])
        )
        try:
            result = common.measure_child(
                __file__, ["--measure", url, str(path), str(tmp / "uploads"), effective.isoformat(), *extra]
            )
        finally:
            gen_large.restore(url)
    with connect(url) as conn:
        counts = conn.execute("SELECT (SELECT count(*) FROM member), (SELECT count(*) FROM policy)").fetchone()
    out = {
        "rows": args.rows,
        "members": counts[0],
        "policies": counts[1],
        **result,
        "generate_s": meta["generate_s"],
        "reused": meta["reused"],
        "upload_file_s": up.s,
    }
    out["budget_ok"] = out["check_s"] + out["process_s"] <= BUDGET_S and out["peak_rss_mb"] <= BUDGET_RSS_MB
    out["ratio_ok"] = out["ratio"] <= RATIO_TARGET
    out.update(common.machine_load())
    common.emit(out)


# --- the measured part (child) ---------------------------------------------------------------

# the columns batch/enrolment.py writes, as the floor's COPY sends them
FLOOR_COLUMNS = POLICY_COLUMNS


def _phase_timers() -> dict:
    """Timers around the pipeline's phases: {phase: [seconds per call]} (check, then process)."""
    import batch.enrolment as enrolment
    import batch.pipeline as pipeline
    import batch.policies as policies
    import batch.result as result

    return common.time_phases(
        (pipeline, "read_table", "read"),
        (policies, "check_enrolments", "check_enrolments"),
        (enrolment, "_load_members", "members_query"),
        (enrolment, "_load_policies", "policies_query"),
        (policies, "create_policies", "create_policies"),
        (enrolment, "bulk_insert", "copy_policies"),
        (enrolment, "write_audit", "audit_insert_select"),
        (pipeline, "bulk_insert", "copy_import_rows"),
        (result, "write_result", "result_xlsx (thread)"),
        (pipeline.ResultInBackground, "finish", "wait_for_result_xlsx"),
    )


def measure(
    url: str, file: str, upload_dir: str, effective: str, profile: str | None, show: bool, breakdown: bool = False
) -> dict:
    import openpyxl  # noqa: F401
    import python_calamine  # noqa: F401  (imported at start-up in a server, as the CLI does)
    import sqlalchemy as sa

    from batch import create_batch
    from batch.policies import POLICIES
    from batch.reader import read_table
    from batch.result import write_result  # noqa: F401
    from models import Policy, User, db

    app = common.make_app(url, upload_dir)
    data = Path(file).read_bytes()
    phases = _phase_timers() if breakdown else None
    load_1m = round(os.getloadavg()[0], 2)
    params = {"product": PRODUCT, "effective": effective}
    with app.app_context():
        counter = common.StatementCounter(db.engine)
        db.session.execute(sa.text("SELECT 1"))  # the pool's connection, as a warm server has it

        with Timer() as read:
            read_table(data, Path(file).name, POLICIES.columns, app.config["UPLOAD_MAX_ROWS"])
        if phases is not None:
            phases.clear()

        def load():
            db.session.remove()
            return db.session.scalar(sa.select(User).where(User.username == gen_large.BATCH_CLERK))

        user = load()
        with Timer() as create:
            batch_id = create_batch("policies", data, Path(file).name, user, params).id

        figures = common.measure_stored_batch(url, batch_id, data, load, counter, profile, show, Policy, FLOOR_COLUMNS)
    out = {
        "read_s": read.s,
        **figures,
        "create_batch_s": create.s,
        "load_avg_1m": load_1m,
    }
    if phases is not None:
        out["breakdown"] = phases
    return out


if __name__ == "__main__":
    main()

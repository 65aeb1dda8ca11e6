"""Bench: a 批量入会 file of --rows rows against --existing members (DESIGN.md §11).

    .venv/bin/python bench/batch_members.py --rows 50000 --existing 1000000
    .venv/bin/python bench/batch_members.py --rows 1000 --existing 10000     # same statement counts

PostgreSQL: BENCH_DATABASE_URL (a fresh database is created on that server and dropped at the
end), or a throwaway cluster started with .ci/postgres.sh and stopped at the end.

Generation (not measured against the budget, reported as generate_s): schema (db.create_all), the
demo orgs/users, ~2,000 units, the existing members by COPY, a clerk of a generated unit.  Then
the upload .xlsx (姓名, 身份证号 as text cells): mostly new valid IDs, ~2 % errors of every kind,
~1 % already members, ~1 % that need fixing (spaces, full-width digits, lowercase x, padded names).

Measured in a fresh interpreter (so ru_maxrss is the work's, not the generator's), through the
CLI's code path: create_batch → check_batch → process_batch, each in its own session as separate
requests would be.  Prints one JSON line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import IdNumbers, Timer, log  # noqa: E402

from batch.members import MEMBER_COLUMNS  # noqa: E402

BENCH_USER = "bench_clerk"
BUDGET_S = 1.5
BUDGET_RSS_MB = 300
RATIO_TARGET = 1.3  # total ≤ 1.3 × the floor measured in the same run (issue 13)


# --- the upload ------------------------------------------------------------------------------

FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def build_upload(rows: int, existing: int, ids: IdNumbers, units, clerk_unit_id: int, seed: int) -> list[list]:
    """[姓名, 身份证号] rows; indices existing.. of `ids` are new people, 0..existing-1 members."""
    rng = random.Random(seed)
    names = common.name_pool()
    today = date.today()
    out: list[list] = []
    new_k = existing  # next index of a new person
    spare_k = existing + rows + 1_000_000  # a separate range for IDs ending in X
    own = [i for i in range(0, min(existing, 200_000)) if common.member_unit(i, units)[0] == clerk_unit_id][:200]
    error_kinds = [
        "ID_LENGTH",
        "ID_LENGTH15",
        "ID_CHECKSUM",
        "ID_BIRTHDATE",
        "ID_CHARS",
        "ID_NUMERIC_CELL",
        "ID_EMPTY",
        "NAME_SPACE",
        "NAME_EMPTY",
        "DUP_IN_FILE",
        "OVER_AGE",
        "UNDER_AGE",
    ]
    fix_kinds = ["spaces", "fullwidth", "lower_x", "name_pad"]
    n_err = n_fix = 0
    seq = 0

    def new_person():
        nonlocal new_k
        number, name = ids[new_k], names[new_k % len(names)]
        new_k += 1
        return name, number

    for _r in range(rows):
        p = rng.random()
        if p < 0.01 and existing:  # already a member: a fifth of them in the clerk's own unit
            i = rng.choice(own) if own and rng.random() < 0.2 else rng.randrange(existing)
            out.append([names[i % len(names)], ids[i]])
        elif p < 0.03:
            kind = error_kinds[n_err % len(error_kinds)]
            n_err += 1
            name, number = new_person()
            seq += 1
            if kind == "ID_LENGTH":
                number = number[:17]
            elif kind == "ID_LENGTH15":
                number = number[:6] + number[8:14] + number[14:17]
            elif kind == "ID_CHECKSUM":
                number = number[:17] + ("0" if number[17] != "0" else "1")
            elif kind == "ID_BIRTHDATE":
                number = number[:10] + "13" + number[12:]  # month 13: checked before the check digit
            elif kind == "ID_CHARS":
                number = number[:8] + "O" + number[9:]
            elif kind == "ID_NUMERIC_CELL":
                number = int(number[:17] + "0")  # a number cell: what Excel keeps of it
            elif kind == "ID_EMPTY":
                number = None
            elif kind == "NAME_SPACE":
                name = name[0] + " " + name[1:]
            elif kind == "NAME_EMPTY":
                name = None
            elif kind == "DUP_IN_FILE":
                prev = next((row for row in reversed(out) if isinstance(row[1], str) and len(row[1]) == 18), None)
                if prev is not None:
                    name, number = prev
            elif kind == "OVER_AGE":
                number = common.make_id("130102", date(today.year - 62, 3, 1), 2 * seq + 1)
            elif kind == "UNDER_AGE":
                number = common.make_id("130102", date(today.year - 15, 3, 1), 2 * seq)
            out.append([name, number])
        elif p < 0.04:
            kind = fix_kinds[n_fix % len(fix_kinds)]
            n_fix += 1
            name, number = new_person()
            if kind == "spaces":
                number = f" {number[:6]} {number[6:14]} {number[14:]}\u3000"
            elif kind == "fullwidth":
                number = number.translate(FULLWIDTH)
            elif kind == "lower_x":
                while True:
                    number = ids[spare_k]
                    spare_k += 1
                    if number.endswith("X"):
                        break
                number = number[:17] + "x"
            else:
                name = f" {name}  "
            out.append([name, number])
        else:
            out.append(list(new_person()))
    return out


# --- generation (parent) ---------------------------------------------------------------------


def generate(url: str, upload_dir: Path, existing: int, n_units: int) -> tuple[list, int]:
    common.demo_database(url, upload_dir)
    units = common.make_units(url, n_units)
    clerk_unit_id, clerk_unit_code = units[0]
    common.add_user(url, BENCH_USER, clerk_unit_code)
    common.load_members(url, existing, units)
    return units, clerk_unit_id


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--existing", type=int, default=1_000_000)
    ap.add_argument("--units", type=int, default=2000, help="generated units the members are spread over")
    ap.add_argument("--user", default=BENCH_USER, help=f"who uploads: {BENCH_USER} (a generated unit) or clerk1")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--profile", help="write cProfile stats of check+process to this file")
    ap.add_argument("--show-statements", action="store_true", help="list the statements on stderr")
    ap.add_argument("--breakdown", action="store_true", help="add the seconds of each phase (timing wrappers)")
    ap.add_argument("--keep", action="store_true", help="keep the database (BENCH_DATABASE_URL only)")
    ap.add_argument("--file", help="upload this .xlsx (姓名, 身份证号) instead of a generated one (bench/peer_die.py)")
    ap.add_argument("--measure", nargs=3, metavar=("URL", "FILE", "UPLOAD_DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        common.emit(measure(*args.measure, args.user, args.profile, args.show_statements, args.breakdown))
        return

    with (
        common.bench_database("batch_members", keep=args.keep) as url,
        tempfile.TemporaryDirectory(prefix="bench-members.") as tmp,
    ):
        tmp = Path(tmp)
        log(f"generating {args.existing} members over {args.units} units …")
        with Timer() as gen:
            units, clerk_unit_id = generate(url, tmp / "uploads", args.existing, args.units)
        common.scratch_copy(url, "member")  # the floor's target, built before anything is added
        log(f"generated in {gen.s} s; building the {args.rows}-row upload …")
        with Timer() as up:
            if args.file:
                path = Path(args.file)
            else:
                rows = build_upload(args.rows, args.existing, IdNumbers(), units, clerk_unit_id, args.seed)
                path = tmp / f"入会_{args.rows}.xlsx"
                path.write_bytes(common.xlsx_bytes(rows, ["姓名", "身份证号"]))
        log(f"upload file {path.stat().st_size / 1e6:.1f} MB in {up.s} s; measuring …")
        extra = (
            ["--user", args.user]
            + (["--profile", args.profile] if args.profile else [])
            + (["--show-statements"] if args.show_statements else [])
            + (["--breakdown"] if args.breakdown else [])
        )
        result = common.measure_child(__file__, ["--measure", url, str(path), str(tmp / "uploads"), *extra])
    out = {"rows": args.rows, "existing": args.existing, **result, "generate_s": gen.s, "upload_file_s": up.s}
    out["budget_ok"] = out["check_s"] + out["process_s"] <= BUDGET_S and out["peak_rss_mb"] <= BUDGET_RSS_MB
    out["ratio_ok"] = out["ratio"] <= RATIO_TARGET
    out.update(common.machine_load())
    common.emit(out)


# --- the measured part (child) ---------------------------------------------------------------

# the columns batch/members.py writes, as the floor's COPY sends them
FLOOR_COLUMNS = MEMBER_COLUMNS


def _phase_timers() -> dict:
    """Timers around the pipeline's phases: {phase: [seconds per call]} (check, then process)."""
    import batch.admission as admission
    import batch.members as members
    import batch.pipeline as pipeline
    import batch.result as result

    return common.time_phases(
        (pipeline, "read_table", "read"),
        (members.MEMBERS, "check", "check_rows+existing"),
        (admission, "_check_existing", "existing_query"),
        (members, "bulk_insert", "copy_members"),
        (members, "write_audit", "audit_insert_select"),
        (pipeline, "bulk_insert", "copy_import_rows"),
        (result, "write_result", "result_xlsx (thread)"),
        (pipeline.ResultInBackground, "finish", "wait_for_result_xlsx"),
    )


def measure(
    url: str, file: str, upload_dir: str, username: str, profile: str | None, show: bool, breakdown: bool = False
) -> dict:
    import openpyxl  # noqa: F401
    import python_calamine  # noqa: F401  (imported at start-up in a server, as the CLI does)
    import sqlalchemy as sa

    import batch.pipeline
    from batch import create_batch
    from batch.members import MEMBERS
    from batch.reader import read_table
    from batch.result import write_result  # noqa: F401
    from models import Member, User, db

    app = common.make_app(url, upload_dir)
    data = Path(file).read_bytes()
    phases = _phase_timers() if breakdown else None
    load_1m = round(os.getloadavg()[0], 2)
    with app.app_context():
        counter = common.StatementCounter(db.engine)
        db.session.execute(sa.text("SELECT 1"))  # the pool's connection, as a warm server has it

        gc_paused = getattr(batch.pipeline, "gc_paused", contextlib.nullcontext)  # as the pipeline reads it
        with Timer() as read, gc_paused():
            read_table(data, Path(file).name, MEMBERS.columns, app.config["UPLOAD_MAX_ROWS"])
        if phases is not None:
            phases.clear()

        def load():
            db.session.remove()
            user = db.session.scalar(sa.select(User).where(User.username == username, User.active.is_(True)))
            if user is None:
                raise SystemExit(f"no user {username}")
            return user

        user = load()
        with Timer() as create:
            batch_id = create_batch("members", data, Path(file).name, user).id

        figures = common.measure_stored_batch(url, batch_id, data, load, counter, profile, show, Member, FLOOR_COLUMNS)
    out = {
        "read_s": read.s,
        **figures,
        "create_batch_s": create.s,
        "load_avg_1m": load_1m,
    }  # other work on the machine: the figures are wall-clock seconds
    if phases is not None:
        out["breakdown"] = phases
    return out


if __name__ == "__main__":
    main()

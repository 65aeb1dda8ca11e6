"""The large shared data set of the list, report and 投保 benchmarks: built once, then reused.

    .venv/bin/python bench/gen_large.py [--rebuild]      # build (or check) it; one JSON line
    .venv/bin/python bench/gen_large.py --stop-server    # stop and remove the local cluster

The database `bench_large` lives on BENCH_DATABASE_URL's server or, without it, on a local
cluster that is started once and LEFT RUNNING so that the next script reuses the data:
BENCH_PGDIR (default /tmp/huzhu-bench-large), port BENCH_PGPORT (default 55410), started with
`.ci/postgres.sh` (the CI settings: fsync off).  A build records its parameters, the schema and
its duration (generate_s) in the database's COMMENT, written last: a database without it (an
interrupted build), of other parameters or of another table schema is rebuilt; indexes that the
models gained or lost since are created or dropped on reuse.

Shape (all by COPY, the tables' indexes and constraints built afterwards, DESIGN.md §11):
  * the demo data (orgs, users, P01/P02/P03, a few hundred members and policies);
  * 2,000 units under 40 new agencies (50 units each) of 第一办事处;
  * 1,000,000 members (valid unique ID numbers, ~93 % CONFIRMED, 5 % NEW, 2 % RETURNED), ~400 per
    unit except two big units: the 投保 unit (~80,000 members, batch_policies.py) and the
    上报 unit (~111,000 members, of which exactly --report-rows have a NEW P01 policy);
  * 3,000,000 policies of the CONFIRMED members: per member P03 of last year (expired) and of
    this year (mostly 打印生效 with a policy_no, 3 % 提前终止; start months spread over the past
    year, so ~1/12 expire next month), a P01 (86 % 打印生效, 2 % 提前终止, 4 % 新建, 2 % 上报, 2 % 代办处已上报,
    1 % 打回, 3 % 未来月份…), for half of those whose P03 ends this month a P03 renewal in flight
    (新建/上报/代办处已上报/打回 from the first of next month), and P02 for as many women as make
    the total exactly --policies.

Restoring: the benchmarks change the data (a 投保 upload adds ~49,000 policies, the 上报 moves
100,000 policies to 上报); `restore(url)` undoes both (from the audit rows and the import batch
ids), and every script calls it before and after measuring.
"""

from __future__ import annotations

import argparse
import array
import bisect
import hashlib
import json
import math
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import ROOT, Timer, connect, driver_url, log  # noqa: E402

GEN_VERSION = 1
DBNAME = "bench_large"
PGDIR = os.environ.get("BENCH_PGDIR", "/tmp/huzhu-bench-large")
PGPORT = int(os.environ.get("BENCH_PGPORT", "55410"))

DEFAULTS = {
    "members": 1_000_000,
    "policies": 3_000_000,
    "units": 2000,
    "per_agency": 50,
    "batch_unit_members": 80_000,
    "report_rows": 100_000,
}

# who is who in the data set (usernames; the password is common.add_user's)
BATCH_CLERK = "bench_batch_clerk"  # clerk of the 投保 unit (~80,000 members)
REPORT_CLERK = "bench_report_clerk"  # clerk of the 上报 unit (report_rows NEW P01 policies)
UNIT_CLERK = "bench_clerk"  # clerk of an ordinary unit (~400 members)
AGENCY_STAFF = "bench_agency"  # staff of an ordinary agency (50 units)
AGENCY_STAFF_BIG = "bench_agency_big"  # staff of the agency holding the 上报 unit
ADMIN = "admin"  # the demo's admin, unscoped


# --- the server: BENCH_DATABASE_URL, or a local cluster left running ---------------------------


def _alive(url: str) -> bool:
    try:
        with common.psycopg.connect(url, connect_timeout=2):
            return True
    except common.psycopg.OperationalError:
        return False


def _pg_bin() -> Path:
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not bins:
        raise SystemExit("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return bins[-1]


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.getuid() == 0 else argv


def large_server() -> str:
    """The server URL (database "postgres"); starts the local cluster if needed."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        return common._with_db(driver_url(url), "postgres")
    url = f"postgresql://postgres@127.0.0.1:{PGPORT}/postgres"
    if _alive(url):
        return url
    data = Path(PGDIR) / "data"
    if (data / "PG_VERSION").exists():  # a cluster of an earlier run: start it again
        opts = (
            f"-p {PGPORT} -k {PGDIR} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=100"
        )
        subprocess.run(
            _as_owner(
                [
                    str(_pg_bin() / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    f"{PGDIR}/server.log",
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    opts,
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        log(f"restarted the bench cluster in {PGDIR} on port {PGPORT}")
    else:
        subprocess.run(
            ["bash", str(ROOT / ".ci" / "postgres.sh"), "start", PGDIR, str(PGPORT)], check=True, capture_output=True
        )
        log(f"started a bench cluster in {PGDIR} on port {PGPORT} (left running; --stop-server stops it)")
    return url


def stop_server() -> None:
    subprocess.run(["bash", str(ROOT / ".ci" / "postgres.sh"), "stop", PGDIR], check=False)


# --- parameters, schema, meta --------------------------------------------------------------------


def _metadata():
    from models import db

    return db.metadata


# tables holding none of the data set, only what the benchmarks write (emptied by `restore`): out of
# the schema hash, and created again from the models on reuse when their definition changed
SCRATCH_TABLES = ("audit_log",)


def _table_hash(table) -> str:
    import sqlalchemy as sa

    return hashlib.sha256(common._ddl(sa.schema.CreateTable(table)).encode()).hexdigest()[:16]


def schema_hash() -> str:
    """The tables and their columns and constraints (not the indexes: those are synced; not the
    scratch tables: see sync_scratch_tables)."""
    import sqlalchemy as sa

    ddl = "\n".join(
        common._ddl(sa.schema.CreateTable(t)) for t in _metadata().sorted_tables if t.name not in SCRATCH_TABLES
    )
    return hashlib.sha256(ddl.encode()).hexdigest()[:16]


def sync_scratch_tables(url: str) -> list[str]:
    """A scratch table whose definition in the models changed (its hash is its COMMENT) is dropped
    and created again, empty, from the models (its indexes then come from sync_indexes)."""
    import sqlalchemy as sa

    changes = []
    with connect(url) as conn:
        for name in SCRATCH_TABLES:
            table = _metadata().tables[name]
            row = conn.execute("SELECT obj_description(%s::regclass, 'pg_class')", (f'"{name}"',)).fetchone()
            if row and row[0] == _table_hash(table):
                continue
            conn.execute(f'DROP TABLE IF EXISTS "{name}"')
            conn.execute(common._ddl(sa.schema.CreateTable(table)))
            conn.execute(f"COMMENT ON TABLE \"{name}\" IS '{_table_hash(table)}'")
            conn.commit()
            changes.append(f"created {name} again from the models")
    for c in changes:
        log(f"table sync: {c}")
    return changes


def read_meta(url: str) -> dict | None:
    try:
        with connect(url) as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
            ).fetchone()
    except common.psycopg.OperationalError:
        return None
    try:
        return json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return None


def _write_meta(url: str, meta: dict) -> None:
    with connect(url) as conn:
        text = json.dumps(meta, ensure_ascii=False).replace("'", "''")
        conn.execute(f"COMMENT ON DATABASE \"{DBNAME}\" IS '{text}'")
        conn.commit()


def sync_indexes(url: str) -> list[str]:
    """Create the models' indexes the database lacks and drop those the models no longer have."""
    import sqlalchemy as sa

    wanted = {ix.name: ix for t in _metadata().sorted_tables for ix in t.indexes}
    changes = []
    with connect(url) as conn:
        tables = [t.name for t in _metadata().sorted_tables]  # not the benches' floor_* scratch copies
        have = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s)", (tables,)
            )
        }
        constraint_ix = {
            r[0]
            for r in conn.execute(
                "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                "WHERE n.nspname = 'public' AND contype IN ('p', 'u')"
            )
        }
        for name in sorted(set(wanted) - have):
            with Timer() as t:
                conn.execute("SET maintenance_work_mem = '512MB'")
                conn.execute(common._ddl(sa.schema.CreateIndex(wanted[name])))
                conn.commit()
            changes.append(f"created {name} ({t.s} s)")
        for name in sorted(have - set(wanted) - constraint_ix):
            conn.execute(f'DROP INDEX "{name}"')
            conn.commit()
            changes.append(f"dropped {name}")
    for c in changes:
        log(f"index sync: {c}")
    if changes:
        vacuum(url, "policy", "member")
    return changes


def vacuum(url: str, *tables: str) -> None:
    with connect(url) as conn:
        conn.autocommit = True
        for t in tables:
            conn.execute(f'VACUUM ANALYZE "{t}"')


# --- restoring what the benchmarks changed ---------------------------------------------------------


def audited_sql(entity: str, action: str) -> str:
    """SELECT of the ids of the records an action audited: its single-record rows' entity_id and
    the ids its grouped rows name (models/audit.py)."""
    where = f"entity = '{entity}' AND action = '{action}'"
    return (
        f"SELECT entity_id FROM audit_log WHERE {where} AND entity_id IS NOT NULL "
        f"UNION ALL SELECT unnest(entity_ids) FROM audit_log WHERE {where} AND entity_ids IS NOT NULL"
    )


def restore(url: str) -> dict:
    """Undo the benchmarks' writes: policies moved to 上报 go back to 新建 (found by their audit
    rows), uploaded policies and their batches go, the audit log is emptied.  Idempotent.
    (Only for data of these benchmarks: the data set has no audit rows or batches of its own.)"""
    with connect(url) as conn:
        # policy.renewed_from_id has no index: the foreign-key check of each deleted policy would
        # scan the whole table, so the clean-up skips it (nothing refers to an uploaded policy)
        try:
            conn.execute("SET LOCAL session_replication_role = replica")
        except common.psycopg.errors.InsufficientPrivilege:
            conn.rollback()
            log("not a superuser: deleting the uploaded policies with their foreign-key checks (slow)")
        reported = conn.execute(
            "UPDATE policy SET status = 'NEW', return_reason = NULL, version = version - 1 WHERE id IN "
            f"({audited_sql('policy', 'report')}) "
            "AND status = 'REPORTED'"
        ).rowcount
        uploaded = conn.execute("DELETE FROM policy WHERE import_batch_id IS NOT NULL").rowcount
        audit = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        conn.execute("TRUNCATE audit_log, import_row")
        conn.execute("DELETE FROM import_batch")
        conn.commit()
    if reported or uploaded:
        log(
            f"restored: {reported} policies back to NEW, {uploaded} uploaded policies deleted, {audit} audit "
            "rows; VACUUM ANALYZE policy …"
        )
        with Timer() as t:
            vacuum(url, "policy", "audit_log", "import_row", "import_batch")
        log(f"vacuumed in {t.s} s")
    return {"reported": reported, "uploaded": uploaded, "audit": audit}


# --- generation --------------------------------------------------------------------------------


def _coprime_slots(n_units: int, a_slots: int, b_slots: int) -> tuple[int, int]:
    """Unit slots for load_members (member i → slot (i·7919) mod L): L coprime with 100 so that a
    unit's members do not share i mod 20 / mod 50 (member_status), and with 7919."""
    while math.gcd(n_units - 2 + a_slots + b_slots, 100) != 1 or (n_units - 2 + a_slots + b_slots) % 7919 == 0:
        b_slots += 1
    return a_slots, b_slots


def member_slots(units: list, members: int, batch_members: int, report_members: int) -> tuple[list, int, int]:
    """The `units` list for load_members: every unit once, the two big ones many times."""
    a, b = units[0], units[common_b_index(units)]
    per_slot = (members - batch_members - report_members) / (len(units) - 2)
    a_slots, b_slots = _coprime_slots(
        len(units), max(1, round(batch_members / per_slot)), max(1, round(report_members / per_slot))
    )
    others = [u for u in units if u not in (a, b)]
    slots = others + [a] * a_slots + [b] * b_slots
    return slots, a_slots, b_slots


def common_b_index(units: list) -> int:
    """The 上报 unit: the first unit of the second agency."""
    return min(DEFAULTS["per_agency"], len(units) - 1)


FIRST_STATES_P01 = (  # (upper bound of u in 0..99, status, starts next month)
    (4, "NEW", True),
    (6, "REPORTED", True),
    (8, "AGENCY_REPORTED", True),
    (9, "RETURNED", True),
    (11, "TERMINATED", False),
    (100, "EFFECTIVE", False),
)
RENEWAL_STATES = ("NEW", "REPORTED", "AGENCY_REPORTED", "RETURNED")
RETURN_REASON = "份数与缴费金额不符，请核对后重新上报"
NULL = "\\N"  # COPY text format
POLICY_COPY_COLUMNS = [
    "member_id",
    "product_id",
    "org_id",
    "shares",
    "amount",
    "expected_effective_date",
    "effective_date",
    "expiry_date",
    "policy_no",
    "status",
    "return_reason",
    "created_at",
    "updated_at",
    "version",
]
F_CONFIRMED, F_RENEWAL, F_P02, F_REPORT_NEW, F_IN_B = 1, 2, 4, 8, 16


def _h1(k: int) -> int:
    return (k * 2654435761 + 97) & 0xFFFFFFFF


def _h2(k: int) -> int:
    return ((k + 1) * 2246822519 + 13) & 0xFFFFFFFF


def plan_policies(
    statuses: list[str], genders: list[str], orgs, b_org: int, target: int, report_rows: int
) -> tuple[bytearray, array.array]:
    """Per member: flags (see F_*) and the offset of its first policy row."""
    n = len(statuses)
    flags = bytearray(n)
    base = 0
    females = 0
    report_left = report_rows
    for k in range(n):
        if statuses[k] != "CONFIRMED":
            continue
        f = F_CONFIRMED
        h = _h1(k)
        if h % 12 == 11 and (h >> 8) & 1 == 0:
            f |= F_RENEWAL
        if orgs[k] == b_org:
            f |= F_IN_B
            if report_left:
                f |= F_REPORT_NEW
                report_left -= 1
        flags[k] = f
        base += 3 + (1 if f & F_RENEWAL else 0)
        females += genders[k] == "F"
    if report_left:
        raise SystemExit(
            f"the 上报 unit has {report_rows - report_left} CONFIRMED members, fewer than "
            f"--report-rows {report_rows}: raise its size"
        )
    need = target - base
    if need < 0 or need > females:
        raise SystemExit(f"cannot make exactly {target} policies from {base} base ones and {females} women")
    acc = 0
    for k in range(n):  # P02 for `need` women, evenly spread (Bresenham)
        if flags[k] and genders[k] == "F":
            acc += need
            if acc >= females:
                acc -= females
                flags[k] |= F_P02
    offsets = array.array("q", [0]) * (n + 1)
    total = 0
    for k in range(n):
        f = flags[k]
        offsets[k] = total
        if f:
            total += 3 + (1 if f & F_RENEWAL else 0) + (1 if f & F_P02 else 0)
    offsets[n] = total
    assert total == target, (total, target)
    return flags, offsets


class PolicyLines:
    """Picklable `make_chunks` of common.bulk_load for the policy table: rows start..stop-1."""

    def __init__(self, member_ids, orgs, flags, offsets, products: dict, today: date, chunk: int = 50_000):
        self.member_ids, self.orgs, self.flags, self.offsets = member_ids, orgs, flags, offsets
        self.products, self.today, self.chunk = products, today, chunk
        self.now = datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S")

    def __call__(self, start: int, stop: int):
        from rules.products import add_months, policy_expiry

        m0 = self.today.replace(day=1)
        # month starts m0-24 … m0+1 as ISO text, and the expiry (12 months − 1 day) of each
        starts = {d: add_months(m0, d) for d in range(-24, 2)}
        iso = {d: s.isoformat() for d, s in starts.items()}
        exp = {d: policy_expiry(s, 12).isoformat() for d, s in starts.items()}
        year = {d: s.year for d, s in starts.items()}
        p01, p02, p03 = self.products["P01"], self.products["P02"], self.products["P03"]
        member_ids, orgs, flags, offsets = self.member_ids, self.orgs, self.flags, self.offsets
        tail = f"\t{self.now}\t{self.now}\t1\n"
        k = bisect.bisect_right(offsets, start) - 1
        p = offsets[k]
        lines: list[str] = []
        append = lines.append

        def row(pid, shares, amount, d, status, reason=NULL):
            nonlocal p
            if start <= p < stop:
                if status == "EFFECTIVE" or status == "TERMINATED":  # live: effective date and policy_no
                    effective, policy_no = iso[d], f"BD{year[d]}{p:09d}"
                else:
                    effective = policy_no = NULL
                append(
                    f"{mid}\t{pid}\t{org}\t{shares}\t{amount}\t{iso[d]}\t{effective}\t{exp[d]}\t{policy_no}\t"
                    f"{status}\t{reason}{tail}"
                )
            p += 1

        while p < stop and k < len(flags):
            f = flags[k]
            if f:
                mid, org = member_ids[k], orgs[k]
                h, h2 = _h1(k), _h2(k)
                off = h % 12
                s3 = 1 + ((h >> 12) & 1)
                row(p03, s3, f"{20 * s3}.00", -12 - off, "EFFECTIVE")  # last year's, expired
                row(p03, s3, f"{20 * s3}.00", -off, "TERMINATED" if (h >> 4) % 100 < 3 else "EFFECTIVE")
                if f & F_RENEWAL:  # this year's ends this month: the renewal from next month, in flight
                    st = RENEWAL_STATES[(h >> 16) % 4]
                    if f & F_IN_B and st == "NEW":
                        st = "REPORTED"
                    row(p03, s3, f"{20 * s3}.00", 1, st, RETURN_REASON if st == "RETURNED" else NULL)
                s1 = 1 + ((h2 >> 20) & 1)
                if f & F_REPORT_NEW:
                    st, nxt = "NEW", True
                else:
                    u = (h2 >> 8) % 100
                    st, nxt = next((s, x) for bound, s, x in FIRST_STATES_P01 if u < bound)
                    if f & F_IN_B and st == "NEW":
                        st, nxt = "EFFECTIVE", False
                row(p01, s1, f"{50 * s1}.00", 1 if nxt else -(h2 % 12), st, RETURN_REASON if st == "RETURNED" else NULL)
                if f & F_P02:
                    row(p02, 1, "30.00", -((h2 >> 16) % 12), "EFFECTIVE")
                if len(lines) >= self.chunk:
                    yield "".join(lines)
                    lines = []
                    append = lines.append
            k += 1
        if lines:
            yield "".join(lines)


def _fetch_members(url: str, first_no: int, last_no: int):
    ids, orgs = array.array("i"), array.array("i")
    statuses, genders = [], []
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT id, org_id, status, gender FROM member WHERE member_no BETWEEN %s AND %s ORDER BY member_no",
            (f"{first_no:010d}", f"{last_no:010d}"),
        )
        for mid, org, st, g in cur:
            ids.append(mid)
            orgs.append(org)
            statuses.append(st)
            genders.append(g)
    return ids, orgs, statuses, genders


def generate(url: str, params: dict, upload_dir: Path) -> dict:
    from models import Policy

    common.demo_database(url, upload_dir)
    with Timer() as t_units:
        units = common.make_units(url, params["units"], params["per_agency"])
    a_unit, b_unit = units[0], units[common_b_index(units)]
    plain_unit = units[len(units) // 2 + 7]
    plain_agency = plain_unit[1][:-2]
    big_agency = b_unit[1][:-2]
    common.add_user(url, BATCH_CLERK, a_unit[1])
    common.add_user(url, REPORT_CLERK, b_unit[1])
    common.add_user(url, UNIT_CLERK, plain_unit[1])
    common.add_user(url, AGENCY_STAFF, plain_agency, "agency_staff")
    common.add_user(url, AGENCY_STAFF_BIG, big_agency, "agency_staff")

    report_members = math.ceil(params["report_rows"] / 0.90)
    slots, a_slots, b_slots = member_slots(units, params["members"], params["batch_unit_members"], report_members)
    log(
        f"{len(units)} units in {t_units.s} s; loading {params['members']} members "
        f"({a_slots} + {b_slots} of {len(slots)} slots to the two big units) …"
    )
    with Timer() as t_members:
        numbers = common.load_members(url, params["members"], slots)
    log(f"members in {t_members.s} s; planning the policies …")
    with Timer() as t_plan:
        ids, orgs, statuses, genders = _fetch_members(url, numbers["first_no"], numbers["last_no"])
        flags, offsets = plan_policies(statuses, genders, orgs, b_unit[0], params["policies"], params["report_rows"])
        del statuses, genders
        with connect(url) as conn:
            products = dict(conn.execute("SELECT code, id FROM product").fetchall())
    log(f"planned in {t_plan.s} s; loading {params['policies']} policies …")
    with Timer() as t_policies:
        common.bulk_load(
            url,
            Policy.__table__,
            POLICY_COPY_COLUMNS,
            PolicyLines(ids, orgs, flags, offsets, products, date.today()),
            params["policies"],
        )
    log(f"policies in {t_policies.s} s")
    vacuum(url, "org", "user", "product", "counter")
    return {
        "batch_unit": {"id": a_unit[0], "code": a_unit[1]},
        "report_unit": {"id": b_unit[0], "code": b_unit[1]},
        "plain_unit": {"id": plain_unit[0], "code": plain_unit[1]},
        "plain_agency": plain_agency,
        "big_agency": big_agency,
        "products": products,
        "member_numbers": numbers,
        "phases_s": {"units": t_units.s, "members": t_members.s, "plan": t_plan.s, "policies": t_policies.s},
    }


def ensure_large(rebuild: bool = False, **overrides) -> dict:
    """The URL and meta of `bench_large`, built if missing, stale or `rebuild`; restored."""
    import tempfile

    params = dict(DEFAULTS, **{k: v for k, v in overrides.items() if v is not None})
    server = large_server()
    url = common._with_db(server, DBNAME)
    meta = None if rebuild else read_meta(url)
    wanted = {"version": GEN_VERSION, "params": params, "schema": schema_hash()}
    if meta and all(meta.get(k) == v for k, v in wanted.items()):
        if meta.get("built_on") != date.today().isoformat():
            log(
                f"note: {DBNAME} was built on {meta.get('built_on')}: its dates are relative to that day "
                "(use --rebuild for today's)"
            )
        sync_scratch_tables(url)
        sync_indexes(url)
        restore(url)
        return dict(meta, url=url, reused=True)
    log(f"building {DBNAME} ({'--rebuild' if rebuild else 'missing or stale'}): {params} …")
    with Timer() as t, tempfile.TemporaryDirectory(prefix="bench-large.") as tmp:
        url = common.fresh_database(server, "large")
        info = generate(url, params, Path(tmp))
        sync_scratch_tables(url)  # records the scratch tables' definitions (their COMMENT)
    meta = dict(wanted, generate_s=t.s, built_on=date.today().isoformat(), **info)
    _write_meta(url, meta)
    log(f"{DBNAME} built in {t.s} s")
    return dict(meta, url=url, reused=False)


def add_arguments(ap: argparse.ArgumentParser, report_rows: bool = True) -> None:
    """The data set's options, common to every script that uses it (a database built with other
    values is rebuilt)."""
    ap.add_argument("--rebuild", action="store_true", help=f"rebuild {DBNAME} even if it is there")
    ap.add_argument("--members", type=int, help=f"members (default {DEFAULTS['members']})")
    ap.add_argument("--policies", type=int, help=f"policies (default {DEFAULTS['policies']})")
    ap.add_argument("--units", type=int, help=f"units (default {DEFAULTS['units']})")
    ap.add_argument(
        "--batch-unit-members", type=int, help=f"members of the 投保 unit (default {DEFAULTS['batch_unit_members']})"
    )
    if report_rows:
        ap.add_argument(
            "--report-rows", type=int, help=f"NEW policies of the 上报 unit (default {DEFAULTS['report_rows']})"
        )


def ensure_from_args(args, **extra) -> dict:
    keys = ("members", "policies", "units", "batch_unit_members", "report_rows")
    values = {k: getattr(args, k, None) for k in keys}
    values.update(extra)
    return ensure_large(args.rebuild, **values)


def summary(meta: dict) -> dict:
    return {
        "database": DBNAME,
        "reused": meta["reused"],
        "generate_s": meta["generate_s"],
        "data": {k: meta["params"][k] for k in ("members", "policies", "units")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(ap)
    ap.add_argument("--stop-server", action="store_true", help="stop and remove the local bench cluster")
    args = ap.parse_args()
    if args.stop_server:
        stop_server()
        return
    meta = ensure_from_args(args)
    with connect(meta["url"]) as conn:
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in ("org", "member", "policy")}
        sizes = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        states = dict(conn.execute("SELECT status, count(*) FROM policy GROUP BY 1 ORDER BY 1").fetchall())
    common.emit(
        {
            **summary(meta),
            "phases_s": meta.get("phases_s"),
            "counts": counts,
            "policy_states": states,
            "size": sizes,
            "built_on": meta.get("built_on"),
        }
    )


if __name__ == "__main__":
    main()

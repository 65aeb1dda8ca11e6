"""Shared helpers of the bench/ scripts (DESIGN.md §11).

    with postgres_server() as server:          # BENCH_DATABASE_URL, or a throwaway cluster
        url = fresh_database(server, "members")  # a new, empty database on it
        app = make_app(url, upload_dir)
        with app.app_context():
            db.create_all(); load_demo_data()
            units = make_units(url, 2000)       # offices/agencies/units under 第一办事处
            load_members(url, 1_000_000, units)  # COPY, valid unique ID numbers

ID numbers come from `id_number(i)`: a bijection from an index to a valid 18-digit number, so
disjoint index ranges never collide (existing members use 0..N-1, an upload uses N.. on).

`measure_child(argv)` runs the measured part in a fresh interpreter, so that its peak RSS
(`ru_maxrss`) is that of the work and not of the data generation.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

# --- timing and memory ---------------------------------------------------------------------


class Timer:
    """`with Timer() as t: …` then `t.s` (seconds, 3 decimals)."""

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.s = round(time.perf_counter() - self._t0, 3)


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux: ru_maxrss is in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def log(msg: str) -> None:
    """Progress goes to stderr; stdout carries only the one JSON line."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(result: dict) -> None:
    print(json.dumps(result, ensure_ascii=False), flush=True)


class StatementCounter:
    """Counts the statements SQLAlchemy sends (before_cursor_execute; an executemany is one).
    COPY goes through the driver connection directly and is not seen here."""

    def __init__(self, engine):
        self.engine, self.count, self.statements = engine, 0, []
        sa.event.listen(engine, "before_cursor_execute", self._on)

    def _on(self, conn, cursor, statement, parameters, context, executemany):
        self.count += 1
        self.statements.append(statement.split("\n", 1)[0][:120])

    def reset(self) -> int:
        n, self.count, self.statements = self.count, 0, []
        return n

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._on)


# --- PostgreSQL: start or connect, fresh database ------------------------------------------


def driver_url(url: str) -> str:
    """postgresql://… for psycopg (accepts postgres://, postgresql+psycopg://)."""
    return re.sub(r"^(postgres|postgresql\+psycopg|postgresql\+psycopg2)://", "postgresql://", url)


def sqlalchemy_url(url: str) -> str:
    return "postgresql+psycopg://" + driver_url(url).split("://", 1)[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server():
    """Yield a server URL: BENCH_DATABASE_URL as given, or a throwaway cluster started with
    `.ci/postgres.sh` (fsync off, as in CI) and stopped (and removed) at the end."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        yield driver_url(url)
        return
    pgdir = tempfile.mkdtemp(prefix="huzhu-bench-pg.")
    script = str(ROOT / ".ci" / "postgres.sh")
    try:
        out = (
            subprocess.run(
                ["bash", script, "start", pgdir, str(_free_port())], check=True, capture_output=True, text=True
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        log(f"started PostgreSQL at {out} (data in {pgdir})")
        yield out
    finally:
        subprocess.run(["bash", script, "stop", pgdir], capture_output=True)
        shutil.rmtree(pgdir, ignore_errors=True)


def _with_db(url: str, dbname: str) -> str:
    base, _, query = driver_url(url).partition("?")
    base = base.rsplit("/", 1)[0] if base.count("/") > 2 else base
    return f"{base}/{dbname}" + (f"?{query}" if query else "")


def fresh_database(server_url: str, name: str) -> str:
    """Create the empty database `bench_<name>` (dropped first if there) and return its URL."""
    dbname = re.sub(r"[^a-z0-9_]", "_", f"bench_{name}".lower())
    with psycopg.connect(_with_db(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    return _with_db(server_url, dbname)


def drop_database(url: str) -> None:
    dbname = driver_url(url).split("?")[0].rsplit("/", 1)[1]
    with psycopg.connect(_with_db(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@contextlib.contextmanager
def bench_database(name: str, keep: bool = False):
    """A fresh database on BENCH_DATABASE_URL's server or on a throwaway cluster; dropped at the
    end when the server is not ours (unless `keep`)."""
    external = bool(os.environ.get("BENCH_DATABASE_URL"))
    with postgres_server() as server:
        url = fresh_database(server, name)
        try:
            yield url
        finally:
            if external and not keep:
                drop_database(url)


def make_app(url: str, upload_dir: str | Path):
    from app import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": sqlalchemy_url(url),
            "SECRET_KEY": "bench",
            "SMS_BACKEND": "memory",
            "STORAGE_DIR": str(upload_dir),
        }
    )


def demo_database(url: str, upload_dir: str | Path):
    """The schema and the demo data (DESIGN.md §10) in the empty database `url`; the app."""
    from models import db
    from models.demo import load_demo_data

    app = make_app(url, upload_dir)
    with app.app_context():
        db.create_all()
        load_demo_data()
        db.session.remove()
        db.engine.dispose()
    return app


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(driver_url(url))


# --- fast loading: COPY with the table's indexes and constraints built afterwards -----------


def _ddl(element) -> str:
    from sqlalchemy.dialects import postgresql

    return str(element.compile(dialect=postgresql.dialect()))


def copy_text(conn: psycopg.Connection, table: str, columns: list[str], chunks) -> int:
    """COPY text-format data: `chunks` yields str blocks of tab-separated lines ending in \\n."""
    cols = ", ".join(f'"{c}"' for c in columns)
    n = 0
    with conn.cursor() as cur, cur.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
        for chunk in chunks:
            copy.write(chunk)
            n += chunk.count("\n")
    return n


def _copy_range(url: str, table: str, columns: list[str], make_chunks, start: int, stop: int) -> int:
    with connect(url) as conn:
        n = copy_text(conn, table, columns, make_chunks(start, stop))
        conn.commit()
    return n


def bulk_load(url: str, table: sa.Table, columns: list[str], make_chunks, count: int, workers: int = 0) -> int:
    """Load a big table fast: drop its secondary indexes, unique and foreign-key constraints,
    COPY rows 0..count-1 (`make_chunks(start, stop)` yields their text, a picklable callable)
    from `workers` processes at once (default: one per CPU), then rebuild the indexes and
    constraints from the model (the same DDL as db.create_all()), VACUUM ANALYZE, CHECKPOINT."""
    import concurrent.futures
    import multiprocessing

    from models.integrity import STATEMENT_CHECKED

    # (not the references PostgreSQL keeps by statement triggers, models/integrity.py: no such
    # foreign key exists there, and db.create_all made the triggers)
    fks = [
        c
        for c in table.constraints
        if isinstance(c, sa.ForeignKeyConstraint)
        and (table.name, *[col.name for col in c.columns]) not in STATEMENT_CHECKED
    ]
    uqs = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    with connect(url) as conn:
        for c in fks + uqs:
            conn.execute(f'ALTER TABLE "{table.name}" DROP CONSTRAINT IF EXISTS "{c.name}"')
        for ix in table.indexes:
            conn.execute(f'DROP INDEX IF EXISTS "{ix.name}"')
        conn.commit()
    workers = max(1, min(workers or os.cpu_count() or 1, count // 10_000 or 1))
    bounds = [count * k // workers for k in range(workers + 1)]
    if workers == 1:
        n = _copy_range(url, table.name, columns, make_chunks, 0, count)
    else:
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            n = sum(
                pool.map(
                    _copy_range,
                    *zip(*[(url, table.name, columns, make_chunks, a, b) for a, b in zip(bounds, bounds[1:])]),
                )
            )
    with connect(url) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        for c in uqs:
            conn.execute(_ddl(sa.schema.AddConstraint(c)))
        for ix in table.indexes:
            conn.execute(_ddl(sa.schema.CreateIndex(ix)))
        for c in fks:
            conn.execute(_ddl(sa.schema.AddConstraint(c)))
        conn.commit()
        conn.autocommit = True
        conn.execute(f'VACUUM ANALYZE "{table.name}"')
        conn.execute("CHECKPOINT")  # so that the measured run does not pay for the load's dirty pages
    return n


def set_sequence(url: str, table: str, column: str = "id") -> None:
    with connect(url) as conn:
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), "
            f'coalesce((SELECT max("{column}") FROM "{table}"), 0) + 1, false)'
        )


# --- ID numbers, names ---------------------------------------------------------------------

# not the demo data's regions (110101 110102 110105 110106 110108), so generated numbers never
# collide with the demo members
REGIONS = (
    "110111",
    "110112",
    "110113",
    "110114",
    "110115",
    "120101",
    "310101",
    "320102",
    "330106",
    "340103",
    "350102",
    "370102",
    "410105",
    "420106",
    "440103",
    "440304",
    "500103",
    "510104",
)
SEQS = 1000  # digits 15–17
AGE_RANGE = (20, 50)  # eligible for every product, both genders, for a long time


def _birth_days(today: date) -> list[str]:
    first = date(today.year - AGE_RANGE[1], today.month, 1) + timedelta(days=40)
    last = date(today.year - AGE_RANGE[0], today.month, 1) - timedelta(days=40)
    return [(first + timedelta(days=k)).strftime("%Y%m%d") for k in range((last - first).days)]


class IdNumbers:
    """`ids[i]`: the i-th valid ID number, a bijection of i over a space of ~200M, scattered by
    a multiplicative permutation (so neighbouring indices are not neighbouring numbers)."""

    def __init__(self, today: date | None = None):
        self.days = _birth_days(today or date.today())
        self.size = len(self.days) * SEQS * len(REGIONS)
        self.mult = 2_654_435_761
        while _gcd(self.mult, self.size) != 1:
            self.mult += 2

    def parts(self, i: int) -> tuple[str, str, int]:
        j = (i * self.mult + 12345) % self.size
        j, day = divmod(j, len(self.days))
        region, seq = divmod(j, SEQS)
        return REGIONS[region], self.days[day], seq

    def __getitem__(self, i: int) -> str:
        from rules.idnumber import id_check_digit

        region, birth, seq = self.parts(i)
        first17 = f"{region}{birth}{seq:03d}"
        return first17 + id_check_digit(first17)

    @staticmethod
    def gender(number: str) -> str:
        return "M" if number[16] in "13579" else "F"


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def make_id(region: str, birth: date, seq: int) -> str:
    """A valid ID number for a given birth date (for the age edge cases of an upload)."""
    from rules.idnumber import id_check_digit

    first17 = f"{region}{birth:%Y%m%d}{seq % 1000:03d}"
    return first17 + id_check_digit(first17)


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈欧阳"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志红玉海燕春梅晓东婷雪琳鹏飞宇浩然佳怡子涵思远"


def name_pool(size: int = 20_011) -> list[str]:
    """Distinct-enough Chinese names, deterministic; index with `pool[i % len(pool)]`."""
    out = []
    for k in range(size):
        s = SURNAMES[k % len(SURNAMES)]
        g1 = GIVEN[(k * 7) % len(GIVEN)]
        g2 = GIVEN[(k * 13 + k // len(GIVEN)) % len(GIVEN)]
        out.append(s + g1 + (g2 if k % 3 else ""))
    return out


# --- orgs, users, members ------------------------------------------------------------------

PASSWORD_HASH = None


def _password_hash() -> str:
    global PASSWORD_HASH
    if PASSWORD_HASH is None:
        from werkzeug.security import generate_password_hash

        PASSWORD_HASH = generate_password_hash("Bench-2026")
    return PASSWORD_HASH


def make_units(url: str, n_units: int, per_agency: int = 50, office_code: str = "01") -> list[tuple[int, str]]:
    """`n_units` units under new agencies of the demo office `office_code` (codes 0103…,
    010301…); returns [(org_id, code)] of the units.  Needs the demo orgs."""
    n_agencies = -(-n_units // per_agency)
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, path FROM org WHERE code = %s", (office_code,))
        office_id, office_path = cur.fetchone()
        cur.execute("SELECT count(*) FROM org WHERE parent_id = %s", (office_id,))
        first = cur.fetchone()[0] + 1
        agencies = []
        for a in range(first, first + n_agencies):
            code = f"{office_code}{a:02d}" if a < 100 else f"{office_code}{a:03d}"
            agencies.append((code, f"第{a}代办处", "agency", office_id, f"{office_path}{code}/"))
        cur.executemany(
            "INSERT INTO org (code, name, level, parent_id, path, active) VALUES (%s,%s,%s,%s,%s,true)", agencies
        )
        cur.execute(
            "SELECT id, code, path FROM org WHERE level = 'agency' AND parent_id = %s AND code = ANY(%s) ORDER BY code",
            (office_id, [a[0] for a in agencies]),
        )
        units, left = [], n_units
        for agency_id, acode, apath in cur.fetchall():
            for u in range(1, min(per_agency, left) + 1):
                code = f"{acode}{u:02d}"
                units.append((code, f"{acode}号第{u}单位工会", "unit", agency_id, f"{apath}{code}/"))
            left -= min(per_agency, left)
        cur.executemany(
            "INSERT INTO org (code, name, level, parent_id, path, active) VALUES (%s,%s,%s,%s,%s,true)", units
        )
        cur.execute("SELECT id, code FROM org WHERE code = ANY(%s) ORDER BY code", ([u[0] for u in units],))
        out = cur.fetchall()
        conn.commit()
    return out


def add_user(url: str, username: str, org_code: str, role: str = "unit_clerk") -> int:
    """A user with a fixed password (hashed once per process)."""
    now = datetime.utcnow()
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            'INSERT INTO "user" (username, display_name, password_hash, phone, org_id, role, active, failed_attempts, '
            "login_code_tries, created_at, updated_at) SELECT %s, %s, %s, %s, id, %s, true, 0, 0, %s, %s FROM org "
            "WHERE code = %s RETURNING id",
            (username, username, _password_hash(), "+8613900000000", role, now, now, org_code),
        )
        uid = cur.fetchone()[0]
        conn.commit()
    return uid


MEMBER_COPY_COLUMNS = [
    "member_no",
    "id_number",
    "name",
    "gender",
    "birth_date",
    "org_id",
    "status",
    "admitted_on",
    "over_age_exception",
    "created_at",
    "updated_at",
    "version",
]


def member_status(i: int) -> str:
    """Mostly CONFIRMED (enrolable); every 20th NEW, every 50th (from 1) RETURNED."""
    return "NEW" if i % 20 == 0 else "RETURNED" if i % 50 == 1 else "CONFIRMED"


def member_unit(i: int, units: list[tuple[int, str]]) -> tuple[int, str]:
    return units[(i * 7919) % len(units)]


class MemberLines:
    """Picklable `make_chunks` of bulk_load for the member table: rows start..stop-1."""

    def __init__(self, ids: IdNumbers, units: list[tuple[int, str]], first_no: int, chunk: int = 50_000):
        self.ids, self.unit_ids, self.first_no, self.chunk = ids, [u[0] for u in units], first_no, chunk
        self.now = datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S")
        self.admitted = (date.today() - timedelta(days=400)).isoformat()

    def __call__(self, start: int, stop: int):
        from rules.idnumber import _CHECK_MAP  # id_check_digit's table, without its input checks

        ids, first_no = self.ids, self.first_no
        days, n_days, mult, size = ids.days, len(ids.days), ids.mult, ids.size
        iso = [f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in days]
        names = name_pool()
        n_names = len(names)
        unit_ids, n_units = self.unit_ids, len(self.unit_ids)
        tail = f"\t{self.admitted}\tf\t{self.now}\t{self.now}\t1\n"
        for lo in range(start, stop, self.chunk):
            lines = []
            append = lines.append
            for i in range(lo, min(stop, lo + self.chunk)):
                j = (i * mult + 12345) % size
                j, day = divmod(j, n_days)
                region, seq = divmod(j, SEQS)
                first17 = f"{REGIONS[region]}{days[day]}{seq:03d}"
                number = first17 + _CHECK_MAP[2 * int(first17, 13) % 11]
                status = "NEW" if i % 20 == 0 else "RETURNED" if i % 50 == 1 else "CONFIRMED"  # member_status
                append(
                    f"{first_no + i:010d}\t{number}\t{names[i % n_names]}\t{'M' if seq & 1 else 'F'}\t{iso[day]}\t"
                    f"{unit_ids[(i * 7919) % n_units]}\t{status}{tail}"
                )
            assert lines[0].split("\t")[1] == ids[lo]  # the inlined path builds IdNumbers' numbers
            yield "".join(lines)


def load_members(
    url: str, count: int, units: list[tuple[int, str]], ids: IdNumbers | None = None, workers: int = 0
) -> dict:
    """`count` members (indices 0..count-1 of `ids`) spread over `units` (member_unit), status
    by member_status, member_no after the demo's (the counter is moved past them), loaded by
    bulk_load.  Returns {"first_no", "last_no"}."""
    from models import Member

    ids = ids or IdNumbers()
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(value), 0) FROM counter WHERE name = 'member_no'")
        first_no = cur.fetchone()[0] + 1
        cur.execute("SELECT coalesce(max(member_no::bigint), 0) FROM member")
        first_no = max(first_no, cur.fetchone()[0] + 1)
    bulk_load(url, Member.__table__, MEMBER_COPY_COLUMNS, MemberLines(ids, units, first_no), count, workers)
    last_no = first_no + count - 1
    with connect(url) as conn:
        conn.execute(
            "INSERT INTO counter (name, value) VALUES ('member_no', %s) "
            "ON CONFLICT (name) DO UPDATE SET value = GREATEST(counter.value, EXCLUDED.value)",
            (last_no,),
        )
        conn.commit()
    return {"first_no": first_no, "last_no": last_no}


# --- the measured part in its own interpreter ------------------------------------------------


def measure_child(script: str | Path, args: list[str]) -> dict:
    """Run `python script args…` and return the JSON object of its last stdout line."""
    proc = subprocess.run([sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
    if proc.returncode != 0:
        raise SystemExit(f"measured run failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def xlsx_bytes(rows: list[list], header: list[str], sheet: str = "Sheet1") -> bytes:
    """An .xlsx as a clerk's Excel saves it (openpyxl, shared strings); str cells are text cells."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append(header)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# CPU seconds of this process (all its threads) per stage of the last check_and_process: unlike
# wall-clock seconds, hardly moved by other work on the machine (the database's share is not in it)
CLIENT_CPU: dict[str, float] = {}


def check_and_process(batch_id: int, load, counter: StatementCounter, profile: bool = False):
    """业务校验 then 业务办理 of one stored batch, as the CLI runs them: each stage timed and its
    statements counted (optionally under cProfile).  `load()` returns a fresh user object.
    Returns ({"check"|"process": (seconds, statements, statement texts, outcome)}, profiler)."""
    from batch import check_batch, process_batch
    from models import ImportBatch, db

    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    runs = {}
    cpu = CLIENT_CPU
    for stage, run in (("check", check_batch), ("process", process_batch)):
        user = load()
        batch = db.session.get(ImportBatch, batch_id)
        counter.reset()
        if prof:
            prof.enable()
        cpu0 = time.process_time()
        with Timer() as t:
            outcome = run(batch, user)
        cpu[stage] = round(time.process_time() - cpu0, 3)
        if prof:
            prof.disable()
        runs[stage] = (t.s, counter.count, counter.statements, outcome)
        counter.reset()
    return runs, prof


def measure_stored_batch(
    url: str, batch_id: int, data: bytes, load, counter: StatementCounter, profile, show: bool, model, columns
) -> dict:
    """What both batch benches measure of a stored batch, in the app context: 业务校验 and 业务办理
    (`check_and_process`), the rows written checked against the database, their error codes, and
    the floor: the same file read by python-calamine, the same rows by COPY into a copy of the
    model's table with the same indexes and constraints (`columns`: those the batch writes)."""
    from models import db

    runs, prof = check_and_process(batch_id, load, counter, profile)
    check_s, statements_check, listed_check, checked = runs["check"]
    process_s, statements_process, listed_process, processed = runs["process"]
    rss = peak_rss_mb()
    counter.close()

    db.session.remove()
    in_db = db.session.scalar(sa.select(sa.func.count()).select_from(model).where(model.import_batch_id == batch_id))
    if in_db != processed.created or checked.ok_count != processed.created:
        raise SystemExit(f"mismatch: checked ok {checked.ok_count}, created {processed.created}, in db {in_db}")
    codes: dict[str, int] = {}
    for r in processed.results:
        if r.code:
            codes[str(r.code)] = codes.get(str(r.code), 0) + 1
    table = model.__tablename__
    floor_rows = db.session.execute(
        sa.text(f"SELECT {', '.join(columns)} FROM {table} WHERE import_batch_id = :b ORDER BY id"), {"b": batch_id}
    ).all()
    db.session.remove()
    floor_read_s, _ = floor_read(data)
    floor_copy_s = floor_copy(url, table, columns, "".join(copy_line(r) for r in floor_rows))
    if show:
        for label, listed in (("check", listed_check), ("process", listed_process)):
            log(f"{label} statements:")
            for statement in listed:
                print("    " + statement, file=sys.stderr)
    if prof:
        import pstats

        prof.dump_stats(profile)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    log(f"error codes: {codes}")
    return {
        "check_s": check_s,
        "process_s": process_s,
        "total_s": round(check_s + process_s, 3),
        "client_cpu_s": dict(CLIENT_CPU),
        "peak_rss_mb": rss,
        "statements_check": statements_check,
        "statements_process": statements_process,
        "created": processed.created,
        "errors": processed.error_count,
        "error_codes": codes,
        "floor_read_s": floor_read_s,
        "floor_copy_s": floor_copy_s,
        "floor_s": round(floor_read_s + floor_copy_s, 3),
        "ratio": round((check_s + process_s) / (floor_read_s + floor_copy_s), 2),
    }


def time_phases(*targets) -> dict:
    """Wrap functions with timers for a --breakdown: `targets` are (owner, attribute, label);
    returns {label: [seconds per call]} filled as the wrapped functions run."""
    import functools

    seconds: dict = {}
    for owner, name, label in targets:
        fn = getattr(owner, name)

        def timed(*a, _fn=fn, _label=label, **kw):
            t0 = time.perf_counter()
            try:
                return _fn(*a, **kw)
            finally:
                seconds.setdefault(_label, []).append(round(time.perf_counter() - t0, 3))

        setattr(owner, name, functools.wraps(fn)(timed))
    return seconds


# --- the floor: what the file reader and the database cannot avoid (DESIGN.md §11) ------------

FLOOR_PREFIX = "floor_"


def _table_signature(conn: psycopg.Connection, table: str) -> list[str]:
    """The table's indexes, constraints and storage options, as DDL (names of the copy aside)."""
    idx = [
        r[0]
        for r in conn.execute(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
            (table,),
        )
    ]
    cons = [
        f"{r[0]} {r[1]}"
        for r in conn.execute(
            "SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass ORDER BY 1, 2",
            (table,),
        )
    ]
    opts = conn.execute("SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = %s::regclass", (table,)).fetchone()
    generated = [
        f"generated {r[0]} {r[1]}"
        for r in conn.execute(
            "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a JOIN pg_attrdef d "
            "ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = %s::regclass "
            "AND a.attgenerated = 's' ORDER BY 1",
            (table,),
        )
    ]
    triggers = [
        re.sub(r"TRIGGER \S+ (.*) ON (public\.)?\S+ ", r"TRIGGER \1 ON ", d) for d in _trigger_defs(conn, table)
    ]
    return (
        triggers
        + [
            _same_index(re.sub(r"\bON (public\.)?\S+ USING", "ON USING", re.sub(r"INDEX \S+ ON", "INDEX ON", d)))
            for d in idx
        ]
        + [
            *cons,
            *generated,
            f"options {sorted(opts[0])}",
        ]
    )


def _trigger_defs(conn: psycopg.Connection, table: str) -> list[str]:
    """The table's own triggers (models/integrity.py: its org reference, kept once per statement)."""
    return sorted(
        r[0]
        for r in conn.execute(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            (table,),
        )
    )


def _stored_columns(conn: psycopg.Connection, table: str) -> str:
    """The columns a row is written with: not the dropped ones, not the generated ones (the
    database computes those, in the copy as in the table)."""
    return ", ".join(
        f'"{r[0]}"'
        for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            (table,),
        )
    )


def _same_index(ddl: str) -> str:
    """An index definition without its casts and parentheses: a partial index's WHERE made again
    from pg_get_indexdef's text comes back cast differently (`ANY ((ARRAY['NEW'::character
    varying])::text[])` as `ANY (ARRAY[('NEW'::character varying)::text])`), the same condition."""
    return re.sub(r"[()]", "", re.sub(r"::(?:character varying|[a-z_]+)(?:\[\])?", "", ddl))


def scratch_copy(url: str, table: str, same_rows: bool = True) -> str:
    """`floor_<table>`: a copy of `table` with its rows, the SAME indexes, constraints (primary,
    unique, foreign keys, checks, and the triggers that keep its org reference), generated columns
    and storage options (fillfactor), built once and rebuilt when
    the table's indexes or constraints change (or, with `same_rows`, its row count: build it before
    the measured run adds rows).  The floor's writes go into it and are rolled back."""
    copy = FLOOR_PREFIX + table
    with connect(url) as conn:
        want = _table_signature(conn, table)
        exists = conn.execute("SELECT to_regclass(%s)", (copy,)).fetchone()[0] is not None
        rows = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        if (
            exists
            and _table_signature(conn, copy) == want
            and (not same_rows or conn.execute(f'SELECT count(*) FROM "{copy}"').fetchone()[0] == rows)
        ):
            return copy
        log(f"building the scratch copy {copy} of {table} ({rows} rows, same indexes and constraints) …")
        with Timer() as t:
            conn.execute(f'DROP TABLE IF EXISTS "{copy}"')
            opts = conn.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", (table,)).fetchone()[0]
            with_opts = f" WITH ({', '.join(opts)})" if opts else ""
            conn.execute(
                f'CREATE TABLE "{copy}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE '
                f"INCLUDING GENERATED){with_opts}"
            )
            cols = _stored_columns(conn, table)
            conn.execute(f'INSERT INTO "{copy}" ({cols}) SELECT {cols} FROM "{table}"')
            conn.execute("SET maintenance_work_mem = '512MB'")
            defs = conn.execute(
                "SELECT contype, conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
                "AND contype IN ('p', 'u', 'f', 'x') ORDER BY contype = 'f', conname",
                (table,),
            ).fetchall()
            for _contype, name, ddl in defs:
                conn.execute(f'ALTER TABLE "{copy}" ADD CONSTRAINT "{FLOOR_PREFIX}{name}" {ddl}')
            for (ddl,) in conn.execute(
                "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
                (table,),
            ).fetchall():
                ddl = re.sub(
                    r"INDEX (\S+) ON (public\.)?\S+ USING", f'INDEX "{FLOOR_PREFIX}\\1" ON "{copy}" USING', ddl
                )
                conn.execute(ddl)
            for ddl in _trigger_defs(conn, table):  # the same check of its references, as a constraint
                conn.execute(
                    re.sub(
                        r"TRIGGER (\S+) (.*) ON (public\.)?\S+ ", f'TRIGGER "{FLOOR_PREFIX}\\1" \\2 ON "{copy}" ', ddl
                    )
                )
            conn.commit()
            conn.autocommit = True
            conn.execute(f'VACUUM ANALYZE "{copy}"')
            conn.execute("CHECKPOINT")
        got = _table_signature(conn, copy)
        if got != want:
            raise SystemExit(f"the scratch copy {copy} differs from {table}: {set(got) ^ set(want)}")
        log(f"{copy} built in {t.s} s")
    return copy


def floor_read(data: bytes) -> tuple[float, list]:
    """Reading the file with python-calamine, every cell into Python: (seconds, rows)."""
    from python_calamine import CalamineWorkbook

    with Timer() as t:
        rows = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0).to_python()
    return t.s, rows


def floor_copy(url: str, table: str, columns: list[str], lines: str) -> float:
    """COPY the text-format `lines` into the scratch copy of `table` in one transaction, timed from
    the COPY to the commit's point (then rolled back, and the copy vacuumed, untimed)."""
    copy = scratch_copy(url, table, same_rows=False)
    cols = ", ".join(f'"{c}"' for c in columns)
    with connect(url) as conn:
        conn.execute("SELECT 1")
        with Timer() as t, conn.cursor() as cur, cur.copy(f'COPY "{copy}" ({cols}) FROM STDIN') as cp:
            cp.write(lines)
        conn.rollback()
        conn.autocommit = True
        conn.execute(f'VACUUM "{copy}"')
    return t.s


def floor_update(url: str, table: str, ids: list[int], column: str, value: str) -> float:
    """A bare `UPDATE copy SET column = value WHERE id = ANY(ids)` of the same rows on the scratch
    copy of `table`, timed, then rolled back (and the copy vacuumed, untimed)."""
    copy = scratch_copy(url, table, same_rows=False)
    with connect(url) as conn:
        conn.execute("SELECT 1")
        with Timer() as t:
            conn.execute(f'UPDATE "{copy}" SET "{column}" = %s WHERE id = ANY(%s)', (value, ids))
        conn.rollback()
        conn.autocommit = True
        conn.execute(f'VACUUM "{copy}"')
    return t.s


def copy_line(values) -> str:
    """One COPY text line of plain values (None → \\N; no tabs, newlines or backslashes in them)."""
    return "\t".join("\\N" if v is None else str(v) for v in values) + "\n"


def machine_load() -> dict:
    """What else the machine was doing: `uptime`'s load averages and the CPUs."""
    return {"uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), "cpus": os.cpu_count()}

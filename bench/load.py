"""Load test: many clerks at once against the production set-up, on this machine only (loopback).

    .venv/bin/python bench/load.py [--clerks 100] [--seconds 120] [--think 2.0]

gunicorn (gunicorn.conf.py, 4 workers) + one RQ worker (`flask worker`) + a throwaway Redis + PostgreSQL
with the 1M members / 3M policies data set (bench/gen_large.py). Each simulated clerk of a unit of
its own logs in through the real pages (获取手机验证码: the console SMS line is read back from the
server's output; behind TRUSTED_PROXIES=1 each clerk has its own X-Forwarded-For address, so the
per-address SMS limit applies per clerk), then until the time is up picks, with a pause of about
--think seconds between: 首页, the 入会管理 and 投保管理 lists, a search by a full 身份证号, a 1,000-row
批量入会 file (upload → 业务校验 → 业务办理, each on the RQ worker since BATCH_BACKGROUND_ROWS is 500
here, the page's progress polled; one upload in ten is a file that clerk has processed already),
and 当前查询结果上报 of its unit's new members. Loops are bounded by the deadline; nothing leaves
127.0.0.1.

One JSON line: requests, errors (any 5xx, any unexpected answer, any exception; must be 0), p50/p95
per page kind, batches done, duplicates found afterwards (must be 0: no 身份证号 twice, no member
created twice by a file processed twice), and the machine's load (`uptime`). Clerks arrive over
--ramp seconds (an office does not log in all at the same second: each login costs two password
hashes). What the test added (members, batches, audit rows, 上报) is undone afterwards; its users are
kept for the next run (deleting a user checks every table that refers to users).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import gen_large  # noqa: E402
from common import ROOT, connect, log  # noqa: E402

PASSWORD = "Bench-2026"  # common.add_user's
PREFIX = "load_clerk_"
SMS_LINE = re.compile(r"SMS to \S+ for (\S+): (\d{6})")
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
EXPECTED = re.compile(r'name="expected" value="(\d+)"')
RUN_URL = re.compile(r"/admin/batches/run/(\d+)/$")
LOOPBACK = {"http": None, "https": None}  # never through a proxy named in the environment


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the servers
class Servers:
    """Redis, gunicorn and the RQ worker; the console SMS codes read from gunicorn's output."""

    def __init__(self, db_url: str, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.redis_dir = workdir / "redis"
        redis_url = subprocess.run(
            ["bash", str(ROOT / ".ci/redis.sh"), "start", str(self.redis_dir), str(free_port())],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
        self.env.update(
            DATABASE_URL=db_url,
            REDIS_URL=redis_url,
            SECRET_KEY="load-test-secret",
            SMS_BACKEND="console",
            SMS_DAILY_BUDGET="100000",
            TRUSTED_PROXIES="1",
            BATCH_BACKGROUND_ROWS="500",
            STORAGE_DIR=str(workdir / "files"),
            PYTHONUNBUFFERED="1",
            LOG_LEVEL="WARNING",  # one line per request would be 10,000s of lines; codes are printed anyway
        )
        self.codes: dict[str, str] = {}
        self.cond = threading.Condition()
        bin_ = ROOT / ".venv" / "bin"
        self.web = subprocess.Popen(
            [
                str(bin_ / "gunicorn"),
                "--config",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "4",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.worker = subprocess.Popen(
            [str(bin_ / "flask"), "--app", "app", "worker"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self._wait_ready()

    def _read(self):
        for line in self.web.stdout:
            m = SMS_LINE.search(line)
            if m:
                with self.cond:
                    self.codes[m.group(1)] = m.group(2)
                    self.cond.notify_all()

    def code_for(self, username: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        with self.cond:
            while username not in self.codes:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no SMS code for {username}")
                self.cond.wait(left)
            return self.codes.pop(username)

    def _wait_ready(self, timeout: float = 120):
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=5, proxies=LOOPBACK).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.web.poll() is not None:
                raise RuntimeError("gunicorn exited")
            time.sleep(0.5)
        raise RuntimeError("gunicorn did not answer /healthz")

    def stop(self):
        for proc in (self.web, self.worker):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in (self.web, self.worker):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        subprocess.run(["bash", str(ROOT / ".ci/redis.sh"), "stop", str(self.redis_dir)], check=False)


# ---------------------------------------------------------------- the data
def new_ids(n: int, seed: int) -> list[str]:
    """Valid 身份证号 of people aged 25-45 from a region code the data set does not use."""
    from rules import id_check_digit

    rnd = random.Random(seed)
    out = set()
    while len(out) < n:
        first17 = (
            f"659001{rnd.randint(1981, 2000)}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}{rnd.randint(0, 999):03d}"
        )
        out.add(first17 + id_check_digit(first17))
    return sorted(out)


def members_xlsx(ids: list[str], seed: int) -> bytes:
    from openpyxl import Workbook

    chars = "伟芳娜洋静磊敏强军杰涛明超秀英华慧建国平"
    rnd = random.Random(seed)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("批量入会")
    ws.append(["姓名", "身份证号"])
    for idn in ids:
        ws.append(["王" + rnd.choice(chars) + rnd.choice(chars), idn])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def prepare(url: str, clerks: int, rows: int, files_per_clerk: int) -> list[dict]:
    """`clerks` users, each of an ordinary unit with members; their files and a few 身份证号 to search."""
    with connect(url) as conn:
        units = conn.execute(
            "SELECT o.code, o.id FROM org o JOIN (SELECT org_id, count(*) AS n FROM member GROUP BY org_id) m "
            "ON m.org_id = o.id WHERE o.level = 'unit' AND m.n BETWEEN 100 AND 1000 ORDER BY o.code LIMIT %s",
            (clerks,),
        ).fetchall()
        assert len(units) == clerks, f"only {len(units)} ordinary units"
        people = []
        for i, (code, org_id) in enumerate(units):
            ids = [
                r[0]
                for r in conn.execute("SELECT id_number FROM member WHERE org_id = %s LIMIT 5", (org_id,)).fetchall()
            ]
            people.append(
                {"username": f"{PREFIX}{i:03d}", "org": code, "search": ids, "ip": f"198.51.100.{i % 250 + 1}"}
            )
    all_ids = new_ids(clerks * files_per_clerk * rows, seed=16)
    with connect(url) as conn:
        taken = conn.execute("SELECT count(*) FROM member WHERE id_number = ANY(%s)", (all_ids,)).fetchone()[0]
    assert taken == 0, f"{taken} of the generated 身份证号 exist already"
    with connect(url) as conn:  # a clean login state, as after a night
        have = {r[0] for r in conn.execute('SELECT username FROM "user" WHERE username LIKE %s', (PREFIX + "%",))}
        conn.execute(
            'DELETE FROM sms_send WHERE user_id IN (SELECT id FROM "user" WHERE username LIKE %s)', (PREFIX + "%",)
        )
        conn.execute(
            'UPDATE "user" SET login_code_sent_at = NULL, login_code_tries = 0, failed_attempts = 0, '
            "locked_until = NULL WHERE username LIKE %s",
            (PREFIX + "%",),
        )
        conn.commit()
    for i, p in enumerate(people):
        if p["username"] not in have:  # kept from an earlier run
            common.add_user(url, p["username"], p["org"])
        chunk = all_ids[i * files_per_clerk * rows : (i + 1) * files_per_clerk * rows]
        p["files"] = [
            (f"批量入会_{i:03d}_{k}.xlsx", members_xlsx(chunk[k * rows : (k + 1) * rows], seed=i * 100 + k))
            for k in range(files_per_clerk)
        ]
    return people


# ---------------------------------------------------------------- a clerk
class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.times = defaultdict(list)
        self.errors = defaultdict(int)
        self.error_samples: list[str] = []
        self.batches_done = 0
        self.batches_repeated = 0

    def record(self, kind: str, seconds: float, ok: bool, what: str = ""):
        with self.lock:
            self.times[kind].append(seconds)
            if not ok:
                self.errors[kind] += 1
                if len(self.error_samples) < 10:
                    self.error_samples.append(f"{kind}: {what}"[:300])


class Clerk(threading.Thread):
    def __init__(self, person: dict, servers: Servers, stats: Stats, deadline: float, think: float, seed: int):
        super().__init__(daemon=True)
        import requests

        self.p, self.servers, self.stats, self.deadline, self.think = person, servers, stats, deadline, think
        self.rnd = random.Random(seed)
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only: no proxy or .netrc from the environment
        self.http.headers["X-Forwarded-For"] = person["ip"]  # as the trusted proxy would report the clerk
        self.done_files: list[tuple[str, bytes]] = []

    # one request, timed and judged
    def call(self, kind: str, method: str, path: str, expect=(200,), **kw):
        t0 = time.perf_counter()
        try:
            resp = self.http.request(method, self.servers.url + path, timeout=120, allow_redirects=False, **kw)
        except Exception as exc:
            self.stats.record(kind, time.perf_counter() - t0, False, f"{path}: {exc!r}")
            raise
        ok = resp.status_code in expect
        self.stats.record(kind, time.perf_counter() - t0, ok, f"{method} {path} -> {resp.status_code}")
        if not ok:
            raise RuntimeError(f"{kind} {path} {resp.status_code}")
        return resp

    def csrf(self, kind: str, path: str) -> str:
        return CSRF.search(self.call(kind, "GET", path).text).group(1)

    def run(self):
        try:
            self.login()
        except Exception:
            return
        actions = [
            (self.home, 2),
            (self.member_list, 3),
            (self.policy_list, 3),
            (self.search, 4),
            (self.batch, 1),
            (self.report, 1),
        ]
        funcs, weights = zip(*actions)
        while time.monotonic() < self.deadline:
            time.sleep(self.rnd.uniform(0.5, 1.5) * self.think)
            if time.monotonic() >= self.deadline:
                break
            try:
                self.rnd.choices(funcs, weights)[0]()
            except Exception:
                pass  # counted where it happened; the clerk goes on

    def login(self):
        token = self.csrf("login", "/login")
        form = {"username": self.p["username"], "password": PASSWORD, "csrf_token": token}
        self.call("login", "POST", "/login/send-code", data=form)
        form["code"] = self.servers.code_for(self.p["username"])
        self.call("login", "POST", "/login", expect=(302,), data=form)

    def home(self):
        self.call("home", "GET", "/admin/")

    def member_list(self):
        self.call("member_list", "GET", "/admin/members/")

    def policy_list(self):
        self.call("policy_list", "GET", "/admin/policies/")

    def search(self):
        idn = self.rnd.choice(self.p["search"])
        resp = self.call("search_id", "GET", f"/admin/members/?id_number={idn}")
        if idn not in resp.text:
            self.stats.record("search_id", 0, False, f"{idn} not found on its own unit's list")

    def batch(self):
        again = self.done_files and (not self.p["files"] or self.rnd.random() < 0.1)
        if again:
            name, data = self.rnd.choice(self.done_files)
        elif self.p["files"]:
            name, data = self.p["files"].pop()
        else:
            return
        token = self.csrf("batch_upload", "/admin/batches/upload/members/")
        resp = self.call(
            "batch_upload",
            "POST",
            "/admin/batches/upload/members/",
            expect=(302,),
            data={"csrf_token": token},
            files={"file": (name, data, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")},
        )
        run = resp.headers["Location"]
        run = run[run.index("/admin/") :]
        self.stage(run, "check")
        page = self.call("batch_page", "GET", run).text
        if 'id="process-btn"' in page:
            self.stage(run, "process")
            page = self.call("batch_page", "GET", run).text
            if "已办理" not in page:
                self.stats.record("batch_page", 0, False, f"{run} not 已办理 after 业务办理")
                return
            with self.stats.lock:
                self.stats.batches_done += 1
            self.done_files.append((name, data))
        elif again:
            with self.stats.lock:
                self.stats.batches_repeated += 1  # the same file again: every row already admitted
        else:
            self.stats.record("batch_page", 0, False, f"{run}: no 业务办理 after 业务校验")

    def stage(self, run: str, stage: str):
        token = CSRF.search(self.call("batch_page", "GET", run).text).group(1)
        self.call(f"batch_{stage}", "POST", f"{run}{stage}/", expect=(200, 302), data={"csrf_token": token})
        limit = time.monotonic() + 300
        while time.monotonic() < limit:  # the page's own polling, once a second
            state = self.call("batch_progress", "GET", f"{run}progress/").json()
            if state["finished"]:
                if state["status"] == "interrupted":
                    self.stats.record(f"batch_{stage}", 0, False, f"{run} interrupted")
                return
            time.sleep(1)
        self.stats.record(f"batch_{stage}", 0, False, f"{run} not finished in 300 s")

    def report(self):
        path = "/admin/members/bulk/report/?status=NEW"
        page = self.call("report", "GET", path).text
        expected = int(EXPECTED.search(page).group(1)) if EXPECTED.search(page) else 0
        if not expected:
            return
        token = CSRF.search(page).group(1)
        self.call("report", "POST", path, expect=(200, 302), data={"csrf_token": token, "expected": expected})


# ---------------------------------------------------------------- after
def duplicates(url: str) -> dict:
    with connect(url) as conn:
        twice = conn.execute(
            "SELECT count(*) FROM (SELECT id_number FROM member GROUP BY id_number HAVING count(*) > 1) d"
        ).fetchone()[0]
        created = conn.execute(
            "SELECT coalesce(sum(created_rows), 0) FROM import_batch WHERE status = 'processed'"
        ).fetchone()[0]
        admitted = conn.execute("SELECT count(*) FROM member WHERE import_batch_id IS NOT NULL").fetchone()[0]
        rows_twice = conn.execute(
            "SELECT count(*) FROM (SELECT batch_id, row_no FROM import_row GROUP BY 1, 2 HAVING count(*) > 1) d"
        ).fetchone()[0]
        in_flight = conn.execute(
            "SELECT count(*) FROM import_batch WHERE status IN ('checking', 'processing', 'interrupted')"
        ).fetchone()[0]
    return {
        "id_numbers_twice": twice,
        "import_rows_twice": rows_twice,
        "created_vs_admitted": created - admitted,
        "batches_left_in_flight": in_flight,
    }


def clean_up(url: str) -> None:
    with connect(url) as conn:
        conn.execute(  # 当前查询结果上报 of the data set's own new members, undone
            "UPDATE member SET status = 'NEW', version = version - 1 WHERE import_batch_id IS NULL AND id IN "
            f"({gen_large.audited_sql('member', 'report')}) AND status = 'CONFIRMED'"
        )
        conn.execute(
            "DELETE FROM audit_log WHERE entity = 'member' AND entity_id IN "
            "(SELECT id FROM member WHERE import_batch_id IS NOT NULL)"
        )
        conn.execute("DELETE FROM member WHERE import_batch_id IS NOT NULL")
        conn.execute(
            'DELETE FROM sms_send WHERE user_id IN (SELECT id FROM "user" WHERE username LIKE %s)', (PREFIX + "%",)
        )
        conn.commit()
    gen_large.restore(url)  # audit rows, import rows and batches; the users stay for the next run


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return round(values[0] * 1000, 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clerks", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--think", type=float, default=2.0, help="mean pause between a clerk's actions (s)")
    ap.add_argument("--ramp", type=float, default=30.0, help="the clerks arrive over this many seconds")
    ap.add_argument("--rows", type=int, default=1000, help="rows per uploaded file")
    ap.add_argument("--files", type=int, default=2, help="distinct files per clerk")
    gen_large.add_arguments(ap)
    args = ap.parse_args()
    meta = gen_large.ensure_from_args(args)
    url = meta["url"]
    log(f"preparing {args.clerks} clerks and {args.clerks * args.files} files of {args.rows} rows …")
    people = prepare(url, args.clerks, args.rows, args.files)
    stats = Stats()
    with tempfile.TemporaryDirectory(prefix="huzhu-load.") as tmp:
        servers = Servers(url, Path(tmp))
        try:
            log(f"gunicorn (4 workers) on {servers.url}, one RQ worker; {args.clerks} clerks for {args.seconds} s …")
            started = time.monotonic()
            deadline = started + args.seconds
            clerks = [Clerk(p, servers, stats, deadline, args.think, seed=i) for i, p in enumerate(people)]
            for c in clerks:
                c.start()
                time.sleep(args.ramp / len(clerks))
            for c in clerks:
                c.join(max(deadline + 330 - time.monotonic(), 1))  # a batch under way may finish
            elapsed = time.monotonic() - started
            uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        finally:
            servers.stop()
    found = duplicates(url)
    log(f"duplicates check: {found}; errors: {dict(stats.errors)} {stats.error_samples}")
    clean_up(url)
    requests_n = sum(len(v) for v in stats.times.values())
    common.emit(
        {
            "clerks": args.clerks,
            "seconds": round(elapsed, 1),
            "requests": requests_n,
            "errors": sum(stats.errors.values()),
            "pages": {
                k: {"n": len(v), "p50_ms": pct(v, 50), "p95_ms": pct(v, 95)} for k, v in sorted(stats.times.items())
            },
            "batches_done": stats.batches_done,
            "same_file_again": stats.batches_repeated,
            "duplicates": found["id_numbers_twice"] + found["import_rows_twice"] + abs(found["created_vs_admitted"]),
            "duplicates_detail": found,
            "data": gen_large.summary(meta)["data"],
            "uptime": uptime,
        }
    )


if __name__ == "__main__":
    main()

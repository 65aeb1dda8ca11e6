"""Benchmark: 即将到期订单 【批量导出打印】 of 200,000 rows as a streamed .xlsx (DESIGN.md §11:
≤ 3 s, RSS growth ≤ 50 MB).

    .venv/bin/python bench/export.py [--rows 200000] [--rebuild]

The data is gen_large.py's `bench_large` (1M members, 3M policies; built once and reused).  As the
admin (unscoped), the export is the code path of the screen's download: `actions.exports.
policy_export` (on PostgreSQL the sheet's rows formatted by the server: COPY (SELECT …) TO STDOUT) feeding
`batch.export.stream_xlsx`; the bytes are consumed as a response would send them (counted, not
kept).  One month of the generated data holds ~150,000 打印生效 policies, so the measured query is
the 打印生效 policies by expiry date from the first of next month on, the first --rows of them
(`ORDER BY expiry_date, id LIMIT rows` as the id subquery); the screen's own query of next month
(`ExpiringPolicyView.current_ids()` for `/admin/expiring/`) is measured too (month_rows,
month_seconds).  RSS growth: the largest resident size sampled every 10 ms during the export
minus the size before it; CPU seconds of this process and of its database backend (cpu_s,
db_cpu_s) say what the work costs whatever else the shared machine runs.  The rows are counted in
the sheet's XML and the first 2,000 read back with openpyxl (typed cells).  One JSON line on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import gen_large  # noqa: E402
from common import Timer, log  # noqa: E402

BUDGET_S = 3.0
BUDGET_RSS_MB = 50.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000, help="rows exported")
    gen_large.add_arguments(ap)
    ap.add_argument("--measure", nargs=3, metavar=("URL", "DIR", "ROWS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        url, tmp, rows = args.measure
        common.emit(measure(url, tmp, int(rows)))
        return
    meta = gen_large.ensure_from_args(args)
    with tempfile.TemporaryDirectory(prefix="bench-export.") as tmp:
        result = common.measure_child(__file__, ["--measure", meta["url"], tmp, str(args.rows)])
    out = {**result, "generate_s": meta["generate_s"], "reused": meta["reused"]}
    out["budget_ok"] = out["seconds"] <= BUDGET_S and out["rss_growth_mb"] <= BUDGET_RSS_MB
    common.emit(out)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler:
    """The largest resident size seen every 10 ms while running."""

    def __enter__(self):
        self.peak, self._stop = _rss_mb(), threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_mb())


def _export(ids, path: Path) -> tuple[int, int]:
    """The screen's download (actions/exports.py `policy_export` → .xlsx chunks), written to a
    file as a response would send them; the rows are counted from the sheet's XML afterwards."""
    from actions.exports import EXPIRING_EXPORT, policy_export
    from models import Policy

    export = policy_export(ids, EXPIRING_EXPORT, order=(Policy.expiry_date, Policy.id))
    size = 0
    with open(path, "wb") as out:
        for chunk in export.xlsx("即将到期订单"):
            size += len(chunk)
            out.write(chunk)
    with zipfile.ZipFile(path) as z, z.open("xl/worksheets/sheet1.xml") as sheet:
        n = sum(block.count(b"<row>") for block in iter(lambda: sheet.read(1 << 20), b"")) - 1  # less the header
    return n, size


def measure(url: str, tmp: str, rows: int) -> dict:
    import gc

    import sqlalchemy as sa
    from flask import g

    from models import Policy, PolicyStatus, User, db
    from rules import next_month, parse_month

    app = common.make_app(url, tmp)
    load_1m = round(os.getloadavg()[0], 2)
    view = next(v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", None) == "expiring")
    first, _ = parse_month(next_month(__import__("datetime").date.today()))
    path = Path(tmp) / "export.xlsx"
    with app.test_request_context("/admin/expiring/"):
        g.user = db.session.scalar(sa.select(User).where(User.username == gen_large.ADMIN))
        month_ids = view.current_ids()
        ids = (
            sa.select(Policy.id)
            .where(Policy.status == PolicyStatus.EFFECTIVE, Policy.expiry_date >= first)
            .order_by(Policy.expiry_date, Policy.id)
            .limit(rows)
        )
        backend = db.session.scalar(sa.text("SELECT pg_backend_pid()"))  # connected before measuring
        gc.collect()
        rss0 = _rss_mb()
        cpu0, db0 = time.process_time(), _cpu_of(backend)
        with RssSampler() as rss, Timer() as t:
            n, size = _export(ids, path)
        cpu, db_cpu = round(time.process_time() - cpu0, 3), round(_cpu_of(backend) - db0, 3)
        growth = round(rss.peak - rss0, 1)
        log(
            f"exported {n} rows, {size / 2**20:.1f} MB in {t.s} s (CPU: this process {cpu} s, its database "
            f"backend {db_cpu} s), RSS +{growth} MB"
        )
        with Timer() as tm:
            month_n, _ = _export(month_ids, Path(tmp) / "month.xlsx")
        log(f"the screen's month ({first:%Y-%m}): {month_n} rows in {tm.s} s")
    started = time.perf_counter()
    checked = _check(path, n)
    log(f"read back with openpyxl in {time.perf_counter() - started:.1f} s: {checked}")
    return {
        "rows": n,
        "seconds": t.s,
        "rows_per_s": round(n / t.s) if t.s else None,
        "cpu_s": cpu,
        "db_cpu_s": db_cpu,
        "rss_growth_mb": growth,
        "file_mb": round(size / 2**20, 1),
        "month_rows": month_n,
        "month_seconds": tm.s,
        "checked": checked,
        "load_avg_1m": load_1m,
    }


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (the database backend)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _check(path: Path, n: int, sample: int = 2000) -> str:
    """openpyxl reads the first `sample` rows back: every amount a number, every date a date."""
    from openpyxl import load_workbook

    if n <= 0:
        raise SystemExit("nothing exported")
    ws = load_workbook(path, read_only=True).active
    seen = 0
    for row in ws.iter_rows(min_row=2, values_only=True):
        if seen >= sample:
            break  # (max_row= would still parse the whole sheet)
        amount, expiry = row[6], row[8]
        if not isinstance(amount, (int, float)) or not hasattr(expiry, "year") or len(row) != 10:
            raise SystemExit(f"row {seen + 2}: untyped or shifted cells {row!r}")
        seen += 1
    return f"{n} rows; the first {seen} read back typed (amounts numbers, dates dates)"


if __name__ == "__main__":
    main()

"""Benchmark: 【批量导出打印】 of 1,000 保单提前终止申请 into one PDF (DESIGN.md §11: ≥ 20 pages/s).

    .venv/bin/python bench/termination_pdf.py [--applications 1000] [--policies-per 2]

Builds its own data on a throwaway PostgreSQL cluster (or BENCH_DATABASE_URL): the demo data,
then --applications 新建 applications of unit 010101, each holding 1 to 2×--policies-per-1 打印生效
policies of new members (--policies-per on average), with their refunds, as `create_application`
would have stored them.  The measured part runs in a fresh interpreter, as clerk1 in a request for
`/admin/terminations/?status=NEW`: the list's own query (`TerminationView.current_ids()`), then
`actions.terminations.print_forms` — its one SELECT, the QR codes, one HTML for every page, one
WeasyPrint rendering (fonts subset once for the document) — exactly what 【下载打印】 sends.

One JSON line on stdout: pages, seconds (wall) and pages/s against the budget; the CPU seconds of
the process (what the 2-core machine's other load does not inflate) and pages per CPU second; the
split into the query + QR codes + HTML (prepare_s) and WeasyPrint (render_s); PDF size; peak RSS;
the 1-minute load average when the measurement started.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import Timer, log  # noqa: E402

BUDGET_PAGES_PER_S = 20.0
LIST_URL = "/admin/terminations/?status=NEW"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--applications", type=int, default=1000)
    ap.add_argument("--policies-per", type=int, default=2, help="policies per application, on average")
    ap.add_argument("--measure", nargs=2, metavar=("URL", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        common.emit(measure(*args.measure))
        return
    with common.bench_database("termination_pdf") as url, tempfile.TemporaryDirectory(prefix="bench-term.") as tmp:
        with Timer() as gen:
            n_policies = generate(url, tmp, args.applications, args.policies_per)
        log(f"generated {args.applications} applications, {n_policies} policies in {gen.s} s")
        result = common.measure_child(__file__, ["--measure", url, tmp])
    if result["pages"] != args.applications:
        raise SystemExit(f"printed {result['pages']} pages for {args.applications} applications")
    common.emit({**result, "policies": n_policies, "generate_s": gen.s})


def generate(url: str, upload_dir: str, n_apps: int, per: int) -> int:
    """The demo data, then `n_apps` 新建 applications of 010101 with their 打印生效 policies."""
    import random
    from datetime import date, timedelta
    from decimal import Decimal

    import sqlalchemy as sa

    from models import (
        ApplicationStatus,
        Gender,
        Member,
        MemberStatus,
        Org,
        Policy,
        PolicyStatus,
        Product,
        TerminationApplication,
        User,
        db,
        member_numbers,
        termination_policy,
    )
    from models.demo import load_demo_data
    from rules import id_check_digit, policy_expiry, refund

    app = common.make_app(url, upload_dir)
    rng = random.Random(12)
    today = date.today()
    end = today + timedelta(days=30)
    with app.app_context():
        db.create_all()
        load_demo_data()
        org = db.session.scalar(sa.select(Org).where(Org.code == "010101"))
        clerk = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
        products = db.session.scalars(sa.select(Product).order_by(Product.code)).all()
        open_products = [p for p in products if p.gender_restriction is None]
        sizes = [rng.randint(1, 2 * per - 1) for _ in range(n_apps)]
        n_policies = sum(sizes)
        numbers = member_numbers(n_policies)
        surnames, given = (
            "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗",
            "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英",
        )
        members, policies = [], []
        for k in range(n_policies):
            birth = date(1975, 1, 1) + timedelta(days=k // 1000)  # with k % 1000 below: unique
            first17 = f"130102{birth:%Y%m%d}{k % 1000:03d}"
            members.append(
                dict(
                    member_no=numbers[k],
                    id_number=first17 + id_check_digit(first17),
                    name=rng.choice(surnames) + "".join(rng.choice(given) for _ in range(rng.randint(1, 2))),
                    gender=Gender.MALE if k % 2 else Gender.FEMALE,
                    birth_date=birth,
                    org_id=org.id,
                    status=MemberStatus.CONFIRMED,
                    admitted_on=today - timedelta(days=500),
                )
            )
        db.session.execute(sa.insert(Member), members)
        member_ids = db.session.scalars(
            sa.select(Member.id).where(Member.member_no.in_(numbers)).order_by(Member.member_no)
        ).all()
        for k, mid in enumerate(member_ids):
            p = open_products[k % len(open_products)]
            start = today - timedelta(days=rng.randint(10, 300))
            policies.append(
                dict(
                    member_id=mid,
                    product_id=p.id,
                    org_id=org.id,
                    shares=1,
                    amount=p.price,
                    expected_effective_date=start,
                    effective_date=start,
                    expiry_date=policy_expiry(start, p.term_months),
                    policy_no=f"BT{today.year}{k + 1:08d}",
                    status=PolicyStatus.EFFECTIVE,
                )
            )
        db.session.execute(sa.insert(Policy), policies)
        rows = db.session.execute(
            sa.select(Policy.id, Policy.amount, Policy.effective_date, Policy.expiry_date)
            .where(Policy.policy_no.like("BT%"))
            .order_by(Policy.policy_no)
        ).all()
        apps = [
            dict(
                org_id=org.id,
                reason=rng.choice(["会员离职（调离本单位）", "会员退休", "会员身故：家属已提交证明", "重复投保"]),
                requested_end_date=end,
                status=ApplicationStatus.NEW,
                created_by_id=clerk.id,
                refund=Decimal("0"),
            )
            for _ in range(n_apps)
        ]
        db.session.execute(sa.insert(TerminationApplication), apps)
        app_ids = db.session.scalars(sa.select(TerminationApplication.id).order_by(TerminationApplication.id)).all()
        links, totals, pos = [], [], 0
        for app_id, size in zip(app_ids, sizes):
            total = Decimal("0.00")
            for pid, amount, eff, exp in rows[pos : pos + size]:
                r = refund(Decimal(amount), eff, exp, end)
                links.append({"application_id": app_id, "policy_id": pid, "refund": r})
                total += r
            totals.append({"b_id": app_id, "b_refund": total})
            pos += size
        db.session.execute(sa.insert(termination_policy), links)
        table = TerminationApplication.__table__
        db.session.execute(
            sa.update(table).where(table.c.id == sa.bindparam("b_id")).values(refund=sa.bindparam("b_refund")), totals
        )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return n_policies


def _pages(pdf: bytes) -> int:
    """The page count as a reader sees it (poppler's pdfinfo, installed for the tests)."""
    import subprocess

    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        info = subprocess.run(["pdfinfo", f.name], capture_output=True, check=True, text=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def measure(url: str, upload_dir: str) -> dict:
    import sqlalchemy as sa
    from flask import g

    from actions import Download
    from actions.terminations import form_rows, forms, print_forms
    from models import User, db

    app = common.make_app(url, upload_dir)
    admin = app.extensions["admin"][0]
    view = next(v for v in admin._views if getattr(v, "endpoint", None) == "terminations")
    import weasyprint  # noqa: F401  (imported before the clock starts, as in a running server)

    load_1m = round(os.getloadavg()[0], 2)
    with app.test_request_context(LIST_URL, base_url="https://huzhu.example.org"):
        user = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
        g.user = user
        ids = view.current_ids()
        with Timer() as prep:  # the part before WeasyPrint on its own (print_forms does it again)
            pages, images = forms(form_rows(ids))
        cpu0, t0 = time.process_time(), time.perf_counter()
        out = print_forms(ids, user)
        seconds = round(time.perf_counter() - t0, 3)
        cpu = round(time.process_time() - cpu0, 3)
    assert isinstance(out, Download), getattr(out, "message", out)
    pdf = out.body
    n = _pages(pdf)
    return {
        "applications": len(pages),
        "pages": n,
        "qr_codes": len(images),
        "seconds": seconds,
        "pages_per_s": round(n / seconds, 1),
        "cpu_s": cpu,
        "pages_per_cpu_s": round(n / cpu, 1) if cpu else None,
        "prepare_s": prep.s,
        "render_s": round(seconds - prep.s, 3),
        "pdf_mb": round(len(pdf) / 1e6, 2),
        "peak_rss_mb": common.peak_rss_mb(),
        "load_1m": load_1m,
        "budget_pages_per_s": BUDGET_PAGES_PER_S,
        "budget_ok": n / seconds >= BUDGET_PAGES_PER_S,
    }


if __name__ == "__main__":
    main()

"""即将到期订单 (manual 一(五)8: 选择相应月份，点击【搜索】，点击【批量导出打印】，保存) and every list's 导出:
streamed .xlsx with amounts as numbers in 元, dates as dates, formula cells escaped, only rows in scope."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal

import openpyxl
import pytest
import sqlalchemy as sa
from conftest import csrf_token
from pdftext import pdf_text, squeeze
from test_policies_entry import make_member, make_policy
from test_policy_actions import confirm

from models import Member, Org, Policy, PolicyStatus, db
from rules import next_month, parse_month
from rules.products import add_months

NEXT = next_month(date.today())
FIRST, LAST = parse_month(NEXT)


def expiring_in(app, month_first: date, name: str, org="010101", code="P03", shares=2) -> int:
    """An 打印生效 policy whose 12-month cover ends in the month of `month_first`."""
    m = make_member(app, name, org=org)
    return make_policy(app, m, code, PolicyStatus.EFFECTIVE, start=add_months(month_first, -11), shares=shares)


def workbook(resp):
    assert resp.status_code == 200, resp.status_code
    assert resp.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return openpyxl.load_workbook(io.BytesIO(resp.get_data())).active


def test_the_month_defaults_to_next_month_and_lists_only_policies_ending_then(app, as_user):
    mine = expiring_in(app, FIRST, "测到期本月")
    later = expiring_in(app, add_months(FIRST, 1), "测到期下月")
    html = as_user("clerk1").get("/admin/expiring/").get_data(as_text=True)
    assert f'value="{NEXT}" selected' in html and 'name="month"' in html
    html = as_user("clerk1").get("/admin/expiring/?page_size=100").get_data(as_text=True)
    assert "测到期本月" in html and "测到期下月" not in html
    month_after = add_months(FIRST, 1)
    html = as_user("clerk1").get(f"/admin/expiring/?month={month_after:%Y-%m}&page_size=100").get_data(as_text=True)
    assert "测到期下月" in html and "测到期本月" not in html
    assert mine != later


def test_a_month_typed_wrongly_says_so_and_lists_nothing(app, as_user):
    html = as_user("clerk1").get("/admin/expiring/?month=2026-13").get_data(as_text=True)
    assert "不是有效的月份" in html and "测到期" not in html


def test_batch_export_gives_a_streamed_xlsx_with_numbers_in_yuan_dates_and_escaped_formulas(app, as_user):
    pid = expiring_in(app, FIRST, "测导出", shares=3)
    with app.app_context():
        p = db.session.get(Policy, pid)
        p.member.name = "=HYPERLINK(1)"
        db.session.commit()
        policy_no, expiry = p.policy_no, p.expiry_date
    client = as_user("clerk1")
    query = f"month={NEXT}"
    html, n = confirm(client, "export", query, endpoint="expiring")
    assert f"月份：{FIRST.year}年{FIRST.month}月" in html and n >= 1
    resp = client.post(
        f"/admin/expiring/bulk/export/?{query}",
        data={"csrf_token": csrf_token(client), "expected": n, "p-format": "xlsx"},
    )
    assert resp.is_streamed
    ws = workbook(resp)
    header = [c.value for c in ws[1]]
    assert header[:3] == ["保单号", "会员编号", "姓名"] and "投保金额" in header and "到期日期" in header
    data = list(ws.iter_rows(min_row=2))
    assert len(data) == n
    row = next(r for r in data if r[0].value == policy_no)
    amount = row[header.index("投保金额")]
    assert amount.value == 60 and amount.data_type == "n" and "元" in amount.number_format
    day = row[header.index("到期日期")]
    assert isinstance(day.value, datetime) and day.value.date() == expiry and day.is_date
    assert row[header.index("姓名")].value == "'=HYPERLINK(1)"  # text, not a formula
    assert all(FIRST <= r[header.index("到期日期")].value.date() <= LAST for r in data)


def test_the_expiring_list_prints_as_pdf(app, as_user):
    expiring_in(app, FIRST, "测到期打印")
    client = as_user("clerk1")
    _, n = confirm(client, "export", f"month={NEXT}", endpoint="expiring")
    resp = client.post(
        f"/admin/expiring/bulk/export/?month={NEXT}",
        data={"csrf_token": csrf_token(client), "expected": n, "p-format": "pdf"},
    )
    assert resp.mimetype == "application/pdf"
    flat = squeeze(pdf_text(resp.get_data()))
    assert "即将到期保单清单" in flat and "测到期打印" in flat and "东城区第一机床厂工会" in flat


def test_the_expiring_export_holds_only_rows_in_scope(app, as_user):
    expiring_in(app, FIRST, "测到期西城", org="010201")
    expiring_in(app, FIRST, "测到期东城", org="010101")
    ws = workbook(as_user("clerk1").get(f"/admin/expiring/export/xlsx/?month={NEXT}"))
    names = {r[2].value for r in ws.iter_rows(min_row=2)}
    assert "测到期东城" in names and "测到期西城" not in names
    with app.app_context():
        assert all(
            db.session.scalar(sa.select(Org.code).join(Policy, Policy.org_id == Org.id).where(Policy.policy_no == no))
            == "010101"
            for no in (r[0].value for r in ws.iter_rows(min_row=2))
        )


def test_renewal_from_the_expiring_list_takes_the_same_query(app, as_user):
    expiring_in(app, FIRST, "测到期续转")
    client = as_user("clerk1")
    html, n = confirm(client, "renew", f"month={NEXT}", endpoint="expiring")
    assert "批量续转" in html and f"月份：{FIRST.year}年{FIRST.month}月" in html
    with app.app_context():
        user_org = db.session.scalar(sa.select(Org.id).where(Org.code == "010101"))
        expected = db.session.scalar(
            sa.select(sa.func.count()).where(
                Policy.org_id == user_org,
                Policy.status == PolicyStatus.EFFECTIVE,
                Policy.expiry_date.between(FIRST, LAST),
            )
        )
    assert n == expected


def test_every_list_exports_a_streamed_xlsx_of_its_query(app, as_user):
    client = as_user("clerk1")
    ws = workbook(client.get("/admin/members/export/xlsx/"))
    with app.app_context():
        own = set(db.session.scalars(sa.select(Member.member_no).join(Org).where(Org.code == "010101")))
    got = {r[0].value for r in ws.iter_rows(min_row=2)}
    assert got == own
    ws = workbook(client.get("/admin/policies/export/xlsx/?status=EFFECTIVE"))
    header = [c.value for c in ws[1]]
    amounts = [r[header.index("投保金额")] for r in ws.iter_rows(min_row=2)]
    assert amounts and all(isinstance(c.value, (int, float)) and "元" in c.number_format for c in amounts)
    statuses = {r[header.index("状态")].value for r in ws.iter_rows(min_row=2)}
    assert statuses == {"打印生效"}
    assert client.get("/admin/receipts/export/xlsx/").status_code == 200
    csv = client.get("/admin/members/export/csv/").get_data(as_text=True)
    assert csv.startswith("\ufeff") and all(no in csv for no in own)


def test_export_amounts_keep_their_cents(app):
    from batch.export import stream_xlsx

    data = b"".join(stream_xlsx(["金额", "日期"], [[Decimal("1005.50"), date(2026, 3, 1)], [None, None]]))
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws["A2"].value == 1005.5 and ws["B2"].value == datetime(2026, 3, 1)
    assert ws["A3"].value is None


HOSTILE_NAMES = [
    "=HYPERLINK(1)",
    "-1+2",
    "@SUM(A1)",
    "+86",
    "a&b<c>d",
    " 前有空格",
    "后有空格 ",
    "含\t制表",
    "含\n换行",
    "反\\斜杠",
    "控\x01制",
    HOSTILE := "<img src=file:///etc/passwd>",
]


def _values(chunks) -> list[list]:
    ws = openpyxl.load_workbook(io.BytesIO(b"".join(chunks))).active
    return [[c.value for c in row] for row in ws.iter_rows()]


def test_the_database_path_and_the_python_path_write_the_same_cells(app):
    """On PostgreSQL the rows come as COPY lines (batch/export.py rows_from_copy); every value —
    formula starts, markup, spaces at the ends, tab, newline, backslash, control characters, an
    empty date — reads back exactly as the general path writes it."""
    from dataclasses import replace

    from flask import g

    from actions.exports import EXPIRING_EXPORT, policy_export
    from models import User

    ids = []
    for k in range(len(HOSTILE_NAMES)):
        pid = expiring_in(app, FIRST, f"测对照{k}")
        ids.append(pid)
    with app.app_context():
        for pid, name in zip(ids, HOSTILE_NAMES):
            db.session.get(Policy, pid).member.name = name
        db.session.get(Policy, ids[0]).effective_date = None  # an empty date cell
        db.session.commit()
    with app.test_request_context():
        g.user = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
        query = sa.select(Policy.id).where(Policy.id.in_(ids))
        export = policy_export(query, EXPIRING_EXPORT + ["status"])
        general = _values(replace(export, xml_rows=None).xlsx())
        fast = _values(export.xlsx())
        postgres = db.engine.dialect.name == "postgresql"
        db.session.rollback()
    assert fast == general
    names = [row[2] for row in general[1:]]
    assert "'=HYPERLINK(1)" in names and "'-1+2" in names and "'@SUM(A1)" in names and "'+86" in names
    assert "a&b<c>d" in names and " 前有空格" in names and "后有空格 " in names and HOSTILE in names
    assert "含\t制表" in names and "含\n换行" in names and "反\\斜杠" in names and "控\ufffd制" in names
    assert {row[-1] for row in general[1:]} == {"打印生效"}
    if postgres:
        assert export.xml_rows is not None  # the comparison above was between two paths


def _month_ids(app, first: date, org="010101") -> set[int]:
    last = parse_month(f"{first:%Y-%m}")[1]
    with app.app_context():
        return set(
            db.session.scalars(
                sa.select(Policy.id)
                .join(Org, Org.id == Policy.org_id)
                .where(
                    Org.code == org, Policy.status == PolicyStatus.EFFECTIVE, Policy.expiry_date.between(first, last)
                )
            )
        )


def test_quan_bu_lists_every_month_and_the_default_is_next_month(app, as_user):
    """月份 全部 → 【搜索】 (`?month=all`): every month's policies, on every page; no month in the
    address (the screen opened, or 【重置】): next month, shown selected."""
    expiring_in(app, FIRST, "测全部下月")
    expiring_in(app, add_months(FIRST, 2), "测全部后月")
    client = as_user("clerk1")
    html = client.get("/admin/expiring/?month=all&page_size=100").get_data(as_text=True)
    assert "测全部下月" in html and "测全部后月" in html and '<option value="all" selected>全部</option>' in html
    html = client.get("/admin/expiring/?month=all&page_size=1").get_data(as_text=True)
    assert "month=all" in html.split('class="pagination')[1].split("</ul>")[0]  # page 2 is still 全部
    html = client.get("/admin/expiring/?page_size=100").get_data(as_text=True)
    assert "测全部下月" in html and "测全部后月" not in html and f'value="{NEXT}" selected' in html
    page, n = confirm(client, "export", "month=all", endpoint="expiring")
    assert "月份：全部" in page
    with app.app_context():
        every = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Policy)
            .join(Org, Org.id == Policy.org_id)
            .where(Org.code == "010101", Policy.status == PolicyStatus.EFFECTIVE)
        )
    assert n == every
    ws = workbook(client.get("/admin/expiring/export/xlsx/?month=all"))
    names = {r[2].value for r in ws.iter_rows(min_row=2)}
    assert {"测全部下月", "测全部后月"} <= names and ws.max_row == every + 1


def test_choose_a_month_search_then_batch_export_and_batch_renewal_act_on_that_month_exactly(app, as_user):
    """选择相应月份，点击【搜索】，点击【批量导出打印】 (and 【批量续转】): the month after next, chosen,
    not next month's (the default) nor any other."""
    chosen = add_months(FIRST, 2)
    mine = {expiring_in(app, chosen, f"测选月{k}") for k in range(3)}
    expiring_in(app, FIRST, "测选月下月")
    expiring_in(app, add_months(FIRST, 3), "测选月再后")
    expiring_in(app, chosen, "测选月西城", org="010201")  # another unit's: never
    wanted = _month_ids(app, chosen)
    assert mine <= wanted
    client = as_user("clerk1")
    query = f"month={chosen:%Y-%m}"
    html = client.get(f"/admin/expiring/?{query}").get_data(as_text=True)
    assert f'value="{chosen:%Y-%m}" selected' in html and f"/admin/expiring/bulk/export/?{query}" in html
    page, n = confirm(client, "export", query, endpoint="expiring")
    assert n == len(wanted) and f"月份：{chosen.year}年{chosen.month}月" in page
    resp = client.post(
        f"/admin/expiring/bulk/export/?{query}",
        data={"csrf_token": csrf_token(client), "expected": n, "p-format": "xlsx"},
    )
    ws = workbook(resp)
    with app.app_context():
        numbers = set(db.session.scalars(sa.select(Policy.policy_no).where(Policy.id.in_(wanted))))
    assert {r[0].value for r in ws.iter_rows(min_row=2)} == numbers
    page, n = confirm(client, "renew", query, endpoint="expiring")
    assert n == len(wanted) and f"月份：{chosen.year}年{chosen.month}月" in page
    renewed_from = sa.select(Policy.renewed_from_id).where(Policy.renewed_from_id.is_not(None))
    with app.app_context():
        product = db.session.scalar(sa.select(Policy.product_id).where(Policy.id.in_(mine)).limit(1))
        before = set(db.session.scalars(renewed_from))
    client.post(
        f"/admin/expiring/bulk/renew/?{query}",
        data={
            "csrf_token": csrf_token(client),
            "expected": n,
            "p-product": str(product),
            "p-amount": "",
            "p-effective": f"{add_months(chosen, 1):%Y-%m-%d}",
        },
        follow_redirects=True,
    )
    with app.app_context():
        renewed = set(db.session.scalars(renewed_from)) - before
    # this month's policies only (a demo member with another policy in flight is refused, and listed)
    assert mine <= renewed <= wanted


# ---- every list's 导出: one SELECT, rows as tuples, through the one org-scope filter ---------------
def _exporting_views(app):
    from flask_admin.contrib.sqla import ModelView

    from models import Role

    admin = app.extensions["admin"][0]
    return [v for v in admin._views if isinstance(v, ModelView) and Role.ADMIN in v.export_roles]


def _orm_value(model, name):
    """What the list's export held when it read ORM rows (the reference): the value, or its text."""
    value = model
    for part in str(name).split("."):
        value = getattr(value, part, None) if value is not None else None
    if value is None or isinstance(value, (bool, int, float, Decimal, date, datetime)):
        return value
    return str(value)


def test_every_list_export_is_one_select_of_tuples_with_the_cells_the_orm_rows_gave(app):
    """Each list's own export (not 投保管理/即将到期订单/审计日志, which have theirs) reads the same cells
    as the list's ORM rows would give, by both ways of writing them (COPY lines on PostgreSQL)."""
    from dataclasses import replace

    from flask import g
    from test_scope import _seed_applications

    from batch.export import stream_xlsx
    from models import User

    with app.app_context():
        _seed_applications()
    seen = []
    for view in _exporting_views(app):
        if view.endpoint in ("policies", "expiring", "audit"):  # their own exports, tested above and in test_audit
            continue
        with app.test_request_context(f"/admin/{view.endpoint}/"):
            g.user = db.session.scalar(sa.select(User).where(User.username == "admin"))
            export = view.export_rows()
            columns = list(view._export_columns)
            reference = [[_orm_value(m, n) for n, _ in columns] for m in view.current_query().order_by(view.model.id)]
            expected = _values(stream_xlsx([str(label) for _, label in columns], reference))
            assert _values(replace(export, xml_rows=None).xlsx()) == expected, view.endpoint
            if export.xml_rows is not None:
                assert _values(export.xlsx()) == expected, view.endpoint
            assert len(expected) > 1, view.endpoint  # rows to compare
            db.session.rollback()
        seen.append(view.endpoint)
    assert {"members", "receipts", "batches", "orgs", "users", "products"} <= set(seen)


def test_no_list_offers_flask_admins_own_export(app, as_user, monkeypatch):
    """Flask-Admin's own export (it loads every row first) refuses to run: every list that exports
    still answers both formats, streamed (views/bulk.py `export`)."""
    from flask_admin.model import BaseModelView

    def refuse(*args, **kwargs):
        raise AssertionError("Flask-Admin's own export was used")

    for name in ("_export_csv", "_export_data", "_export_tablib", "get_export_value"):
        monkeypatch.setattr(BaseModelView, name, refuse)
    client = as_user("admin")
    views = _exporting_views(app)
    assert len(views) >= 9
    for view in views:
        assert set(view.export_types) <= {"xlsx", "csv"}, view.endpoint
        for kind in ("xlsx", "csv"):
            resp = client.get(f"/admin/{view.endpoint}/export/{kind}/")
            assert resp.status_code == 200 and resp.is_streamed, (view.endpoint, kind)
            assert len(resp.get_data()) > 0


def _unit_of_rows(app, view, ws) -> set[str]:
    """The codes of the units named in the sheet's 单位/所属单位/缴费单位 column ("code name", or the name)."""
    header = [c.value for c in ws[1]]
    col = next(i for i, h in enumerate(header) if h and "单位" in h)
    with app.app_context():
        codes = dict(db.session.execute(sa.select(Org.name, Org.code)).all())
    cells = {str(r[col]) for r in ws.iter_rows(min_row=2, values_only=True) if r[col]}
    return {codes.get(c, c.split(" ")[0]) for c in cells}


@pytest.mark.parametrize("endpoint", ["members", "member_query", "policies", "expiring", "receipts", "batches"])
def test_another_units_rows_never_come_in_a_lists_export(app, as_user, endpoint):
    """clerk1 (010101) exports each list: only 010101's rows, also with another unit's ids ticked
    (`ids=`) or a panel value naming another unit; agency1 (代办处) gets its two units, not 010201."""
    from test_scope import _foreign_ids, _seed_applications

    with app.app_context():
        _seed_applications()
        expiring_in(app, FIRST, "测范围东城")
        expiring_in(app, FIRST, "测范围西城", org="010201")
        view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == endpoint)
        foreign = _foreign_ids(view)
    assert foreign, endpoint
    client = as_user("clerk1")
    ws = workbook(client.get(f"/admin/{endpoint}/export/xlsx/?page_size=5"))
    assert ws.max_row > 1 and _unit_of_rows(app, view, ws) == {"010101"}, endpoint
    ticked = ",".join(map(str, foreign[:50]))
    ws = workbook(client.get(f"/admin/{endpoint}/export/xlsx/?ids={ticked}"))
    assert _unit_of_rows(app, view, ws) <= {"010101"}, endpoint
    if view.tickable:
        assert ws.max_row == 1, endpoint  # only another unit's rows ticked: nothing
    resp = client.get(f"/admin/{endpoint}/export/xlsx/?unit=010201")
    if resp.status_code == 302:  # a unit outside the user's scope: the list says so, no file
        assert "/export/" not in resp.headers["Location"], endpoint
    else:
        assert _unit_of_rows(app, view, workbook(resp)) <= {"010101"}, endpoint
    ws = workbook(as_user("agency1").get(f"/admin/{endpoint}/export/xlsx/"))
    assert _unit_of_rows(app, view, ws) <= {"010101", "010102"} and "010101" in _unit_of_rows(app, view, ws)


@pytest.mark.parametrize("endpoint", ["orgs", "users", "products", "audit"])
def test_the_managers_lists_export_to_managers_only(app, as_user, endpoint):
    for who in ("clerk1", "agency1", "office1"):
        assert as_user(who).get(f"/admin/{endpoint}/export/xlsx/").status_code in (403, 404), (endpoint, who)
    ws = workbook(as_user("admin").get(f"/admin/{endpoint}/export/xlsx/"))
    assert ws.max_row > 1


def test_a_failure_while_the_sheet_is_written_reaches_the_download_and_leaves_no_thread():
    """The sheet is deflated on a thread of its own (batch/export.py `_Deflater`): an error in the
    rows, in the writing, or a download abandoned half-way ends it, and the error is the caller's."""
    import threading

    from batch import export as bx

    def rows():
        yield [Decimal("1.00"), date(2026, 1, 1)]
        raise RuntimeError("数据库断开")

    def deflaters():
        return [t for t in threading.enumerate() if t.name == "xlsx-deflate"]

    with pytest.raises(RuntimeError, match="数据库断开"):
        b"".join(bx.stream_xlsx(["金额", "日期"], rows(), chunk_rows=1))
    chunks = bx.stream_xlsx(["金额"], ([Decimal(k)] for k in range(100_000)), chunk_rows=10)
    next(chunks), next(chunks)
    chunks.close()  # the client went away
    assert not deflaters()

    class Broken(bx._Deflater):
        def _run(self):
            self.f = None  # the zip member cannot be written
            super()._run()

    original = bx._Deflater
    bx._Deflater = Broken
    try:
        with pytest.raises(AttributeError):
            b"".join(bx.stream_xlsx(["金额"], ([Decimal(k)] for k in range(10_000)), chunk_rows=10))
    finally:
        bx._Deflater = original
    assert not deflaters()

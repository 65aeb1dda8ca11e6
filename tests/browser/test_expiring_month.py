"""即将到期订单 as the manual says it (一(五)8): 选择相应月份，点击【搜索】，点击【批量导出打印】，保存 — and
【批量续转】 from there: both act on the month chosen, exactly; 全部 chosen, on every month."""

from __future__ import annotations

import io
import sqlite3
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from playwright.sync_api import expect

from .conftest import login, shot

pytestmark = pytest.mark.browser


def _sql(live_server, sql, *args):
    with sqlite3.connect(live_server.db_path, timeout=10) as con:
        rows = con.execute(sql, args).fetchall()
    con.close()
    return rows


def _month(k: int) -> date:
    """The first day of the month `k` months from this one."""
    t = date.today()
    y, m = divmod(t.year * 12 + t.month - 1 + k, 12)
    return date(y, m + 1, 1)


def _expiring_in(live_server, first: date, n: int) -> list[str]:
    """`n` effective P03 policies of clerk1's unit whose cover ends on the 15th of `first`'s month."""
    members = _sql(
        live_server,
        """SELECT m.id FROM member m JOIN org o ON o.id = m.org_id
           WHERE o.code = '010101' AND m.status = 'CONFIRMED' AND m.birth_date > '1975-01-01' AND NOT EXISTS (
             SELECT 1 FROM policy p JOIN product pr ON pr.id = p.product_id
             WHERE p.member_id = m.id AND pr.code = 'P03') ORDER BY m.id DESC LIMIT ?""",
        n,
    )
    assert len(members) == n
    start = first.replace(year=first.year - 1, day=16)
    numbers = []
    for (member_id,) in members:
        number = f"DQ{member_id:010d}"
        _sql(
            live_server,
            """INSERT INTO policy (member_id, product_id, org_id, shares, amount, expected_effective_date,
                                   effective_date, expiry_date, policy_no, status, created_at, updated_at, version)
               SELECT ?, pr.id, o.id, 1, pr.price, ?, ?, ?, ?, 'EFFECTIVE', datetime('now'), datetime('now'), 1
               FROM product pr, org o WHERE pr.code = 'P03' AND o.code = '010101'""",
            member_id,
            start.isoformat(),
            start.isoformat(),
            first.replace(day=15).isoformat(),
            number,
        )
        numbers.append(number)
    return numbers


def _in_month(live_server, first: date | None) -> set[str]:
    sql = """SELECT p.policy_no FROM policy p JOIN org o ON o.id = p.org_id
             WHERE o.code = '010101' AND p.status = 'EFFECTIVE'"""
    if first is None:
        return {r[0] for r in _sql(live_server, sql)}
    last = _month(1 + (first.year * 12 + first.month - date.today().year * 12 - date.today().month))
    return {
        r[0]
        for r in _sql(
            live_server, sql + " AND p.expiry_date >= ? AND p.expiry_date < ?", first.isoformat(), last.isoformat()
        )
    }


def _export(page) -> set[str]:
    with page.expect_download() as dl:
        page.locator("#bulk-submit").click()
    assert dl.value.suggested_filename.endswith(".xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes())).active
    assert ws["A1"].value == "保单号"
    return {r[0] for r in ws.iter_rows(min_row=2, values_only=True)}


def test_choose_a_month_search_then_export_and_renew_act_on_that_month(page, live_server):
    chosen = _month(3)
    ours = set(_expiring_in(live_server, chosen, 2))
    wanted = _in_month(live_server, chosen)
    assert ours <= wanted
    login(page, live_server, "clerk1")
    page.get_by_role("link", name="保单管理").click()
    page.get_by_role("link", name="即将到期订单").click()
    expect(page.locator("#panel-month option:checked")).to_have_text(f"{_month(1).year}年{_month(1).month}月")
    page.select_option("#panel-month", label=f"{chosen.year}年{chosen.month}月")
    with page.expect_navigation():
        page.locator("#panel-search").click()
    expect(page.locator("#panel-month option:checked")).to_have_text(f"{chosen.year}年{chosen.month}月")
    shot(page, "expiring_chosen_month")
    page.locator("#bulk-export").click()
    expect(page.locator("#bulk-confirm")).to_contain_text(f"月份：{chosen.year}年{chosen.month}月")
    expect(page.locator("#bulk-count")).to_have_text(str(len(wanted)))
    assert _export(page) == wanted

    page.goto(f"{live_server.url}/admin/expiring/")
    page.select_option("#panel-month", label="全部")
    with page.expect_navigation():
        page.locator("#panel-search").click()
    expect(page.locator("#panel-month option:checked")).to_have_text("全部")
    page.locator("#bulk-export").click()
    expect(page.locator("#bulk-confirm")).to_contain_text("月份：全部")
    every = _in_month(live_server, None)
    expect(page.locator("#bulk-count")).to_have_text(str(len(every)))
    shot(page, "expiring_all_months_confirm")
    assert _export(page) == every

    page.goto(f"{live_server.url}/admin/expiring/")
    page.select_option("#panel-month", label=f"{chosen.year}年{chosen.month}月")
    with page.expect_navigation():
        page.locator("#panel-search").click()
    page.locator("#bulk-renew").click()
    expect(page.locator("#bulk-confirm")).to_contain_text(f"月份：{chosen.year}年{chosen.month}月")
    expect(page.locator("#bulk-count")).to_have_text(str(len(wanted)))
    shot(page, "expiring_chosen_month_renew_confirm")

"""批量续转 as the manual says it (一(二)3): 投保管理 → 选择状态 打印生效, 产品名称 → 【搜索】 → 【批量续转】 →
选择【产品名称】，输入金额，输入预期生效时间，点击【确认保存】.  The typed 金额 is everyone's new cover."""

from __future__ import annotations

import re
import sqlite3
from datetime import date

import pytest
from playwright.sync_api import expect

from .conftest import login, shot

pytestmark = pytest.mark.browser


def _sql(live_server, sql, *args):
    with sqlite3.connect(live_server.db_path, timeout=10) as con:
        rows = con.execute(sql, args).fetchall()
    con.close()
    return rows


def _next_month() -> date:
    t = date.today()
    return date(t.year + (t.month == 12), t.month % 12 + 1, 1)


def _effective_p03(live_server, shares: list[int]) -> list[int]:
    """Effective P03 policies ending the day before next month, for clerk1's members holding no P03."""
    start = _next_month().replace(year=_next_month().year - 1)
    end = date.fromordinal(_next_month().toordinal() - 1)
    members = _sql(
        live_server,
        """SELECT m.id FROM member m JOIN org o ON o.id = m.org_id
           WHERE o.code = '010101' AND m.status = 'CONFIRMED' AND m.birth_date > '1975-01-01' AND NOT EXISTS (
             SELECT 1 FROM policy p JOIN product pr ON pr.id = p.product_id
             WHERE p.member_id = m.id AND pr.code = 'P03') ORDER BY m.id LIMIT ?""",
        len(shares),
    )
    assert len(members) == len(shares)
    ids = []
    for (member_id,), n in zip(members, shares):
        _sql(
            live_server,
            """INSERT INTO policy (member_id, product_id, org_id, shares, amount, expected_effective_date,
                                   effective_date, expiry_date, policy_no, status, created_at, updated_at, version)
               SELECT ?, pr.id, o.id, ?, pr.price * ?, ?, ?, ?, ?, 'EFFECTIVE', datetime('now'), datetime('now'), 1
               FROM product pr, org o WHERE pr.code = 'P03' AND o.code = '010101'""",
            member_id,
            n,
            n,
            start.isoformat(),
            start.isoformat(),
            end.isoformat(),
            f"XZ{member_id:010d}",
        )
        ids.append(_sql(live_server, "SELECT max(id) FROM policy")[0][0])
    return ids


def test_renewal_with_one_amount_as_the_manual_says(page, live_server):
    old = _effective_p03(live_server, [1, 3, 5])
    login(page, live_server, "clerk1")
    page.get_by_role("link", name="保单管理").click()
    page.get_by_role("link", name="投保管理").click()
    page.select_option("#panel-status", label="打印生效")
    page.select_option("#panel-product", label="职工意外伤害互助保障")
    with page.expect_navigation():
        page.locator("#panel-search").click()
    page.locator("#bulk-renew").click()
    expect(page.locator("#bulk-confirm")).to_contain_text("选择状态：打印生效；产品名称：职工意外伤害互助保障")
    page.select_option("#p-product", index=3)  # P03
    expect(page.locator("#p-product option:checked")).to_contain_text("职工意外伤害互助保障")
    page.fill("#p-amount", "30")  # not whole shares of 20 元
    page.fill("#p-effective", _next_month().isoformat())
    page.keyboard.press("Enter")
    expect(page.locator("#bulk-submit")).to_have_text("确认保存")
    with page.expect_navigation():
        page.locator("#bulk-submit").click()
    expect(page.locator("#bulk-warning")).to_contain_text("本次没有做任何操作")
    expect(page.locator("#bulk-confirm")).to_contain_text("金额 30.00 元不是每份金额 20.00 元的整数倍")
    assert _sql(live_server, f"SELECT count(*) FROM policy WHERE renewed_from_id IN ({','.join(map(str, old))})") == [
        (0,)
    ]
    shot(page, "renew_amount_refused")

    page.fill("#p-amount", "40")
    page.fill("#p-effective", _next_month().isoformat())
    page.keyboard.press("Enter")
    with page.expect_navigation():
        page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已续转")
    shot(page, "renew_done")
    renewed = _sql(
        live_server,
        f"SELECT renewed_from_id, shares, amount, status FROM policy WHERE renewed_from_id IN ({','.join(map(str, old))})",
    )
    assert sorted((r[0], r[1], float(r[2]), r[3]) for r in renewed) == [(pid, 2, 40.0, "NEW") for pid in sorted(old)]
    assert re.search(r"已续转 \d+ 人", page.locator("body").inner_text())

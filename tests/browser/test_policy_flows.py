"""投保 flows as clerk1 and agency1 see them: 逐一投保 with the member look-up, 汇总金额,
当前查询结果上报 (unit, then agency), 当前查询结果打回 with a reason the unit sees."""

from __future__ import annotations

import random
import sqlite3

import pytest
from playwright.sync_api import expect

from .conftest import login, shot

pytestmark = pytest.mark.browser


def _query(live_server, sql, *args):
    with sqlite3.connect(live_server.db_path) as conn:
        return conn.execute(sql, args).fetchall()


def _member_without_p03(live_server):
    rows = _query(
        live_server,
        """
        SELECT m.member_no, m.name FROM member m JOIN org o ON o.id = m.org_id
        WHERE o.code = '010101' AND m.status = 'CONFIRMED'
          AND NOT EXISTS (SELECT 1 FROM policy p JOIN product pr ON pr.id = p.product_id
                          WHERE p.member_id = m.id AND pr.code = 'P03')""",
    )
    return random.choice(rows)


def test_clerk_enrols_one_member_with_the_lookup_filling_in_the_member(page, live_server):
    login(page, live_server, "clerk1")
    member_no, name = _member_without_p03(live_server)
    page.goto(f"{live_server.url}/admin/policies/new/")
    page.select_option("#product_id", label="职工意外伤害互助保障")
    page.fill("#member_ref", member_no)
    page.locator("#shares").click()  # leaving the field looks the member up
    expect(page.locator("#member-info")).to_contain_text(name)
    expect(page.locator("#member-info")).to_contain_text("东城区第一机床厂工会")
    page.fill("#shares", "2")
    expect(page.locator("#amount")).to_have_value("40.00")
    shot(page, "policy_add_form")
    page.locator("input[type=submit].btn-primary").click()
    page.wait_for_url("**/admin/policies/**")
    expect(page.locator("body")).to_contain_text("创建记录成功")
    rows = _query(
        live_server,
        """SELECT p.status, p.shares, p.amount FROM policy p JOIN member m ON m.id = p.member_id
                                  JOIN product pr ON pr.id = p.product_id WHERE m.member_no = ? AND pr.code = 'P03'""",
        member_no,
    )
    assert rows and rows[0][0] == "NEW" and rows[0][1] == 2
    shot(page, "policy_added")


def test_lookup_of_another_units_member_says_to_transfer_and_shows_nothing_of_them(page, live_server):
    login(page, live_server, "clerk1")
    ((other_no, other_name),) = _query(
        live_server,
        """SELECT m.member_no, m.name FROM member m JOIN org o ON o.id = m.org_id
                                                      WHERE o.code = '010201' LIMIT 1""",
    )
    page.goto(f"{live_server.url}/admin/policies/new/")
    page.fill("#member_ref", other_no)
    page.locator("#shares").click()
    expect(page.locator("#member-error")).to_contain_text("查无此会员信息")
    expect(page.locator("#member-error")).to_contain_text("会员调动")
    expect(page.locator("#member-card")).not_to_contain_text(other_name)
    shot(page, "policy_lookup_other_unit")


def test_unit_reports_new_policies_after_checking_the_totals(page, live_server):
    login(page, live_server, "clerk1")
    page.goto(f"{live_server.url}/admin/policies/?status=NEW")
    page.locator("#bulk-totals").click()
    expect(page.locator("#bulk-total")).to_contain_text("人数")
    shot(page, "policy_totals")
    page.goto(f"{live_server.url}/admin/policies/?status=NEW")
    page.locator("#bulk-report").click()
    count = int(page.locator("#bulk-count").inner_text())
    assert count > 0
    expect(page.locator("#bulk-total")).to_contain_text("金额")
    shot(page, "policy_report_confirm")
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text(f"已上报 {count} 条")
    shot(page, "policy_reported")


def test_agency_returns_reported_policies_and_the_unit_sees_the_reason(page, live_server):
    login(page, live_server, "agency1")
    page.goto(f"{live_server.url}/admin/policies/?status=REPORTED&unit=010101")
    page.locator("#bulk-return").click()
    assert int(page.locator("#bulk-count").inner_text()) > 0
    page.fill("#p-reason", "份数与缴费金额不符，请核对")
    shot(page, "policy_return_confirm")
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已打回")
    page.context.clear_cookies()
    login(page, live_server, "clerk1")
    page.goto(f"{live_server.url}/admin/policies/?status=RETURNED")
    expect(page.locator("table.model-list")).to_contain_text("打回原因：份数与缴费金额不符，请核对")
    shot(page, "policy_returned_seen_by_unit")

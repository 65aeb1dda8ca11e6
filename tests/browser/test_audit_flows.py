"""审计日志 after a bulk action (issue 13, lever 4): clerk2's 当前查询结果上报 of the unit's new policies
is one line "上报 投保记录 共 N 条" for 信息部; its link lists the N policies, and searching the log by
one of them (对象 + 对象编号) finds that 上报 in the policy's history."""

from __future__ import annotations

import sqlite3

import pytest
from playwright.sync_api import expect

from .conftest import login, shot

pytestmark = pytest.mark.browser


def _query(live_server, sql, *args):
    with sqlite3.connect(live_server.db_path) as conn:
        return conn.execute(sql, args).fetchall()


def test_a_bulk_report_is_one_line_of_the_audit_log_that_leads_to_every_policy(page, live_server):
    login(page, live_server, "clerk2")
    page.goto(f"{live_server.url}/admin/policies/?status=NEW")
    page.locator("#bulk-report").click()
    count = int(page.locator("#bulk-count").inner_text())
    assert count > 1, "the demo data gives 东城区百货公司工会 several 新建 policies"
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text(f"已上报 {count} 条")
    ((audit_id, ids),) = _query(
        live_server,
        "SELECT a.id, a.entity_ids FROM audit_log a JOIN user u ON u.id = a.user_id "
        "WHERE u.username = 'clerk2' AND a.action = 'report' AND a.entity = 'policy' ORDER BY a.id DESC LIMIT 1",
    )
    some = sorted(int(i) for i in ids.strip("[]").split(","))[count // 2]

    page.context.clear_cookies()
    login(page, live_server, "info1")
    page.goto(f"{live_server.url}/admin/audit/?entity=policy&user=clerk2")
    line = page.locator("table.model-list tr", has_text=f"共 {count} 条")
    expect(line).to_have_count(1)
    expect(line).to_contain_text("上报")
    expect(line).to_contain_text("投保记录")
    expect(line).to_contain_text("刘建国")
    expect(line).to_contain_text("状态: 上报")
    shot(page, "audit_grouped_row")

    line.locator("a.audit-records").click()
    page.wait_for_url(f"**/admin/audit/records/?id={audit_id}*")
    expect(page.locator("#audit-records-title")).to_contain_text(f"上报 投保记录 共 {count} 条")
    expect(page.locator("#audit-record-list tbody tr")).to_have_count(count)
    expect(page.locator("#audit-record-list")).to_contain_text(str(some))
    shot(page, "audit_grouped_records")

    page.goto(f"{live_server.url}/admin/audit/")
    page.select_option("#panel-entity", "policy")
    page.fill("#panel-entity_id", str(some))
    page.locator("#panel-search").click()
    page.wait_for_url(f"**entity_id={some}*")
    expect(page.locator("table.model-list")).to_contain_text(f"共 {count} 条")
    expect(page.locator("table.model-list")).to_contain_text("上报")
    shot(page, "audit_record_history")

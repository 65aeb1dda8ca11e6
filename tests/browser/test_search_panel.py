"""The manual's list steps, word by word, through the search panel (views/panel.py):

* 一(一)3  入会管理: 在【选择状态】下拉表中选择【新建】，点击【搜索】…点击【当前查询结果上报】
* 一(二)7  投保管理: 点击【选择状态】中的“新建”，再点击【产品名称】中的相应保险名称，点击【搜索】…【当前查询结果上报】
* 二、1    代办处 投保管理: 【选择状态】中的“上报”，【产品名称】，在当前单位编号中输入基层单位编号，点击【搜索】…【当前查询结果上报】

Each test first gives the list rows that the condition must leave out (打回 members; 新建 policies of
another product; 上报 policies of the other unit) and checks afterwards that they were not touched.
Then every list with its panel, at 1366×768, as the screen shows it without scrolling."""

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


def _members_set_to(live_server, unit: str, *statuses: str) -> list[str]:
    """As many members of `unit` without any policy as `statuses`, each put into its status
    (a 打回 one with its reason); their 会员编号 in that order."""
    rows = _sql(
        live_server,
        """SELECT m.id, m.member_no FROM member m JOIN org o ON o.id = m.org_id
           WHERE o.code = ? AND NOT EXISTS (SELECT 1 FROM policy p WHERE p.member_id = m.id)
           ORDER BY m.id LIMIT ?""",
        unit,
        len(statuses),
    )
    assert len(rows) == len(statuses)
    for (pk, _no), status in zip(rows, statuses):
        reason = "请核对身份证号" if status == "RETURNED" else None
        _sql(live_server, "UPDATE member SET status = ?, return_reason = ? WHERE id = ?", status, reason, pk)
    return [no for _pk, no in rows]


def _add_policies(live_server, unit: str, product: str, status: str, n: int) -> list[int]:
    """`n` policies of `product` in `status` for members of `unit` holding none of that product."""
    start = date(date.today().year + 1, 1, 1)
    members = _sql(
        live_server,
        """SELECT m.id FROM member m JOIN org o ON o.id = m.org_id
           WHERE o.code = ? AND m.status = 'CONFIRMED' AND NOT EXISTS (
             SELECT 1 FROM policy p JOIN product pr ON pr.id = p.product_id
             WHERE p.member_id = m.id AND pr.code = ?) ORDER BY m.id DESC LIMIT ?""",
        unit,
        product,
        n,
    )
    assert len(members) == n
    ids = []
    for (member_id,) in members:
        _sql(
            live_server,
            """INSERT INTO policy (member_id, product_id, org_id, shares, amount, expected_effective_date,
                                   expiry_date, status, created_at, updated_at, version)
               SELECT ?, pr.id, o.id, 1, pr.price, ?, ?, ?, datetime('now'), datetime('now'), 1
               FROM product pr, org o WHERE pr.code = ? AND o.code = ?""",
            member_id,
            start.isoformat(),
            date(start.year, 12, 31).isoformat(),
            status,
            product,
            unit,
        )
        ids.append(_sql(live_server, "SELECT max(id) FROM policy")[0][0])
    return ids


def _status_of(live_server, table: str, ids) -> set[str]:
    return {r[0] for r in _sql(live_server, f"SELECT status FROM {table} WHERE id IN ({','.join(map(str, ids))})")}


def _column(page, col: str) -> list[str]:
    return [td.inner_text().strip() for td in page.locator(f"table.model-list tbody td.col-{col}").all()]


def _search(page):
    with page.expect_navigation():
        page.locator("#panel-search").click()


def test_choose_state_new_search_and_report_the_current_query_reports_only_new_members(page, live_server):
    picked = _members_set_to(live_server, "010101", "RETURNED", "RETURNED", "NEW", "NEW", "NEW")
    returned, new = picked[:2], picked[2:]
    login(page, live_server, "clerk1")
    page.get_by_role("link", name="会员管理").click()
    with page.expect_navigation(wait_until="load"):  # the panel's script is in place before the clerk chooses
        page.get_by_role("link", name="入会管理").click()
    page.select_option("#panel-status", label="新建")
    _search(page)
    assert re.search(r"/admin/members/\?status=NEW$", page.url), "only what was chosen goes into the address"
    expect(page.locator("#panel-status")).to_have_value("NEW")  # the choice stays on the screen
    assert set(_column(page, "status")) == {"新建"}
    shown = set(_column(page, "member_no"))
    assert set(new) <= shown and not set(returned) & shown
    shot(page, "panel_members_new")

    page.locator("#bulk-report").click()
    expect(page.locator("#bulk-confirm")).to_contain_text("选择状态：新建")
    n = int(page.locator("#bulk-count").inner_text())
    assert n >= 3
    shot(page, "panel_members_report_confirm")
    with page.expect_navigation():
        page.locator("#bulk-submit").click()
    expect(page.locator(".alert-success")).to_contain_text(f"已上报 {n} 条")
    status = dict(
        _sql(
            live_server,
            f"SELECT member_no, status FROM member WHERE member_no IN ({','.join('?' * 5)})",
            *new,
            *returned,
        )
    )
    assert {status[no] for no in new} == {"CONFIRMED"}
    assert {status[no] for no in returned} == {"RETURNED"}, "打回 members are not reported by a 新建 query"
    expect(page.locator("#panel-status")).to_have_value("NEW")
    assert _column(page, "status") == [], "no 新建 member is left"

    page.locator("#panel-reset").click()
    page.wait_for_url(re.compile(r"/admin/members/$"))
    expect(page.locator("#panel-status")).to_have_value("")


def test_policies_choose_new_and_the_product_search_and_report_only_those(page, live_server):
    p03 = _add_policies(live_server, "010101", "P03", "NEW", 3)
    p01 = _add_policies(live_server, "010101", "P01", "NEW", 2)
    login(page, live_server, "clerk1")
    page.get_by_role("link", name="保单管理").click()
    page.get_by_role("link", name="投保管理").click()
    page.select_option("#panel-status", label="新建")
    page.select_option("#panel-product", label="职工意外伤害互助保障")
    _search(page)
    assert set(_column(page, "status")) == {"新建"}
    assert set(_column(page, "product")) == {"职工意外伤害互助保障"}
    shot(page, "panel_policies_new_p03")

    page.locator("#bulk-totals").click()  # 选择【汇总金额】后，查看金额和人数无误后
    expect(page.locator("#bulk-confirm")).to_contain_text("选择状态：新建；产品名称：职工意外伤害互助保障")
    page.go_back()
    page.locator("#bulk-report").click()
    expect(page.locator("#bulk-confirm")).to_contain_text("选择状态：新建；产品名称：职工意外伤害互助保障")
    n = int(page.locator("#bulk-count").inner_text())
    assert n >= 3
    with page.expect_navigation():
        page.locator("#bulk-submit").click()
    expect(page.locator(".alert-success")).to_contain_text(f"已上报 {n} 条")
    assert _status_of(live_server, "policy", p03) == {"REPORTED"}
    assert _status_of(live_server, "policy", p01) == {"NEW"}, "新建 policies of another product stay 新建"


def test_agency_chooses_reported_the_product_and_a_unit_number_and_reports_only_that_unit(page, live_server):
    mine = _add_policies(live_server, "010101", "P02", "REPORTED", 2)
    other = _add_policies(live_server, "010102", "P02", "REPORTED", 2)
    login(page, live_server, "agency1")
    page.get_by_role("link", name="保单管理").click()
    page.get_by_role("link", name="投保管理").click()
    page.select_option("#panel-status", label="上报")
    page.select_option("#panel-product", label="女职工特殊疾病互助保障")
    page.fill("#panel-unit", "010101")
    _search(page)
    assert set(_column(page, "org")) == {"010101 东城区第一机床厂工会"}
    shot(page, "panel_policies_agency_unit")

    page.locator("#bulk-agency-report").click()
    expect(page.locator("#bulk-confirm")).to_contain_text(
        "选择状态：上报；产品名称：女职工特殊疾病互助保障；当前单位编号：010101"
    )
    n = int(page.locator("#bulk-count").inner_text())
    with page.expect_navigation():
        page.locator("#bulk-submit").click()
    expect(page.locator(".alert-success")).to_contain_text(f"已上报 {n} 条")
    assert _status_of(live_server, "policy", mine) == {"AGENCY_REPORTED"}
    assert _status_of(live_server, "policy", other) == {"REPORTED"}, "the other unit's rows are not touched"


def test_an_unknown_value_in_the_address_shows_the_list_with_a_chinese_message(page, live_server):
    login(page, live_server, "clerk1")
    page.goto(live_server.url + "/admin/members/?status=NOPE")
    expect(page.locator("#panel-message")).to_contain_text("选择状态没有“NOPE”这一项")
    page.goto(live_server.url + "/admin/members/?flt1_0=NOPE")
    expect(page.locator("#panel-message")).to_contain_text("旧格式")
    shot(page, "panel_unknown_value")


LISTS = [
    ("clerk1", "members", "入会管理"),
    ("clerk1", "member_query", "会员信息查询"),
    ("clerk1", "transfers", "会员调动管理"),
    ("clerk1", "changes", "会员变更管理"),
    ("clerk1", "policies", "投保管理"),
    ("clerk1", "terminations", "保单提前终止"),
    ("clerk1", "termination_policies", "创建保单终止申请"),
    ("clerk1", "expiring", "即将到期订单"),
    ("clerk1", "receipts", "收据管理"),
    ("clerk1", "batches", "批量业务"),
    ("agency1", "policies", "投保管理"),
    ("agency1", "members", "入会管理"),
    ("admin", "orgs", "单位"),
    ("admin", "users", "用户"),
    ("admin", "products", "产品"),
]


def test_every_list_with_its_panel_at_1366_by_768(page, live_server):
    page.set_viewport_size({"width": 1366, "height": 768})
    current = None
    for username, endpoint, title in LISTS:
        if username != current:
            page.context.clear_cookies()
            login(page, live_server, username)
            current = username
        page.goto(f"{live_server.url}/admin/{endpoint}/")
        expect(page).to_have_title(f"{title} - 互助保障业务系统")
        if endpoint != "products":
            panel = page.locator("#search-panel")
            expect(panel).to_be_visible()
            box = panel.bounding_box()
            assert box["y"] + box["height"] < 768 / 2, f"{endpoint}: the panel fits in the upper half of the screen"
            assert box["x"] + box["width"] <= 1366, endpoint
        assert page.locator(".navbar-toggler").get_attribute("aria-label") == "展开菜单"
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1366, f"{endpoint}: no sideways scrolling at 1366 ({width})"
        shot(page, f"list_{username}_{endpoint}_1366x768", full_page=False)

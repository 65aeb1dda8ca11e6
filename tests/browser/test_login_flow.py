"""Login through the real pages with the console SMS code, the 首页, the unit's member list, 退出."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import DEMO_PASSWORD, login, shot

pytestmark = pytest.mark.browser

UNIT = "010101 东城区第一机床厂工会"
GENERIC_FAILURE = "登录失败：用户名、密码或验证码不正确，或账户已被锁定。"


def test_clerk_logs_in_with_the_sms_code_and_lands_on_home(page, live_server):
    login(page, live_server, "clerk1")
    assert page.title() == "首页 - 互助保障业务系统"
    assert page.locator("#home-org").inner_text() == UNIT
    assert page.locator("#home-role").inner_text() == "基层单位操作员"
    shot(page, "home_clerk1")


def test_wrong_code_shows_the_generic_failure_message(page, live_server):
    live_server.reset_login("clerk1")
    page.goto(live_server.url + "/login")
    page.fill("#username", "clerk1")
    page.fill("#password", DEMO_PASSWORD)
    since = live_server.mark()
    page.get_by_role("button", name="获取手机验证码").click()
    expect(page.locator("#code-msg")).to_contain_text("验证码已发送")
    real = live_server.code_for("clerk1", since=since)
    page.fill("#code", f"{(int(real) + 1) % 10**6:06d}")
    page.get_by_role("button", name="登录").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert GENERIC_FAILURE in alert.inner_text()
    assert page.url.startswith(live_server.url + "/login")
    assert page.locator("#username").input_value() == "clerk1"
    shot(page, "login_failed")


def test_clerk_sees_only_members_of_own_unit(page, live_server):
    login(page, live_server, "clerk1")
    page.get_by_role("link", name="会员管理").click()
    page.get_by_role("link", name="入会管理").click()
    page.wait_for_url(re.compile(r"/admin/members/"))
    assert page.title() == "入会管理 - 互助保障业务系统"
    assert page.locator("th.col-org").inner_text().strip() == "单位"
    units = page.locator("td.col-org").all_inner_texts()
    assert units and {u.strip() for u in units} == {UNIT}
    shot(page, "members_clerk1")
    # every page through the pager, not only the first twenty rows
    total = int(re.search(r"\((\d+)\)", page.locator(".nav-tabs .nav-link.active").inner_text()).group(1))
    seen = list(units)
    while (nxt := page.locator("li.page-item:not(.disabled) a.page-link", has_text=">")).count():
        with page.expect_navigation():
            nxt.first.click()
        seen += page.locator("td.col-org").all_inner_texts()
    assert len(seen) == total > len(units)
    assert {u.strip() for u in seen} == {UNIT}


def test_logout_returns_to_the_login_page(page, live_server):
    login(page, live_server, "clerk1")
    page.get_by_role("button", name="退出").click()
    page.wait_for_url(re.compile(r"/login$"))
    assert page.locator("#login-btn").is_visible()
    page.goto(live_server.url + "/admin/")
    assert "/login" in page.url

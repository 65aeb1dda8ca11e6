"""Issue 15 in the browser: pages run under the Content-Security-Policy without a single violation
(Flask-Admin's scripts included), a delete still asks first, and 系统管理 → 用户 → 重置密码 with the
admin's own SMS code shows the new password once."""

from __future__ import annotations

import re

from .conftest import DEMO_PASSWORD, login, shot

PAGES = [
    "/admin/",
    "/admin/members/",
    "/admin/members/new/",
    "/admin/policies/",
    "/admin/policies/new/",
    "/admin/batches/upload/members/",
    "/admin/member_query/",
]


def _watch_policy(page) -> list[str]:
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: (
            violations.append(msg.text) if "Content Security Policy" in msg.text or "Refused to" in msg.text else None
        ),
    )
    return violations


def test_the_clerks_pages_run_under_the_policy_without_a_violation(page, live_server):
    violations = _watch_policy(page)
    login(page, live_server, "clerk1")
    for url in PAGES:
        page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")
    page.goto(live_server.url + "/admin/policies/new/")
    page.fill("#member_ref", "0000000001")  # the form's own script (look-up on blur) runs
    page.locator("#shares").click()
    page.wait_for_load_state("networkidle")
    shot(page, "csp-policy-form")
    assert violations == []


def test_deleting_a_member_from_the_list_still_asks_first(page, live_server):
    violations = _watch_policy(page)
    login(page, live_server, "clerk1")
    page.goto(live_server.url + "/admin/members/?status=NEW")
    trash = page.locator("form.icon button[data-confirm]").first
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.dismiss()  # 取消: nothing is deleted

    page.on("dialog", answer)
    rows_before = page.locator("table.model-list tbody tr").count()
    trash.click()
    page.wait_for_timeout(500)
    assert len(asked) == 1 and "删除" in asked[0]  # the question, in Chinese
    assert page.locator("table.model-list tbody tr").count() == rows_before
    assert violations == []


def test_admin_resets_a_password_with_the_code_from_the_admins_own_phone(page, live_server):
    violations = _watch_policy(page)
    login(page, live_server, "admin")
    page.goto(live_server.url + "/admin/users/?username=clerk3")
    page.locator("table.model-list a[href*='/admin/users/details/']").first.click()
    page.wait_for_url(re.compile(r".*/admin/users/details/.*"))
    live_server.reset_login("admin")  # the login's own send a moment ago: the 60 s wait starts over
    since = live_server.mark()
    page.locator("#reset-form .stepup-send").click()
    page.locator("#reset-form .stepup-msg").filter(has_text="验证码已发送至您本人的手机").wait_for()
    page.fill("#stepup_code", live_server.code_for("admin", since=since))
    page.on("dialog", lambda d: d.accept())  # 确定重置 clerk3 的密码吗？
    page.locator("#reset-btn").click()
    new = page.locator("#new-password").inner_text()
    assert re.fullmatch(r"Hz-[A-Za-z0-9_-]{8}", new)
    shot(page, "user-password-reset-shown-once")
    page.get_by_role("link", name="返回用户详情").click()
    assert new not in page.content()
    assert violations == []
    # clerk3 logs in with it; the old one no longer works
    page.get_by_role("button", name="退出").click()
    login(page, live_server, "clerk3", password=new)
    assert new != DEMO_PASSWORD


def test_info_dept_changes_a_clerks_phone_with_the_code_from_its_own_phone(page, live_server):
    violations = _watch_policy(page)
    login(page, live_server, "info1")
    page.goto(live_server.url + "/admin/users/?username=clerk2")
    page.locator("table.model-list a.icon[href*='/admin/users/edit/']").first.click()  # the pencil
    page.wait_for_url(re.compile(r".*/admin/users/edit/.*"))
    assert page.locator("#role option[value='admin']").count() == 0  # only an admin grants admin
    page.fill("#phone", "+8613900000222")
    with page.expect_navigation():
        page.get_by_role("button", name="保存并退出").click()
    assert "须填写您本人手机收到的验证码" in page.content()  # refused without it
    page.fill("#phone", "+8613900000222")
    live_server.reset_login("info1")
    since = live_server.mark()
    page.locator(".stepup-send").click()
    page.locator(".stepup-msg").filter(has_text="验证码已发送至您本人的手机").wait_for()
    page.fill("#stepup_code", live_server.code_for("info1", since=since))
    shot(page, "user-edit-phone-with-own-code")
    with page.expect_navigation():
        page.get_by_role("button", name="保存并退出").click()
    shot(page, "user-edit-phone-saved")
    assert "/edit/" not in page.url and "+8613900000222" in page.content(), page.inner_text("body")[:400]
    page.goto(live_server.url + "/admin/audit/?entity=user")
    assert "手机号码: +8613800000006 → +8613900000222" in page.content()
    shot(page, "audit-log-phone-change")
    assert violations == []

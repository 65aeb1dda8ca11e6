"""单位管理 as the admin sees it: a unit still in use is not deleted, and the admin is told why and
what to do instead (switch it off)."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import login, shot


def test_deleting_a_unit_that_still_has_members_says_what_uses_it_and_keeps_it(page, live_server):
    login(page, live_server, "admin")
    page.goto(live_server.url + "/admin/orgs/?code=010101")
    rows = page.locator("table.model-list tbody tr")
    expect(rows).to_have_count(1)
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept()  # 确定: the admin does want it deleted

    page.on("dialog", answer)
    page.locator("table.model-list form.icon button[data-confirm]").first.click()
    alert = page.locator(".alert-danger, .alert-error").first
    expect(alert).to_contain_text("仍被以下记录使用")
    expect(alert).to_contain_text("会员")
    expect(alert).to_contain_text("不能删除")
    expect(alert).to_contain_text("取消勾选【启用】")
    assert len(asked) == 1 and "删除" in asked[0]
    shot(page, "org_delete_refused")
    page.goto(live_server.url + "/admin/orgs/?code=010101")
    expect(page.locator("table.model-list tbody tr")).to_have_count(1)  # still there

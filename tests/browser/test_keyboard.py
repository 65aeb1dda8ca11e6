"""Keyboard and speed (a clerk enters dozens of members in a row): the cursor starts in the first
field, Enter moves to the next one, 【保存并创建下一个】 keeps the product; and every date picker
speaks Chinese (month and day names, 确定/取消)."""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import expect

from .conftest import login, shot
from .test_member_flows import id_number, name_prefix

pytestmark = pytest.mark.browser


def focused(page) -> str:
    return page.evaluate("document.activeElement && (document.activeElement.id || document.activeElement.name)")


def test_members_are_entered_one_after_another_with_the_keyboard_alone(page, live_server):
    login(page, live_server, "clerk1")
    page.goto(live_server.url + "/admin/members/new/")
    prefix = name_prefix()
    for i in range(2):
        assert focused(page) == "name", "the cursor starts in the first field"
        page.keyboard.type(f"{prefix}{'一二'[i]}")
        page.keyboard.press("Enter")
        assert focused(page) == "id_number", "Enter moves to the next field, it does not save"
        page.keyboard.type(id_number(male=i == 0))
        page.keyboard.press("Enter")
        assert focused(page) == "phone"
        page.keyboard.press("Enter")
        for _ in range(3):  # the over-age fields, where the form shows them
            if focused(page) not in ("over_age_exception", "over_age_note", "confirm_over_age"):
                break
            page.keyboard.press("Enter")
        assert focused(page) == "_add_another", "after the last field: 【保存并创建下一个】"
        with page.expect_navigation():
            page.keyboard.press("Enter")
        expect(page.locator(".alert-success")).to_contain_text(f"已保存：{prefix}{'一二'[i]}")
    shot(page, "keyboard_member_entry", full_page=False)


def _member_without(live_server, product: str) -> str:
    with sqlite3.connect(live_server.db_path) as con:
        rows = con.execute(
            """SELECT m.member_no FROM member m JOIN org o ON o.id = m.org_id
               WHERE o.code = '010101' AND m.status = 'CONFIRMED' AND m.gender = 'F' AND NOT EXISTS (
                 SELECT 1 FROM policy p JOIN product pr ON pr.id = p.product_id
                 WHERE p.member_id = m.id AND pr.code = ?) ORDER BY m.id""",
            (product,),
        ).fetchall()
    con.close()
    return [r[0] for r in rows]


def test_save_and_add_another_keeps_the_product_shares_and_date_and_starts_at_the_member(page, live_server):
    first, second = _member_without(live_server, "P02")[:2]
    login(page, live_server, "clerk1")
    page.goto(live_server.url + "/admin/policies/new/")
    assert focused(page) == "product_id", "选择【产品名称】 first"
    page.select_option("#product_id", label="女职工特殊疾病互助保障")
    page.keyboard.press("Enter")
    assert focused(page) == "member_ref"
    page.keyboard.type(first)
    page.keyboard.press("Enter")  # leaving the field looks the member up
    expect(page.locator("#member-info")).to_contain_text("东城区第一机床厂工会")
    page.locator("#expected_effective_date").fill("2027-02-01")
    page.keyboard.press("Enter")  # the picker closes, the cursor moves on
    with page.expect_navigation():
        page.locator("input[name=_add_another]").click()
    expect(page.locator(".alert-success")).to_be_visible()
    assert re.search(r"/admin/policies/new/\?.*keep_product=", page.url)
    expect(page.locator("#product_id option:checked")).to_have_text("女职工特殊疾病互助保障")
    assert page.locator("#expected_effective_date").input_value() == "2027-02-01"
    assert focused(page) == "member_ref", "the product is kept: the cursor waits at the member"
    page.keyboard.type(second)
    page.keyboard.press("Enter")
    expect(page.locator("#member-info")).to_contain_text("东城区第一机床厂工会")
    expect(page.locator("#amount")).to_have_value("30.00")
    shot(page, "keyboard_policy_next", full_page=False)


def _picker_is_chinese(page, name: str):
    picker = page.locator(".daterangepicker:visible")
    expect(picker).to_have_count(1)
    text = picker.inner_text()
    for word in ("一", "二", "日", "确定", "取消"):
        assert word in text, (word, text)
    assert re.search(r"\d{1,2}月", text), text
    assert not re.search(r"Apply|Cancel|Mo|Tu|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec", text), text
    shot(page, name, full_page=False)


def test_every_date_picker_speaks_chinese(page, live_server):
    login(page, live_server, "clerk1")
    page.goto(live_server.url + "/admin/policies/")
    page.locator("#panel-effective_from").click()
    _picker_is_chinese(page, "picker_panel")
    page.keyboard.press("Escape")
    page.goto(live_server.url + "/admin/policies/new/")
    page.locator("#expected_effective_date").click()
    _picker_is_chinese(page, "picker_policy_form")
    page.goto(live_server.url + "/admin/policies/bulk/change-date/?status=NEW")
    if page.locator("#p-effective").count():
        page.locator("#p-effective").click()
        _picker_is_chinese(page, "picker_bulk_change_date")

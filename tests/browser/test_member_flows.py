"""入会 flows as clerk1 sees them: 【添加】, 【当前查询结果上报】, 【全部删除】, 批量入会 (template →
upload → 业务校验 → 业务办理 → downloads) and 会员信息查询's detail page.

The live server's database lives for the whole session, so every ID number and name made here is
unique for the run (random sequence digits, random name prefixes)."""

from __future__ import annotations

import random
import re
import sqlite3

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from rules.idnumber import id_check_digit

from .conftest import login, shot

pytestmark = pytest.mark.browser

UNIT_NAME = "东城区第一机床厂工会"
SAVED = re.compile(r"已保存：(\S+)，会员编号 (\d{10})")
# characters no demo name starts with (demo surnames are 王李张…), so a prefix of two finds only ours
NAME_CHARS = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥春夏秋冬梅兰竹菊松柏"

_rng = random.Random()
_used_ids: set[str] = set()


def id_number(male: bool = True, *, valid: bool = True) -> str:
    """A fresh 身份证号 of someone born 1990-03-07 (36, within every age limit); with
    valid=False the check digit is wrong (see `right_check_digit`)."""
    while True:
        seq = _rng.randrange(100)
        gender = _rng.choice("13579" if male else "02468")
        first17 = f"11010519900307{seq:02d}{gender}"
        if first17 not in _used_ids:
            _used_ids.add(first17)
            break
    check = id_check_digit(first17)
    if not valid:
        check = "0" if check != "0" else "1"
    return first17 + check


def right_check_digit(number: str) -> str:
    return id_check_digit(number[:17])


def name_prefix() -> str:
    return "".join(_rng.sample(NAME_CHARS, 2))


def field_group(page, field_id: str):
    """The form-group around an input, where Flask-Admin prints the field's errors."""
    return page.locator(".form-group", has=page.locator(f"#{field_id}"))


def open_admission_list(page):
    page.get_by_role("link", name="会员管理").click()
    page.get_by_role("link", name="入会管理").click()
    page.wait_for_url(re.compile(r"/admin/members/(\?.*)?$"))


def add_member(page, name: str, number: str, phone: str = "", *, another: bool) -> str:
    """Fill 【添加】 and save; returns the 会员编号 from the flash message."""
    page.fill("#name", name)
    page.fill("#id_number", number)
    if phone:
        page.fill("#phone", phone)
    with page.expect_navigation():
        if another:
            page.locator("input[name=_add_another]").click()
        else:
            page.get_by_role("button", name="保存并退出").click()
    flash = page.locator(".alert-success", has_text="已保存：")
    expect(flash).to_be_visible()
    m = SAVED.search(flash.inner_text())
    assert m, flash.inner_text()
    assert m.group(1) == name
    return m.group(2)


def list_rows(page) -> list[dict[str, str]]:
    """The visible rows of the list as {column: text}."""
    rows = []
    for tr in page.locator("table.model-list tbody tr").all():
        cells = {}
        for col in ("member_no", "name", "id_number", "status", "org"):
            td = tr.locator(f"td.col-{col}")
            if td.count():
                cells[col] = td.inner_text().strip()
        if cells:
            rows.append(cells)
    return rows


def tab_count(page) -> int:
    """The "(N)" on the active list tab: the row count of the current query."""
    return int(re.search(r"\((\d+)\)", page.locator(".nav-tabs .nav-link.active").inner_text()).group(1))


def search(page, name: str) -> None:
    """Type 姓名 in the search panel and press 【搜索】 (the panel's other fields stay as they are)."""
    page.locator("#panel-name").fill(name)
    with page.expect_navigation():
        page.locator("#panel-search").click()


def test_add_member_with_save_and_add_another_then_save_and_exit(page, live_server):
    login(page, live_server, "clerk1")
    open_admission_list(page)
    page.get_by_role("link", name="添加", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/members/new/"))
    expect(field_group(page, "name")).to_contain_text("姓名中间不得有空格；少数民族姓名的间隔号用“·”")
    shot(page, "member_add_form")

    # a name with a space inside and an ID with the wrong check digit: both told beside their field
    bad_id = id_number(valid=False)
    page.fill("#name", "李 四")
    page.fill("#id_number", bad_id)
    with page.expect_navigation():
        page.locator("input[name=_add_another]").click()
    expect(field_group(page, "name")).to_contain_text("姓名中间不得有空格")
    expect(field_group(page, "id_number")).to_contain_text(
        f"投保人身份证不合法,错误原因:检验位应为{right_check_digit(bad_id)}"
    )
    assert "/admin/members/new/" in page.url
    assert page.locator("#name").input_value() == "李 四", "what the clerk typed is kept"
    assert not page.locator(".alert-success").count()
    shot(page, "member_add_error")

    prefix = name_prefix()
    first, second = prefix + "一", prefix + "二"
    first_id = id_number(male=True)
    first_no = add_member(page, first, first_id, "13912345678", another=True)
    assert "/admin/members/new/" in page.url, "保存并创建下一个 stays on an empty 【添加】 form"
    assert page.locator("#name").input_value() == ""
    assert page.locator("#id_number").input_value() == ""

    second_no = add_member(page, second, id_number(male=False), another=False)
    page.wait_for_url(re.compile(r"/admin/members/(\?.*)?$"))
    assert second_no != first_no
    rows = {r["member_no"]: r for r in list_rows(page)}
    for no, name in ((first_no, first), (second_no, second)):
        assert rows[no]["name"] == name
        assert rows[no]["status"] == "新建"
        assert rows[no]["org"] == f"010101 {UNIT_NAME}"
    assert rows[second_no]["id_number"], "the list shows the 身份证号"
    shot(page, "member_added")

    # the same person again is refused, naming the unit and the 会员编号
    page.get_by_role("link", name="添加", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/members/new/"))
    page.fill("#name", first)
    page.fill("#id_number", first_id)
    with page.expect_navigation():
        page.get_by_role("button", name="保存并退出").click()
    expect(field_group(page, "id_number")).to_contain_text(f"该会员已入会（{UNIT_NAME}，会员编号 {first_no}）")
    assert "/admin/members/new/" in page.url


def test_report_new_members_of_the_current_query(page, live_server):
    login(page, live_server, "clerk1")
    page.get_by_role("link", name="新建未上报的会员").click()
    page.wait_for_url(re.compile(r"/admin/members/\?status=NEW"))
    new_rows = list_rows(page)
    total = tab_count(page)
    assert total >= 1 and len(new_rows) == min(total, 20)
    assert {r["status"] for r in new_rows} == {"新建"}
    reported_nos = {r["member_no"] for r in new_rows}

    page.locator("#bulk-report").click()
    page.wait_for_url(re.compile(r"/admin/members/bulk/report/\?status=NEW"))
    expect(page.locator("#bulk-confirm")).to_contain_text("【当前查询结果上报】确认")
    expect(page.locator("#bulk-confirm")).to_contain_text("选择状态：新建")
    assert int(page.locator("#bulk-count").inner_text()) == total
    shot(page, "member_report_confirm")

    with page.expect_navigation():
        page.locator("#bulk-submit").click()
    page.wait_for_url(re.compile(r"/admin/members/\?status=NEW"))
    expect(page.locator(".alert-success")).to_contain_text(f"已上报 {total} 条，跳过 0 条（状态已变化）")
    assert list_rows(page) == [], "no 新建 member is left"
    shot(page, "member_reported")

    # the whole list, newest first: the rows just reported now read 财务确认
    open_admission_list(page)
    rows = list_rows(page)
    seen = [r for r in rows if r["member_no"] in reported_nos]
    assert seen, "some reported member is on the first page of the list"
    assert {r["status"] for r in seen} == {"财务确认"}
    assert "新建" not in {r["status"] for r in rows}
    shot(page, "member_reported_list")


def test_delete_all_needs_the_typed_phrase(page, live_server):
    login(page, live_server, "clerk1")
    prefix = name_prefix()
    page.goto(live_server.url + "/admin/members/new/")
    add_member(page, prefix + "甲", id_number(male=True), another=True)
    add_member(page, prefix + "乙", id_number(male=False), another=False)

    page.get_by_role("link", name="首页").click()
    page.get_by_role("link", name="新建未上报的会员").click()
    page.wait_for_url(re.compile(r"/admin/members/\?status=NEW"))
    search(page, prefix)
    assert sorted(r["name"] for r in list_rows(page)) == [prefix + "乙", prefix + "甲"]

    page.locator("#bulk-delete").click()
    page.wait_for_url(re.compile(r"/admin/members/bulk/delete/"))
    assert page.locator("#bulk-count").inner_text() == "2"
    expect(page.locator("#bulk-confirm")).to_contain_text(f"姓名：{prefix}")

    page.fill("#phrase", "删除")
    with page.expect_navigation():
        page.locator("#bulk-submit").click()
    expect(page.locator("#bulk-warning")).to_contain_text("确认文字不正确")
    expect(page.locator("#bulk-warning")).to_contain_text("本次没有做任何操作")
    assert page.locator("#bulk-count").inner_text() == "2", "nothing deleted"
    shot(page, "member_delete_confirm")

    page.fill("#phrase", "全部删除")
    with page.expect_navigation():
        page.locator("#bulk-submit").click()
    page.wait_for_url(re.compile(r"/admin/members/\?"))
    expect(page.locator(".alert-success")).to_contain_text("已删除 2 条，跳过 0 条")
    assert list_rows(page) == []
    shot(page, "member_deleted")


def test_batch_admission_from_template_to_result_files(page, live_server, tmp_path):
    login(page, live_server, "clerk1")
    with page.expect_download() as dl:
        page.get_by_role("link", name="【批量入会模板】").click()
    assert dl.value.suggested_filename == "批量入会模板.xlsx"
    template = tmp_path / "template.xlsx"
    dl.value.save_as(template)

    wb = load_workbook(template)
    ws = wb.worksheets[0]
    assert [c.value for c in ws[1]][:2] == ["姓名", "身份证号"]
    assert "填写说明" in wb.sheetnames
    prefix = name_prefix()
    bad = id_number(male=True, valid=False)
    people = [
        (prefix + "子", id_number(male=True)),
        (prefix + "丑", id_number(male=False)),
        (prefix + "寅", bad),
        (prefix + "卯", id_number(male=True)),
        (prefix + "辰", id_number(male=False)),
    ]
    for r, (name, number) in enumerate(people, start=2):  # Excel rows 2..6; the bad one is row 4
        ws.cell(r, 1, name)
        ws.cell(r, 2, number)
    upload = tmp_path / "批量入会_东城机床厂.xlsx"
    wb.save(upload)

    page.get_by_role("link", name="批量业务管理").click()
    page.get_by_role("link", name="批量业务", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/batches/"))
    page.locator("#new-batch-members").click()
    page.wait_for_url(re.compile(r"/admin/batches/upload/members/"))
    expect(page.locator("#tab-members")).to_have_class(re.compile(r"\bactive\b"))
    page.set_input_files("#file", str(upload))
    with page.expect_navigation():
        page.locator("#upload-btn").click()
    page.wait_for_url(re.compile(r"/admin/batches/run/\d+/$"))
    expect(page.locator("#batch-run h4")).to_contain_text(upload.name)

    with page.expect_navigation():
        page.locator("#check-btn").click()
    expect(page.locator("#check-result")).to_contain_text("共 5 行，通过 4 行，失败 1 行")
    failed = page.locator("#failed-rows tr:has(td)")
    assert failed.count() == 1
    assert failed.first.inner_text().split("\t")[0].strip() == "第4行"
    expect(failed.first).to_contain_text(f"检验位应为{right_check_digit(bad)}")
    expect(page.locator("#batch-counts")).to_contain_text("通过 4 行，失败 1 行")
    shot(page, "batch_checked")

    with page.expect_navigation():
        page.locator("#process-btn").click()
    expect(page.locator("#process-result")).to_contain_text("成功 4 行，失败 1 行")
    expect(page.locator("#batch-counts")).to_contain_text("已办理 4 行")
    assert not page.locator("#check-btn").count(), "a processed batch cannot be run again"
    shot(page, "batch_processed")

    with page.expect_download() as dl:
        page.locator("#result-link").click()
    assert dl.value.suggested_filename.startswith("批量入会处理结果_")
    result = tmp_path / "result.xlsx"
    dl.value.save_as(result)
    rows = list(load_workbook(result).worksheets[0].iter_rows(values_only=True))
    assert list(rows[0]) == ["姓名", "身份证号", "处理结果", "失败原因", "会员编号"]
    assert all(re.fullmatch(r"\d{10}", r[4]) for r in rows[1:] if r[2] == "成功"), "each admitted row's 会员编号"
    assert rows[3][4] is None
    assert [r[2] for r in rows[1:]] == ["成功", "成功", "失败", "成功", "成功"]
    assert f"检验位应为{right_check_digit(bad)}" in rows[3][3]
    assert [r[1] for r in rows[1:]] == [p[1] for p in people]

    with page.expect_download() as dl:
        page.locator("#failed-link").click()
    assert dl.value.suggested_filename == f"{upload.stem}_失败行.xlsx"
    failed_file = tmp_path / "failed.xlsx"
    dl.value.save_as(failed_file)
    rows = list(load_workbook(failed_file).worksheets[0].iter_rows(values_only=True))
    assert list(rows[0]) == ["姓名", "身份证号", "失败原因"]
    assert len(rows) == 2
    assert rows[1][:2] == (prefix + "寅", bad)
    assert rows[1][2].startswith("第4行：") and f"检验位应为{right_check_digit(bad)}" in rows[1][2]

    # the four are now 新建 members of the clerk's own unit
    page.goto(live_server.url + "/admin/members/")
    search(page, prefix)
    got = {r["name"]: r for r in list_rows(page)}
    assert sorted(got) == sorted(p[0] for p in people if p[1] != bad)
    assert {r["status"] for r in got.values()} == {"新建"}


def test_member_query_detail_shows_policy_and_claim_history(page, live_server):
    with sqlite3.connect(live_server.db_path) as con:
        member_no, name = con.execute(
            "SELECT m.member_no, m.name FROM member m JOIN org o ON o.id = m.org_id "
            "JOIN policy p ON p.member_id = m.id LEFT JOIN claim c ON c.member_id = m.id "
            "WHERE o.code = '010101' GROUP BY m.id ORDER BY COUNT(c.id) DESC, m.id LIMIT 1"
        ).fetchone()
    con.close()

    login(page, live_server, "clerk1")
    page.get_by_role("link", name="会员管理").click()
    page.get_by_role("link", name="会员信息查询").click()
    page.wait_for_url(re.compile(r"/admin/member_query/"))
    search(page, name)
    rows = list_rows(page)
    assert rows and all(r["name"].startswith(name) for r in rows)
    page.locator("td.col-member_no a", has_text=member_no).click()
    page.wait_for_url(re.compile(r"/admin/member_query/details/"))

    expect(page.locator("#policy-history")).to_have_text("投保历史")
    policies = page.locator("#policy-history + table tbody tr")
    assert policies.count() >= 1
    expect(policies.first).to_contain_text(UNIT_NAME)
    expect(page.locator("#claim-history")).to_have_text("理赔历史")
    claims = page.locator("#claim-history + table tbody tr")
    assert claims.count() >= 1
    expect(claims.first).to_contain_text("LP")
    expect(page.locator("body")).to_contain_text(member_no)
    shot(page, "member_detail")

"""Applications through the real pages, as the manual's roles: 会员调动 (clerk1 asks, info1 approves),
会员变更 (clerk1 saves and 上报, info1 rejects, clerk1 reads why on 首页, corrects, info1 approves),
超龄例外 (clerk1 requests with a PDF, agency1 approves, clerk1 admits after the question) and the
remedies of a 投保 batch's result screen (manual 一(三), 一(四))."""

from __future__ import annotations

import re
import sqlite3
from datetime import date, timedelta

import pytest
from openpyxl import Workbook, load_workbook
from playwright.sync_api import expect

from rules import id_check_digit

from .conftest import login, shot

pytestmark = pytest.mark.browser


def _query(live_server, sql, *args):
    with sqlite3.connect(live_server.db_path) as conn:
        return conn.execute(sql, args).fetchall()


def _free_member(live_server, unit: str, skip: int = 0):
    """A member of `unit` with no policy in hand and no undecided application."""
    rows = _query(
        live_server,
        """SELECT m.member_no, m.name, m.id_number FROM member m JOIN org o ON o.id = m.org_id
           WHERE o.code = ? AND m.status = 'CONFIRMED'
             AND NOT EXISTS (SELECT 1 FROM policy p WHERE p.member_id = m.id
                             AND p.status IN ('NEW', 'RETURNED', 'REPORTED', 'AGENCY_REPORTED'))
             AND NOT EXISTS (SELECT 1 FROM transfer_application t WHERE t.member_id = m.id)
             AND NOT EXISTS (SELECT 1 FROM change_application c WHERE c.member_id = m.id)
           ORDER BY m.id LIMIT 1 OFFSET ?""",
        unit,
        skip,
    )
    return rows[0]


def _id_for(age: int, seq: int, male: bool) -> str:
    t = date.today()
    birth = t.replace(year=t.year - age) - timedelta(days=40)
    first17 = f"130102{birth:%Y%m%d}{seq:02d}{1 if male else 2}"
    return first17 + id_check_digit(first17)


def _menu(page, category: str, item: str):
    page.get_by_role("link", name=category).click()
    page.get_by_role("link", name=item, exact=True).click()


def _logout_and_login(page, live_server, user):
    page.context.clear_cookies()
    login(page, live_server, user)


def test_clerk_asks_for_a_transfer_with_the_masked_look_up_and_info_approves_it(page, live_server):
    member_no, name, id_number = _free_member(live_server, "010201")
    login(page, live_server, "clerk1")
    _menu(page, "会员管理", "会员调动管理")
    page.locator("#create-application").click()
    page.fill("#q", member_no)
    page.locator("#lookup-btn").click()
    result = page.locator("#lookup-result")
    expect(result).to_contain_text(name)
    expect(result).to_contain_text(f"{id_number[:6]}********{id_number[14:]}")
    expect(result).to_contain_text("西城区供电局工会")
    assert id_number not in page.content()
    shot(page, "transfer_lookup_masked")
    page.fill("#reason", "工作调动到本厂")
    page.locator("#submit-btn").click()
    expect(page.locator("body")).to_contain_text("已提交调动申请")
    expect(page.locator("body")).to_contain_text("已提交")
    shot(page, "transfer_submitted")

    _logout_and_login(page, live_server, "info1")
    todo = page.get_by_role("link", name="待审批的会员调动申请")
    expect(todo).to_be_visible()
    shot(page, "transfer_info_home_todo")
    todo.click()
    expect(page.locator("table.model-list")).to_contain_text(name)
    page.locator("#bulk-approve").click()
    assert int(page.locator("#bulk-count").inner_text()) >= 1
    shot(page, "transfer_approve_confirm")
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已通过")
    shot(page, "transfer_approved")
    ((unit,),) = _query(
        live_server, "SELECT o.code FROM member m JOIN org o ON o.id = m.org_id WHERE m.member_no = ?", member_no
    )
    assert unit == "010101"

    _logout_and_login(page, live_server, "clerk1")
    page.goto(f"{live_server.url}/admin/member_query/?member_no={member_no}")
    expect(page.locator("table.model-list")).to_contain_text(name)
    shot(page, "transfer_member_now_in_unit")


def test_a_change_is_saved_reported_rejected_with_a_reason_corrected_and_approved(page, live_server):
    member_no, name, id_number = _free_member(live_server, "010101", skip=3)
    new_name = name + "华"
    login(page, live_server, "clerk1")
    _menu(page, "会员管理", "会员变更管理")
    page.locator("#create-application").click()
    page.fill("#q", id_number)
    page.locator("#query-btn").click()
    expect(page.locator("#change-member")).to_contain_text(name)
    page.fill("#new_name", new_name)
    page.fill("#reason", "户口本姓名有误")
    shot(page, "change_form")
    page.locator("#save-btn").click()
    expect(page.locator("body")).to_contain_text("已保存变更申请")
    # 审批状态选择新建，点击【搜索】，核实将要上报人员名单，点击【上报】
    page.select_option("select[name=status]", "NEW")
    page.get_by_role("button", name="搜索").click()
    expect(page.locator("table.model-list")).to_contain_text(new_name)
    shot(page, "change_list_new")
    page.locator("#bulk-submit").click()
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已上报")

    _logout_and_login(page, live_server, "info1")
    page.get_by_role("link", name="待审批的会员变更申请").click()
    page.wait_for_url(re.compile(r"/admin/changes/"))  # (首页's own to-do counts are number links too)
    page.locator("table.model-list a", has_text=re.compile(r"^\d+$")).first.click()  # the newest application
    page.wait_for_url(re.compile(r"/admin/changes/details/"))
    expect(page.locator("body")).to_contain_text(new_name)
    page.get_by_role("link", name="【驳回】").click()
    page.fill("#p-reason", "请附户口本复印件后重新上报")
    shot(page, "change_reject_confirm")
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已驳回 1 条")

    _logout_and_login(page, live_server, "clerk1")
    expect(page.locator("#todo-table")).to_contain_text("被驳回的会员变更申请")
    expect(page.locator("#todo-table")).to_contain_text("请附户口本复印件后重新上报")
    shot(page, "change_rejected_on_home")
    page.get_by_role("link", name="被驳回的会员变更申请").click()
    expect(page.locator("table.model-list")).to_contain_text("驳回原因：请附户口本复印件后重新上报")
    page.locator("table.model-list a", has_text=re.compile(r"^\d+$")).first.click()
    page.get_by_role("link", name="【重新编辑】").click()
    page.locator("#bulk-submit").click()
    page.get_by_role("link", name="【上报】").click()
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已上报 1 条")

    _logout_and_login(page, live_server, "info1")
    page.get_by_role("link", name="待审批的会员变更申请").click()
    page.locator("#bulk-approve").click()
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已通过")
    shot(page, "change_approved")
    ((now,),) = _query(live_server, "SELECT name FROM member WHERE member_no = ?", member_no)
    assert now == new_name


def test_an_over_age_request_with_a_pdf_is_approved_by_the_agency_and_then_admission_asks(page, live_server, tmp_path):
    idn = _id_for(58, 71, male=False)
    pdf = tmp_path / "退休证明.pdf"
    pdf.write_bytes(b"%PDF-1.4\n% not yet retired\n%%EOF\n")
    login(page, live_server, "clerk1")
    _menu(page, "会员管理", "入会管理")  # without the agency's consent she cannot admit
    page.goto(f"{live_server.url}/admin/members/new/")
    page.fill("#name", "钱局长")
    page.fill("#id_number", idn)
    page.locator("input[type=submit].btn-primary").first.click()
    expect(page.locator("body")).to_contain_text("【超龄例外申请】")
    shot(page, "over_age_admission_refused")

    _menu(page, "会员管理", "超龄例外申请")
    page.locator("#create-application").click()
    page.fill("#id_number", idn)
    page.fill("#name", "钱局长")
    page.fill("#reason", "局级干部，未办理正式退休手续")
    page.set_input_files("#document", str(pdf))
    shot(page, "over_age_request_form")
    page.locator("#save-btn").click()
    expect(page.locator("body")).to_contain_text("已保存超龄例外申请")
    page.get_by_role("link", name="【提交】").click()
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已提交 1 条")

    _logout_and_login(page, live_server, "agency1")
    page.get_by_role("link", name="待审批的超龄例外申请").click()
    page.locator("table.model-list a", has_text=re.compile(r"^\d+$")).first.click()
    with page.expect_download() as dl:
        page.locator("a.document-link").click()
    assert dl.value.suggested_filename == "退休证明.pdf"
    shot(page, "over_age_agency_details")
    page.get_by_role("link", name="【通过】").click()
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已通过 1 条")

    _logout_and_login(page, live_server, "clerk1")
    page.goto(f"{live_server.url}/admin/members/new/")
    page.fill("#name", "钱局长")
    page.fill("#id_number", idn)
    page.locator("input[type=submit].btn-primary").first.click()
    expect(page.locator("body")).to_contain_text("此会员超出投保年龄，是否继续投保")
    shot(page, "over_age_admission_question")
    page.check("#confirm_over_age")
    page.locator("input[type=submit].btn-primary").first.click()
    expect(page.locator("body")).to_contain_text("已保存：钱局长")
    ((flag, approver),) = _query(
        live_server,
        'SELECT m.over_age_exception, u.username FROM member m JOIN "user" u ON u.id = m.over_age_approved_by_id '
        "WHERE m.id_number = ?",
        idn,
    )
    assert flag and approver == "agency1"


def test_from_a_policy_batch_result_the_remedies_are_one_step(page, live_server, tmp_path):
    member_no, name, id_number = _free_member(live_server, "010102", skip=5)
    missing = _id_for(35, 72, male=True)
    wb = Workbook()
    ws = wb.active
    ws.append(["姓名", "身份证号", "份数", "投保金额"])
    ws.append([name, id_number, 1, 20])  # 查无此会员信息: in 010102, not clerk1's unit
    ws.append(["新来甲", missing, 1, 20])  # 会员信息不存在: never admitted
    ((ok_name, ok_id),) = _query(
        live_server,
        """SELECT m.name, m.id_number FROM member m JOIN org o ON o.id = m.org_id
           WHERE o.code = '010101' AND m.status = 'CONFIRMED' AND NOT EXISTS (
             SELECT 1 FROM policy p JOIN product pr ON pr.id = p.product_id WHERE p.member_id = m.id AND pr.code = 'P03')
           ORDER BY m.id DESC LIMIT 1""",
    )
    ws.append([ok_name, ok_id, 1, 20])  # enrolled
    for row in ws.iter_rows(min_row=2):
        row[1].number_format = "@"
    upload = tmp_path / "批量投保.xlsx"
    wb.save(upload)

    login(page, live_server, "clerk1")
    page.goto(f"{live_server.url}/admin/batches/upload/policies/")
    p03 = page.locator("#product option", has_text="职工意外伤害互助保障").get_attribute("value")
    page.select_option("#product", value=p03)
    page.fill("#amount", "20")
    next_month = (date.today().replace(day=1) + timedelta(days=32)).replace(day=1)
    page.fill("#effective", next_month.isoformat())
    page.press("#effective", "Tab")  # the cursor moves on: the date picker closes, as for a clerk
    page.set_input_files("#file", str(upload))
    page.locator("#upload-btn").click()
    run_url = page.url
    page.locator("#check-btn").click()
    expect(page.locator("#failed-rows")).to_contain_text("查无此会员信息")
    page.locator("#process-btn").click()
    expect(page.locator("#process-result")).to_contain_text("成功 1 行，失败 2 行")
    expect(page.locator("#remedies")).to_contain_text("【生成调动申请】")
    expect(page.locator("#remedies")).to_contain_text("【生成入会文件】")
    shot(page, "remedy_batch_result")

    with page.expect_download() as dl:
        page.locator("#remedy-admission").click()
    filled = tmp_path / "入会.xlsx"
    dl.value.save_as(filled)
    rows = [r for r in load_workbook(filled).worksheets[0].iter_rows(values_only=True) if any(r)]
    assert rows == [("姓名", "身份证号"), ("新来甲", missing)]

    page.locator("#remedy-transfer").click()
    expect(page.locator("body")).to_contain_text("已生成 1 份会员调动申请（新建）")
    expect(page.locator("table.model-list")).to_contain_text(name)
    shot(page, "remedy_transfer_drafts")
    page.goto(run_url)  # the batch's page later: the buttons from what was recorded
    page.locator("#remedy-transfer").click()  # pressed twice: nothing twice
    expect(page.locator("body")).to_contain_text("已生成 0 份会员调动申请")
    expect(page.locator("body")).to_contain_text("已有未审批的调动申请 1 人")
    page.locator("#bulk-submit").click()
    assert int(page.locator("#bulk-count").inner_text()) >= 1
    shot(page, "remedy_transfer_submit_confirm")
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已提交")
    ((status,),) = _query(
        live_server,
        "SELECT t.status FROM transfer_application t JOIN member m ON m.id = t.member_id WHERE m.member_no = ?",
        member_no,
    )
    assert status == "SUBMITTED"


def _members_file(path, rows):
    wb = Workbook()
    ws = wb.active
    ws.append(["姓名", "身份证号"])
    for r in rows:
        ws.append(list(r))
    for row in ws.iter_rows(min_row=2):
        row[1].number_format = "@"
    wb.save(path)
    return path


def _upload_members(page, live_server, path):
    page.goto(f"{live_server.url}/admin/batches/upload/members/")
    page.set_input_files("#file", str(path))
    page.locator("#upload-btn").click()
    run_url = page.url  # the batch's page (业务校验 answers on its own address)
    page.locator("#check-btn").click()
    return run_url


def test_from_an_admission_batch_the_transfer_and_over_age_remedies_then_the_batch_admits_the_agreed_person(
    page, live_server, tmp_path
):
    """Manual 一(三)1 by file: a 62-year-old refused (超龄) and a member of another unit (已入会) →
    【生成超龄例外申请】 and 【生成调动申请】 from the result screen; the agency approves the request;
    the same file again: 业务校验 asks "此会员超出投保年龄，是否继续投保", 【业务办理】 admits him."""
    _, other_name, other_id = _free_member(live_server, "010201", skip=3)
    old = _id_for(62, 73, male=True)
    upload = _members_file(tmp_path / "批量入会.xlsx", [(other_name, other_id), ("孙副局", old)])
    pdf = tmp_path / "未退休证明.pdf"
    pdf.write_bytes(b"%PDF-1.4\n% not yet retired\n%%EOF\n")

    login(page, live_server, "clerk1")
    run_url = _upload_members(page, live_server, upload)
    expect(page.locator("#failed-rows")).to_contain_text("超龄（62周岁）")
    expect(page.locator("#failed-rows")).to_contain_text("该会员已入会（在其他单位）")
    expect(page.locator("#remedies")).to_contain_text("【生成调动申请】")
    expect(page.locator("#remedies")).to_contain_text("【生成超龄例外申请】")
    shot(page, "remedy_admission_batch_result")

    page.locator("#remedy-transfer").click()
    expect(page.locator("body")).to_contain_text("已生成 1 份会员调动申请（新建）")
    expect(page.locator("table.model-list")).to_contain_text(other_name)
    shot(page, "remedy_admission_transfer_drafts")

    page.goto(run_url)
    page.locator("#remedy-over_age").click()
    expect(page.locator("body")).to_contain_text("已生成 1 份超龄例外申请（新建）")
    expect(page.locator("table.model-list")).to_contain_text("孙副局")
    shot(page, "remedy_over_age_drafts")
    ((draft,),) = _query(live_server, "SELECT id FROM over_age_application WHERE id_number = ?", old)
    page.goto(f"{live_server.url}/admin/over_age/edit/?id={draft}")
    page.fill("#reason", "高级职称，未办理正式退休手续")
    page.set_input_files("#document", str(pdf))
    page.locator("#save-btn").click()
    expect(page.locator("body")).to_contain_text("已修改超龄例外申请")
    page.get_by_role("link", name="【提交】").click()
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已提交 1 条")

    _logout_and_login(page, live_server, "agency1")
    page.get_by_role("link", name="待审批的超龄例外申请").click()
    page.locator("table.model-list a", has_text=str(draft)).first.click()
    page.get_by_role("link", name="【通过】").click()
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已通过 1 条")

    _logout_and_login(page, live_server, "clerk1")
    _upload_members(page, live_server, upload)
    expect(page.locator("#over-age-rows")).to_contain_text("此会员超出投保年龄，是否继续投保")
    expect(page.locator("#over-age-rows")).to_contain_text("第3行（孙副局）")
    shot(page, "over_age_batch_admission_question")
    page.locator("#process-btn").click()
    expect(page.locator("#process-result")).to_contain_text("成功 1 行，失败 1 行")
    expect(page.locator("#over-age-rows")).to_contain_text("已办理 1 名超出投保年龄的人员")
    shot(page, "over_age_batch_admitted")
    ((flag, approver),) = _query(
        live_server,
        'SELECT m.over_age_exception, u.username FROM member m JOIN "user" u ON u.id = m.over_age_approved_by_id '
        "WHERE m.id_number = ?",
        old,
    )
    assert flag and approver == "agency1"


def test_from_a_policy_batch_a_wrong_name_becomes_a_change_application_in_one_step(page, live_server, tmp_path):
    """Manual 一(四)4/8 by file: 投保人姓名与会员姓名不一致 → 【生成变更申请】 (the file's name prefilled),
    then 【上报】 to 信息部."""
    member_no, name, id_number = _free_member(live_server, "010101", skip=7)
    wrong = name + "明"
    wb = Workbook()
    ws = wb.active
    ws.append(["姓名", "身份证号", "份数", "投保金额"])
    ws.append([wrong, id_number, 1, 20])
    ws["B2"].number_format = "@"
    upload = tmp_path / "批量投保_姓名.xlsx"
    wb.save(upload)

    login(page, live_server, "clerk1")
    page.goto(f"{live_server.url}/admin/batches/upload/policies/")
    p03 = page.locator("#product option", has_text="职工意外伤害互助保障").get_attribute("value")
    page.select_option("#product", value=p03)
    page.fill("#amount", "20")
    next_month = (date.today().replace(day=1) + timedelta(days=32)).replace(day=1)
    page.fill("#effective", next_month.isoformat())
    page.press("#effective", "Tab")
    page.set_input_files("#file", str(upload))
    page.locator("#upload-btn").click()
    page.locator("#check-btn").click()
    expect(page.locator("#failed-rows")).to_contain_text("投保人姓名与会员姓名不一致")
    expect(page.locator("#remedies")).to_contain_text("【生成变更申请】")
    page.locator("#remedy-change").click()
    expect(page.locator("body")).to_contain_text("已生成 1 份会员变更申请（新建）")
    expect(page.locator("table.model-list")).to_contain_text(wrong)
    shot(page, "remedy_change_drafts")
    page.get_by_role("link", name="【上报】").click()
    expect(page.locator("#bulk-count")).to_have_text("1")
    shot(page, "remedy_change_report_confirm")
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已上报 1 条")
    ((status, new_name),) = _query(
        live_server,
        "SELECT c.status, c.new_name FROM change_application c JOIN member m ON m.id = c.member_id "
        "WHERE m.member_no = ?",
        member_no,
    )
    assert (status, new_name) == ("SUBMITTED", wrong)


def test_新会员投保_asks_the_manuals_question_for_a_member_with_the_agencys_exception(page, live_server):
    """Manual 一(二)2 with 一(四)9: 财务确认 → 【搜索】 → 【投保】: the confirmation page names the member over
    the age limit whom the agency agreed to and asks "此会员超出投保年龄，是否继续投保"; ticked, she is enrolled."""
    member_no, name, id_number = _free_member(live_server, "010101", skip=9)
    birth = date.today().replace(year=date.today().year - 58) - timedelta(days=40)  # a woman of 58
    first17 = f"130102{birth:%Y%m%d}77{2}"
    old_id = first17 + id_check_digit(first17)
    with sqlite3.connect(live_server.db_path) as conn:  # the agency's decision, as its approval leaves it
        conn.execute(
            "UPDATE member SET id_number = ?, gender = 'F', birth_date = ?, over_age_exception = 1, "
            "over_age_note = '局级干部，未办理正式退休手续' WHERE member_no = ?",
            (old_id, birth.isoformat(), member_no),
        )
    login(page, live_server, "clerk1")
    _menu(page, "会员管理", "入会管理")
    page.goto(f"{live_server.url}/admin/members/?status=CONFIRMED&member_no={member_no}")
    page.locator("#bulk-enrol").click()
    expect(page.locator("#bulk-confirm")).to_contain_text("此会员超出投保年龄，是否继续投保")
    expect(page.locator("#bulk-confirm")).to_contain_text(name)
    p03 = page.locator("#p-product option", has_text="职工意外伤害互助保障").get_attribute("value")
    page.select_option("#p-product", value=p03)
    page.fill("#p-amount", "20")
    next_month = (date.today().replace(day=1) + timedelta(days=32)).replace(day=1)
    page.fill("#p-effective", next_month.isoformat())
    page.press("#p-effective", "Tab")
    page.check("#p-confirm_over_age")
    shot(page, "over_age_enrol_question")
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已投保 1 人")
    ((status,),) = _query(
        live_server,
        "SELECT p.status FROM policy p JOIN member m ON m.id = p.member_id WHERE m.member_no = ? "
        "AND p.expected_effective_date = ?",
        member_no,
        next_month.isoformat(),
    )
    assert status == "NEW"

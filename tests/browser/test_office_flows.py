"""One policy's whole way as the manual's roles see it: clerk1 enrols and reports it (新建 → 上报),
agency1 issues its receipt and reports it on (代办处已上报), office1 confirms it (打印生效, 保单号) and
prints the effective list; agency1 voids a receipt in 收据管理; clerk1 exports 即将到期订单."""

from __future__ import annotations

import io
import random
import re
import sqlite3
import sys
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from playwright.sync_api import expect

from rules import amount_in_words

from .conftest import login, shot

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pdftext import pdf_pages, pdf_png, pdf_text, squeeze  # noqa: E402

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
                          WHERE p.member_id = m.id AND pr.code = 'P03')
          AND NOT EXISTS (SELECT 1 FROM policy p WHERE p.member_id = m.id
                          AND p.status IN ('NEW', 'REPORTED', 'AGENCY_REPORTED', 'RETURNED'))""",
    )  # nothing else of theirs in flight: the receipt and the confirmation hold this one policy
    return random.choice(rows)


def _policy(live_server, member_no):
    ((status, policy_no, receipt_no),) = _query(
        live_server,
        """SELECT p.status, p.policy_no, r.receipt_no FROM policy p JOIN member m ON m.id = p.member_id
           JOIN product pr ON pr.id = p.product_id LEFT JOIN receipt r ON r.id = p.receipt_id
           WHERE m.member_no = ? AND pr.code = 'P03'""",
        member_no,
    )
    return status, policy_no, receipt_no


def _switch(page, live_server, user):
    page.context.clear_cookies()
    login(page, live_server, user)


def test_a_policy_goes_from_new_to_effective_with_its_receipt_and_policy_number(page, live_server):
    member_no, name = _member_without_p03(live_server)
    # 基层单位: 逐一投保, then 当前查询结果上报 of that member's new policy
    login(page, live_server, "clerk1")
    page.goto(f"{live_server.url}/admin/policies/new/")
    page.select_option("#product_id", label="职工意外伤害互助保障")
    page.fill("#member_ref", member_no)
    page.locator("#shares").click()
    expect(page.locator("#member-info")).to_contain_text(name)
    page.fill("#shares", "3")
    page.locator("input[type=submit].btn-primary").click()
    expect(page.locator("body")).to_contain_text("创建记录成功")
    page.goto(f"{live_server.url}/admin/policies/?status=NEW&member_no={member_no}")
    page.locator("#bulk-report").click()
    expect(page.locator("#bulk-count")).to_have_text("1")
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已上报 1 条")
    assert _policy(live_server, member_no)[0] == "REPORTED"

    # 代办处: 开具收据 for the unit's query, then 当前查询结果上报
    _switch(page, live_server, "agency1")
    query = f"status=REPORTED&unit=010101&member_no={member_no}"
    page.goto(f"{live_server.url}/admin/policies/?{query}")
    page.locator("#bulk-receipt").click()
    expect(page.locator("#bulk-confirm")).to_contain_text("缴费单位：东城区第一机床厂工会")
    expect(page.locator("#bulk-total")).to_contain_text("60.00")
    shot(page, "receipt_confirm")
    # 开具收据 renders the receipt's PDF before the page comes back: on a busy 2-core machine (both
    # test parts and the browser at once) that alone has taken more than the default 10 s
    page.locator("#bulk-submit").click(timeout=45_000)
    expect(page.locator("body")).to_contain_text("已开具收据", timeout=45_000)
    receipt_no = _policy(live_server, member_no)[2]
    assert re.fullmatch(r"\d{4}-\d{6}", receipt_no)
    expect(page.locator("body")).to_contain_text(receipt_no)
    shot(page, "receipt_issued")
    href = page.locator("#receipt-print").get_attribute("href")
    pdf = page.request.get(live_server.url + href).body()
    assert page.request.get(live_server.url + href).body() == pdf  # reprint: the same bytes
    flat = squeeze(pdf_text(pdf))
    assert f"No.{receipt_no}" in flat and "东城区第一机床厂工会" in flat and "1人" in flat
    assert "60.00" in flat and "陆拾元整" in flat
    pdf_png(pdf, "receipt_pdf", dpi=70)
    page.goto(f"{live_server.url}/admin/policies/?{query}")
    page.locator("#bulk-agency-report").click()
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已上报 1 条")
    assert _policy(live_server, member_no)[0] == "AGENCY_REPORTED"

    # 办事处: 首页 to-do, 汇总金额, 确认生效 → 打印生效 with 保单号, 打印生效清单
    _switch(page, live_server, "office1")
    expect(page.locator("body")).to_contain_text("代办处已上报、待确认生效的投保记录")
    page.goto(f"{live_server.url}/admin/policies/?status=AGENCY_REPORTED&member_no={member_no}")
    page.locator("#bulk-confirm").click()
    expect(page.locator("#bulk-count")).to_have_text("1")
    expect(page.locator("#bulk-confirm")).to_contain_text("生效")
    shot(page, "confirm_effective_confirm")
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已确认生效 1 条")
    status, policy_no, _ = _policy(live_server, member_no)
    assert status == "EFFECTIVE" and re.fullmatch(r"BD\d{12}", policy_no)
    expect(page.locator("body")).to_contain_text(policy_no)
    shot(page, "confirm_effective_done")
    page.goto(f"{live_server.url}/admin/policies/?status=EFFECTIVE&member_no={member_no}")
    expect(page.locator("table.model-list")).to_contain_text(policy_no)
    page.locator("#bulk-print-effective").click()
    shot(page, "print_effective_confirm")
    with page.expect_download() as dl:
        page.locator("#bulk-submit").click()
    pdf = Path(dl.value.path()).read_bytes()
    assert dl.value.suggested_filename.endswith(".pdf")
    flat = squeeze(pdf_text(pdf))
    ((total,),) = _query(
        live_server,
        """SELECT sum(p.amount) FROM policy p JOIN member m ON m.id = p.member_id
           WHERE m.member_no = ? AND p.status = 'EFFECTIVE'""",
        member_no,
    )
    total = Decimal(str(total)).quantize(Decimal("0.01"))
    assert pdf_pages(pdf) == 1 and policy_no in flat and name in flat
    assert f"{total:.2f}" in flat and amount_in_words(total) in flat
    pdf_png(pdf, "effective_list_pdf", dpi=70)


def test_agency_voids_a_receipt_which_keeps_its_number_and_shows_void(page, live_server):
    ((rid, receipt_no),) = _query(
        live_server,
        """SELECT r.id, r.receipt_no FROM receipt r JOIN org o ON o.id = r.org_id
           WHERE o.code = '010102' AND r.status = 'VALID' ORDER BY r.id LIMIT 1""",
    )
    login(page, live_server, "agency1")
    page.goto(f"{live_server.url}/admin/receipts/")
    expect(page.locator("table.model-list")).to_contain_text(receipt_no)
    shot(page, "receipts_list")
    page.goto(f"{live_server.url}/admin/receipts/details/?id={rid}")
    page.fill("#reason", "缴费单位名称开错，重新开具")
    page.once("dialog", lambda d: d.accept())
    page.locator("#receipt-void-submit").click()
    expect(page.locator("body")).to_contain_text(f"收据 {receipt_no} 已作废")
    expect(page.locator("#receipt-void")).to_contain_text("缴费单位名称开错")
    shot(page, "receipt_voided")
    pdf = page.request.get(f"{live_server.url}/admin/receipts/pdf/{rid}/").body()
    text = pdf_text(pdf)
    assert "作废" in text and receipt_no in text
    pdf_png(pdf, "receipt_void_pdf", dpi=70)
    assert _query(live_server, "SELECT count(*) FROM policy WHERE receipt_id = ?", rid) == [(0,)]


def test_clerk_exports_next_months_expiring_policies(page, live_server):
    login(page, live_server, "clerk1")
    page.goto(f"{live_server.url}/admin/expiring/")
    month = page.locator("#panel-month").input_value()  # next month, chosen by default
    assert re.fullmatch(r"\d{4}-\d{2}", month)
    page.locator("#panel-search").click()
    expect(page.locator("table.model-list")).to_be_visible()
    shot(page, "expiring_list")
    page.locator("#bulk-export").click()
    y, m = month.split("-")
    expect(page.locator("#bulk-confirm")).to_contain_text(f"月份：{int(y)}年{int(m)}月")
    n = int(page.locator("#bulk-count").inner_text())
    assert n > 0
    shot(page, "expiring_export_confirm")
    with page.expect_download() as dl:
        page.locator("#bulk-submit").click()
    assert dl.value.suggested_filename.endswith(".xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes())).active
    assert ws.max_row == n + 1 and ws["A1"].value == "保单号"
    page.goto(f"{live_server.url}/admin/expiring/?month={month}")
    page.locator("#bulk-export").click()
    page.locator("input[value=pdf]").check()
    with page.expect_download() as dl:
        page.locator("#bulk-submit").click()
    pdf = Path(dl.value.path()).read_bytes()
    assert "即将到期保单清单" in pdf_text(pdf)
    pdf_png(pdf, "expiring_pdf", dpi=60)
    page.goto(f"{live_server.url}/admin/expiring/?month={month}")
    page.locator("#bulk-renew").click()
    expect(page.locator("#bulk-count")).to_have_text(str(n))  # 批量续转 takes the same query
    shot(page, "expiring_renew_confirm")

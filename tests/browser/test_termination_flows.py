"""保单提前终止 as the manual's roles do it (manual 一(五)5–7): clerk1 searches the unit's 打印生效
policies, ticks two, 【终止保单】 with a reason and a date, sees the refunds, 【确定】; a policy already
applied for is refused; 【批量导出打印】 gives one PDF (looked at, read back, its QR code scanned);
【提交保单申请】.  office1 finds it on 首页, opens it by the QR code's address, 【通过】: the policies
end 提前终止 with their refunds.  A second application is 【驳回】ed with a reason clerk1 reads."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from rules import mask_id, refund

from .conftest import login, shot

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pdftext import pdf_pages, pdf_png, pdf_text, squeeze  # noqa: E402

pytestmark = pytest.mark.browser
TODAY = date.today()


def _query(live_server, sql, *args):
    with sqlite3.connect(live_server.db_path) as conn:
        return conn.execute(sql, args).fetchall()


def _first_page_policies(live_server, n=2):
    """`n` policies on the first page of the search by 产品名称 (newest first), applied for by
    nobody, with at least 40 days of cover left."""
    rows = _query(
        live_server,
        """SELECT p.id, p.policy_no, m.name, m.id_number, p.amount, p.effective_date, p.expiry_date
           FROM policy p JOIN member m ON m.id = p.member_id JOIN org o ON o.id = p.org_id
           JOIN product pr ON pr.id = p.product_id
           WHERE o.code = '010101' AND p.status = 'EFFECTIVE' AND pr.code = 'P03'
           ORDER BY p.id DESC LIMIT 20""",
    )
    free = [
        r
        for r in rows
        if date.fromisoformat(r[6]) > TODAY + timedelta(days=40)
        and not _query(live_server, "SELECT 1 FROM termination_policy WHERE policy_id = ?", r[0])
    ]
    assert len(free) >= n, "the demo data has effective P03 policies with cover left in 010101"
    return free[:n]


def _switch(page, live_server, user):
    page.context.clear_cookies()
    login(page, live_server, user)


def _scan(pdf: bytes, dpi: int = 150) -> list[str]:
    """The QR codes on the PDF's pages, read back from the pages rendered as a printer would."""
    import zxingcpp
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "forms.pdf"
        src.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-png", "-r", str(dpi), str(src), str(Path(tmp) / "p")], check=True)
        out = []
        for png in sorted(Path(tmp).glob("p-*.png")):
            out += [
                r.text for r in zxingcpp.read_barcodes(Image.open(png)) if r.format == zxingcpp.BarcodeFormat.QRCode
            ]
        return out


def _application_of(live_server, policy_id):
    ((app_id, status),) = _query(
        live_server,
        """SELECT a.id, a.status FROM termination_application a
           JOIN termination_policy tp ON tp.application_id = a.id WHERE tp.policy_id = ? ORDER BY a.id DESC LIMIT 1""",
        policy_id,
    )
    return app_id, status


def test_clerk_applies_prints_and_submits_then_the_office_approves_and_the_policies_end_with_their_refunds(
    page, live_server
):
    chosen = _first_page_policies(live_server)
    end = TODAY + timedelta(days=30)
    login(page, live_server, "clerk1")

    # 保单管理 → 保单提前终止 → 【创建保单终止申请】 → 产品名称 → 【搜索】 → tick → 【终止保单】
    page.goto(f"{live_server.url}/admin/terminations/")
    shot(page, "termination_list_empty")
    page.locator("#create-application").click()
    expect(page).to_have_url(re.compile(r"/admin/termination_policies/$"))
    page.select_option("#panel-product", label="职工意外伤害互助保障")
    page.locator("#panel-search").click()
    for pid, *_ in chosen:
        page.locator(f"input.tick[value='{pid}']").check()
    shot(page, "termination_search_ticked")
    page.locator("#terminate-policies").click()
    expect(page.locator("#terminate-count")).to_have_text("2")
    for _, policy_no, *_ in chosen:
        expect(page.locator("#terminate-rows")).to_contain_text(policy_no)
    page.select_option("#reason", "会员离职（调离本单位）")
    page.fill("#reason_text", "调往外省分公司")
    page.fill("#end_date", end.isoformat())
    page.locator("#terminate-preview").click()
    amounts = [
        refund(Decimal(str(r[4])).quantize(Decimal("0.01")), date.fromisoformat(r[5]), date.fromisoformat(r[6]), end)
        for r in chosen
    ]
    expect(page.locator("#terminate-total")).to_have_text(f"{sum(amounts):.2f} 元")
    shot(page, "termination_refunds_previewed")
    page.locator("#terminate-submit").click()
    expect(page.locator("body")).to_contain_text("已创建保单提前终止申请")
    app_id, status = _application_of(live_server, chosen[0][0])
    assert status == "NEW" and _application_of(live_server, chosen[1][0])[0] == app_id
    expect(page.locator("#refund-total")).to_have_text(f"{sum(amounts):.2f} 元")
    expect(page.locator("#app-buttons")).to_contain_text("【提交保单申请】")
    shot(page, "termination_created")

    # the same policy again: refused, naming the application
    page.goto(f"{live_server.url}/admin/termination_policies/?policy_no={chosen[0][1]}")
    expect(page.locator("table.model-list")).to_contain_text(f"已在申请 {app_id} 中")
    page.locator(f"input.tick[value='{chosen[0][0]}']").check()
    page.locator("#terminate-policies").click()
    page.select_option("#reason", "会员退休")
    page.locator("#terminate-submit").click()
    expect(page.locator("#terminate-problems")).to_contain_text(f"在申请 {app_id} 中")
    expect(page.locator("#terminate-problems")).to_contain_text("不能重复申请")
    shot(page, "termination_refused_pending")

    # 【批量导出打印】 over the query (新建): one PDF, one page per application
    page.goto(f"{live_server.url}/admin/terminations/?status=NEW")
    page.locator("#bulk-print").click()
    n = int(page.locator("#bulk-count").inner_text())
    shot(page, "termination_print_confirm")
    with page.expect_download(timeout=90_000) as dl:  # the server's first PDF loads WeasyPrint and the fonts
        page.locator("#bulk-submit").click(timeout=90_000)
    pdf = Path(dl.value.path()).read_bytes()
    assert dl.value.suggested_filename.startswith("保单提前终止申请表") and pdf_pages(pdf) == n
    pages = pdf_text(pdf).split("\f")
    (ours,) = [p for p in pages if f"申请编号：{app_id}" in p]
    flat = squeeze(ours)
    for (_, policy_no, name, id_number, *_), amount in zip(chosen, amounts):
        assert policy_no in flat and name in flat and f"{amount:.2f}" in flat
        assert mask_id(id_number) in flat and id_number not in flat
    assert f"¥{sum(amounts):.2f}元" in flat and "调往外省分公司" in flat
    assert "经办人（签字）" in flat and "单位盖章" in flat
    pngs = pdf_png(pdf, "termination_forms_pdf", dpi=80)
    assert len(pngs) == n
    urls = _scan(pdf)
    qr_url = next(u for u in urls if u.endswith(f"/admin/terminations/details/?id={app_id}"))
    assert len(urls) == n

    # 【提交保单申请】: the ticked application only
    page.goto(f"{live_server.url}/admin/terminations/?status=NEW")
    page.locator(f"input.tick[value='{app_id}']").check()
    page.locator("#bulk-submit").click()
    expect(page.locator("#bulk-count")).to_have_text("1")
    expect(page.locator("#bulk-confirm")).to_contain_text("仅勾选的 1 条")
    shot(page, "termination_submit_confirm")
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已提交 1 条")
    assert _application_of(live_server, chosen[0][0]) == (app_id, "SUBMITTED")

    # 办事处: 首页 to-do → the QR code's address → 【通过】
    _switch(page, live_server, "office1")
    expect(page.locator("body")).to_contain_text("待审批的保单提前终止申请")
    shot(page, "termination_office_home")
    page.goto(qr_url.replace("http://127.0.0.1:5000", live_server.url) if "127.0.0.1:5000" in qr_url else qr_url)
    expect(page.locator("#termination-policies")).to_contain_text(chosen[0][1])
    expect(page.locator("#app-warnings")).to_contain_text(f"退费合计 {sum(amounts):.2f} 元")
    shot(page, "termination_office_detail")
    page.locator("#app-buttons a", has_text="【通过】").click()
    expect(page.locator("#bulk-count")).to_have_text("1")
    shot(page, "termination_approve_confirm")
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已通过 1 条")
    assert _application_of(live_server, chosen[0][0]) == (app_id, "APPROVED")
    for (pid, *_), amount in zip(chosen, amounts):
        ((status, ended, paid),) = _query(
            live_server, "SELECT status, terminated_on, refund FROM policy WHERE id = ?", pid
        )
        assert (status, ended, Decimal(str(paid)).quantize(Decimal("0.01"))) == ("TERMINATED", end.isoformat(), amount)
    page.goto(f"{live_server.url}/admin/terminations/details/?id={app_id}")
    expect(page.locator("#termination-policies")).to_contain_text("提前终止")
    shot(page, "termination_approved")


def test_the_office_rejects_with_a_reason_the_clerk_reads(page, live_server):
    ((pid, policy_no, *_),) = _first_page_policies(live_server, 1)
    login(page, live_server, "clerk1")
    page.goto(f"{live_server.url}/admin/termination_policies/?policy_no={policy_no}")
    page.locator("#tick-all").check()
    page.locator("#terminate-policies").click()
    page.select_option("#reason", "其他")
    page.fill("#reason_text", "单位改制")
    page.fill("#end_date", (TODAY + timedelta(days=3)).isoformat())
    page.locator("#terminate-submit").click()
    expect(page.locator("body")).to_contain_text("已创建保单提前终止申请")
    app_id, _ = _application_of(live_server, pid)
    page.locator("#app-buttons a", has_text="【提交保单申请】").click()
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已提交 1 条")

    _switch(page, live_server, "office1")
    page.goto(f"{live_server.url}/admin/terminations/?status=SUBMITTED&app_no={app_id}")
    expect(page.locator("table.model-list")).to_contain_text("单位改制")
    shot(page, "termination_office_list")
    page.goto(f"{live_server.url}/admin/terminations/details/?id={app_id}")
    page.locator("#app-buttons a", has_text="【驳回】").click()
    page.fill("#p-reason", "申请表未加盖单位公章，请盖章后重新提交")
    page.locator("#bulk-submit").click()
    expect(page.locator("body")).to_contain_text("已驳回 1 条")
    assert _application_of(live_server, pid) == (app_id, "REJECTED")

    _switch(page, live_server, "clerk1")
    expect(page.locator("body")).to_contain_text("申请表未加盖单位公章")  # 首页
    page.goto(f"{live_server.url}/admin/terminations/details/?id={app_id}")
    expect(page.locator("#rejected-reason")).to_contain_text("申请表未加盖单位公章，请盖章后重新提交")
    shot(page, "termination_rejected_seen_by_clerk")
    ((status,),) = _query(live_server, "SELECT status FROM policy WHERE id = ?", pid)
    assert status == "EFFECTIVE"

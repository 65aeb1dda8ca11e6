"""The README's screenshots (docs/screenshots/*.png), taken from the running app by this test so they
never go stale: the login page, 首页 of each role, 入会管理 with its search panel, a batch result and a
printed 收据. Each is the window only (1280×720) as a 128-colour PNG, to stay small in the repository.
"""

from __future__ import annotations

import sqlite3
import subprocess
import tempfile
from pathlib import Path

import openpyxl
import pytest
from PIL import Image
from playwright.sync_api import expect

from .conftest import ROOT, login

pytestmark = pytest.mark.browser
DOCS = ROOT / "docs" / "screenshots"
ROLES = [
    ("clerk1", "基层单位"),
    ("agency1", "代办处"),
    ("office1", "办事处"),
    ("info1", "信息部"),
    ("admin", "系统管理员"),
]


def small_png(src: Path, name: str, width: int = 1280) -> Path:
    """docs/screenshots/<name>.png: at most `width` pixels wide, 128 colours."""
    DOCS.mkdir(parents=True, exist_ok=True)
    out = DOCS / f"{name}.png"
    img = Image.open(src).convert("RGB")
    if img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
    img.quantize(colors=128).save(out, optimize=True)
    return out


def snap(page, name: str) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.png"
        page.screenshot(path=str(raw), full_page=False)
        return small_png(raw, name)


@pytest.fixture
def window(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_the_readme_screenshots_show_the_main_screens(window, live_server, tmp_path):
    page = window
    page.goto(live_server.url + "/login")
    page.fill("#username", "clerk1")
    page.fill("#password", "Demo-2026")
    expect(page.get_by_role("button", name="获取手机验证码")).to_be_visible()
    made = [snap(page, "login")]

    for username, _role in ROLES:
        page.context.clear_cookies()
        login(page, live_server, username)
        expect(page.locator("body")).to_contain_text("首页")
        made.append(snap(page, f"home_{username}"))

    page.context.clear_cookies()
    login(page, live_server, "clerk1")
    page.goto(live_server.url + "/admin/members/?status=NEW")
    expect(page.locator("#search-panel, form").first).to_be_visible()
    made.append(snap(page, "members_search_panel"))

    # a batch result: 批量入会 of a small file with one bad row
    from tests.test_batch_members import fresh_id

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["姓名", "身份证号"])
    for name in ("赵文静", "钱国强", "孙 丽", "李建华"):
        ws.append([name, fresh_id()])
    upload = tmp_path / "批量入会_示例.xlsx"
    wb.save(upload)
    page.goto(live_server.url + "/admin/batches/upload/members/")
    page.set_input_files("#file", str(upload))
    with page.expect_navigation():
        page.locator("#upload-btn").click()
    with page.expect_navigation():
        page.locator("#check-btn").click()
    with page.expect_navigation():
        page.locator("#process-btn").click()
    expect(page.locator("#process-result")).to_contain_text("成功 3 行，失败 1 行")
    made.append(snap(page, "batch_result"))

    # a printed form: a 收据 as agency1 prints it, rendered from the PDF
    with sqlite3.connect(live_server.db_path) as conn:
        ((receipt_id,),) = conn.execute(
            "SELECT r.id FROM receipt r JOIN org o ON o.id = r.org_id WHERE o.code = '010101' ORDER BY r.id LIMIT 1"
        ).fetchall()
    page.context.clear_cookies()
    login(page, live_server, "agency1")
    page.goto(f"{live_server.url}/admin/receipts/details/?id={receipt_id}")
    pdf = page.request.get(live_server.url + page.locator("#receipt-print").get_attribute("href")).body()
    assert pdf[:5] == b"%PDF-"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "r.pdf").write_bytes(pdf)
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "r.pdf", "page"], cwd=tmp, check=True)
        made.append(small_png(next(Path(tmp).glob("page*.png")), "receipt_pdf"))

    assert [p.name for p in made] == [
        "login.png",
        *(f"home_{u}.png" for u, _ in ROLES),
        "members_search_panel.png",
        "batch_result.png",
        "receipt_pdf.png",
    ]
    assert all(p.stat().st_size < 150_000 for p in made), {p.name: p.stat().st_size for p in made}

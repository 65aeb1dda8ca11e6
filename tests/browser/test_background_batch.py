"""批量业务 with a big file and background jobs (Redis + an RQ worker): the clerk presses 业务校验, sees
the queued run with its progress bar, leaves, comes back to the result; 业务办理 the same way, the page
showing the result by itself when the worker is done.

Needs a Redis: `make test` starts one (TEST_REDIS_URL); without it these tests are skipped.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from openpyxl import Workbook
from playwright.sync_api import expect

from .conftest import FLASK, ROOT, LiveServer, _free_port, _require_chromium, login, shot

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="no TEST_REDIS_URL: background jobs need a Redis")


@pytest.fixture(scope="module")
def bg_server(tmp_path_factory):
    """A server like live_server's, with Redis and files over 5 rows sent to the worker."""
    _require_chromium()
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    db_path = tmp_path_factory.mktemp("bg-db") / "bg.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(
        DATABASE_URL=f"sqlite:///{db_path}",
        SECRET_KEY="browser-test-secret",
        SMS_BACKEND="console",
        PYTHONUNBUFFERED="1",
        REDIS_URL=REDIS_URL,
        BATCH_BACKGROUND_ROWS="5",
        STORAGE_DIR=str(tmp_path_factory.mktemp("bg-files")),
    )
    for cmd in (["db", "upgrade"], ["demo-data"]):
        subprocess.run(FLASK + cmd, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    server = LiveServer(db_path, _free_port(), env)
    server.env = env
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def run_worker(server) -> str:
    """One worker until the queue is empty (`flask worker --burst`); its output."""
    done = subprocess.run(
        FLASK + ["worker", "--burst"], cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def big_file(tmp_path):
    from tests.test_batch_members import fresh_id

    wb = Workbook()
    ws = wb.active
    ws.append(["姓名", "身份证号"])
    for i, name in enumerate("赵钱孙李周吴郑王冯陈褚卫"):
        ws.append([f"{name}后台{'一二三四五六七八九十甲乙'[i]}", fresh_id()])
    path = tmp_path / "批量入会_大文件.xlsx"
    wb.save(path)
    return path


def test_a_big_file_is_checked_and_processed_in_the_background_while_the_clerk_may_leave(page, bg_server, tmp_path):
    login(page, bg_server, "clerk1")
    page.goto(bg_server.url + "/admin/batches/upload/members/")
    page.set_input_files("#file", str(big_file(tmp_path)))
    with page.expect_navigation():
        page.locator("#upload-btn").click()
    run_url = page.url
    assert re.search(r"/admin/batches/run/\d+/$", run_url)

    with page.expect_navigation():
        page.locator("#check-btn").click()
    expect(page.locator("#job-progress")).to_be_visible()
    expect(page.locator("#job-text")).to_contain_text("已排队，等待后台校验")
    expect(page.locator("#batch-status")).to_contain_text("校验中")
    assert not page.locator("#check-btn").count(), "no second 业务校验 while one is under way"
    shot(page, "batch_background_queued", full_page=False)

    page.goto(bg_server.url + "/admin/batches/")  # the clerk leaves
    expect(page.locator("table")).to_contain_text("校验中")
    log = run_worker(bg_server)
    assert "check done, 12 ok" in log
    page.get_by_role("link", name="批量入会_大文件.xlsx").first.click()  # and comes back
    expect(page.locator("#batch-status")).to_contain_text("已校验")
    expect(page.locator("#batch-counts")).to_contain_text("共 12 行，通过 12 行，失败 0 行")

    with page.expect_navigation():
        page.locator("#process-btn").click()
    expect(page.locator("#job-text")).to_contain_text("已排队，等待后台办理")
    expect(page.locator("#job-bar")).to_have_text("0%")
    worker = subprocess.Popen(FLASK + ["worker", "--burst"], cwd=ROOT, env=bg_server.env)
    try:
        # the page polls and shows the result by itself
        expect(page.locator("#result-link")).to_be_visible(timeout=60_000)
    finally:
        worker.wait(60)
    expect(page.locator("#batch-status")).to_contain_text("已办理")
    expect(page.locator("#batch-counts")).to_contain_text("已办理 12 行")
    assert not page.locator("#job-progress").count()
    shot(page, "batch_background_done", full_page=False)

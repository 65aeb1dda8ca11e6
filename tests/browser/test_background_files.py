"""A big export made in the background (Redis + an RQ worker): the clerk presses 导出 on a list whose
query is over EXPORT_BACKGROUND_ROWS (here 1), lands on "文件较大，已转到后台生成……" with a progress bar,
and the page shows 【下载】 by itself when the worker is done; the file holds the clerk's own rows.

Needs a Redis: TEST_REDIS_URL, or without it (the browser tests' run of `make test`) a throwaway one
started here from Debian's redis-server (.ci/redis.sh); skipped only when there is no redis-server.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess

import openpyxl
import pytest
from playwright.sync_api import expect

from .conftest import FLASK, ROOT, LiveServer, _free_port, _require_chromium, login, shot

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
pytestmark = pytest.mark.skipif(
    not REDIS_URL and not shutil.which("redis-server"), reason="background jobs need a Redis (redis-server)"
)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """TEST_REDIS_URL, or (the browser tests run without it) a throwaway Redis of this module's own."""
    if REDIS_URL:
        yield REDIS_URL
        return
    where = tmp_path_factory.mktemp("bgfiles-redis")
    script = str(ROOT / ".ci" / "redis.sh")
    url = subprocess.run(
        ["bash", script, "start", str(where), str(_free_port())], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        yield url
    finally:
        subprocess.run(["bash", script, "stop", str(where)], capture_output=True)


@pytest.fixture(scope="module")
def files_server(tmp_path_factory, redis_url):
    """A server like live_server's, with Redis and every export over 1 row sent to the worker."""
    _require_chromium()
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    db_path = tmp_path_factory.mktemp("bgfiles-db") / "bgfiles.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(
        DATABASE_URL=f"sqlite:///{db_path}",
        SECRET_KEY="browser-test-secret",
        SMS_BACKEND="console",
        PYTHONUNBUFFERED="1",
        REDIS_URL=redis_url,
        EXPORT_BACKGROUND_ROWS="1",
        PDF_BACKGROUND_PAGES="0",
        STORAGE_DIR=str(tmp_path_factory.mktemp("bgfiles-files")),
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


def test_a_big_export_goes_to_the_background_and_the_page_offers_the_download_when_done(page, files_server):
    login(page, files_server, "clerk1")
    page.goto(files_server.url + "/admin/members/")
    listed = page.locator("table.model-list tbody tr").count()
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile("导出")).first.click()
    assert re.search(r"/admin/downloads/[0-9a-f]{32}/$", page.url), page.url
    expect(page.locator("#job-progress")).to_be_visible()
    expect(page.locator("#job-text")).to_contain_text("文件较大，已转到后台生成")
    expect(page.locator("#job-bar")).to_have_text("0%")
    shot(page, "export_background_queued", full_page=False)

    worker = subprocess.Popen(FLASK + ["worker", "--burst"], cwd=ROOT, env=files_server.env)
    try:
        # the page polls and shows 【下载】 by itself
        expect(page.locator("#download-link")).to_be_visible(timeout=60_000)
    finally:
        worker.wait(60)
    expect(page.locator("#job-done")).to_contain_text("文件已生成：入会管理_")
    assert not page.locator("#job-progress").count()
    shot(page, "export_background_done", full_page=False)
    with page.expect_download() as got:
        page.locator("#download-link").click()
    path = got.value.path()
    assert got.value.suggested_filename.startswith("入会管理_") and got.value.suggested_filename.endswith(".xlsx")
    rows = list(openpyxl.load_workbook(io.BytesIO(path.read_bytes())).active.iter_rows(min_row=2))
    assert len(rows) >= listed > 0
    assert f"（共 {len(rows)} 行）" in page.locator("#job-done").inner_text()

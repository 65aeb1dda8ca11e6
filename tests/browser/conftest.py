"""Browser-test harness: headless Chromium (Playwright, sync API) against the real app served by
`flask run` on a fresh SQLite demo database.  Run: `.venv/bin/python -m pytest tests/browser`.

Fixtures
    live_server  session: `flask db upgrade` + `flask demo-data` on a new SQLite file, then
                 `flask run` on a free port with SMS_BACKEND=console.  Attributes / methods:
                   .url                      "http://127.0.0.1:<port>"
                   .mark()                   position in the server's output, for code_for(since=)
                   .code_for(user, timeout=10, since=None)
                                             the latest "SMS to … for <user>: <code>" line printed
                                             after `since` (default: when code_for is called)
                   .reset_login(user)        clears the user's 60 s resend wait, hourly send count,
                                             failed attempts, lock-out and wrong-password throttle
                                             (a test-only fast-forward)
                   .output()                 everything the server printed so far
    browser      session: Debian's /usr/bin/chromium (never `playwright install`).  Missing
                 chromium is a skip locally and a failure when CI=true.
    page         per test: new context, 1366x900, locale zh-CN; a failing test leaves
                 tests/artifacts/FAILED-<test>.png.
Helpers (import with `from .conftest import login, shot`)
    login(page, live_server, username)   the real login pages: username, password, 获取手机验证码,
                                         the console code, 登录; returns on /admin/.
    shot(page, name, full_page=True)    screenshot tests/artifacts/<name>.png (full page, or the window only).

Every test here is marked `browser` (select/deselect with -m).  The top-level per-test rollback
fixture is replaced by a no-op: these tests use the live server's own database.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
FLASK = [str(ROOT / ".venv" / "bin" / "flask"), "--app", "app"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_PASSWORD = "Demo-2026"
SMS_LINE = re.compile(r"^SMS to (\S+) for (\S+): (\d{6})$")
HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Files added here later are `browser` tests too, even without their own marker."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def _rollback_after_test():
    """Overrides tests/conftest.py's per-test transaction: nothing here uses the in-process app."""
    yield


class LiveServer:
    def __init__(self, db_path: Path, port: int, env: dict):
        self.db_path = db_path
        self.url = f"http://127.0.0.1:{port}"
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            FLASK + ["run", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def output(self) -> str:
        with self._cond:
            return "\n".join(self._lines)

    def mark(self) -> int:
        with self._cond:
            return len(self._lines)

    def code_for(self, username: str, timeout: float = 10, since: int | None = None) -> str:
        """The latest console SMS code for `username` printed after `since` (default: now)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            start = len(self._lines) if since is None else since
            while True:
                codes = [m.group(3) for m in map(SMS_LINE.match, self._lines[start:]) if m and m.group(2) == username]
                if codes:
                    return codes[-1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"no SMS code for {username} within {timeout}s; server output:\n" + "\n".join(self._lines[-30:])
                    )
                self._cond.wait(left)

    def reset_login(self, username: str) -> None:
        """Let `username` get a new code now: as if an hour had passed since their last sends."""
        with sqlite3.connect(self.db_path, timeout=10) as con:
            con.execute(
                'UPDATE "user" SET login_code_sent_at = NULL, login_code_tries = 0, '
                "failed_attempts = 0, locked_until = NULL WHERE username = ?",
                (username,),
            )
            con.execute(
                "UPDATE sms_send SET sent_at = datetime(sent_at, '-2 hours') "
                'WHERE user_id = (SELECT id FROM "user" WHERE username = ?)',
                (username,),
            )
            con.execute("DELETE FROM login_failure WHERE username = ?", (username,))  # the password throttle
        con.close()

    def wait_ready(self, timeout: float = 90) -> None:  # a loaded 2-core machine takes a while
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"flask run exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/login", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"flask run did not answer within {timeout}s:\n{self.output()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    _require_chromium()  # no server to start for tests that will be skipped anyway
    db_path = tmp_path_factory.mktemp("browser-db") / "browser.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(
        DATABASE_URL=f"sqlite:///{db_path}",
        SECRET_KEY="browser-test-secret",
        SMS_BACKEND="console",
        PYTHONUNBUFFERED="1",
        FLASK_DEBUG="0",
    )
    for cmd in (["db", "upgrade"], ["demo-data"]):
        done = subprocess.run(FLASK + cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        if done.returncode:
            pytest.fail(f"flask {' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    server = LiveServer(db_path, _free_port(), env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _require_chromium() -> None:
    """Skip without Debian's chromium, except on CI (CI=true), where that is a failure."""
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} not found (install Debian's chromium package)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{reason}; CI is set, so browser tests may not be skipped")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        try:
            shot(pg, "FAILED-" + re.sub(r"[^\w.-]+", "_", request.node.name))
        except Exception as exc:  # the test's own failure is what matters
            print(f"failure screenshot not saved: {exc}", file=sys.stderr)
    context.close()


def login(page, live_server, username: str, password: str = DEMO_PASSWORD) -> None:
    """Log `username` in through the real login page and the console SMS code; ends on /admin/."""
    live_server.reset_login(username)
    page.goto(live_server.url + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    since = live_server.mark()
    with page.expect_response(lambda r: r.url.endswith("/login/send-code")) as sent:
        page.get_by_role("button", name="获取手机验证码").click()
    assert sent.value.ok, f"获取手机验证码 refused for {username}: {sent.value.text()}"
    page.fill("#code", live_server.code_for(username, since=since))
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live_server.url + "/admin/")


def shot(page, name: str, full_page: bool = True) -> Path:
    """Save a screenshot as tests/artifacts/<name>.png and return its path: the full page, or with
    full_page=False what the window shows (e.g. a 1366×768 screen without scrolling)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path

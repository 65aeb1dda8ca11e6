"""Headers and files (issue 15, item 9): every page carries a Content-Security-Policy with a per-request
nonce, X-Frame-Options and frame-ancestors, nosniff; neither server says what it is; the secret
key and the SQLite file are readable by the server's user only; half-written files a crash left are
removed at start-up.  Also item 8's 单位 export (DetachedInstanceError on `parent` while streaming)."""

from __future__ import annotations

import io
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import flask_admin
import openpyxl
import pytest
import sqlalchemy as sa
from conftest import login_as

import config
from app import create_app
from models import UserSession, db

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
LIBRARY_TEMPLATES = Path(flask_admin.__file__).parent / "templates" / "bootstrap4"
NONCE = re.compile(r"script-src 'self' 'nonce-([A-Za-z0-9_-]+)'")


def _csp(resp) -> str:
    return resp.headers.get("Content-Security-Policy", "")


@pytest.mark.parametrize("url", ["/login", "/admin/", "/admin/members/", "/admin/members/new/", "/admin/users/"])
def test_every_page_has_a_policy_and_its_inline_scripts_carry_the_nonce(app, client, url):
    if url != "/login":
        login_as(app, client, "admin" if "users" in url else "clerk1")
    resp = client.get(url)
    assert resp.status_code == 200
    policy = _csp(resp)
    nonce = NONCE.search(policy).group(1)
    for part in ("default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert part in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]  # scripts: never inline without it
    html = resp.get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts), [t for t in scripts if nonce not in t]
    assert not re.search(r"\son[a-z]+=\"", html.replace('onclick="return false;"', ""))
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "Server" not in resp.headers


def test_each_request_gets_its_own_nonce(client):
    a, b = (NONCE.search(_csp(client.get("/login"))).group(1) for _ in range(2))
    assert a != b and len(a) >= 20


def test_downloads_are_not_sniffed_or_framed_either(app, client):
    login_as(app, client, "clerk1")
    resp = client.get("/admin/batches/template/members/")
    assert resp.headers["X-Content-Type-Options"] == "nosniff" and resp.headers["X-Frame-Options"] == "DENY"


def test_no_template_of_ours_has_an_inline_handler_or_a_script_without_the_nonce():
    """The policy runs no onclick="…" (a delete would go without asking) and no inline script
    without the nonce: a template that has one fails here, not silently in the browser."""
    bad = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for m in re.finditer(r"<script\b[^>]*>", text):
            if "nonce=" not in m.group(0):
                bad.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
        for m in re.finditer(r"\son(?:click|submit|change|load|input|blur|focus|keyup|keydown)\s*=", text):
            bad.append(f"{path.relative_to(ROOT)}: inline handler {m.group(0).strip()}")
        if "javascript:" in text:
            bad.append(f"{path.relative_to(ROOT)}: javascript: URL")
    assert bad == []


def test_our_row_actions_differ_from_flask_admins_only_in_how_delete_asks():
    """templates/admin/model/row_actions.html is Flask-Admin's with data-confirm for its inline
    onclick: when the library changes the file, this says so."""
    ours = (TEMPLATES / "admin" / "model" / "row_actions.html").read_text()
    theirs = (LIBRARY_TEMPLATES / "admin" / "model" / "row_actions.html").read_text()
    ours = ours[ours.index("{% import") :]
    theirs = theirs.replace(
        "onclick=\"return faHelpers.safeConfirm('{{ _gettext('Are you sure you want to delete this record?') }}');\"",
        "data-confirm=\"{{ _gettext('Are you sure you want to delete this record?') }}\"",
    )
    assert ours.strip() == theirs.strip()


# --- no Server banner, on either server ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _headers(url: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return {k.lower(): v for k, v in resp.headers.items()}
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_the_development_server_sends_no_server_banner(app):
    """Was: "Server: Werkzeug/3.1.9 Python/3.11.7"."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", _free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        headers = _headers(f"http://127.0.0.1:{server.server_port}/healthz")
    finally:
        server.shutdown()
    assert "server" not in headers and headers["x-content-type-options"] == "nosniff"


def test_gunicorn_sends_no_server_banner(tmp_path):
    """Was: "Server: gunicorn"."""
    port = _free_port()
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp_path / 'g.db'}",
        SECRET_KEY="gunicorn-test",
        STORAGE_DIR=str(tmp_path / "storage"),
    )
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        headers = _headers(f"http://127.0.0.1:{port}/healthz", timeout=60)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "server" not in headers and headers["x-frame-options"] == "DENY"


# --- files ------------------------------------------------------------------------------------------------


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_secret_key_file_is_written_0600_and_an_old_one_made_0600(tmp_path):
    key = config._secret_key_file(str(tmp_path))
    assert len(key) == 64 and _mode(tmp_path / "secret_key") == 0o600
    os.chmod(tmp_path / "secret_key", 0o644)
    assert config._secret_key_file(str(tmp_path)) == key
    assert _mode(tmp_path / "secret_key") == 0o600


def test_the_sqlite_file_and_its_wal_are_0600(tmp_path):
    path = tmp_path / "huzhu.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": "x", "SMS_BACKEND": "memory"})
    with app.app_context():
        db.create_all()  # writes: the -wal and -shm appear
        assert _mode(path) == 0o600
        for suffix in ("-wal", "-shm"):
            if Path(f"{path}{suffix}").exists():
                assert _mode(f"{path}{suffix}") == 0o600
        db.engine.dispose()
    os.chmod(path, 0o644)  # an older database: made private at the next start
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": "x", "SMS_BACKEND": "memory"})
    assert _mode(path) == 0o600
    with app.app_context():
        db.engine.dispose()


def test_half_written_files_a_crash_left_are_removed_at_start_up(tmp_path):
    results = tmp_path / "storage" / "results"
    results.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that is no longer running
    crashed = results / f"7_result.xlsx.{dead.pid}.1234.tmp.part"
    crashed_tmp = results / f"7_result.xlsx.{dead.pid}.1234.tmp"
    stale = results / "export.xlsx.part"
    for p in (crashed, crashed_tmp, stale):
        p.write_bytes(b"half")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    writing = results / f"8_result.xlsx.{os.getpid()}.99.tmp.part"  # being written by a live process
    writing.write_bytes(b"still going")
    done = results / "7_result.xlsx"
    done.write_bytes(b"complete")
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'start.db'}",
            "SECRET_KEY": "x",
            "SMS_BACKEND": "memory",
            "STORAGE_DIR": str(tmp_path / "storage"),
        }
    )
    with app.app_context():
        db.engine.dispose()
    assert not crashed.exists() and not crashed_tmp.exists() and not stale.exists()
    assert writing.exists() and done.exists()


# --- item 8: the 单位 export streams every unit with its 上级单位 ----------------------------------------


@pytest.mark.committed
def test_the_admin_unit_export_streams_every_unit_with_its_parent(app):
    """Was: DetachedInstanceError on `parent` while streaming (a 500 half-way through the file).
    Committed: the request's session lives and ends as in production."""
    client = app.test_client()
    login_as(app, client, "admin")
    try:
        for fmt in ("xlsx", "csv"):
            resp = client.get(f"/admin/orgs/export/{fmt}/")
            assert resp.status_code == 200
            data = resp.get_data()
            if fmt == "xlsx":
                rows = [[c.value for c in r] for r in openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows()]
                assert rows[0][:4] == ["单位编号", "单位名称", "级别", "上级单位"]
                assert rows[3][:4] == ["0101", "东城代办处", "代办处", "01 第一办事处"]
            else:
                assert "东城区第一机床厂工会" in data.decode("utf-8-sig")
    finally:
        with app.app_context():
            db.session.execute(sa.delete(UserSession))
            db.session.commit()

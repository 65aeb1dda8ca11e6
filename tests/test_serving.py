"""Production serving (serving.py): the client's address behind trusted proxies, a request id and the
user on every log line, /healthz for the load balancer, gunicorn's settings."""

from __future__ import annotations

import io
import logging
import re

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as
from flask import g, request_tearing_down

from app import create_app
from models import SmsSend, db

PASSWORD = "Demo-2026"


def make_app(app, **settings):
    """Another app on the test database, as a second deployment of the same code would be."""
    other = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "SECRET_KEY": "test-secret",
            "SMS_BACKEND": "memory",
            "STORAGE_DIR": app.config["STORAGE_DIR"],
            **settings,
        }
    )

    def tear_down(sender, **extra):  # each request stands alone, as in production (see test_login.py)
        g.pop("csrf_token", None)
        db.session.remove()

    request_tearing_down.connect(tear_down, other, weak=False)
    return other


def send_code(client, username, forwarded_for=None):
    """Press 获取手机验证码 from a browser at `forwarded_for` (as the proxy reports it)."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    token = csrf_token(client, "/login")
    resp = client.post(
        "/login/send-code",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        headers=headers,
        environ_base={"REMOTE_ADDR": "10.0.0.5"},  # every request arrives from the proxy
    )
    return resp.status_code


def recorded_ips(app):
    with app.app_context():
        return db.session.scalars(sa.select(SmsSend.ip).order_by(SmsSend.id)).all()


# ---------------------------------------------------------------- behind a reverse proxy
def test_behind_one_trusted_proxy_two_clerks_get_separate_sms_limits(app):
    behind = make_app(app, TRUSTED_PROXIES=1, SMS_PER_IP_HOURLY=1)
    a, b = behind.test_client(), behind.test_client()
    assert send_code(a, "clerk1", forwarded_for="203.0.113.1") == 200
    assert send_code(b, "clerk2", forwarded_for="203.0.113.2") == 200  # not stopped by clerk1's send
    assert send_code(a, "clerk3", forwarded_for="203.0.113.1") == 400  # the first address's limit holds
    assert recorded_ips(behind) == ["203.0.113.1", "203.0.113.2"]
    assert [m["username"] for m in behind.extensions["sms"].outbox] == ["clerk1", "clerk2"]


def test_with_one_trusted_proxy_only_the_address_it_saw_counts(app):
    """A browser that sends its own X-Forwarded-For gets the proxy's address appended after it:
    with one trusted proxy only that last address is believed."""
    behind = make_app(app, TRUSTED_PROXIES=1, SMS_PER_IP_HOURLY=1)
    c = behind.test_client()
    assert send_code(c, "clerk1", forwarded_for="198.51.100.1, 203.0.113.7") == 200
    assert send_code(c, "clerk2", forwarded_for="198.51.100.2, 203.0.113.7") == 400
    assert recorded_ips(behind) == ["203.0.113.7"]


def test_without_trusted_proxies_a_forged_x_forwarded_for_is_ignored(app):
    direct = make_app(app, SMS_PER_IP_HOURLY=1)
    a, b = direct.test_client(), direct.test_client()
    assert send_code(a, "clerk1", forwarded_for="203.0.113.1") == 200
    assert send_code(b, "clerk2", forwarded_for="203.0.113.2") == 400  # same real address: limit reached
    assert recorded_ips(direct) == ["10.0.0.5"]


# ---------------------------------------------------------------- logging
@pytest.fixture
def log_lines():
    """What the app's log handler (stdout in production) writes during the test."""
    root = logging.getLogger()
    handler = next(h for h in root.handlers if getattr(h, "_huzhu", False))
    buf = io.StringIO()
    old = handler.setStream(buf)
    yield lambda: buf.getvalue().splitlines()
    handler.setStream(old)


def test_every_request_logs_one_line_with_its_request_id_and_the_user(app, client, log_lines):
    login_as(app, client, "clerk1")
    resp = client.get("/admin/")
    rid = resp.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{16}", rid)
    (line,) = [ln for ln in log_lines() if rid in ln]
    assert re.search(rf"\[{rid} clerk1\] app: GET /admin/ 200 \d+ms$", line), line
    other = client.get("/admin/")
    assert other.headers["X-Request-ID"] != rid


def test_a_line_logged_inside_a_request_carries_its_id_and_user(app, log_lines):
    other = make_app(app)

    @other.get("/_test/log-something")
    def log_something():
        other.logger.warning("something happened")
        return "ok"

    client = login_as(other, other.test_client(), "agency1")
    rid = client.get("/_test/log-something").headers["X-Request-ID"]
    assert any(f"WARNING [{rid} agency1] app: something happened" in ln for ln in log_lines())


def test_before_login_the_user_is_a_dash(client, log_lines):
    rid = client.get("/login").headers["X-Request-ID"]
    assert any(f"[{rid} -] app: GET /login 200" in ln for ln in log_lines())


def test_a_request_id_from_a_trusted_proxy_is_kept_and_one_from_a_browser_is_not(app, client):
    behind = make_app(app, TRUSTED_PROXIES=1)
    assert behind.test_client().get("/login", headers={"X-Request-ID": "lb-42.a"}).headers["X-Request-ID"] == "lb-42.a"
    assert behind.test_client().get("/login", headers={"X-Request-ID": "a b;<x>"}).headers["X-Request-ID"] != "a b;<x>"
    assert client.get("/login", headers={"X-Request-ID": "lb-42.a"}).headers["X-Request-ID"] != "lb-42.a"


# ---------------------------------------------------------------- /healthz
def test_healthz_says_ok_when_the_database_answers(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_says_503_when_the_database_does_not_answer(app, tmp_path):
    # PostgreSQL: nobody listens on port 1; SQLite: the file is not a database (a missing folder
    # would simply be created, as `make run` does on a fresh machine)
    broken_file = tmp_path / "x.db"
    broken_file.write_bytes(b"not a database " * 100)
    url = (
        "postgresql://nobody@127.0.0.1:1/none"
        if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
        else f"sqlite:///{broken_file}"
    )
    broken = make_app(app, SQLALCHEMY_DATABASE_URI=url)
    resp = broken.test_client().get("/healthz")
    assert resp.status_code == 503 and resp.get_json() == {"status": "error", "database": "unreachable"}


def test_healthz_needs_no_login_and_is_not_logged_as_a_request(client, log_lines):
    rid = client.get("/healthz").headers["X-Request-ID"]
    assert not [ln for ln in log_lines() if rid in ln]


# ---------------------------------------------------------------- gunicorn
def test_make_serve_runs_several_gunicorn_workers_of_create_app(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    conf: dict = {}
    exec((root / "gunicorn.conf.py").read_text(), conf)
    assert conf["wsgi_app"] == "app:create_app()"
    assert conf["accesslog"] is None  # the app's own line replaces it
    makefile = (root / "Makefile").read_text()
    serve = makefile[makefile.index("\nserve:") :].split("\n\n")[0]
    assert "gunicorn --config gunicorn.conf.py" in serve and "--workers $(WORKERS)" in serve
    assert re.search(r"^WORKERS \?= [2-9]", makefile, re.M)


def test_each_gunicorn_worker_puts_its_start_up_objects_out_of_the_garbage_collectors_walks():
    """A full collection walked the ~170,000 objects of start-up on every list page now and then."""
    import gc
    from pathlib import Path

    conf: dict = {}
    exec((Path(__file__).resolve().parent.parent / "gunicorn.conf.py").read_text(), conf)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        conf["post_worker_init"](None)  # gunicorn calls it in the worker once the app is loaded
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()

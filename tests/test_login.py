"""Login (DESIGN.md §7): username + password, 获取手机验证码, then the 6-digit code.

Time moves by editing the database columns or by patching `actions.login.utcnow`, never by sleeping.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as, user_id
from flask import g, request_tearing_down

import models.sms
from actions import login as auth
from app import create_app
from models import LoginFailure, SmsSend, User, db, utcnow
from models.sms import sms_budget_exhausted, sms_sent_today
from views import auth as auth_views

PASSWORD = "Demo-2026"


# ---------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def each_request_stands_alone(app):
    """End each request's database session and `g` as production does.

    conftest keeps one app context open for the whole test, so its requests would share one `g`
    (where Flask-WTF caches the CSRF token of whichever client asked first) and one database session
    (whose open savepoint a later request's rollback would roll back, undoing the test's own edits)."""

    def tear_down(sender, **extra):
        g.pop("csrf_token", None)
        db.session.remove()

    request_tearing_down.connect(tear_down, app, weak=False)
    yield
    request_tearing_down.disconnect(tear_down, app)


def send_code(client, username, password=PASSWORD, ip=None):
    """Press 获取手机验证码; returns (status, json)."""
    token = csrf_token(client, "/login")
    kw = {"environ_base": {"REMOTE_ADDR": ip}} if ip else {}
    resp = client.post("/login/send-code", data={"username": username, "password": password, "csrf_token": token}, **kw)
    return resp.status_code, resp.get_json()


def log_in(client, username, code, password=PASSWORD):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "code": code, "csrf_token": token})


def user_row(app, username) -> dict:
    with app.app_context():
        u = db.session.scalar(sa.select(User).where(User.username == username))
        return {
            c: getattr(u, c)
            for c in (
                "failed_attempts",
                "locked_until",
                "login_code_hash",
                "login_code_sent_at",
                "login_code_tries",
                "last_login_at",
            )
        }


def update_user(app, username, **values):
    with app.app_context():
        db.session.execute(sa.update(User).where(User.username == username).values(**values))
        db.session.commit()


def age_code(app, username, by: timedelta):
    """Pretend the last code was sent `by` earlier than it was."""
    sent = user_row(app, username)["login_code_sent_at"]
    update_user(app, username, login_code_sent_at=sent - by)


def add_sends(app, n, *, username=None, ip="198.51.100.7", at=None):
    """Record `n` earlier sends in the log that the throttles and the budget count."""
    with app.app_context():
        uid = db.session.scalar(sa.select(User.id).where(User.username == username)) if username else None
        when = at or utcnow()
        db.session.add_all([SmsSend(user_id=uid, phone="+8613800000099", ip=ip, sent_at=when) for _ in range(n)])
        db.session.commit()


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def ok_send(client, sms, username):
    status, body = send_code(client, username)
    assert (status, body["ok"]) == (200, True), body
    return sms.last_code(username)


# ---------------------------------------------------------------- the happy path
def test_right_password_and_right_code_logs_in(app, client, sms):
    status, body = send_code(client, "clerk1")
    assert status == 200 and body["ok"] is True
    assert body["message"] == "验证码已发送至 +86138****0005，5分钟内有效。"
    assert len(sms.outbox) == 1 and sms.outbox[0]["phone"] == "+8613800000005"
    code = sms.last_code("clerk1")
    assert len(code) == 6 and code.isdigit()

    resp = log_in(client, "clerk1", code)
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/admin/")
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie

    home = client.get("/admin/").get_data(as_text=True)
    assert "首页" in home and "张晓燕" in home and "（clerk1）" in home
    row = user_row(app, "clerk1")
    assert row["last_login_at"] is not None and row["failed_attempts"] == 0


def test_the_code_is_stored_only_as_a_hash(app, client, sms):
    code = ok_send(client, sms, "clerk1")
    stored = user_row(app, "clerk1")["login_code_hash"]
    assert stored and code not in stored and stored != code
    with app.app_context():
        assert stored == auth._code_hash(code)


def test_after_login_i_go_back_to_the_page_i_asked_for_but_never_to_another_site(app, client, sms):
    code = ok_send(client, sms, "clerk1")
    token = csrf_token(client, "/login")
    form = {"username": "clerk1", "password": PASSWORD, "code": code, "csrf_token": token}
    resp = client.post("/login?next=/admin/members/", data=form)
    assert resp.headers["Location"] == "/admin/members/"

    update_user(app, "clerk1", login_code_sent_at=None)
    code = ok_send(client, sms, "clerk1")
    form = {"username": "clerk1", "password": PASSWORD, "code": code, "csrf_token": csrf_token(client, "/login")}
    resp = client.post("/login", query_string={"next": "/\t/evil.example/"}, data=form)
    assert resp.headers["Location"] == "/admin/"

    with app.test_request_context():
        for evil in (
            "//evil.example/",
            "/\\evil.example/",
            "https://evil.example/",
            "/\t/evil.example/",
            "/\n/evil.example/",
            "javascript:alert(1)",
            "",
            None,
        ):
            assert auth_views._safe_next(evil) == "/admin/", evil
        assert auth_views._safe_next("/admin/policies/?page=2") == "/admin/policies/?page=2"


# ---------------------------------------------------------------- one message for every failure
def test_wrong_password_wrong_code_and_unknown_user_get_the_same_message(app, client, sms):
    code = ok_send(client, sms, "clerk1")
    answers = [
        log_in(client, "clerk1", code, password="Wrong-2026"),
        log_in(client, "clerk1", wrong(code)),
        log_in(client, "nobody", code),
    ]
    statuses = {r.status_code for r in answers}
    assert statuses == {401}
    for r in answers:
        html = r.get_data(as_text=True)
        assert auth.GENERIC_FAILURE in html
        assert "不存在" not in html and "密码错误" not in html

    # 获取手机验证码 does not tell them apart either
    sends = [send_code(client, "clerk2", password="Wrong-2026"), send_code(client, "nobody")]
    assert sends[0] == sends[1] == (400, {"ok": False, "message": auth.GENERIC_FAILURE})
    assert [m["username"] for m in sms.outbox] == ["clerk1"]


def test_an_unknown_user_costs_a_password_check_like_a_known_one(app, client, monkeypatch):
    checked = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: checked.append(p) or real(h, p))
    assert send_code(client, "nobody", password="guess-1")[0] == 400
    assert log_in(client, "nobody", "123456", password="guess-2").status_code == 401
    assert checked == ["guess-1", "guess-2"]


# ---------------------------------------------------------------- lock-out
def test_the_sixth_try_after_five_wrong_codes_is_refused_until_an_admin_unlocks(app, client, sms):
    code = ok_send(client, sms, "clerk2")
    for _i in range(5):
        resp = log_in(client, "clerk2", wrong(code))
        assert resp.status_code == 401
    row = user_row(app, "clerk2")
    assert row["failed_attempts"] == 5
    assert row["locked_until"] is not None and row["locked_until"] > utcnow()

    resp = log_in(client, "clerk2", code)  # the right code, but too late
    assert resp.status_code == 401 and auth.GENERIC_FAILURE in resp.get_data(as_text=True)
    assert user_row(app, "clerk2")["locked_until"] is not None
    assert send_code(client, "clerk2")[0] == 400  # no new code while locked either
    assert len(sms.outbox) == 1

    admin = app.test_client()
    login_as(app, admin, "admin")
    resp = admin.post(
        "/admin/users/unlock/", data={"id": user_id(app, "clerk2"), "csrf_token": csrf_token(admin, "/admin/users/")}
    )
    assert resp.status_code == 302
    row = user_row(app, "clerk2")
    assert row["locked_until"] is None and row["failed_attempts"] == 0 and row["login_code_hash"] is None

    assert log_in(client, "clerk2", code).status_code == 401  # the old code died with the lock
    age_code(app, "clerk2", timedelta(seconds=61))
    new = ok_send(client, sms, "clerk2")
    resp = log_in(client, "clerk2", new)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/admin/")


def test_a_strangers_wrong_passwords_from_another_address_never_lock_a_clerk_out(app, client, sms):
    """Issue 15 item 6: five wrong passwords at 获取手机验证码 locked clerk3 for 30 minutes, again and
    again, from anywhere.  Now they slow down only the address they come from."""
    stranger = "203.0.113.66"
    for _ in range(12):
        assert send_code(client, "clerk3", password="Wrong-2026", ip=stranger)[0] == 400
    assert user_row(app, "clerk3")["locked_until"] is None
    status, body = send_code(client, "clerk3", ip="198.51.100.20")  # clerk3 at her own desk
    assert (status, body["ok"]) == (200, True), body
    assert log_in(client, "clerk3", sms.last_code("clerk3")).status_code == 302


def test_wrong_passwords_from_one_address_wait_longer_and_longer(app, client, sms, monkeypatch):
    now = [utcnow()]
    monkeypatch.setattr(auth, "utcnow", lambda: now[0])
    ip = "203.0.113.67"
    for _ in range(auth.FREE_TRIES_PER_USER_ADDRESS):  # the first tries: no wait
        assert send_code(client, "clerk3", password="Wrong-2026", ip=ip) == (
            400,
            {"ok": False, "message": auth.GENERIC_FAILURE},
        )
    waits = []
    for _ in range(4):
        status, body = send_code(client, "clerk3", ip=ip)  # even the right password must wait
        assert status == 400 and "请于" in body["message"] and "后再试" in body["message"]
        with app.app_context():
            wait = auth.throttle_wait("clerk3", ip, now[0])
        waits.append(wait.total_seconds())
        now[0] += wait  # waited: one more wrong password, and the next wait doubles
        assert send_code(client, "clerk3", password="Wrong-2026", ip=ip)[1]["message"] == auth.GENERIC_FAILURE
    assert waits == [1, 2, 4, 8]
    assert sms.outbox == []
    with app.app_context():  # the wrong passwords are recorded by address, never as a lock on the account
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginFailure).where(LoginFailure.ip == ip)) == 7
    assert user_row(app, "clerk3")["locked_until"] is None


def test_one_address_trying_many_usernames_is_slowed_down_too(app, client, sms):
    ip = "203.0.113.68"
    for k in range(auth.FREE_TRIES_PER_ADDRESS):
        assert send_code(client, f"guess{k}", ip=ip)[1]["message"] == auth.GENERIC_FAILURE
    # unknown or not, the next name from that address waits: nothing tells which names exist
    assert "后再试" in send_code(client, "clerk1", ip=ip)[1]["message"]
    assert "后再试" in send_code(client, "nobody-else", ip=ip)[1]["message"]
    assert send_code(client, "clerk1", ip="203.0.113.69")[0] == 200  # another address is not affected


def test_the_login_button_is_throttled_like_the_code_button(app, client, sms):
    ip = "203.0.113.70"
    token = csrf_token(client, "/login")
    form = {"username": "clerk2", "password": "Wrong-2026", "code": "123456", "csrf_token": token}
    for _ in range(auth.FREE_TRIES_PER_USER_ADDRESS):
        assert client.post("/login", data=form, environ_base={"REMOTE_ADDR": ip}).status_code == 401
    resp = client.post("/login", data=dict(form, password=PASSWORD), environ_base={"REMOTE_ADDR": ip})
    assert resp.status_code == 401 and "后再试" in resp.get_data(as_text=True)


# ---------------------------------------------------------------- code lifetime
def test_a_code_older_than_five_minutes_fails(app, client, sms):
    code = ok_send(client, sms, "clerk1")
    age_code(app, "clerk1", timedelta(minutes=5, seconds=1))
    resp = log_in(client, "clerk1", code)
    assert resp.status_code == 401 and auth.GENERIC_FAILURE in resp.get_data(as_text=True)


def test_a_code_just_under_five_minutes_old_still_works(app, client, sms):
    code = ok_send(client, sms, "clerk1")
    age_code(app, "clerk1", timedelta(minutes=4, seconds=55))
    assert log_in(client, "clerk1", code).status_code == 302


def test_a_code_can_be_used_only_once(app, client, sms):
    code = ok_send(client, sms, "clerk1")
    assert log_in(client, "clerk1", code).status_code == 302
    other = app.test_client()
    resp = log_in(other, "clerk1", code)
    assert resp.status_code == 401
    assert user_row(app, "clerk1")["login_code_hash"] is None


def test_a_new_code_replaces_the_old_one(app, client, sms):
    old = ok_send(client, sms, "clerk1")
    age_code(app, "clerk1", timedelta(seconds=61))
    new = ok_send(client, sms, "clerk1")
    if new != old:
        assert log_in(client, "clerk1", old).status_code == 401
    assert log_in(client, "clerk1", new).status_code == 302


# ---------------------------------------------------------------- send throttles
def test_a_second_send_within_sixty_seconds_is_refused_and_after_sixty_seconds_works(app, client, sms):
    ok_send(client, sms, "clerk1")
    age_code(app, "clerk1", timedelta(seconds=50))
    assert send_code(client, "clerk1") == (400, {"ok": False, "message": auth.MSG_TOO_SOON})
    assert len(sms.outbox) == 1

    age_code(app, "clerk1", timedelta(seconds=11))  # 61 s since the first send
    ok_send(client, sms, "clerk1")
    assert len(sms.outbox) == 2


def test_more_than_ten_sends_in_an_hour_for_one_user_are_refused(app, client, sms):
    add_sends(app, 9, username="clerk1", at=utcnow() - timedelta(minutes=50))
    add_sends(app, 5, username="clerk1", at=utcnow() - timedelta(minutes=61))  # older than an hour: not counted
    ok_send(client, sms, "clerk1")  # the 10th of the hour
    age_code(app, "clerk1", timedelta(seconds=61))
    assert send_code(client, "clerk1") == (400, {"ok": False, "message": auth.MSG_TOO_MANY})
    assert len(sms.outbox) == 1
    # another user is not affected
    ok_send(client, sms, "clerk2")


def test_one_ip_may_not_ask_for_codes_for_many_users(app, client, sms, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_PER_IP_HOURLY", 3)
    ip = "203.0.113.9"
    for name in ("clerk1", "clerk2", "clerk3"):
        assert send_code(client, name, ip=ip)[0] == 200
    assert send_code(client, "info1", ip=ip) == (400, {"ok": False, "message": auth.MSG_TOO_MANY})
    assert [m["username"] for m in sms.outbox] == ["clerk1", "clerk2", "clerk3"]
    # someone at another address still gets a code
    assert send_code(client, "info1", ip="203.0.113.10")[0] == 200


# ---------------------------------------------------------------- mainland mobiles only
@pytest.mark.parametrize("phone", ["+14155550100", "+86 0101234567", "+8601012345678", "13800000005"])
def test_codes_go_only_to_mainland_mobile_numbers(app, client, sms, phone):
    update_user(app, "clerk1", phone=phone)
    assert send_code(client, "clerk1") == (400, {"ok": False, "message": auth.MSG_BAD_PHONE})
    assert "大陆手机号" in auth.MSG_BAD_PHONE
    assert sms.outbox == []
    assert user_row(app, "clerk1")["login_code_hash"] is None


def test_a_foreign_number_is_not_revealed_without_the_password(app, client, sms):
    update_user(app, "clerk1", phone="+14155550100")
    assert send_code(client, "clerk1", password="Wrong-2026") == (400, {"ok": False, "message": auth.GENERIC_FAILURE})


# ---------------------------------------------------------------- daily budget
def test_when_the_daily_sms_budget_is_spent_sending_stops_and_the_admin_is_warned(app, client, sms, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_DAILY_BUDGET", 5)
    admin = login_as(app, app.test_client(), "admin")
    assert 'id="sms-budget-warning"' not in admin.get("/admin/").get_data(as_text=True)

    add_sends(app, 5)
    assert send_code(client, "clerk1") == (400, {"ok": False, "message": auth.MSG_BUDGET})
    assert sms.outbox == []

    html = admin.get("/admin/").get_data(as_text=True)
    assert 'id="sms-budget-warning"' in html and "达到每日上限 5 条" in html
    clerk = login_as(app, app.test_client(), "clerk1")
    html = clerk.get("/admin/").get_data(as_text=True)
    assert "首页" in html and "sms-budget-warning" not in html


def test_the_daily_budget_counts_the_beijing_day(app, client, sms, monkeypatch):
    # 09:00 in Beijing on 2 March is 01:00 UTC; the Beijing day began at 16:00 UTC on 1 March
    now = datetime(2026, 3, 2, 1, 0)
    monkeypatch.setattr(models.sms, "utcnow", lambda: now)  # the budget's clock (models/sms.py)
    monkeypatch.setitem(app.config, "SMS_DAILY_BUDGET", 3)
    add_sends(app, 3, at=datetime(2026, 3, 1, 15, 59))  # 23:59 on 1 March in Beijing: yesterday
    with app.app_context():
        assert sms_sent_today() == 0
    add_sends(app, 3, at=datetime(2026, 3, 1, 16, 0))  # 00:00 on 2 March in Beijing: today
    with app.app_context():
        assert sms_sent_today() == 3 and sms_budget_exhausted()


# ---------------------------------------------------------------- several workers
def test_two_app_instances_on_one_database_agree(app, client, sms):
    other = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "SMS_BACKEND": "memory",
            "SECRET_KEY": "test-secret",
            "TESTING": True,
        }
    )
    try:
        outbox_b = other.extensions["sms"].outbox
        status, _ = send_code(client, "clerk1")  # instance A
        assert status == 200 and outbox_b == []
        code = sms.last_code("clerk1")

        b = other.test_client()
        assert send_code(b, "clerk1")[1]["message"] == auth.MSG_TOO_SOON  # B knows A just sent one
        resp = log_in(b, "clerk1", code)  # instance B accepts A's code
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/admin/")
        assert "张晓燕" in b.get("/admin/").get_data(as_text=True)
        assert log_in(client, "clerk1", code).status_code == 401  # and A knows it is used
    finally:
        with other.app_context():
            db.engine.dispose()


# ---------------------------------------------------------------- logout
def test_logout_ends_the_session(app, client, sms):
    code = ok_send(client, sms, "clerk1")
    assert log_in(client, "clerk1", code).status_code == 302
    assert client.get("/admin/").status_code == 200

    resp = client.post("/logout", data={"csrf_token": csrf_token(client, "/admin/")})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    resp = client.get("/admin/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_logout_by_get_does_nothing(app, client):
    login_as(app, client, "clerk1")
    assert client.get("/logout").status_code == 405
    assert client.get("/admin/").status_code == 200

"""Sessions are kept on the server (issue 15, item 4): the cookie carries only a random token;
退出, 重置密码 and 停用 end every session of that user at once, on every worker; no password is ever
put in the session or a flash.

Was: a client-side signed cookie holding the uid and 12 characters of the password hash, valid 8 h
after logout, and 重置密码 putting the new password into it through a flash message."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as
from flask import g, request_tearing_down

from app import create_app
from models import User, UserSession, db


@pytest.fixture(autouse=True)
def each_request_stands_alone(app):
    def tear_down(sender, **extra):
        g.pop("csrf_token", None)
        db.session.remove()

    request_tearing_down.connect(tear_down, app, weak=False)
    yield
    request_tearing_down.disconnect(tear_down, app)


def cookie(client) -> str:
    c = client.get_cookie("session")
    return c.value if c else ""


def uid(app, username) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(User.id).where(User.username == username))


def sessions_of(app, username) -> int:
    with app.app_context():
        return db.session.scalar(
            sa.select(sa.func.count()).select_from(UserSession).where(UserSession.user_id == uid(app, username))
        )


def logged_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def replay(app, token: str):
    """A fresh browser presenting an old cookie (copied, stolen, or kept after 退出)."""
    other = app.test_client()
    other.set_cookie("session", token)
    return other


def test_the_cookie_carries_only_a_random_token(app, client):
    login_as(app, client, "clerk1")
    token = cookie(client)
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", token)
    decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    with app.app_context():
        user = db.session.get(User, uid(app, "clerk1"))
        assert user.password_hash[-12:].encode() not in decoded and b"uid" not in decoded
        # the database keeps the token's hash, not the token: reading the table gives nobody a cookie
        row = db.session.get(UserSession, hashlib.sha256(token.encode()).hexdigest())
        assert row is not None and row.user_id == user.id and token not in row.data
        assert db.session.get(UserSession, token) is None


def test_logging_in_starts_a_new_session_so_a_planted_cookie_is_worthless(app, client, sms):
    before = csrf_token(client, "/login") and cookie(client)  # a visitor's session (the login page's CSRF token)
    token = csrf_token(client, "/login")
    client.post("/login/send-code", data={"username": "clerk1", "password": "Demo-2026", "csrf_token": token})
    form = {"username": "clerk1", "password": "Demo-2026", "code": sms.last_code("clerk1"), "csrf_token": token}
    assert client.post("/login", data=form).status_code == 302
    assert cookie(client) != before and logged_in(client)
    assert not logged_in(replay(app, before))


def test_logout_ends_every_session_of_the_user_and_an_old_cookie_stops_working(app, client):
    login_as(app, client, "clerk1")
    token = cookie(client)
    other_browser = login_as(app, app.test_client(), "clerk1")
    assert logged_in(replay(app, token)) and logged_in(other_browser)
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert not logged_in(client)
    assert not logged_in(replay(app, token))  # was: still valid for 8 hours
    assert not logged_in(other_browser)
    assert sessions_of(app, "clerk1") == 0


def test_a_password_reset_ends_every_session_of_that_user(app, client, sms):
    clerk = login_as(app, app.test_client(), "clerk2")
    assert logged_in(clerk)
    login_as(app, client, "admin")
    token = csrf_token(client)
    client.post("/admin/users/stepup-code/", data={"csrf_token": token})
    page = client.post(
        "/admin/users/reset-password/",
        data={"csrf_token": token, "id": uid(app, "clerk2"), "stepup_code": sms.last_code("admin")},
    )
    new = re.search(r'<code id="new-password"[^>]*>([^<]+)</code>', page.get_data(as_text=True)).group(1)
    assert not logged_in(clerk) and sessions_of(app, "clerk2") == 0
    assert logged_in(client)  # the admin's own session goes on
    # the new password was shown on that page only: in no session row, no flash, no later page
    with app.app_context():
        assert not db.session.scalar(sa.select(sa.func.count()).where(UserSession.data.contains(new)))
    assert new not in client.get("/admin/").get_data(as_text=True)


def test_disabling_a_user_ends_every_session_of_that_user(app, client):
    clerk = login_as(app, app.test_client(), "clerk3")
    assert logged_in(clerk)
    login_as(app, client, "admin")
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "clerk3"))
        form = {
            "username": user.username,
            "display_name": user.display_name,
            "org": str(user.org_id),
            "role": user.role.value,
            "phone": user.phone,
            "new_password": "",
        }  # "active" not ticked: 停用
        pk = user.id
    form["csrf_token"] = csrf_token(client)
    assert client.post(f"/admin/users/edit/?id={pk}", data=form).status_code == 302
    assert not logged_in(clerk) and sessions_of(app, "clerk3") == 0


def test_several_workers_agree_on_a_session_and_on_its_end(app, client):
    other = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "SMS_BACKEND": "memory",
            "SECRET_KEY": "another-workers-key-does-not-matter",
            "TESTING": True,
            "STORAGE_DIR": app.config["STORAGE_DIR"],
        }
    )
    try:
        login_as(app, client, "clerk1")
        on_b = other.test_client()
        on_b.set_cookie("session", cookie(client))
        assert on_b.get("/admin/").status_code == 200  # worker B knows worker A's session
        on_b.post("/logout", data={"csrf_token": csrf_token(on_b)})
        assert not logged_in(client)  # and worker A knows B ended it
    finally:
        with other.app_context():
            db.engine.dispose()

"""Every POST needs the page's CSRF token: without it the answer is 400 页面已过期 and nothing changes."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from conftest import csrf_token, login_as, user_id
from test_login import PASSWORD, each_request_stands_alone, ok_send, update_user, user_row  # noqa: F401

from models import AuditLog, Member, MemberStatus, Policy, Product, SmsSend, User, db, utcnow

PRODUCT_FORM = {
    "code": "CSRF-01",
    "name": "CSRF测试产品",
    "price": "30.00",
    "max_shares": "2",
    "term_months": "12",
    "gender_restriction": "",
    "active": "y",
}


def expired(resp) -> bool:
    return resp.status_code == 400 and "页面已过期" in resp.get_data(as_text=True)


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def deletable_member_of(app, username) -> int:
    """A 新建 member of the user's unit with no policies."""
    with app.app_context():
        org_id = db.session.scalar(sa.select(User.org_id).where(User.username == username))
        return db.session.scalar(
            sa.select(Member.id)
            .where(
                Member.org_id == org_id,
                Member.status == MemberStatus.NEW,
                ~sa.exists().where(Policy.member_id == Member.id),
            )
            .order_by(Member.id)
            .limit(1)
        )


def test_login_without_the_token_is_refused_and_changes_nothing(app, client, sms):
    code = ok_send(client, sms, "clerk1")
    before = user_row(app, "clerk1")
    resp = client.post("/login", data={"username": "clerk1", "password": PASSWORD, "code": code})
    assert expired(resp)
    assert user_row(app, "clerk1") == before  # the code is still unused, no failure counted
    assert client.get("/admin/").status_code == 302  # not logged in


def test_login_with_a_wrong_password_but_no_token_counts_no_failure(app, client):
    resp = client.post("/login", data={"username": "clerk1", "password": "Wrong-2026", "code": "000000"})
    assert expired(resp)
    assert user_row(app, "clerk1")["failed_attempts"] == 0


def test_send_code_without_the_token_is_refused_and_sends_nothing(app, client, sms):
    sends = count(app, SmsSend)
    resp = client.post("/login/send-code", data={"username": "clerk1", "password": PASSWORD})
    assert expired(resp)
    assert sms.outbox == [] and count(app, SmsSend) == sends
    assert user_row(app, "clerk1")["login_code_hash"] is None


def test_send_code_with_a_token_of_another_session_is_refused(app, client, sms):
    stranger = app.test_client()
    token = csrf_token(stranger, "/login")
    resp = client.post("/login/send-code", data={"username": "clerk1", "password": PASSWORD, "csrf_token": token})
    assert expired(resp)
    assert sms.outbox == []


def test_logout_without_the_token_is_refused_and_the_session_stays(app, client):
    login_as(app, client, "clerk1")
    assert expired(client.post("/logout"))
    assert client.get("/admin/").status_code == 200
    resp = client.post("/logout", data={"csrf_token": csrf_token(client, "/admin/")})
    assert resp.status_code == 302
    assert client.get("/admin/").status_code == 302


def test_admin_creating_a_product_without_the_token_is_refused(app, client):
    login_as(app, client, "admin")
    products, audits = count(app, Product), count(app, AuditLog)
    assert expired(client.post("/admin/products/new/", data=PRODUCT_FORM))
    assert count(app, Product) == products and count(app, AuditLog) == audits

    form = dict(PRODUCT_FORM, csrf_token=csrf_token(client, "/admin/products/new/"))
    resp = client.post("/admin/products/new/", data=form)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-2000:]
    assert count(app, Product, Product.code == "CSRF-01") == 1
    assert count(app, Product) == products + 1


def test_clerk_deleting_a_member_without_the_token_is_refused(app, client):
    login_as(app, client, "clerk1")
    member = deletable_member_of(app, "clerk1")
    assert member is not None
    audits = count(app, AuditLog)
    assert expired(client.post("/admin/members/delete/", data={"id": member, "url": "/admin/members/"}))
    assert count(app, Member, Member.id == member) == 1 and count(app, AuditLog) == audits

    token = csrf_token(client, "/admin/members/")
    resp = client.post("/admin/members/delete/", data={"id": member, "url": "/admin/members/", "csrf_token": token})
    assert resp.status_code == 302
    assert count(app, Member, Member.id == member) == 0
    assert count(app, AuditLog) == audits + 1


def test_admin_unlocking_a_user_without_the_token_is_refused(app, client):
    update_user(app, "clerk2", failed_attempts=5, locked_until=utcnow() + timedelta(minutes=30))
    login_as(app, client, "admin")
    assert expired(client.post("/admin/users/unlock/", data={"id": user_id(app, "clerk2")}))
    assert user_row(app, "clerk2")["locked_until"] is not None

"""系统管理 → 用户 (issue 15, item 5): only 系统管理员 grants 系统管理员 (or touches an admin's
account); nobody edits their own role; a change of a user's phone or password is audited and needs
the acting manager's own fresh SMS code.  Was: 信息部 could make itself admin and change any user's
phone and password."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as
from flask import g, request_tearing_down

from models import AuditLog, Role, User, db


@pytest.fixture(autouse=True)
def each_request_stands_alone(app):
    def tear_down(sender, **extra):
        g.pop("csrf_token", None)
        db.session.remove()

    request_tearing_down.connect(tear_down, app, weak=False)
    yield
    request_tearing_down.disconnect(tear_down, app)


def user(app, username) -> User:
    with app.app_context():
        u = db.session.scalar(sa.select(User).where(User.username == username))
        db.session.expunge(u)
        return u


def edit(client, target: User, **changes):
    form = {
        "csrf_token": csrf_token(client),
        "username": target.username,
        "display_name": target.display_name,
        "org": str(target.org_id),
        "role": target.role.value,
        "phone": target.phone,
        "active": "y",
        "new_password": "",
    }
    form.update(changes)
    return client.post(f"/admin/users/edit/?id={target.id}", data=form, follow_redirects=True)


def own_code(client, sms, username) -> str:
    resp = client.post("/admin/users/stepup-code/", data={"csrf_token": csrf_token(client)})
    assert resp.status_code == 200 and resp.get_json()["ok"], resp.get_json()
    assert sms.outbox[-1]["username"] == username  # to the acting user's own phone
    return sms.last_code(username)


def test_info_dept_cannot_make_itself_admin(app, client):
    login_as(app, client, "info1")
    me = user(app, "info1")
    page = edit(client, me, role="admin")
    assert "不能修改自己的角色" in page.get_data(as_text=True)
    assert user(app, "info1").role == Role.INFO_DEPT


def test_info_dept_cannot_grant_admin_to_anyone(app, client):
    login_as(app, client, "info1")
    page = client.get(f"/admin/users/edit/?id={user(app, 'clerk1').id}").get_data(as_text=True)
    assert 'value="admin"' not in page  # not offered
    html = edit(client, user(app, "clerk1"), role="admin").get_data(as_text=True)  # nor taken when posted
    assert "只有系统管理员可以授予系统管理员角色" in html
    assert user(app, "clerk1").role == Role.UNIT_CLERK


def test_info_dept_cannot_touch_an_admins_account(app, client, sms):
    login_as(app, client, "info1")
    admin = user(app, "admin")
    html = edit(client, admin, display_name="改名").get_data(as_text=True)
    assert "只有系统管理员可以修改系统管理员的账户" in html
    code = own_code(client, sms, "info1")
    token = csrf_token(client)
    client.post("/admin/users/reset-password/", data={"csrf_token": token, "id": admin.id, "stepup_code": code})
    with app.app_context():
        assert db.session.get(User, admin.id).check_password("Demo-2026")
        assert db.session.get(User, admin.id).display_name == admin.display_name


def test_nobody_edits_their_own_role_not_even_an_admin(app, client):
    login_as(app, client, "admin")
    html = edit(client, user(app, "admin"), role="unit_clerk").get_data(as_text=True)
    assert "不能修改自己的角色" in html
    assert user(app, "admin").role == Role.ADMIN
    form = client.get(f"/admin/users/edit/?id={user(app, 'admin').id}").get_data(as_text=True)
    assert "不能修改自己的角色" in form


def test_an_admin_may_grant_admin(app, client):
    login_as(app, client, "admin")
    edit(client, user(app, "info1"), role="admin")
    assert user(app, "info1").role == Role.ADMIN


def test_changing_a_phone_needs_the_managers_own_fresh_code_and_is_audited(app, client, sms):
    login_as(app, client, "info1")
    clerk = user(app, "clerk1")
    html = edit(client, clerk, phone="+8613900000001").get_data(as_text=True)
    assert "须填写您本人手机收到的验证码" in html
    assert user(app, "clerk1").phone == clerk.phone
    html = edit(client, clerk, phone="+8613900000001", stepup_code="000000").get_data(as_text=True)
    assert "须填写您本人手机收到的验证码" in html and user(app, "clerk1").phone == clerk.phone

    code = own_code(client, sms, "info1")
    edit(client, clerk, phone="+8613900000001", stepup_code=code)
    assert user(app, "clerk1").phone == "+8613900000001"
    with app.app_context():
        log = db.session.scalar(
            sa.select(AuditLog)
            .where(AuditLog.entity == "user", AuditLog.entity_id == clerk.id)
            .order_by(AuditLog.id.desc())
        )
        assert log.action == "update" and log.user_id == user(app, "info1").id
        assert log.before == {"phone": clerk.phone} and log.after["phone"] == "+8613900000001"
    # the code is spent
    html = edit(client, user(app, "clerk1"), phone="+8613900000002", stepup_code=code).get_data(as_text=True)
    assert "须填写您本人手机收到的验证码" in html


def test_changing_a_password_needs_the_code_is_audited_and_ends_that_users_sessions(app, client, sms):
    clerk_browser = login_as(app, app.test_client(), "clerk2")
    login_as(app, client, "admin")
    clerk = user(app, "clerk2")
    edit(client, clerk, new_password="Neues-2026")
    with app.app_context():
        assert db.session.get(User, clerk.id).check_password("Demo-2026")
    edit(client, clerk, new_password="Neues-2026", stepup_code=own_code(client, sms, "admin"))
    with app.app_context():
        assert db.session.get(User, clerk.id).check_password("Neues-2026")
        actions = db.session.scalars(
            sa.select(AuditLog.action).where(AuditLog.entity == "user", AuditLog.entity_id == clerk.id)
        ).all()
        assert "set_password" in actions
    assert clerk_browser.get("/admin/").status_code == 302  # logged out everywhere


def test_other_changes_need_no_code(app, client):
    login_as(app, client, "info1")
    edit(client, user(app, "clerk3"), display_name="陈静二")
    assert user(app, "clerk3").display_name == "陈静二"

"""系统管理: units (tree-aware), users, products, and the audit log every change writes."""

import re
from decimal import Decimal

import sqlalchemy as sa
from conftest import csrf_token, login_as

from models import AuditLog, Member, MemberStatus, Org, OrgLevel, Product, User, db, write_audit
from models.audit import audit_entries


def _org(code):
    return db.session.scalar(sa.select(Org).where(Org.code == code))


def test_admin_adds_a_product_and_the_audit_log_records_it(app, client):
    login_as(app, client, "admin")
    token = csrf_token(client)
    page = client.post(
        "/admin/products/new/",
        data={
            "csrf_token": token,
            "code": "P09",
            "name": "职工重大疾病互助保障",
            "price": "40.00",
            "max_shares": "3",
            "term_months": "12",
            "gender_restriction": "",
            "active": "y",
        },
    )
    assert page.status_code == 302
    with app.app_context():
        product = db.session.scalar(sa.select(Product).where(Product.code == "P09"))
        assert product.price == Decimal("40.00") and product.gender_restriction is None
        log = db.session.scalar(
            sa.select(AuditLog).where(AuditLog.entity == "product", AuditLog.entity_id == product.id)
        )
        assert log.action == "create" and log.after["name"] == "职工重大疾病互助保障"
        assert log.user.username == "admin"


def test_editing_a_user_writes_before_and_after(app, client):
    login_as(app, client, "admin")
    token = csrf_token(client)
    with app.app_context():
        clerk = db.session.scalar(sa.select(User).where(User.username == "clerk3"))
        pk, org_id = clerk.id, clerk.org_id
    page = client.post(
        f"/admin/users/edit/?id={pk}",
        data={
            "csrf_token": token,
            "username": "clerk3",
            "display_name": "陈静静",
            "org": str(org_id),
            "role": "unit_clerk",
            "phone": "+8613800000007",
            "active": "y",
            "new_password": "",
        },
    )
    assert page.status_code == 302, page.get_data(as_text=True)[:500]
    with app.app_context():
        log = db.session.scalar(sa.select(AuditLog).where(AuditLog.entity == "user", AuditLog.entity_id == pk))
        assert log.action == "update"
        assert log.before == {"display_name": "陈静"}
        assert log.after["display_name"] == "陈静静"
        assert "password_hash" not in log.after


def test_a_user_phone_must_be_a_mainland_mobile(app, client):
    login_as(app, client, "admin")
    token = csrf_token(client)
    with app.app_context():
        org_id = _org("010101").id
    page = client.post(
        "/admin/users/new/",
        data={
            "csrf_token": token,
            "username": "clerk9",
            "display_name": "新人",
            "org": str(org_id),
            "role": "unit_clerk",
            "phone": "13800000009",
            "active": "y",
            "new_password": "Strong-2026",
        },
    )
    assert page.status_code == 200
    assert "手机号码须为大陆手机号" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(User).where(User.username == "clerk9")) is None


def test_moving_an_agency_moves_its_whole_subtree(app, client):
    login_as(app, client, "admin")
    token = csrf_token(client)
    with app.app_context():
        west, root = _org("0102"), _org("000")
        pk, root_id = west.id, root.id
    page = client.post(
        f"/admin/orgs/edit/?id={pk}",
        data={
            "csrf_token": token,
            "code": "0102",
            "name": "西城代办处",
            "level": "agency",
            "parent": str(root_id),
            "active": "y",
        },
    )
    assert page.status_code == 302, page.get_data(as_text=True)[:800]
    with app.app_context():
        assert _org("0102").path == "/000/0102/"
        assert _org("010201").path == "/000/0102/010201/"
        assert _org("010101").path == "/000/01/0101/010101/"


def test_a_unit_cannot_be_moved_under_its_own_child(app, client):
    login_as(app, client, "admin")
    token = csrf_token(client)
    with app.app_context():
        agency, unit = _org("0101"), _org("010101")
        pk, unit_id = agency.id, unit.id
    page = client.post(
        f"/admin/orgs/edit/?id={pk}",
        data={
            "csrf_token": token,
            "code": "0101",
            "name": "东城代办处",
            "level": "agency",
            "parent": str(unit_id),
            "active": "y",
        },
    )
    assert "不能把单位移到它自己的下级单位之下" in page.get_data(as_text=True)
    with app.app_context():
        assert _org("0101").path == "/000/01/0101/"


def test_an_org_code_with_wildcards_is_refused(app, client):
    login_as(app, client, "admin")
    token = csrf_token(client)
    with app.app_context():
        parent = _org("0101").id
    page = client.post(
        "/admin/orgs/new/",
        data={
            "csrf_token": token,
            "code": "01_%",
            "name": "坏编号",
            "level": "unit",
            "parent": str(parent),
            "active": "y",
        },
    )
    assert "单位编号只能由字母和数字组成" in page.get_data(as_text=True)


def test_the_audit_writer_is_one_statement_for_any_number_of_rows(app):
    from sqlalchemy import event

    with app.app_context():
        statements = []
        listener = lambda *a: statements.append(a[2])  # noqa: E731
        conn = db.session.connection()
        event.listen(conn, "before_cursor_execute", listener)
        ids = sa.select(Member.id).where(Member.status == MemberStatus.CONFIRMED)
        write_audit("report", "member", ids, None, after={"status": "CONFIRMED"})
        event.remove(conn, "before_cursor_execute", listener)
        expected = db.session.scalar(sa.select(sa.func.count()).select_from(ids.subquery()))
        assert expected > 100
        assert len(statements) == 1 and statements[0].lstrip().upper().startswith("INSERT INTO AUDIT_LOG")
        e = audit_entries()
        logged = db.session.scalar(sa.select(sa.func.count()).select_from(e).where(e.c.action == "report"))
        assert logged == expected  # every member named …
        rows = db.session.scalar(sa.select(sa.func.count()).select_from(AuditLog).where(AuditLog.action == "report"))
        assert rows == 1  # … by one audit row


def test_audit_log_is_read_only_and_filterable_by_entity(app, client):
    login_as(app, client, "admin")
    with app.app_context():
        write_audit("update", "member", [1, 2], None, before={"name": "甲"}, after={"name": "乙"})
        db.session.commit()
    html = client.get("/admin/audit/?entity=member").get_data(as_text=True)
    assert "修改" in html
    assert client.get("/admin/audit/new/").status_code in (302, 403)
    assert 'href="/admin/audit/edit/' not in html


def test_admin_resets_a_password_and_the_old_one_stops_working(app, client, sms):
    login_as(app, client, "admin")
    token = csrf_token(client)
    with app.app_context():
        pk = db.session.scalar(sa.select(User.id).where(User.username == "clerk2"))
    assert client.post("/admin/users/stepup-code/", data={"csrf_token": token}).get_json()["ok"]
    code = sms.last_code("admin")  # the admin's own phone confirms the reset
    page = client.post("/admin/users/reset-password/", data={"csrf_token": token, "id": pk, "stepup_code": code})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "已重置 clerk2" in html and "只显示这一次" in html
    new = re.search(r'<code id="new-password"[^>]*>([^<]+)</code>', html).group(1)
    with app.app_context():
        user = db.session.get(User, pk)
        assert not user.check_password("Demo-2026") and user.check_password(new)
        assert (
            db.session.scalar(sa.select(AuditLog.action).where(AuditLog.entity == "user", AuditLog.entity_id == pk))
            == "reset_password"
        )
    assert new not in client.get(f"/admin/users/details/?id={pk}").get_data(as_text=True)  # shown once only


def _admin_deletes(app, client, screen: str, pk: int):
    """The admin presses 【删除】 on a record of `screen` (/admin/<screen>/) and reads the page after."""
    login_as(app, client, "admin")
    return client.post(
        f"/admin/{screen}/delete/", data={"csrf_token": csrf_token(client), "id": str(pk)}, follow_redirects=True
    )


def test_a_unit_that_still_has_members_is_not_deleted_and_the_admin_is_told_to_switch_it_off(app, client):
    with app.app_context():
        pk = _org("010101").id
    page = _admin_deletes(app, client, "orgs", pk)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "不能删除" in text and "会员" in text and "取消勾选【启用】" in text
    with app.app_context():
        assert _org("010101") is not None


def test_an_agency_with_units_under_it_is_not_deleted(app, client):
    with app.app_context():
        pk = _org("0101").id
    page = _admin_deletes(app, client, "orgs", pk)
    assert "下级单位" in page.get_data(as_text=True)
    with app.app_context():
        assert _org("0101") is not None


def test_an_empty_unit_is_deleted(app, client):
    with app.app_context():
        parent = _org("0101")
        org = Org(code="019999", name="空单位", level=OrgLevel.UNIT, parent_id=parent.id, path=f"{parent.path}019999/")
        db.session.add(org)
        db.session.commit()
        pk = org.id
    page = _admin_deletes(app, client, "orgs", pk)
    assert page.status_code == 200 and "不能删除" not in page.get_data(as_text=True)
    with app.app_context():
        assert _org("019999") is None


def test_a_product_with_policies_is_not_deleted_and_the_admin_is_told_why(app, client):
    with app.app_context():
        product = db.session.scalar(sa.select(Product).where(Product.code == "P01"))
        pk, name = product.id, product.name
    page = _admin_deletes(app, client, "products", pk)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "仍被以下记录使用：投保记录" in text and "不能删除" in text and "取消勾选【启用】" in text
    with app.app_context():
        assert db.session.get(Product, pk).name == name

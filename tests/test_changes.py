"""会员变更管理 (manual 一(四)3, 8): 【创建】 → 证件号或会员编号 → 【查询】 → new name and/or ID number +
变更理由 → 【保存】 (新建) → 审批状态 新建 → 【上报】 → 信息部 approves → the member is updated in one
transaction, gender and birth date re-derived from the new ID, old and new values audited."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from conftest import csrf_token, login_as
from test_policies_entry import birth_for, make_member, make_policy, new_id

from models import ApplicationStatus as AS
from models import AuditLog, ChangeApplication, Gender, Member, Org, PolicyStatus, db


def save(client, term, **fields):
    data = {"csrf_token": csrf_token(client, f"/admin/changes/new/?q={term}"), "member_ref": term, "reason": "更正"}
    data.update(fields)
    return client.post(f"/admin/changes/new/?q={term}", data=data)


def change_of(app, member_id):
    with app.app_context():
        c = db.session.scalar(
            sa.select(ChangeApplication)
            .where(ChangeApplication.member_id == member_id)
            .order_by(ChangeApplication.id.desc())
        )
        if c is not None:
            db.session.expunge(c)
        return c


def bulk(client, action, query, expected, **fields):
    data = {"csrf_token": csrf_token(client), "expected": expected}
    data.update(fields)
    return client.post(f"/admin/changes/bulk/{action}/?{query}", data=data, follow_redirects=True)


def member(app, member_id) -> Member:
    with app.app_context():
        m = db.session.get(Member, member_id)
        db.session.expunge(m)
        return m


def test_query_shows_the_members_current_data_and_another_units_member_is_not_found(app, client):
    m = make_member(app, "变更甲")
    other = make_member(app, "变更乙", org="010201")
    login_as(app, client, "clerk1")
    html = client.get(f"/admin/changes/new/?q={m['member_no']}").get_data(as_text=True)
    assert "变更甲" in html and m["id_number"] in html and 'id="save-btn"' in html
    html = client.get(f"/admin/changes/new/?q={other['id_number']}").get_data(as_text=True)
    assert "查无此会员信息" in html and "变更乙" not in html and 'id="save-btn"' not in html


def test_a_name_change_is_saved_reported_and_approved_and_audited_with_old_and_new(app, client):
    m = make_member(app, "变更丙")
    login_as(app, client, "clerk1")
    page = save(client, m["member_no"], new_name="变更丁")
    assert page.status_code == 302
    c = change_of(app, m["id"])
    assert c.status == AS.NEW and c.old_name == "变更丙" and c.new_name == "变更丁" and c.new_id_number is None
    page = bulk(client, "submit", "status=NEW", _count_new(app))
    assert "已上报" in page.get_data(as_text=True)
    assert change_of(app, m["id"]).status == AS.SUBMITTED
    login_as(app, client, "info1")
    assert "待审批的会员变更申请" in client.get("/admin/").get_data(as_text=True)
    page = bulk(client, "approve", f"rid={c.id}", 1)
    assert "已通过 1 条" in page.get_data(as_text=True)
    assert member(app, m["id"]).name == "变更丁"
    with app.app_context():
        audit = db.session.scalar(sa.select(AuditLog).where(AuditLog.action == "change", AuditLog.entity_id == m["id"]))
        assert audit.before == {"name": "变更丙", "id_number": m["id_number"]}
        assert audit.after["name"] == "变更丁" and audit.after["id_number"] == m["id_number"]


def _count_new(app):
    with app.app_context():
        unit = db.session.scalar(sa.select(Org.id).where(Org.code == "010101"))
        return db.session.scalar(
            sa.select(sa.func.count())
            .select_from(ChangeApplication)
            .where(ChangeApplication.org_id == unit, ChangeApplication.status == AS.NEW)
        )


def test_a_new_id_number_rederives_gender_and_birth_date_on_approval(app, client):
    m = make_member(app, "变更戊", male=False)
    born = date(1980, 5, 6)
    right = new_id(born, male=True)
    login_as(app, client, "clerk1")
    save(client, m["id_number"], new_id_number=right)
    c = change_of(app, m["id"])
    assert c.new_gender == Gender.MALE and c.new_birth_date == born
    bulk(client, "submit", f"rid={c.id}", 1)
    login_as(app, client, "info1")
    bulk(client, "approve", f"rid={c.id}", 1)
    after = member(app, m["id"])
    assert (after.id_number, after.gender, after.birth_date) == (right, Gender.MALE, born)


def test_a_malformed_new_id_number_says_what_is_wrong(app, client):
    m = make_member(app, "变更己")
    login_as(app, client, "clerk1")
    good = new_id(date(1985, 1, 2), male=False)
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    html = save(client, m["member_no"], new_id_number=bad).get_data(as_text=True)
    assert "检验位应为" in html
    assert change_of(app, m["id"]) is None


def test_an_id_number_of_another_member_is_refused_naming_nothing_of_them(app, client):
    m = make_member(app, "变更庚")
    other = make_member(app, "别人甲", org="010201")
    login_as(app, client, "clerk1")
    html = save(client, m["member_no"], new_id_number=other["id_number"]).get_data(as_text=True)
    assert "该身份证号已被其他会员使用" in html
    assert "别人甲" not in html and other["member_no"] not in html and "西城区供电局工会" not in html
    assert change_of(app, m["id"]) is None


def test_nothing_to_change_or_no_reason_is_refused(app, client):
    m = make_member(app, "变更辛")
    login_as(app, client, "clerk1")
    html = save(client, m["member_no"], new_name="变更辛").get_data(as_text=True)
    assert "请填写变更后的姓名或身份证号" in html
    html = save(client, m["member_no"], new_name="变更壬", reason=" ").get_data(as_text=True)
    assert "请填写变更理由" in html
    assert change_of(app, m["id"]) is None


def test_a_new_gender_that_makes_an_in_flight_policy_ineligible_is_named_before_approval(app, client):
    m = make_member(app, "变更癸", male=False)
    make_policy(app, m, "P02", PolicyStatus.REPORTED)  # 女职工特殊疾病互助保障, women only
    login_as(app, client, "clerk1")
    save(client, m["member_no"], new_id_number=new_id(birth_for(40), male=True))
    c = change_of(app, m["id"])
    bulk(client, "submit", f"rid={c.id}", 1)
    login_as(app, client, "info1")
    detail = client.get(f"/admin/changes/details/?id={c.id}").get_data(as_text=True)
    assert "审批前请核对" in detail and "女职工特殊疾病互助保障" in detail and "仅限女性" in detail
    confirm = client.get(f"/admin/changes/bulk/approve/?rid={c.id}").get_data(as_text=True)
    assert "仅限女性" in confirm


def test_a_change_whose_member_was_changed_meanwhile_is_skipped_with_the_reason(app, client):
    m = make_member(app, "变更子")
    login_as(app, client, "clerk1")
    save(client, m["member_no"], new_name="变更丑")
    c = change_of(app, m["id"])
    bulk(client, "submit", f"rid={c.id}", 1)
    with app.app_context():
        db.session.execute(sa.update(Member).where(Member.id == m["id"]).values(name="变更寅"))
        db.session.commit()
    login_as(app, client, "info1")
    confirm = client.get(f"/admin/changes/bulk/approve/?rid={c.id}").get_data(as_text=True)
    assert "会员的姓名或身份证号在申请后已被修改" in confirm
    assert member(app, m["id"]).name == "变更寅"


def test_one_pending_change_per_member_and_a_draft_can_be_edited_and_deleted(app, client):
    m = make_member(app, "变更卯")
    login_as(app, client, "clerk1")
    save(client, m["member_no"], new_name="变更辰")
    c = change_of(app, m["id"])
    html = save(client, m["member_no"], new_name="变更巳").get_data(as_text=True)
    assert f"已有一份未审批的变更申请（申请编号 {c.id}）" in html
    page = client.post(
        f"/admin/changes/edit/?id={c.id}",
        data={"csrf_token": csrf_token(client), "new_name": "变更午", "new_id_number": "", "reason": "改错了"},
    )
    assert page.status_code == 302 and change_of(app, m["id"]).new_name == "变更午"
    bulk(client, "submit", f"rid={c.id}", 1)
    html = client.get(f"/admin/changes/edit/?id={c.id}", follow_redirects=True).get_data(as_text=True)
    assert "只有新建状态的会员变更申请可以修改或删除" in html

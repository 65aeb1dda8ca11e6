"""会员调动管理 (manual 一(四)1): 【创建调入调出申请】 → 证件号或会员号 → 【查找】 (masked data of another
unit's member, rate-limited and audited) → 【提交新建申请】 → 信息部 approves → the member's unit is
the applicant's; policies keep the unit they were enrolled in."""

from __future__ import annotations

import re
import threading

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as
from test_policies_entry import make_member, make_policy

from models import ApplicationStatus as AS
from models import (
    AuditLog,
    Member,
    Org,
    Policy,
    PolicyStatus,
    TransferApplication,
    User,
    db,
    scoped,
)
from rules import mask_id


def lookup(client, term):
    return client.post(
        "/admin/transfers/new/",
        data={"csrf_token": csrf_token(client, "/admin/transfers/new/"), "q": term, "do": "lookup"},
    )


def submit(client, term, reason="工作调动"):
    return client.post(
        "/admin/transfers/new/",
        data={"csrf_token": csrf_token(client, "/admin/transfers/new/"), "q": term, "do": "submit", "reason": reason},
    )


def member_row(app, member_id) -> dict:
    with app.app_context():
        m = db.session.get(Member, member_id)
        return {"org": m.org.code, "name": m.name, "id_number": m.id_number, "phone": m.phone, "birth": m.birth_date}


def transfer_of(app, member_id) -> TransferApplication | None:
    with app.app_context():
        t = db.session.scalar(
            sa.select(TransferApplication)
            .where(TransferApplication.member_id == member_id)
            .order_by(TransferApplication.id.desc())
        )
        if t is not None:
            db.session.expunge(t)
        return t


def decide(client, action, app_id, expected=1, **fields):
    data = {"csrf_token": csrf_token(client), "expected": expected}
    data.update(fields)
    return client.post(f"/admin/transfers/bulk/{action}/?rid={app_id}", data=data, follow_redirects=True)


@pytest.fixture
def west_member(app):
    """A confirmed member of 010201 (clerk3's unit) with a phone number, no policies."""
    m = make_member(app, "调动甲")
    with app.app_context():
        db.session.execute(
            sa.update(Member)
            .where(Member.id == m["id"])
            .values(org_id=sa.select(Org.id).where(Org.code == "010201").scalar_subquery(), phone="13912345678")
        )
        db.session.commit()
    return m


def test_the_look_up_shows_only_the_name_the_masked_id_and_the_unit(app, client, west_member):
    login_as(app, client, "clerk1")
    row = member_row(app, west_member["id"])
    html = lookup(client, west_member["member_no"]).get_data(as_text=True)  # by 会员号: the ID is not typed
    assert "调动甲" in html and mask_id(row["id_number"]) in html and "西城区供电局工会" in html
    assert row["id_number"] not in html and row["phone"] not in html
    assert row["birth"].strftime("%Y-%m-%d") not in html and row["birth"].strftime("%Y%m%d") not in html
    assert 'id="submit-btn"' in html
    html = lookup(client, west_member["id_number"]).get_data(as_text=True)  # by ID: the number is not given back
    assert west_member["member_no"] not in html and row["phone"] not in html
    assert html.count(row["id_number"]) == 1 and f'value="{row["id_number"]}"' in html  # only what she typed


def test_every_look_up_is_audited_with_who_and_a_masked_term(app, client, west_member):
    login_as(app, client, "clerk1")
    lookup(client, west_member["id_number"])
    lookup(client, "110101199001011239")  # well-formed? maybe not: audited either way
    with app.app_context():
        rows = db.session.scalars(
            sa.select(AuditLog).where(AuditLog.action == "lookup", AuditLog.user_id == _uid(app, "clerk1"))
        ).all()
        assert len(rows) == 2
        assert rows[0].entity_id == west_member["id"] and rows[0].after["found"] is True
        assert rows[0].after["term"] == mask_id(west_member["id_number"])
        assert rows[1].after["found"] is False


def _uid(app, name):
    return db.session.scalar(sa.select(User.id).where(User.username == name))


def test_the_look_up_is_limited_per_user_and_hour(app, client, west_member):
    app.config["TRANSFER_LOOKUPS_PER_HOUR"] = 3
    try:
        login_as(app, client, "clerk1")
        for _ in range(3):
            assert "调动甲" in lookup(client, west_member["id_number"]).get_data(as_text=True)
        html = lookup(client, west_member["id_number"]).get_data(as_text=True)
        assert "达到每小时 3 次的上限" in html and "调动甲" not in html
        with app.app_context():
            assert (
                db.session.scalar(
                    sa.select(sa.func.count())
                    .select_from(AuditLog)
                    .where(AuditLog.action == "lookup", AuditLog.user_id == _uid(app, "clerk1"))
                )
                == 3
            )
        login_as(app, client, "clerk2")  # per user: clerk2 still may
        assert "调动甲" in lookup(client, west_member["id_number"]).get_data(as_text=True)
    finally:
        app.config["TRANSFER_LOOKUPS_PER_HOUR"] = 30


def test_a_number_nobody_has_says_member_missing_with_the_admission_hint(app, client):
    login_as(app, client, "clerk1")
    html = lookup(client, "9999999999").get_data(as_text=True)
    assert "会员信息不存在，请检查会员信息" in html and "请先办理【入会】" in html
    html = lookup(client, "11010519900307001").get_data(as_text=True)  # 17 digits
    assert "身份证号必须为18位" in html


def test_a_member_already_in_my_unit_is_refused(app, client):
    own = make_member(app, "本单位甲")
    login_as(app, client, "clerk1")
    html = lookup(client, own["id_number"]).get_data(as_text=True)
    assert "该会员已在本单位" in html and 'id="submit-btn"' not in html
    assert "已在本单位" in submit(client, own["id_number"]).get_data(as_text=True)
    assert transfer_of(app, own["id"]) is None


def test_a_member_with_in_flight_policies_in_the_old_unit_is_refused_naming_them(app, client, west_member):
    pid = make_policy(app, west_member, "P03", PolicyStatus.AGENCY_REPORTED)
    with app.app_context():
        db.session.execute(
            sa.update(Policy)
            .where(Policy.id == pid)
            .values(org_id=sa.select(Member.org_id).where(Member.id == west_member["id"]).scalar_subquery())
        )
        db.session.commit()
    login_as(app, client, "clerk1")
    html = lookup(client, west_member["id_number"]).get_data(as_text=True)
    assert "未办结的投保记录" in html and "职工意外伤害互助保障" in html and "代办处已上报" in html
    assert transfer_of(app, west_member["id"]) is None


def test_submitting_creates_one_application_and_a_second_is_refused(app, client, west_member):
    login_as(app, client, "clerk1")
    page = submit(client, west_member["id_number"])
    assert page.status_code == 302
    t = transfer_of(app, west_member["id"])
    assert t.status == AS.SUBMITTED and t.submitted_at is not None
    with app.app_context():
        assert db.session.get(Org, t.to_org_id).code == "010101" and db.session.get(Org, t.from_org_id).code == "010201"
    html = submit(client, west_member["id_number"]).get_data(as_text=True)
    assert "已有一份未审批的调动申请" in html
    login_as(app, client, "clerk2")  # nor may another unit ask for the same member meanwhile
    assert "已有一份未审批的调动申请" in submit(client, west_member["id_number"]).get_data(as_text=True)
    with app.app_context():
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(TransferApplication)
                .where(TransferApplication.member_id == west_member["id"])
            )
            == 1
        )


def test_info_approves_and_the_member_moves_while_old_policies_keep_their_unit(app, client, west_member):
    old = make_policy(app, west_member, "P03", PolicyStatus.EFFECTIVE)
    with app.app_context():
        west = db.session.scalar(sa.select(Org.id).where(Org.code == "010201"))
        db.session.execute(sa.update(Policy).where(Policy.id == old).values(org_id=west))
        db.session.commit()
    login_as(app, client, "clerk1")
    submit(client, west_member["id_number"])
    t = transfer_of(app, west_member["id"])
    login_as(app, client, "info1")
    home = client.get("/admin/").get_data(as_text=True)
    assert "待审批的会员调动申请" in home
    detail = client.get(f"/admin/transfers/details/?id={t.id}").get_data(as_text=True)
    assert "【通过】" in detail and "【驳回】" in detail
    page = decide(client, "approve", t.id)
    assert "已通过 1 条" in page.get_data(as_text=True)
    assert member_row(app, west_member["id"])["org"] == "010101"
    with app.app_context():
        assert db.session.get(Policy, old).org_id == west  # the old policy stays with the old unit
        audit = db.session.scalar(
            sa.select(AuditLog).where(AuditLog.action == "transfer", AuditLog.entity_id == west_member["id"])
        )
        assert audit.before == {"org_id": west} and audit.after["application_id"] == t.id
        assert db.session.get(TransferApplication, t.id).decided_by.username == "info1"
    login_as(app, client, "clerk1")  # the new unit now sees the member and their history
    detail = client.get(f"/admin/member_query/details/?id={west_member['id']}").get_data(as_text=True)
    assert detail.count("职工意外伤害互助保障") >= 1
    login_as(app, client, "clerk3")
    assert client.get(f"/admin/members/details/?id={west_member['id']}").status_code == 404


def test_approving_twice_takes_effect_once(app, client, west_member):
    login_as(app, client, "clerk1")
    submit(client, west_member["id_number"])
    t = transfer_of(app, west_member["id"])
    login_as(app, client, "info1")
    decide(client, "approve", t.id)
    page = decide(client, "approve", t.id).get_data(as_text=True)
    assert "没有可以【当前查询结果通过】的记录" in page or "数据已变化" in page
    with app.app_context():
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(AuditLog)
                .where(AuditLog.action == "transfer", AuditLog.entity_id == west_member["id"])
            )
            == 1
        )


def test_an_application_whose_member_left_the_unit_meanwhile_is_skipped_with_the_reason(app, client, west_member):
    login_as(app, client, "clerk1")
    submit(client, west_member["id_number"])
    t = transfer_of(app, west_member["id"])
    with app.app_context():  # the member moved elsewhere meanwhile
        db.session.execute(
            sa.update(Member)
            .where(Member.id == west_member["id"])
            .values(org_id=sa.select(Org.id).where(Org.code == "010102").scalar_subquery())
        )
        db.session.commit()
    login_as(app, client, "info1")
    detail = client.get(f"/admin/transfers/details/?id={t.id}").get_data(as_text=True)
    assert "不能通过：会员已不在调出单位" in detail
    confirm = client.get(f"/admin/transfers/bulk/approve/?rid={t.id}").get_data(as_text=True)
    assert "会员已不在调出单位" in confirm and re.search(r'id="bulk-count"[^>]*>0<', confirm)
    assert member_row(app, west_member["id"])["org"] == "010102"
    assert transfer_of(app, west_member["id"]).status == AS.SUBMITTED


def test_a_rejection_reason_is_what_the_applicant_sees_and_can_resubmit(app, client, west_member):
    login_as(app, client, "clerk1")
    submit(client, west_member["id_number"])
    t = transfer_of(app, west_member["id"])
    login_as(app, client, "info1")
    page = decide(client, "reject", t.id, **{"p-reason": "请提供调动证明"})
    assert "已驳回 1 条" in page.get_data(as_text=True)
    assert member_row(app, west_member["id"])["org"] == "010201"
    login_as(app, client, "clerk1")
    home = client.get("/admin/").get_data(as_text=True)
    assert "被驳回的会员调动申请" in home and "请提供调动证明" in home
    listing = client.get("/admin/transfers/?status=REJECTED").get_data(as_text=True)
    assert "驳回原因：请提供调动证明" in listing
    page = decide(client, "reopen", t.id)
    assert transfer_of(app, west_member["id"]).status == AS.NEW
    decide(client, "submit", t.id)
    t2 = transfer_of(app, west_member["id"])
    assert t2.status == AS.SUBMITTED and t2.decision_note is None


def test_info_does_not_see_drafts_and_a_clerk_sees_only_her_units_applications(app, client, west_member):
    other = make_member(app, "调动乙")
    login_as(app, client, "clerk2")
    submit(client, other["id_number"])  # 010101's member into 010102
    t = transfer_of(app, other["id"])
    login_as(app, client, "clerk1")
    assert client.get(f"/admin/transfers/details/?id={t.id}").status_code == 404  # the giving unit: not its application
    assert client.get(f"/admin/transfers/bulk/approve/?rid={t.id}").status_code == 404  # nor its button
    login_as(app, client, "clerk3")
    assert client.get(f"/admin/transfers/details/?id={t.id}").status_code == 404
    with app.app_context():
        draft = TransferApplication(
            member_id=west_member["id"],
            from_org_id=db.session.scalar(sa.select(Org.id).where(Org.code == "010201")),
            to_org_id=db.session.scalar(sa.select(Org.id).where(Org.code == "010101")),
        )
        db.session.add(draft)
        db.session.commit()
        draft_id = draft.id
    login_as(app, client, "info1")
    assert client.get(f"/admin/transfers/details/?id={draft_id}").status_code == 404
    assert client.get(f"/admin/transfers/details/?id={t.id}").status_code == 200


# ---- two approvers at the same moment (PostgreSQL) ----------------------------------------------------
@pytest.mark.committed
def test_two_approvers_approving_the_same_transfer_at_once_take_effect_once_with_one_audit_row(app):
    from actions.workflow import workflow_actions
    from models import TRANSFER_WORKFLOW

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite has a single writer: concurrent approvals need PostgreSQL (TEST_DATABASE_URL)")
    m = make_member(app, "并发调动")
    with app.app_context():
        east, west = (db.session.scalar(sa.select(Org.id).where(Org.code == c)) for c in ("010101", "010201"))
        db.session.execute(sa.update(Member).where(Member.id == m["id"]).values(org_id=west))
        t = TransferApplication(member_id=m["id"], from_org_id=west, to_org_id=east, status=AS.SUBMITTED)
        db.session.add(t)
        db.session.commit()
        tid = t.id
    approve = next(a for a in workflow_actions(TRANSFER_WORKFLOW) if a.name == "approve")
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run(username):
        try:
            with app.app_context():
                user = db.session.scalar(sa.select(User).where(User.username == username))
                ids = scoped(
                    sa.select(TransferApplication.id).where(TransferApplication.id == tid), TransferApplication, user
                )
                barrier.wait(timeout=10)
                results.append(approve.run(ids, user, expected=1))
                db.session.commit()
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(u,)) for u in ("info1", "admin")]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        assert errors == []
        assert sorted(r.done for r in results) == [0, 1]
        with app.app_context():
            assert db.session.get(Member, m["id"]).org_id == east
            assert (
                db.session.scalar(
                    sa.select(sa.func.count())
                    .select_from(AuditLog)
                    .where(AuditLog.action == "approve", AuditLog.entity_id == tid)
                )
                == 1
            )
            assert (
                db.session.scalar(
                    sa.select(sa.func.count())
                    .select_from(AuditLog)
                    .where(AuditLog.action == "transfer", AuditLog.entity_id == m["id"])
                )
                == 1
            )
    finally:
        with app.app_context():
            db.session.execute(
                sa.delete(AuditLog).where(
                    AuditLog.entity_id.in_([tid, m["id"]]), AuditLog.action.in_(["approve", "transfer"])
                )
            )
            db.session.execute(sa.delete(TransferApplication).where(TransferApplication.id == tid))
            db.session.execute(sa.delete(Member).where(Member.id == m["id"]))
            db.session.commit()

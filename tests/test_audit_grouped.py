"""Set-based audit (issue 13, lever 4): an action on many records costs one audit row, not a row per
record, and the audit log still says who did what to which records.

当前查询结果上报 of N policies writes ONE audit row naming all N (entity_ids, entity_count); a
policy's history (审计日志 searched by 对象 and 对象编号) shows that 上报 as it showed the row the
policy used to get; 审计日志 lists it as one line "上报 投保记录 共 N 条" that leads to the N
policies; an action that moves nothing writes nothing."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as
from test_policies_entry import make_member, make_policy
from test_policy_actions import confirm, execute, qs

import views.system
from actions import transition
from actions.new_applications import lookups_in_last_hour
from models import AuditLog, Member, Org, Policy, PolicyStatus, Role, User, db, utcnow, write_audit
from models.audit import audit_entries, insert_with_audit, names_record

NAMES = "甲乙丙丁戊己庚辛壬癸子丑"


def _uid(name: str) -> int:
    return db.session.scalar(sa.select(User.id).where(User.username == name))


def new_policies(app, prefix: str, n: int = len(NAMES), org: str = "010101") -> list[int]:
    return [
        make_policy(app, make_member(app, f"{prefix}{NAMES[k]}", org=org), "P03", PolicyStatus.NEW) for k in range(n)
    ]


def report(app, client, prefix: str, user: str = "clerk1") -> int:
    login_as(app, client, user)
    query = qs(status="NEW", name=prefix)
    _html, n = confirm(client, "report", query)
    page = execute(client, "report", query, n)
    assert f"已上报 {n} 条" in page.get_data(as_text=True)
    return n


def report_rows(app, ids) -> list[AuditLog]:
    """The audit rows of 上报 that name any of the policies `ids`."""
    with app.app_context():
        e = audit_entries()
        rows = db.session.scalars(
            sa.select(AuditLog)
            .where(AuditLog.id.in_(sa.select(e.c.id).where(e.c.entity == "policy", e.c.entity_id.in_(ids))))
            .where(AuditLog.action == "report")
            .options(sa.orm.undefer(AuditLog.entity_ids))
        ).all()
        for r in rows:
            db.session.expunge(r)
        return rows


def test_a_bulk_report_of_n_policies_writes_one_audit_row_naming_all_n(app, client):
    ids = new_policies(app, "测合并")
    assert report(app, client, "测合并") == len(ids)
    [row] = report_rows(app, ids)
    assert row.entity == "policy" and row.entity_id is None
    assert row.entity_count == len(ids) and sorted(row.entity_ids) == sorted(ids)
    assert row.after["status"] == "REPORTED"
    with app.app_context():
        assert row.user_id == _uid("clerk1")
        assert db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Policy)
            .where(Policy.id.in_(ids), Policy.status == PolicyStatus.REPORTED)
        ) == len(ids)


def test_reporting_a_single_policy_names_it_as_every_single_record_row_does(app, client):
    [pid] = new_policies(app, "测单条", n=1)
    report(app, client, "测单条")
    [row] = report_rows(app, [pid])
    assert (row.entity_id, row.entity_ids, row.entity_count) == (pid, None, 1)


def test_a_policys_history_shows_the_bulk_report_that_named_it(app, client):
    ids = new_policies(app, "测历史")
    report(app, client, "测历史")
    login_as(app, client, "admin")
    html = client.get(f"/admin/audit/?entity=policy&entity_id={ids[4]}").get_data(as_text=True)
    body = html[html.index("</thead>") :]
    assert body.count("<tr") == 1  # this policy's one action: the 上报 of all of them
    assert "上报" in body and f"共 {len(ids)} 条" in body and "张晓燕" in body
    assert "状态: 上报" in body
    # … as the audit log read per record has it: one entry per policy, the same audit row
    with app.app_context():
        e = audit_entries()
        entries = db.session.execute(
            sa.select(e).where(e.c.entity == "policy", e.c.action == "report", e.c.entity_id.in_(ids))
        ).all()
        assert sorted(r.entity_id for r in entries) == sorted(ids) and len({r.id for r in entries}) == 1
        # and the search condition the screen uses finds it for each policy, nothing for another
        for pid in (ids[0], ids[-1]):
            assert (
                db.session.scalar(sa.select(sa.func.count()).where(AuditLog.entity == "policy", names_record(pid))) == 1
            )
        assert (
            db.session.scalar(
                sa.select(sa.func.count()).where(AuditLog.entity == "policy", names_record(max(ids) + 1000))
            )
            == 0
        )


def test_the_audit_log_lists_the_report_as_one_line_that_leads_to_every_policy(app, client, monkeypatch):
    ids = new_policies(app, "测列表")
    report(app, client, "测列表")
    login_as(app, client, "admin")
    html = client.get("/admin/audit/?entity=policy&user=clerk1").get_data(as_text=True)
    lines = [tr for tr in re.findall(r"<tr.*?</tr>", html, re.S) if f"共 {len(ids)} 条" in tr]
    assert len(lines) == 1 and "上报" in lines[0] and "投保记录" in lines[0]
    link = re.search(r'href="([^"]+)" class="audit-records"', lines[0]).group(1).replace("&amp;", "&")
    page = client.get(link).get_data(as_text=True)
    assert f"上报 投保记录 共 {len(ids)} 条" in page and "张晓燕" in page
    listed = [int(i) for i in re.findall(r'<a href="/admin/policies/details/\?id=(\d+)', page)]
    assert sorted(listed) == sorted(ids)
    with app.app_context():
        member_no = db.session.scalar(
            sa.select(Member.member_no).join(Policy, Policy.member_id == Member.id).where(Policy.id == ids[0])
        )
    assert member_no in page and "测列表甲" in page
    # a page at a time
    monkeypatch.setattr(views.system.AuditLogView, "RECORDS_PAGE", 5)
    third = client.get(link + "&page=3").get_data(as_text=True)
    assert "第 3 / 3 页" in third and "上一页" in third and "下一页" not in third
    assert len(re.findall(r'<a href="/admin/policies/details/\?id=', third)) == len(ids) - 10


def test_a_search_by_a_number_too_large_for_an_id_finds_nothing_and_says_so_in_chinese(app, client):
    login_as(app, client, "admin")
    page = client.get("/admin/audit/?entity_id=999999999999")
    assert page.status_code == 200


def test_another_agencys_report_cannot_be_opened_by_a_tampered_id(app, client):
    new_policies(app, "测西城", n=3, org="010201")
    report(app, client, "测西城", user="clerk3")
    with app.app_context():
        row = db.session.scalar(
            sa.select(AuditLog.id).where(AuditLog.action == "report", AuditLog.user_id == _uid("clerk3"))
        )
    with app.app_context():  # an 信息部 account of 东城代办处: 西城's audit rows are not in its scope
        east = db.session.scalar(sa.select(Org).where(Org.code == "0101"))
        db.session.add(
            User(
                username="info_east",
                display_name="东城信息员",
                role=Role.INFO_DEPT,
                org=east,
                password_hash="x",
                phone="+8613800000099",
            )
        )
        db.session.commit()
    login_as(app, client, "info_east")
    assert client.get("/admin/audit/").status_code == 200
    assert client.get(f"/admin/audit/records/?id={row}").status_code == 404
    assert client.get("/admin/audit/records/?id=abc").status_code == 404
    for other in ("clerk1", "agency1"):  # not a screen of theirs at all
        login_as(app, client, other)
        assert client.get(f"/admin/audit/records/?id={row}").status_code in (403, 404)
    login_as(app, client, "info1")
    assert client.get(f"/admin/audit/records/?id={row}").status_code == 200


def test_a_report_whose_count_changed_meanwhile_writes_no_audit_row(app, client):
    ids = new_policies(app, "测失败", n=3)
    login_as(app, client, "clerk1")
    query = qs(status="NEW", name="测失败")
    _html, n = confirm(client, "report", query)
    page = execute(client, "report", query, n + 1)
    assert "数据已变化" in page.get_data(as_text=True)
    assert report_rows(app, ids) == []


def test_a_transition_that_moves_no_record_writes_no_audit_row(app):
    with app.app_context():
        before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditLog))
        user = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
        nothing = sa.select(Policy.id).where(Policy.id < 0)
        assert transition(Policy, nothing, [PolicyStatus.NEW], PolicyStatus.REPORTED, user, "report") == 0
        assert (
            transition(Policy, nothing, [PolicyStatus.NEW], PolicyStatus.REPORTED, user, "report", returning_ids=True)
            == []
        )
        write_audit("report", "policy", nothing, user.id, after={"status": "REPORTED"})
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditLog)) == before
        db.session.rollback()


def test_a_transition_rolled_back_leaves_no_audit_row(app):
    ids = new_policies(app, "测回滚", n=3)
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
        with pytest.raises(RuntimeError), db.session.begin_nested():
            moved = transition(
                Policy,
                sa.select(Policy.id).where(Policy.id.in_(ids)),
                [PolicyStatus.NEW],
                PolicyStatus.REPORTED,
                user,
                "report",
                returning_ids=True,
            )
            assert sorted(moved) == sorted(ids)
            raise RuntimeError("the rest of the action failed")
        db.session.commit()
    assert report_rows(app, ids) == []


def test_an_insert_with_its_audit_names_every_row_it_inserted_in_one_audit_row(app):
    mids = [make_member(app, f"测插入{NAMES[k]}")["id"] for k in range(4)]
    with app.app_context():
        user = _uid("clerk1")
        policy = db.session.scalar(sa.select(Policy).where(Policy.status == PolicyStatus.EFFECTIVE).limit(1))
        t = Policy.__table__
        columns = [
            "member_id",
            "product_id",
            "org_id",
            "shares",
            "amount",
            "expected_effective_date",
            "expiry_date",
            "status",
            "created_at",
            "updated_at",
            "version",
        ]
        now = utcnow()
        select = sa.select(
            Member.id,
            sa.literal(policy.product_id),
            Member.org_id,
            sa.literal(1),
            sa.literal(policy.amount),
            sa.literal(policy.expected_effective_date),
            sa.literal(policy.expiry_date),
            sa.literal(PolicyStatus.NEW.value),
            sa.literal(now),
            sa.literal(now),
            sa.literal(1),
        ).where(Member.id.in_(mids))
        n = insert_with_audit(t, columns, select, "create", "policy", user, after={"status": "NEW"})
        assert n == 4
        created = db.session.scalars(sa.select(Policy.id).where(Policy.member_id.in_(mids))).all()
        e = audit_entries()
        entries = db.session.execute(sa.select(e).where(e.c.entity == "policy", e.c.entity_id.in_(created))).all()
        assert sorted(r.entity_id for r in entries) == sorted(created)
        assert {(r.action, r.user_id, r.after["status"]) for r in entries} == {("create", user, "NEW")}
        assert len({r.id for r in entries}) == 1
        nothing = insert_with_audit(t, columns, select.where(sa.false()), "create", "policy", user)
        assert nothing == 0 and len(db.session.execute(sa.select(e).where(e.c.entity_id.in_(created))).all()) == 4
        db.session.rollback()


def test_the_hourly_limit_of_look_ups_counts_each_member_a_grouped_row_names(app):
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
        used = lookups_in_last_hour(user)
        three = sa.select(Member.id).order_by(Member.id).limit(3)
        write_audit("lookup", "member", three, user.id, after={"term": "批量业务失败行", "found": True})
        write_audit("lookup", "member", [0], user.id, after={"term": "0000000000", "found": False})
        assert lookups_in_last_hour(user) == used + 4
        db.session.rollback()


def test_the_audit_export_says_how_many_records_a_grouped_row_names(app, client):
    ids = new_policies(app, "测导出", n=3)
    report(app, client, "测导出")
    login_as(app, client, "admin")
    data = {"csrf_token": csrf_token(client)}
    page = client.get("/admin/audit/export/csv/?entity=policy&user=clerk1", data=data)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and f"共 {len(ids)} 条" in text

"""入会管理 bulk actions on the current query: 当前查询结果上报 and 全部删除 (manual 一(一)3, 一(五)3)."""

import re
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from conftest import csrf_token, login_as

from models import Member, MemberStatus, Org, Policy, PolicyStatus, Product, db
from models.audit import audit_entries

NEW_FILTER = "status=NEW"


def _count(app, code, status):
    with app.app_context():
        return db.session.scalar(
            sa.select(sa.func.count()).select_from(Member).join(Org).where(Org.code == code, Member.status == status)
        )


def _confirm(client, action, qs):
    page = client.get(f"/admin/members/bulk/{action}/?{qs}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    n = int(re.search(r'id="bulk-count"[^>]*>(\d+)<', html).group(1))
    return html, n


def test_clerk_reports_new_members_and_they_become_financially_confirmed(app, client):
    login_as(app, client, "clerk1")
    new_before = _count(app, "010101", MemberStatus.NEW)
    confirmed_before = _count(app, "010101", MemberStatus.CONFIRMED)
    html, n = _confirm(client, "report", NEW_FILTER)
    assert n == new_before > 0
    assert "选择状态：新建" in html
    page = client.post(
        f"/admin/members/bulk/report/?{NEW_FILTER}",
        data={"csrf_token": csrf_token(client), "expected": n},
        follow_redirects=True,
    )
    assert f"已上报 {n} 条，跳过 0 条" in page.get_data(as_text=True)
    assert _count(app, "010101", MemberStatus.NEW) == 0
    assert _count(app, "010101", MemberStatus.CONFIRMED) == confirmed_before + n
    with app.app_context():
        e = audit_entries()
        logged = db.session.scalar(
            sa.select(sa.func.count()).select_from(e).where(e.c.action == "report", e.c.entity == "member")
        )
    assert logged == n
    # other units untouched
    assert _count(app, "010102", MemberStatus.NEW) > 0


def test_report_acts_on_every_row_of_the_query_not_only_the_page(app, client):
    login_as(app, client, "clerk1")
    html, n = _confirm(client, "report", "")  # no filter: every 新建/打回 member of the unit
    assert n == _count(app, "010101", MemberStatus.NEW) + _count(app, "010101", MemberStatus.RETURNED)
    assert "状态为“财务确认”" in html  # the rest are listed as skipped, with why


def test_report_of_one_searched_member_touches_only_that_member(app, client):
    login_as(app, client, "clerk1")
    with app.app_context():
        m = db.session.scalar(
            sa.select(Member).join(Org).where(Org.code == "010101", Member.status == MemberStatus.NEW)
        )
        pk, idn = m.id, m.id_number
    html, n = _confirm(client, "report", f"id_number={idn}")
    assert n == 1
    client.post(f"/admin/members/bulk/report/?id_number={idn}", data={"csrf_token": csrf_token(client), "expected": 1})
    with app.app_context():
        assert db.session.get(Member, pk).status == MemberStatus.CONFIRMED
    assert _count(app, "010101", MemberStatus.NEW) > 0


def test_a_count_that_changed_between_confirmation_and_execution_does_nothing(app, client):
    login_as(app, client, "clerk1")
    _, n = _confirm(client, "report", NEW_FILTER)
    page = client.post(
        f"/admin/members/bulk/report/?{NEW_FILTER}", data={"csrf_token": csrf_token(client), "expected": n + 1}
    )
    html = page.get_data(as_text=True)
    assert "数据已变化" in html and "没有做任何操作" in html
    assert _count(app, "010101", MemberStatus.NEW) == n


def test_reporting_twice_changes_nothing_the_second_time(app, client):
    login_as(app, client, "clerk1")
    _, n = _confirm(client, "report", NEW_FILTER)
    client.post(f"/admin/members/bulk/report/?{NEW_FILTER}", data={"csrf_token": csrf_token(client), "expected": n})
    html, again = _confirm(client, "report", NEW_FILTER)
    assert again == 0 and "没有可以【当前查询结果上报】的记录" in html
    page = client.post(
        f"/admin/members/bulk/report/?{NEW_FILTER}", data={"csrf_token": csrf_token(client), "expected": n}
    )
    assert "数据已变化" in page.get_data(as_text=True)
    with app.app_context():
        assert (
            db.session.scalar(
                sa.select(sa.func.count()).select_from(e := audit_entries()).where(e.c.action == "report")
            )
            == n
        )


def test_delete_all_with_the_wrong_phrase_does_nothing(app, client):
    login_as(app, client, "clerk1")
    _, n = _confirm(client, "delete", NEW_FILTER)
    page = client.post(
        f"/admin/members/bulk/delete/?{NEW_FILTER}",
        data={"csrf_token": csrf_token(client), "expected": n, "phrase": "删除"},
    )
    assert "确认文字不正确" in page.get_data(as_text=True)
    assert _count(app, "010101", MemberStatus.NEW) == n


def test_delete_all_never_deletes_a_member_with_a_policy(app, client):
    with app.app_context():
        m = db.session.scalar(
            sa.select(Member).join(Org).where(Org.code == "010101", Member.status == MemberStatus.NEW)
        )
        product = db.session.scalar(sa.select(Product).where(Product.code == "P03"))
        db.session.add(
            Policy(
                member=m,
                product=product,
                org=m.org,
                shares=1,
                amount=Decimal("20.00"),
                expected_effective_date=date(2027, 1, 1),
                expiry_date=date(2027, 12, 31),
                status=PolicyStatus.NEW,
            )
        )
        db.session.commit()
        kept = m.id
    login_as(app, client, "clerk1")
    new_before = _count(app, "010101", MemberStatus.NEW)
    html, n = _confirm(client, "delete", NEW_FILTER)
    assert n == new_before - 1
    assert "已有投保记录，不能删除" in html
    page = client.post(
        f"/admin/members/bulk/delete/?{NEW_FILTER}",
        data={"csrf_token": csrf_token(client), "expected": n, "phrase": "全部删除"},
        follow_redirects=True,
    )
    assert f"已删除 {n} 条" in page.get_data(as_text=True)
    assert _count(app, "010101", MemberStatus.NEW) == 1
    with app.app_context():
        assert db.session.get(Member, kept) is not None
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(e := audit_entries())
                .where(e.c.action == "delete", e.c.entity == "member")
            )
            == n
        )


def test_clerk1_cannot_report_or_delete_clerk2s_members_by_any_request(app, client):
    with app.app_context():
        other = db.session.scalar(
            sa.select(Member).join(Org).where(Org.code == "010102", Member.status == MemberStatus.NEW)
        )
        pk, idn = other.id, other.id_number
    login_as(app, client, "clerk1")
    for action, extra in (("report", {}), ("delete", {"phrase": "全部删除"})):
        html, n = _confirm(client, action, f"id_number={idn}")
        assert n == 0
        client.post(
            f"/admin/members/bulk/{action}/?id_number={idn}",
            data={"csrf_token": csrf_token(client), "expected": 1, **extra},
        )
    with app.app_context():
        assert db.session.get(Member, pk).status == MemberStatus.NEW


def test_agency_and_admin_do_not_get_the_unit_buttons(app, client):
    login_as(app, client, "agency1")
    assert client.get("/admin/members/bulk/report/").status_code == 404
    assert "bulk-report" not in client.get("/admin/members/").get_data(as_text=True)

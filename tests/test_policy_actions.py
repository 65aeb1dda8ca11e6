"""投保管理 bulk actions on the current query (manual 一(二)2/3/5/7, 一(五)4, 二、1; DESIGN.md §5, §8):
汇总金额, 当前查询结果上报 (unit, then agency), 当前查询结果打回 with a reason, 修改预期生效时间, 批量续转,
批量删除, 新会员投保 on 入会管理 — and nobody acts on rows outside their scope."""

from __future__ import annotations

import io
import re
import threading
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import unquote, urlencode

import openpyxl
import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as
from test_policies_entry import EFF, birth_for, make_member, make_policy, policies_of

from models import (
    AuditLog,
    Member,
    MemberStatus,
    Org,
    Policy,
    PolicyStatus,
    Product,
    User,
    db,
    scoped,
)
from models.audit import audit_entries, audit_rows_naming
from rules.products import add_months

LATER = add_months(EFF, 1)


# ---- helpers -------------------------------------------------------------------------------------
def qs(**fields) -> str:
    """The list's query string: its search panel's fields by their stable names."""
    return urlencode(fields)


def confirm(client, action: str, query: str, endpoint: str = "policies"):
    page = client.get(f"/admin/{endpoint}/bulk/{action}/?{query}")
    assert page.status_code == 200, page.status_code
    html = page.get_data(as_text=True)
    n = int(re.search(r'id="bulk-count"[^>]*>(\d+)<', html).group(1))
    return html, n


def totals(html: str) -> tuple[int, Decimal]:
    m = re.search(r'id="bulk-total">人数 <strong>(\d+)</strong> 人，金额 <strong>([\d.]+)</strong> 元', html)
    assert m, html
    return int(m.group(1)), Decimal(m.group(2))


def execute(client, action: str, query: str, expected: int, endpoint: str = "policies", follow=True, **fields):
    data = {"csrf_token": csrf_token(client), "expected": expected}
    data.update(fields)
    return client.post(f"/admin/{endpoint}/bulk/{action}/?{query}", data=data, follow_redirects=follow)


def status_of(app, *ids) -> list[PolicyStatus]:
    with app.app_context():
        return [db.session.get(Policy, i).status for i in ids]


def audit_rows(app, action: str, ids) -> list:
    """What the audit log says `action` did to each of the policies `ids`: an entry per policy
    (models/audit.py audit_entries: a bulk action's one row names all of them)."""
    with app.app_context():
        e = audit_entries()
        return db.session.execute(
            sa.select(e)
            .where(e.c.entity == "policy", e.c.action == action, e.c.entity_id.in_(list(ids)))
            .order_by(e.c.entity_id)
        ).all()


def product_id(app, code: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(Product.id).where(Product.code == code))


def a_set(app, prefix: str, org: str = "010101") -> dict:
    """Members named `prefix…` of `org`, one policy each (P03, 2 shares = 40 元) in these states."""
    out = {}
    for k, status in enumerate(
        [
            PolicyStatus.NEW,
            PolicyStatus.NEW,
            PolicyStatus.RETURNED,
            PolicyStatus.REPORTED,
            PolicyStatus.AGENCY_REPORTED,
            PolicyStatus.EFFECTIVE,
        ]
    ):
        m = make_member(app, f"{prefix}{'甲乙丙丁戊己'[k]}", org=org)
        out.setdefault(status, []).append(make_policy(app, m, "P03", status, shares=2))
    return out


@pytest.fixture
def clerk1(app, client):
    return login_as(app, client, "clerk1")


# ---- 汇总金额 -------------------------------------------------------------------------------------
def test_totals_show_headcount_and_amount_of_the_current_query_as_sql_sums_them(app, clerk1):
    p03 = product_id(app, "P03")
    query = qs(status="NEW", product="P03")
    html, n = confirm(clerk1, "totals", query)
    assert "选择状态：新建" in html and "产品名称：职工意外伤害互助保障" in html
    with app.app_context():
        unit = sa.select(Org.id).where(Org.code == "010101").scalar_subquery()
        where = (Policy.org_id == unit, Policy.status == PolicyStatus.NEW, Policy.product_id == p03)
        count, heads, total = db.session.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(Policy.member_id)), sa.func.sum(Policy.amount)).where(
                *where
            )
        ).one()
    assert count > 0 and n == count
    assert totals(html) == (heads, Decimal(total).quantize(Decimal("0.01")))


def test_totals_of_an_own_set_count_every_state_of_the_query(app, clerk1):
    a_set(app, "测汇总")
    html, n = confirm(clerk1, "totals", qs(status="NEW", name="测汇总"))
    assert n == 2 and totals(html) == (2, Decimal("80.00"))
    html, n = confirm(clerk1, "totals", qs(name="测汇总"))
    assert n == 6 and totals(html) == (6, Decimal("240.00"))


# ---- 当前查询结果上报: unit, then agency ------------------------------------------------------------
def test_unit_reports_new_and_returned_then_the_agency_reports_them_upward(app, client):
    mine = a_set(app, "测上报")
    editable = mine[PolicyStatus.NEW] + mine[PolicyStatus.RETURNED]
    login_as(app, client, "clerk1")
    query = qs(name="测上报")
    html, n = confirm(client, "report", query)
    assert n == 3 and totals(html) == (3, Decimal("120.00"))
    assert "状态为“上报”" in html and "状态为“打印生效”" in html  # the rest, skipped and why
    page = execute(client, "report", query, n)
    assert "已上报 3 条，跳过 0 条" in page.get_data(as_text=True)
    assert status_of(app, *editable) == [PolicyStatus.REPORTED] * 3
    assert status_of(app, *mine[PolicyStatus.EFFECTIVE]) == [PolicyStatus.EFFECTIVE]
    with app.app_context():
        assert db.session.get(Policy, mine[PolicyStatus.RETURNED][0]).return_reason is None
    assert [a.after["status"] for a in audit_rows(app, "report", editable)] == ["REPORTED"] * 3

    login_as(app, client, "agency1")
    query = qs(status="REPORTED", unit="010101", name="测上报")
    html, n = confirm(client, "agency-report", query)
    assert n == 4 and totals(html) == (4, Decimal("160.00"))  # the 3 just reported and the one reported before
    execute(client, "agency-report", query, n)
    reported = editable + mine[PolicyStatus.REPORTED]
    assert status_of(app, *reported) == [PolicyStatus.AGENCY_REPORTED] * 4
    assert len(audit_rows(app, "report", reported)) == 3 + 4


def test_the_unit_cannot_use_the_agency_report_and_the_agency_not_the_unit_one(app, client):
    login_as(app, client, "clerk1")
    assert client.get("/admin/policies/bulk/agency-report/").status_code == 404
    assert client.get("/admin/policies/bulk/return/").status_code == 404
    login_as(app, client, "agency1")
    assert client.get("/admin/policies/bulk/report/").status_code == 404
    assert client.get("/admin/policies/bulk/delete/").status_code == 404


def test_a_count_that_changed_between_confirmation_and_execution_does_nothing(app, clerk1):
    mine = a_set(app, "测变化")
    query = qs(name="测变化")
    _, n = confirm(clerk1, "report", query)
    assert n == 3
    make_policy(app, make_member(app, "测变化庚"), "P03", PolicyStatus.NEW)  # someone adds one meanwhile
    page = execute(clerk1, "report", query, n)
    html = page.get_data(as_text=True)
    assert "数据已变化" in html and "没有做任何操作" in html
    assert status_of(app, *mine[PolicyStatus.NEW]) == [PolicyStatus.NEW] * 2
    assert audit_rows(app, "report", mine[PolicyStatus.NEW] + mine[PolicyStatus.RETURNED]) == []


# ---- 当前查询结果打回 (代办处), with a reason the unit sees -----------------------------------------
def test_agency_returns_reported_policies_with_a_reason_the_unit_sees(app, client):
    mine = a_set(app, "测打回")
    reported = mine[PolicyStatus.REPORTED]
    login_as(app, client, "agency1")
    query = qs(status="REPORTED", unit="010101", name="测打回")
    _, n = confirm(client, "return", query)
    assert n == 1
    page = execute(client, "return", query, n, **{"p-reason": ""})
    assert "请填写打回原因" in page.get_data(as_text=True)
    assert status_of(app, *reported) == [PolicyStatus.REPORTED]
    reason = "份数与工资表不符，请核对"
    page = execute(client, "return", query, n, **{"p-reason": reason})
    assert "已打回 1 条" in page.get_data(as_text=True)
    assert status_of(app, *reported) == [PolicyStatus.RETURNED]
    [row] = audit_rows(app, "return", reported)
    assert row.after == {"status": "RETURNED", "return_reason": reason}

    login_as(app, client, "clerk1")
    html = client.get(f"/admin/policies/?{qs(status='RETURNED', name='测打回')}").get_data(as_text=True)
    assert "打回" in html and f"打回原因：{reason}" in html
    html = client.get(f"/admin/policies/details/?id={reported[0]}").get_data(as_text=True)
    assert reason in html


def test_returning_every_reported_policy_of_a_unit_leaves_other_units_alone(app, client):
    login_as(app, client, "agency1")
    with app.app_context():

        def reported(code):
            return db.session.scalar(
                sa.select(sa.func.count())
                .select_from(Policy)
                .join(Org, Policy.org_id == Org.id)
                .where(Org.code == code, Policy.status == PolicyStatus.REPORTED)
            )

        before = {c: reported(c) for c in ("010101", "010102", "010201")}
    query = qs(status="REPORTED", unit="010101")
    _, n = confirm(client, "return", query)
    assert n == before["010101"] > 0
    execute(client, "return", query, n, **{"p-reason": "请核对"})
    with app.app_context():
        assert reported("010101") == 0
        assert reported("010102") == before["010102"] > 0 and reported("010201") == before["010201"]


# ---- 修改预期生效时间 ---------------------------------------------------------------------------
def test_change_date_refuses_a_reported_policy_and_logs_the_old_date_of_a_new_one(app, clerk1):
    mine = a_set(app, "测改期")
    odd_date = add_months(EFF, 3).replace(day=15)
    odd = make_policy(app, make_member(app, "测改期庚"), "P01", PolicyStatus.NEW, start=odd_date)
    query = qs(name="测改期")
    html, n = confirm(clerk1, "change-date", query)
    assert n == 4 and "状态为“上报”" in html
    page = execute(clerk1, "change-date", query, n, **{"p-effective": LATER.isoformat()})
    assert f"已将 4 条的预期生效时间改为 {LATER:%Y-%m-%d}" in page.get_data(as_text=True)
    with app.app_context():
        new = db.session.get(Policy, mine[PolicyStatus.NEW][0])
        assert new.expected_effective_date == LATER and new.expiry_date == add_months(LATER, 12) - timedelta(days=1)
        for status in (PolicyStatus.REPORTED, PolicyStatus.AGENCY_REPORTED, PolicyStatus.EFFECTIVE):
            other = db.session.get(Policy, mine[status][0])
            assert other.expected_effective_date == EFF, status
            assert other.expiry_date == add_months(EFF, 12) - timedelta(days=1)
    logged = audit_rows(app, "change_date", [mine[PolicyStatus.NEW][0]])
    assert len(logged) == 1
    assert logged[0].before == {"expected_effective_date": EFF.isoformat()}
    assert logged[0].after == {"expected_effective_date": LATER.isoformat()}
    assert audit_rows(app, "change_date", mine[PolicyStatus.REPORTED]) == []
    [row] = audit_rows(app, "change_date", [odd])  # each row keeps its own old date
    assert row.before == {"expected_effective_date": odd_date.isoformat()}
    assert status_of(app, odd) == [PolicyStatus.NEW]


def test_change_date_of_only_a_reported_policy_is_refused_outright(app, clerk1):
    m = make_member(app, "测改期二")
    pid = make_policy(app, m, "P03", PolicyStatus.REPORTED)
    query = qs(id_number=m["id_number"])
    html, n = confirm(clerk1, "change-date", query)
    assert n == 0 and "没有可以【修改预期生效时间】的记录" in html
    execute(clerk1, "change-date", query, 1, **{"p-effective": LATER.isoformat()})
    [pol] = policies_of(app, m)
    assert pol.id == pid and pol.expected_effective_date == EFF


def test_change_date_to_a_past_day_is_refused(app, clerk1):
    m = make_member(app, "测改期三")
    make_policy(app, m, "P03", PolicyStatus.NEW)
    query = qs(id_number=m["id_number"])
    page = execute(clerk1, "change-date", query, 1, **{"p-effective": (date.today() - timedelta(days=1)).isoformat()})
    assert "预期生效时间不能早于今天" in page.get_data(as_text=True)
    assert policies_of(app, m)[0].expected_effective_date == EFF


# ---- 批量删除 ----------------------------------------------------------------------------------
def test_delete_with_the_wrong_phrase_does_nothing(app, clerk1):
    mine = a_set(app, "测删除")
    query = qs(name="测删除")
    _, n = confirm(clerk1, "delete", query)
    assert n == 3
    for phrase in ("", "删除", "全部"):
        page = execute(clerk1, "delete", query, n, phrase=phrase)
        assert "确认文字不正确" in page.get_data(as_text=True)
    assert len(status_of(app, *[i for ids in mine.values() for i in ids])) == 6


def test_delete_with_the_phrase_deletes_new_and_returned_only(app, clerk1):
    mine = a_set(app, "测删除")
    query = qs(name="测删除")
    _, n = confirm(clerk1, "delete", query)
    page = execute(clerk1, "delete", query, n, phrase="全部删除")
    assert "已删除 3 条" in page.get_data(as_text=True)
    gone = mine[PolicyStatus.NEW] + mine[PolicyStatus.RETURNED]
    with app.app_context():
        assert [db.session.get(Policy, i) for i in gone] == [None] * 3
    kept = mine[PolicyStatus.REPORTED] + mine[PolicyStatus.AGENCY_REPORTED] + mine[PolicyStatus.EFFECTIVE]
    assert status_of(app, *kept) == [PolicyStatus.REPORTED, PolicyStatus.AGENCY_REPORTED, PolicyStatus.EFFECTIVE]
    assert len(audit_rows(app, "delete", gone)) == 3


# ---- 批量续转 ----------------------------------------------------------------------------------
def test_renewal_renews_effective_policies_and_skips_a_woman_who_turned_55(app, clerk1):
    start = add_months(EFF, -12)  # running out the day before EFF
    members = {
        "测续转甲": make_member(app, "测续转甲", age=40),
        "测续转乙": make_member(app, "测续转乙", age=50, male=True),
        # 54 when her policy began, 55 on the new effective date: 超龄
        "测续转丙": make_member(app, "测续转丙", birth=birth_for(55, days_after=10)),
    }
    old = {
        name: make_policy(app, m, "P03", PolicyStatus.EFFECTIVE, start=start, shares=2) for name, m in members.items()
    }
    p03 = product_id(app, "P03")
    query = qs(status="EFFECTIVE", name="测续转")
    html, n = confirm(clerk1, "renew", query)
    assert n == 3 and totals(html) == (3, Decimal("120.00"))
    page = execute(clerk1, "renew", query, n, **{"p-product": str(p03), "p-amount": "", "p-effective": EFF.isoformat()})
    html = page.get_data(as_text=True)
    assert "已续转 2 人" in html and "续转失败 1 人" in html
    assert "测续转丙" in html and "超龄" in html
    for name in ("测续转甲", "测续转乙"):
        renewed = [p for p in policies_of(app, members[name]) if p.id != old[name]]
        assert [(p.status, p.renewed_from_id, p.shares, p.amount, p.expected_effective_date) for p in renewed] == [
            (PolicyStatus.NEW, old[name], 2, Decimal("40.00"), EFF)
        ]
        assert renewed[0].expiry_date == add_months(EFF, 12) - timedelta(days=1)
    assert [p.id for p in policies_of(app, members["测续转丙"])] == [old["测续转丙"]]
    assert status_of(app, *old.values()) == [PolicyStatus.EFFECTIVE] * 3  # the old ones run out by themselves
    assert len(audit_rows(app, "renew", [p.id for m in members.values() for p in policies_of(app, m)])) == 2


def test_renewal_with_one_amount_gives_everyone_that_cover_whatever_their_shares_were(app, clerk1):
    """The issue's case: 25 effective P03 policies of mixed shares, 金额 40 → everyone 2 shares."""
    start = add_months(EFF, -12)
    members = [make_member(app, f"测一额{i:02d}", age=30 + i % 20, male=i % 2 == 0) for i in range(25)]
    old = [
        make_policy(app, m, "P03", PolicyStatus.EFFECTIVE, start=start, shares=1 + i % 5) for i, m in enumerate(members)
    ]
    query = qs(status="EFFECTIVE", name="测一额")
    html, n = confirm(clerk1, "renew", query)
    assert n == 25
    assert "【确认保存】" not in html and ">确认保存</button>" in html, "the manual's button word"
    assert "份数 = 金额 ÷ 每份金额" in html
    page = execute(
        clerk1,
        "renew",
        query,
        n,
        **{"p-product": str(product_id(app, "P03")), "p-amount": "40", "p-effective": EFF.isoformat()},
    )
    assert "已续转 25 人（职工意外伤害互助保障），续转失败 0 人" in page.get_data(as_text=True)
    for m, pid in zip(members, old):
        (new,) = [p for p in policies_of(app, m) if p.id != pid]
        assert (new.shares, new.amount, new.renewed_from_id) == (2, Decimal("40.00"), pid)


def test_renewal_with_an_amount_that_is_no_whole_share_or_too_many_shares_does_nothing_and_says_why(app, clerk1):
    m = make_member(app, "测一额错")
    pid = make_policy(app, m, "P03", PolicyStatus.EFFECTIVE, start=add_months(EFF, -12), shares=3)
    query = qs(status="EFFECTIVE", name="测一额错")
    params = {"p-product": str(product_id(app, "P03")), "p-effective": EFF.isoformat()}
    for amount, told in (
        (
            "30",
            "金额 30.00 元不是每份金额 20.00 元的整数倍，职工意外伤害互助保障可填：20.00、40.00、60.00、80.00、100.00 元",
        ),
        ("120", "金额 120.00 元为 6 份，超过每人最多 5 份"),
    ):
        html = execute(clerk1, "renew", query, 1, **params, **{"p-amount": amount}).get_data(as_text=True)
        assert told in html, amount
        assert "本次没有做任何操作" in html and "已续转" not in html
    assert [p.id for p in policies_of(app, m)] == [pid]


def test_renewal_without_an_amount_keeps_each_members_shares(app, clerk1):
    start = add_months(EFF, -12)
    members = [make_member(app, f"测原份{i}", age=35) for i in range(3)]
    old = [make_policy(app, m, "P03", PolicyStatus.EFFECTIVE, start=start, shares=i + 1) for i, m in enumerate(members)]
    query = qs(status="EFFECTIVE", name="测原份")
    params = {"p-product": str(product_id(app, "P03")), "p-amount": "", "p-effective": EFF.isoformat()}
    assert "已续转 3 人" in execute(clerk1, "renew", query, 3, **params).get_data(as_text=True)
    got = [[(p.shares, p.amount) for p in policies_of(app, m) if p.id != pid] for m, pid in zip(members, old)]
    assert got == [[(1, Decimal("20.00"))], [(2, Decimal("40.00"))], [(3, Decimal("60.00"))]]


def test_renewing_twice_creates_nothing_the_second_time(app, clerk1):
    m = make_member(app, "测续转丁")
    make_policy(app, m, "P03", PolicyStatus.EFFECTIVE, start=add_months(EFF, -12))
    query = qs(status="EFFECTIVE", name="测续转丁")
    params = {"p-product": str(product_id(app, "P03")), "p-effective": EFF.isoformat()}
    execute(clerk1, "renew", query, 1, **params)
    html = execute(clerk1, "renew", query, 1, **params).get_data(as_text=True)
    assert "已续转 0 人" in html and "有在途业务" in html
    assert len(policies_of(app, m)) == 2


# ---- 新会员投保 on 入会管理 ------------------------------------------------------------------------
def test_new_member_enrolment_creates_policies_lists_failures_and_offers_the_failure_list(app, clerk1):
    ok = [make_member(app, "测新投甲"), make_member(app, "测新投乙", male=True)]
    old = make_member(app, "测新投丙", age=60, male=True)
    busy = make_member(app, "测新投丁")
    make_policy(app, busy, "P03", PolicyStatus.NEW)
    pending = make_member(app, "测新投戊", status=MemberStatus.NEW)  # not 财务确认: not in the query
    query = qs(status="CONFIRMED", name="测新投")
    html, n = confirm(clerk1, "enrol", query, endpoint="members")
    assert n == 4 and "选择状态：财务确认" in html
    page = execute(
        clerk1,
        "enrol",
        query,
        n,
        endpoint="members",
        **{"p-product": str(product_id(app, "P03")), "p-amount": "40", "p-effective": EFF.isoformat()},
    )
    html = page.get_data(as_text=True)
    assert "已投保 2 人" in html and "投保失败 2 人" in html
    for m in ok:
        [p] = policies_of(app, m)
        assert (p.status, p.shares, p.amount, p.expected_effective_date) == (PolicyStatus.NEW, 2, Decimal("40.00"), EFF)
    assert policies_of(app, old) == [] and len(policies_of(app, busy)) == 1 and policies_of(app, pending) == []
    link = re.search(r'id="failures-download" href="([^"]+)"', html).group(1)
    resp = clerk1.get(link)
    assert resp.status_code == 200 and "批量投保失败人员名单.xlsx" in unquote(resp.headers["Content-Disposition"])
    rows = [[c.value for c in r] for r in openpyxl.load_workbook(io.BytesIO(resp.data)).active.iter_rows()]
    assert rows[0] == ["会员编号", "姓名", "身份证号", "失败原因"]
    failed = {r[1]: r for r in rows[1:]}
    assert set(failed) == {"测新投丙", "测新投丁"}
    assert failed["测新投丙"][0] == old["member_no"] and failed["测新投丙"][2] == old["id_number"]
    assert failed["测新投丙"][3].startswith("超龄") and failed["测新投丁"][3].startswith("有在途业务")
    # the list is the clerk's own: another user gets 404
    login_as(app, clerk1, "clerk2")
    assert clerk1.get(link).status_code == 404


def test_new_member_enrolment_of_every_confirmed_member_of_the_unit(app, clerk1):
    """The manual's query as it stands: 选择状态 = 财务确认, nothing else."""
    query = qs(status="CONFIRMED")
    html, n = confirm(clerk1, "enrol", query, endpoint="members")
    with app.app_context():
        confirmed = db.session.scalars(
            sa.select(Member.id).join(Org).where(Org.code == "010101", Member.status == MemberStatus.CONFIRMED)
        ).all()
        p03 = db.session.scalar(sa.select(Product.id).where(Product.code == "P03"))
        in_flight = set(
            db.session.scalars(
                sa.select(Policy.member_id).where(
                    Policy.member_id.in_(confirmed),
                    Policy.product_id == p03,
                    Policy.status.in_([PolicyStatus.NEW, PolicyStatus.RETURNED, PolicyStatus.REPORTED]),
                )
            ).all()
        )
    assert n == len(confirmed) and in_flight
    page = execute(
        clerk1,
        "enrol",
        query,
        n,
        endpoint="members",
        **{"p-product": str(p03), "p-amount": "20", "p-effective": EFF.isoformat()},
    )
    html = page.get_data(as_text=True)
    done, failed = map(int, re.search(r"已投保 (\d+) 人.*投保失败 (\d+) 人", html).groups())
    assert done + failed == n and done > 0 and failed >= len(in_flight)
    assert html.count("有在途业务") >= len(in_flight)
    with app.app_context():
        created = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Policy)
            .where(
                Policy.member_id.in_(confirmed),
                Policy.product_id == p03,
                Policy.expected_effective_date == EFF,
                Policy.status == PolicyStatus.NEW,
                Policy.created_by_id == sa.select(User.id).where(User.username == "clerk1").scalar_subquery(),
                Policy.amount == Decimal("20.00"),
            )
        )
        assert created >= done
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(e := audit_entries())
                .where(e.c.action == "enrol", e.c.entity == "policy")
            )
            == done
        )


def test_new_member_enrolment_with_an_amount_that_is_no_whole_share_is_told_once_before_anything_is_done(app, clerk1):
    m = make_member(app, "测新投己")
    query = qs(status="CONFIRMED", name="测新投己")
    html = execute(
        clerk1,
        "enrol",
        query,
        1,
        endpoint="members",
        **{"p-product": str(product_id(app, "P03")), "p-amount": "30", "p-effective": EFF.isoformat()},
    ).get_data(as_text=True)
    assert "金额 30.00 元不是每份金额 20.00 元的整数倍" in html
    assert "请按提示填写后再点【确认保存】。本次没有做任何操作。" in html
    assert "已投保" not in html
    assert policies_of(app, m) == []


# ---- scope: nobody acts on rows outside their org subtree ----------------------------------------
def test_clerk1_cannot_act_on_clerk2s_policies_through_any_request(app, clerk1):
    theirs = make_member(app, "测二单位", org="010102")
    ids = [make_policy(app, theirs, "P03", PolicyStatus.NEW), make_policy(app, theirs, "P01", PolicyStatus.RETURNED)]
    by_id = qs(id_number=theirs["id_number"])
    for action, fields in [
        ("report", {}),
        ("delete", {"phrase": "全部删除"}),
        ("change-date", {"p-effective": LATER.isoformat()}),
        ("totals", {}),
    ]:
        html, n = confirm(clerk1, action, by_id)
        assert n == 0, action
        if action != "totals":
            execute(clerk1, action, by_id, 2, **fields)
    for filters in (qs(id_number=theirs["id_number"]), qs(member_no=theirs["member_no"])):
        assert confirm(clerk1, "report", filters)[1] == 0
    # another unit's 单位编号 is "not found" for clerk1: the list says so, the bulk page is not offered
    page = clerk1.get(f"/admin/policies/bulk/report/?{qs(unit='010102')}", follow_redirects=True)
    assert "没有当前单位编号为“010102”的单位，或该单位不在您的管辖范围内" in page.get_data(as_text=True)
    assert 'id="bulk-count"' not in page.get_data(as_text=True)
    html = clerk1.get(f"/admin/policies/?{by_id}").get_data(as_text=True)
    assert "测二单位" not in html
    for pid in ids:
        assert clerk1.get(f"/admin/policies/details/?id={pid}").status_code == 404
        assert clerk1.get(f"/admin/policies/edit/?id={pid}").status_code == 404
        assert (
            clerk1.post(
                f"/admin/policies/edit/?id={pid}",
                data={"csrf_token": csrf_token(clerk1), "member_ref": theirs["member_no"]},
            ).status_code
            == 404
        )
        assert (
            clerk1.post("/admin/policies/delete/", data={"csrf_token": csrf_token(clerk1), "id": pid}).status_code
            == 404
        )
    assert status_of(app, *ids) == [PolicyStatus.NEW, PolicyStatus.RETURNED]
    assert [p.expected_effective_date for p in policies_of(app, theirs)] == [EFF, EFF]
    with app.app_context():
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(e := audit_entries())
                .where(e.c.entity == "policy", e.c.entity_id.in_(ids))
            )
            == 0
        )


def test_agency1_cannot_reach_the_other_agencys_units(app, client):
    west = make_member(app, "测西城", org="010201")
    ids = [make_policy(app, west, "P03", PolicyStatus.REPORTED), make_policy(app, west, "P01", PolicyStatus.EFFECTIVE)]
    login_as(app, client, "agency1")
    csv = client.get("/admin/policies/export/csv/").get_data(as_text=True)
    assert "测西城" not in csv and west["member_no"] not in csv
    with app.app_context():
        mine = db.session.scalar(
            sa.select(Member.member_no)
            .join(Policy, Policy.member_id == Member.id)
            .join(Org, Policy.org_id == Org.id)
            .where(Org.code == "010102")
            .limit(1)
        )
    assert mine in csv and "东城区百货公司工会" in csv  # the export works, with agency1's own units
    assert "西城区供电局工会" not in csv
    for pid in ids:
        assert client.get(f"/admin/policies/details/?id={pid}").status_code == 404
    west_unit = qs(status="REPORTED", unit="010201")
    for action in ("agency-report", "return", "totals"):
        page = client.get(f"/admin/policies/bulk/{action}/?{west_unit}", follow_redirects=True)
        assert "不在您的管辖范围内" in page.get_data(as_text=True), action
        assert 'id="bulk-count"' not in page.get_data(as_text=True), action
    execute(client, "agency-report", west_unit, 1)
    execute(client, "return", west_unit, 1, **{"p-reason": "越权"})
    assert confirm(client, "agency-report", qs(id_number=west["id_number"]))[1] == 0
    assert status_of(app, *ids) == [PolicyStatus.REPORTED, PolicyStatus.EFFECTIVE]
    assert client.get(f"/admin/policies/lookup/?q={west['id_number']}").get_json()["ok"] is False


def test_an_edit_or_delete_of_an_own_reported_policy_is_refused(app, clerk1):
    m = make_member(app, "测锁定")
    pid = make_policy(app, m, "P03", PolicyStatus.REPORTED)
    page = clerk1.post(
        "/admin/policies/delete/", data={"csrf_token": csrf_token(clerk1), "id": pid}, follow_redirects=True
    )
    assert "只有新建或打回状态的投保记录可以修改或删除" in page.get_data(as_text=True)
    assert status_of(app, pid) == [PolicyStatus.REPORTED]


# ---- two clerks report the same query at the same moment (PostgreSQL) -----------------------------
@pytest.mark.committed
def test_two_concurrent_reports_report_each_policy_once_with_one_audit_row(app):
    from actions.policies import unit_report

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite has a single writer: concurrent reports need PostgreSQL (TEST_DATABASE_URL)")
    members, ids = [], []
    try:
        for k in range(40):
            m = make_member(app, f"测并发{k:02d}")
            members.append(m["id"])
            ids.append(make_policy(app, m, "P03", PolicyStatus.NEW if k % 4 else PolicyStatus.RETURNED))
        barrier = threading.Barrier(2)
        results, errors = [], []

        def report():
            try:
                with app.app_context():
                    user = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
                    query = scoped(sa.select(Policy.id).where(Policy.id.in_(ids)), Policy, user)
                    barrier.wait(timeout=10)
                    results.append(unit_report(query, user, expected=len(ids)))
                    db.session.commit()
            except Exception as exc:  # pragma: no cover - shown by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=report) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert len(results) == 2 and sum(r.done for r in results) == len(ids)  # together once, not twice
        with app.app_context():
            assert db.session.scalar(
                sa.select(sa.func.count())
                .select_from(Policy)
                .where(Policy.id.in_(ids), Policy.status == PolicyStatus.REPORTED)
            ) == len(ids)
            e = audit_entries()
            per_policy = db.session.execute(
                sa.select(e.c.entity_id, sa.func.count())
                .where(e.c.entity == "policy", e.c.action == "report", e.c.entity_id.in_(ids))
                .group_by(e.c.entity_id)
            ).all()
            assert sorted(pid for pid, _ in per_policy) == sorted(ids)
            assert {n for _, n in per_policy} == {1}
    finally:
        with app.app_context():
            db.session.execute(sa.delete(AuditLog).where(AuditLog.id.in_(audit_rows_naming("policy", ids))))
            db.session.execute(sa.delete(Policy).where(Policy.id.in_(ids)))
            db.session.execute(sa.delete(Member).where(Member.id.in_(members)))
            db.session.commit()

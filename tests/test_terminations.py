"""保单提前终止 (manual 一(五)5–7; DESIGN.md §3): the unit applies (【创建保单终止申请】 → tick →
【终止保单】 → 【确定】), prints (【批量导出打印】) and submits (【提交保单申请】); the office approves
(each policy 提前终止 with its end date and refund) or rejects with a reason the unit reads."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from conftest import csrf_token
from pdftext import pdf_pages, pdf_text, squeeze
from test_policies_entry import make_member, make_policy
from test_policy_actions import confirm, execute

from models import (
    ApplicationStatus,
    AuditLog,
    Policy,
    PolicyStatus,
    TerminationApplication,
    db,
    termination_policy,
)
from models.audit import audit_entries
from rules import mask_id, refund

TODAY = date.today()
START = TODAY - timedelta(days=100)  # effective 100 days ago: a part of the amount comes back
AS = ApplicationStatus
PICK = "/admin/termination_policies"
APPS = "/admin/terminations"


def effective(app, n=1, org="010101", name="测终止", code="P03", start=START, shares=1) -> list[int]:
    """`n` 打印生效 policies of new members of `org`."""
    ids = []
    for k in range(n):
        m = make_member(app, f"{name}{org[-1]}{k}", org=org)
        ids.append(make_policy(app, m, code, PolicyStatus.EFFECTIVE, start=start, shares=shares))
    return ids


def policies(app, ids) -> list[Policy]:
    with app.app_context():
        out = db.session.scalars(sa.select(Policy).where(Policy.id.in_(list(ids))).order_by(Policy.id)).all()
        for p in out:
            db.session.expunge(p)
        return out


def terminate(client, ids, reason="会员退休", text="", end=None, do="create", **panel):
    """【终止保单】 over the ticked `ids` (and the search's `panel` fields), then 【确定】."""
    query = urlencode({**panel, "ids": ",".join(map(str, ids))} if ids else panel)
    data = {
        "csrf_token": csrf_token(client),
        "reason": reason,
        "reason_text": text,
        "end_date": (end or TODAY + timedelta(days=10)).isoformat() if end != "" else "",
        "do": do,
    }
    return client.post(f"{PICK}/terminate/?{query}", data=data)


def created(client, ids, **kw) -> int:
    page = terminate(client, ids, **kw)
    assert page.status_code == 302, page.get_data(as_text=True)[-3000:]
    return int(re.search(r"id=(\d+)", page.headers["Location"]).group(1))


def application(app, app_id) -> dict:
    with app.app_context():
        a = db.session.get(TerminationApplication, app_id)
        links = db.session.execute(
            sa.select(termination_policy.c.policy_id, termination_policy.c.refund)
            .where(termination_policy.c.application_id == app_id)
            .order_by(termination_policy.c.policy_id)
        ).all()
        return {
            "status": a.status,
            "reason": a.reason,
            "end": a.requested_end_date,
            "refund": a.refund,
            "note": a.decision_note,
            "policies": [p for p, _ in links],
            "refunds": [r for _, r in links],
        }


def problems(page) -> str:
    html = page.get_data(as_text=True)
    m = re.search(r'id="terminate-problems">(.*?)</div>\s*\n', html, re.S)
    assert m, html[-2000:]
    return re.sub(r"<[^>]+>", "", m.group(1))


# ---- the unit: 【创建保单终止申请】 → 【终止保单】 → 【确定】 ----------------------------------------------
def test_the_search_lists_only_the_units_effective_policies(app, as_user):
    mine = effective(app, 1, name="测检索")
    other = effective(app, 1, org="010102", name="测检索")
    m = make_member(app, "测检索新建")
    new = make_policy(app, m, "P03", PolicyStatus.NEW)
    client = as_user("clerk1")
    by_no = {p.id: p.policy_no for p in policies(app, mine + other)}
    html = client.get(f"{PICK}/?name=测检索").get_data(as_text=True)
    assert by_no[mine[0]] in html
    assert by_no[other[0]] not in html  # another unit's
    assert f'value="{new}"' not in html  # not 打印生效
    assert "【终止保单】" in html and 'id="tick-all"' in html
    assert client.get(f"{PICK}/?policy_no={by_no[mine[0]]}").get_data(as_text=True).count('class="tick"') == 1


def test_a_clerk_ticks_policies_and_one_application_holds_them_with_their_refunds(app, as_user):
    ids = effective(app, 2, name="测申请") + effective(app, 1, name="测申请", code="P01", shares=2)
    client = as_user("clerk1")
    end = TODAY + timedelta(days=30)
    app_id = created(client, ids, reason="会员离职（调离本单位）", text="已调往外省", end=end)
    got = application(app, app_id)
    assert got["status"] == AS.NEW and got["end"] == end
    assert got["reason"] == "会员离职（调离本单位）：已调往外省"
    rows = policies(app, ids)
    expected = [refund(p.amount, p.effective_date, p.expiry_date, end) for p in rows]
    assert got["policies"] == ids and got["refunds"] == expected
    assert got["refund"] == sum(expected) and got["refund"] > 0
    assert {p.status for p in rows} == {PolicyStatus.EFFECTIVE}  # nothing ends before the office approves
    page = client.get(f"{APPS}/details/?id={app_id}").get_data(as_text=True)
    assert all(p.policy_no in page for p in rows)
    assert f"{sum(expected):.2f} 元" in page and "【提交保单申请】" in page and "【打印申请表】" in page
    with app.app_context():
        audit = db.session.scalar(
            sa.select(AuditLog).where(AuditLog.entity == "termination_application", AuditLog.entity_id == app_id)
        )
        assert audit.action == "create" and audit.after["policies"] == [p.policy_no for p in rows]


def test_the_terminate_page_shows_each_refund_at_the_chosen_date_before_anything_is_made(app, as_user):
    ids = effective(app, 2, name="测预览")
    client = as_user("clerk1")
    before = _count_apps(app)
    end = TODAY + timedelta(days=45)
    page = terminate(client, ids, end=end, do="preview")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and _count_apps(app) == before
    rows = policies(app, ids)
    amounts = [refund(p.amount, p.effective_date, p.expiry_date, end) for p in rows]
    for a in amounts:
        assert f"{a:.2f} 元" in html
    assert re.search(rf'id="terminate-total">{sum(amounts):.2f} 元', html)
    assert f"按申请终止日期 {end:%Y-%m-%d} 计算" in html
    get = client.get(f"{PICK}/terminate/?ids={ids[0]},{ids[1]}").get_data(as_text=True)
    assert 'id="terminate-count">2<' in get and "会员退休" in get and f'value="{date.today():%Y-%m-%d}"' in get


def _count_apps(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(TerminationApplication))


def test_a_policy_already_in_a_pending_application_is_refused_naming_that_application(app, as_user):
    ids = effective(app, 2, name="测重复")
    client = as_user("clerk1")
    first = created(client, ids[:1])
    before = _count_apps(app)
    page = terminate(client, ids)
    assert page.status_code == 200 and _count_apps(app) == before  # nothing made, not even for the other policy
    no = policies(app, ids[:1])[0].policy_no
    assert f"{no}（测重复10）在申请 {first} 中" in problems(page)
    assert "不能重复申请" in problems(page)
    # submitted is still pending; rejected is not
    _set_status(app, first, AS.SUBMITTED)
    assert f"在申请 {first} 中" in problems(terminate(client, ids[:1]))
    _set_status(app, first, AS.REJECTED)
    assert created(client, ids[:1]) != first


def _set_status(app, app_id, status):
    with app.app_context():
        db.session.execute(
            sa.update(TerminationApplication).where(TerminationApplication.id == app_id).values(status=status)
        )
        db.session.commit()


def test_a_policy_not_effective_is_refused_with_a_message(app, as_user):
    from actions.terminations import TerminationRefused, create_application
    from models import User

    m = make_member(app, "测未生效")
    new = make_policy(app, m, "P03", PolicyStatus.REPORTED)
    client = as_user("clerk1")
    # the screen lists only 打印生效 policies: a ticked id of another state is simply not there
    page = terminate(client, [new])
    assert "没有选中保单" in problems(page)
    # and the rule itself names the policy and its state, whoever calls it
    with app.app_context():
        clerk = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
        with pytest.raises(TerminationRefused) as exc:
            create_application(sa.select(Policy.id).where(Policy.id == new), clerk, "会员退休", "", TODAY)
        db.session.rollback()
    assert "投保记录" in str(exc.value) and "为“上报”" in str(exc.value) and "不能申请提前终止" in str(exc.value)


def test_an_end_date_on_or_after_expiry_or_in_the_past_is_refused_with_a_message(app, as_user):
    ids = effective(app, 1, name="测日期")
    expiry = policies(app, ids)[0].expiry_date
    client = as_user("clerk1")
    before = _count_apps(app)
    for end in (expiry, expiry + timedelta(days=1)):
        text = problems(terminate(client, ids, end=end))
        assert "申请终止日期必须早于保单到期日期" in text and f"到期日期为 {expiry:%Y-%m-%d}" in text
    assert "申请终止日期不能早于今天" in problems(terminate(client, ids, end=TODAY - timedelta(days=1)))
    assert "请填写申请终止日期" in problems(terminate(client, ids, end=""))
    page = client.post(
        f"{PICK}/terminate/?ids={ids[0]}",
        data={"csrf_token": csrf_token(client), "reason": "会员退休", "end_date": "2026-13-45", "do": "create"},
    )
    assert "不是有效的日期" in problems(page)
    assert _count_apps(app) == before
    assert created(client, ids, end=expiry - timedelta(days=1))  # the day before expiry is fine


def test_a_missing_reason_or_other_without_words_is_refused(app, as_user):
    ids = effective(app, 1, name="测原因")
    client = as_user("clerk1")
    assert "请选择终止原因" in problems(terminate(client, ids, reason=""))
    assert "请在补充说明中写明终止原因" in problems(terminate(client, ids, reason="其他", text="  "))
    app_id = created(client, ids, reason="其他", text="单位改制")
    assert application(app, app_id)["reason"] == "单位改制"


def test_more_policies_than_one_form_holds_are_refused_and_say_to_tick_fewer(app, as_user):
    ids = effective(app, 21, name="测超量")
    client = as_user("clerk1")
    page = terminate(client, ids)
    assert "选中了 21 份保单，一份申请最多 20 份" in problems(page)
    # without ticks, the whole query: the same limit
    page = terminate(client, [], name="测超量")
    assert "选中了 21 份保单" in problems(page)


# ---- 【批量导出打印】 ----------------------------------------------------------------------------------
def test_one_pdf_prints_one_form_per_application_of_the_query_with_numbers_policies_refunds_and_names(app, as_user):
    client = as_user("clerk1")
    a = effective(app, 2, name="测打印")
    b = effective(app, 1, name="测打印乙", code="P01", shares=2)
    first, second = created(client, a, reason="会员身故"), created(client, b, reason="会员退休")
    _set_status(app, second, AS.SUBMITTED)
    approved = created(client, effective(app, 1, name="测打印丙"))
    _set_status(app, approved, AS.APPROVED)  # decided: not printed
    html, n = confirm(client, "print", "", endpoint="terminations")
    assert "每份申请一页" in html
    page = execute(client, "print", "", n, endpoint="terminations", follow=False)
    assert page.mimetype == "application/pdf", page.get_data(as_text=True)[-1500:]
    assert "attachment" in page.headers["Content-Disposition"]
    data = page.get_data()
    with app.app_context():
        printable = db.session.scalars(
            sa.select(TerminationApplication.id)
            .where(TerminationApplication.status.in_([AS.NEW, AS.SUBMITTED]))
            .where(TerminationApplication.org_id == _org_id("010101"))
            .order_by(TerminationApplication.id)
        ).all()
    assert pdf_pages(data) == len(printable) == n
    pages = pdf_text(data).split("\f")
    texts = {int(re.search(r"申请编号：(\d+)", p).group(1)): p for p in pages if "申请编号" in p}
    assert sorted(texts) == printable and approved not in texts
    for app_id, ids in ((first, a), (second, b)):
        text, got = texts[app_id], application(app, app_id)
        flat = squeeze(text)
        for p, r in zip(policies(app, ids), got["refunds"]):
            assert p.policy_no in flat and f"{r:.2f}" in flat
            with app.app_context():
                from models import Member

                member = db.session.get(Member, p.member_id)
                assert member.name in flat and mask_id(member.id_number) in flat
                assert member.id_number not in flat  # the paper carries the masked number only
        assert f"退费金额合计：¥{got['refund']:.2f}元" in flat
        assert "经办人（签字）" in flat and "单位负责人（签字）" in flat and "单位盖章" in flat and "日期" in flat
        assert "东城区第一机床厂工会" in flat and got["reason"] in flat
    assert "已提交" in texts[second] and "新建" in texts[first]


def _org_id(code):
    from models import Org

    return db.session.scalar(sa.select(Org.id).where(Org.code == code))


def test_printing_follows_the_query_and_the_ticked_rows(app, as_user):
    client = as_user("clerk1")
    one = created(client, effective(app, 1, name="测勾选"))
    two = created(client, effective(app, 1, name="测勾选乙"))
    data = execute(client, "print", f"ids={two}", 1, endpoint="terminations", follow=False).get_data()
    assert pdf_pages(data) == 1 and f"申请编号：{two}" in pdf_text(data) and f"申请编号：{one}" not in pdf_text(data)
    data = execute(client, "print", f"app_no={one}", 1, endpoint="terminations", follow=False).get_data()
    assert f"申请编号：{one}" in pdf_text(data)


def test_a_hostile_reason_prints_as_text(app, as_user):
    client = as_user("clerk1")
    hostile = "<img src=file:///etc/passwd>"
    app_id = created(client, effective(app, 1, name="测恶意"), reason="其他", text=hostile)
    data = execute(client, "print", f"app_no={app_id}", 1, endpoint="terminations", follow=False).get_data()
    text = pdf_text(data)
    assert hostile in text and "root:" not in text


def test_the_qr_code_leads_to_the_application(app):
    from actions.terminations import application_url

    with app.test_request_context("/", base_url="https://huzhu.example.org"):
        assert application_url(17) == "https://huzhu.example.org/admin/terminations/details/?id=17"
    with app.app_context():
        assert application_url(17).endswith("/admin/terminations/details/?id=17")


# ---- 【提交保单申请】 ----------------------------------------------------------------------------------
def test_submit_moves_the_new_applications_of_the_query_and_ticked_rows_narrow_it(app, as_user):
    client = as_user("clerk1")
    one = created(client, effective(app, 1, name="测提交"))
    two = created(client, effective(app, 1, name="测提交乙"))
    html, n = confirm(client, "submit", f"ids={one}", endpoint="terminations")
    assert n == 1 and "仅勾选的 1 条" in html
    execute(client, "submit", f"ids={one}", 1, endpoint="terminations")
    assert application(app, one)["status"] == AS.SUBMITTED and application(app, two)["status"] == AS.NEW
    _, n = confirm(client, "submit", "status=NEW", endpoint="terminations")
    assert n >= 1
    execute(client, "submit", "status=NEW", n, endpoint="terminations")
    assert application(app, two)["status"] == AS.SUBMITTED


# ---- the office ------------------------------------------------------------------------------------
def test_office_sees_the_to_do_approves_and_every_policy_ends_with_its_date_and_refund(app, as_user):
    clerk = as_user("clerk1")
    ids = effective(app, 2, name="测通过")
    end = TODAY + timedelta(days=20)
    app_id = created(clerk, ids, end=end)
    execute(clerk, "submit", f"app_no={app_id}", 1, endpoint="terminations")
    office = as_user("office1")
    home = office.get("/admin/").get_data(as_text=True)
    assert "待审批的保单提前终止申请" in home
    listed = office.get(f"{APPS}/?status=SUBMITTED").get_data(as_text=True)
    assert f">{app_id}</a>" in listed
    detail = office.get(f"{APPS}/details/?id={app_id}").get_data(as_text=True)
    assert "【通过】" in detail and "【驳回】" in detail and "退费合计" in detail
    html, n = confirm(office, "approve", f"rid={app_id}", endpoint="terminations")
    assert n == 1 and "2 份保单提前终止" in html
    execute(office, "approve", f"rid={app_id}", 1, endpoint="terminations")
    got = application(app, app_id)
    assert got["status"] == AS.APPROVED
    for p, r in zip(policies(app, ids), got["refunds"]):
        assert (p.status, p.terminated_on, p.refund) == (PolicyStatus.TERMINATED, end, r)
    with app.app_context():
        e = audit_entries()
        audit = db.session.execute(
            sa.select(e).where(e.c.entity == "policy", e.c.action == "terminate").where(e.c.entity_id.in_(ids))
        ).all()
    assert sorted(a.entity_id for a in audit) == ids
    assert {a.after["status"] for a in audit} == {"TERMINATED"}


def test_bulk_approve_over_the_current_query_skips_an_application_whose_policy_ended_meanwhile(app, as_user):
    clerk = as_user("clerk1")
    good, bad = created(clerk, effective(app, 1, name="测批量")), created(clerk, effective(app, 1, name="测批量乙"))
    for a in (good, bad):
        execute(clerk, "submit", f"app_no={a}", 1, endpoint="terminations")
    with app.app_context():
        db.session.execute(
            sa.update(Policy)
            .where(Policy.id.in_(application(app, bad)["policies"]))
            .values(status=PolicyStatus.TERMINATED)
        )
        db.session.commit()
    office = as_user("office1")
    query = "status=SUBMITTED&member="
    html, n = confirm(office, "approve", query, endpoint="terminations")
    assert "有保单已不是“打印生效”状态" in html
    page = execute(office, "approve", query, n, endpoint="terminations").get_data(as_text=True)
    assert "已通过" in page
    assert application(app, good)["status"] == AS.APPROVED
    assert application(app, bad)["status"] == AS.SUBMITTED  # skipped, with its reason, never clobbered


def test_office_rejects_with_a_reason_the_unit_reads_and_the_policies_stay_effective(app, as_user):
    clerk = as_user("clerk1")
    ids = effective(app, 1, name="测驳回")
    app_id = created(clerk, ids)
    execute(clerk, "submit", f"app_no={app_id}", 1, endpoint="terminations")
    office = as_user("office1")
    execute(office, "reject", f"rid={app_id}", 1, endpoint="terminations", **{"p-reason": "申请表未盖单位公章"})
    got = application(app, app_id)
    assert got["status"] == AS.REJECTED and got["note"] == "申请表未盖单位公章"
    assert policies(app, ids)[0].status == PolicyStatus.EFFECTIVE
    clerk = as_user("clerk1")
    assert "申请表未盖单位公章" in clerk.get(f"{APPS}/details/?id={app_id}").get_data(as_text=True)
    assert "申请表未盖单位公章" in clerk.get(f"{APPS}/?status=REJECTED").get_data(as_text=True)
    assert "申请表未盖单位公章" in clerk.get("/admin/").get_data(as_text=True)
    assert created(clerk, ids)  # a rejected application no longer holds its policies


def test_a_reopened_application_cannot_be_submitted_while_its_policy_is_in_another_submitted_one(app, as_user):
    clerk = as_user("clerk1")
    ids = effective(app, 1, name="测重开")
    first = created(clerk, ids)
    _set_status(app, first, AS.REJECTED)
    second = created(clerk, ids)
    execute(clerk, "submit", f"app_no={second}", 1, endpoint="terminations")
    execute(clerk, "reopen", f"rid={first}", 1, endpoint="terminations")
    html, n = confirm(clerk, "submit", f"rid={first}", endpoint="terminations")
    assert n == 0 and "有保单已在另一份已提交的提前终止申请中" in html


def test_only_the_unit_applies_and_only_the_office_decides(app, as_user):
    office = as_user("office1")
    assert office.get(f"{PICK}/").status_code == 403
    assert office.get(f"{APPS}/new/").status_code == 403
    assert office.get(f"{APPS}/bulk/submit/").status_code == 404
    clerk = as_user("clerk1")
    assert clerk.get(f"{APPS}/bulk/approve/").status_code == 404
    assert clerk.get(f"{APPS}/new/").headers["Location"].endswith(f"{PICK}/")
    agency = as_user("agency1")
    assert agency.get(f"{APPS}/bulk/approve/").status_code == 404


def test_the_office_does_not_see_the_units_drafts(app, as_user):
    clerk = as_user("clerk1")
    draft = created(clerk, effective(app, 1, name="测草稿"))
    office = as_user("office1")
    assert office.get(f"{APPS}/details/?id={draft}").status_code == 404
    assert f">{draft}</a>" not in office.get(f"{APPS}/").get_data(as_text=True)


def test_a_new_application_can_be_deleted_and_its_policies_are_free_again(app, as_user):
    clerk = as_user("clerk1")
    ids = effective(app, 1, name="测删除")
    app_id = created(clerk, ids)
    page = clerk.post(f"{APPS}/delete/", data={"id": app_id, "csrf_token": csrf_token(clerk)})
    assert page.status_code == 302
    with app.app_context():
        assert db.session.get(TerminationApplication, app_id) is None
        assert not db.session.scalar(sa.select(sa.func.count()).where(termination_policy.c.application_id == app_id))
    assert created(clerk, ids)


def test_the_policy_detail_shows_its_end_date_and_refund(app, as_user):
    clerk = as_user("clerk1")
    ids = effective(app, 1, name="测详情")
    app_id = created(clerk, ids, end=TODAY + timedelta(days=5))
    execute(clerk, "submit", f"app_no={app_id}", 1, endpoint="terminations")
    execute(as_user("office1"), "approve", f"rid={app_id}", 1, endpoint="terminations")
    p = policies(app, ids)[0]
    html = as_user("clerk1").get(f"/admin/policies/details/?id={p.id}").get_data(as_text=True)
    assert "提前终止" in html and f"{p.refund:.2f}" in html and f"{TODAY + timedelta(days=5):%Y-%m-%d}" in html
    assert Decimal(p.refund) > 0

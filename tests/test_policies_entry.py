"""保单管理 → 投保管理 【添加】: 逐一投保 (manual 一(二)1) with the member look-up, checked by the one
enrolment checker; every failure reason of manual 一(四) shown next to its field."""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as

from models import (
    AuditLog,
    Gender,
    Member,
    MemberStatus,
    Org,
    Policy,
    PolicyStatus,
    Product,
    db,
    member_numbers,
)
from rules import id_check_digit
from rules.products import add_months, policy_expiry

EFF = add_months(date.today().replace(day=1), 1)  # the form's default 预期生效时间: the 1st of next month
_seq = itertools.count(1)


# ---- helpers: members and policies of the test's own, with valid ID numbers --------------------
def birth_for(age: int, ref: date = EFF, days_after: int = 1) -> date:
    """Born so that the member is `age` 周岁 on `ref` (the birthday `days_after` days before `ref`;
    0: the birthday is `ref` itself)."""
    anniversary = ref.replace(year=ref.year - age)
    return anniversary - timedelta(days=days_after)


def new_id(birth: date, male: bool) -> str:
    """A valid ID of region 120101 (the demo data uses 1101xx only), unique in the run."""
    k = next(_seq)
    first17 = f"120101{birth:%Y%m%d}{k % 100:02d}{'13579'[k // 100 % 5] if male else '02468'[k // 100 % 5]}"
    return first17 + id_check_digit(first17)


def make_member(
    app,
    name: str,
    age: int = 30,
    male: bool = False,
    org: str = "010101",
    status: MemberStatus = MemberStatus.CONFIRMED,
    exception: bool = False,
    birth: date | None = None,
) -> dict:
    with app.app_context():
        birth = birth or birth_for(age)
        m = Member(
            member_no=member_numbers(1)[0],
            id_number=new_id(birth, male),
            name=name,
            gender=Gender.MALE if male else Gender.FEMALE,
            birth_date=birth,
            org=db.session.scalar(sa.select(Org).where(Org.code == org)),
            status=status,
            admitted_on=date.today() - timedelta(days=400),
            over_age_exception=exception,
            over_age_note="局级干部，未办理正式退休手续" if exception else None,
        )
        db.session.add(m)
        db.session.commit()
        return {"id": m.id, "member_no": m.member_no, "id_number": m.id_number, "name": m.name}


def product(app, code: str) -> dict:
    with app.app_context():
        p = db.session.scalar(sa.select(Product).where(Product.code == code))
        return {"id": p.id, "price": Decimal(p.price), "name": p.name}


def make_policy(app, member: dict, code: str, status: PolicyStatus, start: date = EFF, shares: int = 1) -> int:
    with app.app_context():
        p = db.session.scalar(sa.select(Product).where(Product.code == code))
        m = db.session.get(Member, member["id"])
        live = status in (PolicyStatus.EFFECTIVE, PolicyStatus.TERMINATED)
        pol = Policy(
            member=m,
            product=p,
            org=m.org,
            shares=shares,
            amount=p.price * shares,
            expected_effective_date=start,
            effective_date=start if live else None,
            expiry_date=policy_expiry(start, p.term_months),
            status=status,
            policy_no=f"TE{next(_seq):010d}" if live else None,
        )
        db.session.add(pol)
        db.session.commit()
        return pol.id


def policies_of(app, member: dict) -> list[Policy]:
    with app.app_context():
        rows = db.session.scalars(sa.select(Policy).where(Policy.member_id == member["id"]).order_by(Policy.id)).all()
        for r in rows:
            db.session.expunge(r)
        return rows


# ---- the form ------------------------------------------------------------------------------------
def post_policy(
    client, app, member_ref: str, code: str = "P03", shares: int = 1, amount=None, effective: date = EFF, **extra
):
    prod = product(app, code)
    data = {
        "csrf_token": csrf_token(client, "/admin/policies/new/"),
        "product_id": prod["id"],
        "member_ref": member_ref,
        "shares": shares,
        "amount": f"{prod['price'] * shares:.2f}" if amount is None else amount,
        "expected_effective_date": effective.isoformat(),
    }
    data.update(extra)
    return client.post("/admin/policies/new/", data=data)


def field_errors(page, field: str) -> list[str]:
    """The messages flask-admin renders under one field (its form-group, up to the next one)."""
    html = page.get_data(as_text=True)
    start = html.find(f'id="{field}"')
    assert start >= 0, f"no field {field} on the page"
    end = html.find('class="form-group', start)
    block = html[start : end if end > 0 else len(html)]
    return [re.sub(r"\s+", " ", e).strip() for e in re.findall(r"<li>(.*?)</li>", block, re.S)]


def refused(page, app, member: dict | None, field: str, text: str):
    assert page.status_code == 200, page.headers.get("Location")
    errs = field_errors(page, field)
    assert any(text in e for e in errs), (field, errs, re.findall(r"<li>(.*?)</li>", page.get_data(as_text=True)))
    if member is not None:
        assert [
            p
            for p in policies_of(app, member)
            if p.status == PolicyStatus.NEW and p.expected_effective_date == EFF and p.created_by_id is not None
        ] == []


def saved(page) -> bool:
    """The form was accepted (a redirect); otherwise show every message on the page."""
    html = page.get_data(as_text=True)
    assert page.status_code == 302, re.findall(r"<li>(.*?)</li>", html, re.S) or html[-3000:]
    return True


@pytest.fixture
def clerk1(app, client):
    return login_as(app, client, "clerk1")


def test_the_add_form_offers_products_member_shares_amount_date_and_save_and_add_another(app, clerk1):
    html = clerk1.get("/admin/policies/new/").get_data(as_text=True)
    for field in ("product_id", "member_ref", "shares", "amount", "expected_effective_date"):
        assert f'id="{field}"' in html
    assert "保存并创建下一个" in html
    assert f'value="{EFF.isoformat()}"' in html  # 预期生效时间 defaults to the 1st of next month
    assert "职工意外伤害互助保障" in html and "女职工特殊疾病互助保障" in html


def test_saving_creates_a_new_policy_of_the_members_unit_with_amount_and_expiry(app, clerk1):
    m = make_member(app, "测保存")
    page = post_policy(clerk1, app, m["member_no"], "P03", shares=3, amount="60")
    assert saved(page)
    assert "/admin/policies/new/" not in page.headers["Location"]  # 保存并退出: back to the list
    [pol] = policies_of(app, m)
    assert pol.status == PolicyStatus.NEW
    assert (pol.shares, pol.amount) == (3, Decimal("60.00"))
    assert pol.expected_effective_date == EFF and pol.effective_date is None and pol.policy_no is None
    assert pol.expiry_date == add_months(EFF, 12) - timedelta(days=1)
    with app.app_context():
        assert db.session.get(Org, pol.org_id).code == "010101"
        assert db.session.get(Product, pol.product_id).code == "P03"
        assert (
            db.session.scalar(
                sa.select(AuditLog.action).where(AuditLog.entity == "policy", AuditLog.entity_id == pol.id)
            )
            == "create"
        )


def test_the_member_may_be_given_by_id_number_in_any_spelling(app, clerk1):
    m = make_member(app, "测身份证")
    spelled = " " + m["id_number"][:17] + m["id_number"][17].lower() + " "
    page = post_policy(clerk1, app, spelled, "P01", shares=2, amount="100")
    assert saved(page)
    [pol] = policies_of(app, m)
    assert (pol.shares, pol.amount, pol.status) == (2, Decimal("100.00"), PolicyStatus.NEW)


def test_save_and_add_another_goes_back_to_an_empty_add_form(app, clerk1):
    m = make_member(app, "测下一个")
    page = post_policy(clerk1, app, m["id_number"], _add_another="1")
    assert saved(page) and page.headers["Location"].split("?")[0].endswith("/admin/policies/new/")
    assert len(policies_of(app, m)) == 1
    follow = clerk1.get(page.headers["Location"]).get_data(as_text=True)
    assert 'id="member_ref"' in follow and m["id_number"] not in follow


def test_a_later_effective_date_gives_the_later_expiry(app, clerk1):
    m = make_member(app, "测日期")
    later = add_months(EFF, 2).replace(day=15)
    assert saved(post_policy(clerk1, app, m["member_no"], effective=later))
    [pol] = policies_of(app, m)
    assert pol.expected_effective_date == later and pol.expiry_date == add_months(later, 12) - timedelta(days=1)


# ---- every failure reason of manual 一(四), next to its field --------------------------------------
def test_another_units_member_is_not_found_here(app, clerk1):
    m = make_member(app, "测外单位", org="010102")
    refused(post_policy(clerk1, app, m["id_number"]), app, m, "member_ref", "查无此会员信息")
    refused(post_policy(clerk1, app, m["member_no"]), app, m, "member_ref", "会员调动")
    assert policies_of(app, m) == []


def test_someone_never_admitted_is_missing(app, clerk1):
    idn = new_id(birth_for(30), male=True)
    page = post_policy(clerk1, app, idn)
    refused(page, app, None, "member_ref", "会员信息不存在，请检查会员信息")
    assert any("入会" in e for e in field_errors(page, "member_ref"))
    refused(post_policy(clerk1, app, "9999999999"), app, None, "member_ref", "会员信息不存在")


@pytest.mark.parametrize("status", [MemberStatus.NEW, MemberStatus.RETURNED])
def test_a_member_not_yet_financially_confirmed_cannot_be_enrolled(app, clerk1, status):
    m = make_member(app, "测未确认", status=status)
    refused(post_policy(clerk1, app, m["id_number"]), app, m, "member_ref", "会员未上报财务确认，不能投保")


def test_a_15_digit_id_number_must_be_18(app, clerk1):
    refused(post_policy(clerk1, app, "120101900101123"), app, None, "member_ref", "身份证号必须为18位")


def test_a_wrong_check_digit_names_the_right_one(app, clerk1):
    m = make_member(app, "测校验位")
    right = m["id_number"][17]
    wrong = "0" if right != "0" else "1"
    refused(
        post_policy(clerk1, app, m["id_number"][:17] + wrong),
        app,
        m,
        "member_ref",
        f"投保人身份证不合法,错误原因:检验位应为{right}",
    )


def test_a_member_with_a_new_policy_of_the_product_has_business_in_flight(app, clerk1):
    m = make_member(app, "测在途")
    make_policy(app, m, "P03", PolicyStatus.NEW)
    refused(post_policy(clerk1, app, m["id_number"], "P03"), app, None, "product_id", "有在途业务")
    # another product is no business in flight
    assert saved(post_policy(clerk1, app, m["id_number"], "P01"))


@pytest.mark.parametrize("status", [PolicyStatus.REPORTED, PolicyStatus.RETURNED])
def test_a_reported_or_returned_policy_is_business_in_flight_too(app, clerk1, status):
    m = make_member(app, "测在途二")
    make_policy(app, m, "P03", status)
    refused(post_policy(clerk1, app, m["id_number"], "P03"), app, None, "product_id", "有在途业务")


def test_shares_of_an_overlapping_effective_policy_count_against_the_maximum(app, clerk1):
    m = make_member(app, "测超份数")
    make_policy(app, m, "P03", PolicyStatus.EFFECTIVE, start=add_months(EFF, -6), shares=4)
    refused(post_policy(clerk1, app, m["id_number"], "P03", shares=2), app, None, "shares", "超份数")
    assert len(policies_of(app, m)) == 1
    assert saved(post_policy(clerk1, app, m["id_number"], "P03", shares=1))  # 4 + 1 = 5 is allowed


def test_the_same_period_already_enrolled_is_a_duplicate(app, clerk1):
    eff_member = make_member(app, "测重复甲")
    make_policy(app, eff_member, "P01", PolicyStatus.EFFECTIVE, start=EFF)
    refused(post_policy(clerk1, app, eff_member["id_number"], "P01"), app, None, "product_id", "投保记录重复")
    agency_member = make_member(app, "测重复乙")
    make_policy(app, agency_member, "P01", PolicyStatus.AGENCY_REPORTED, start=EFF)
    refused(post_policy(clerk1, app, agency_member["member_no"], "P01"), app, None, "product_id", "投保记录重复")


def test_a_man_cannot_take_the_womens_product(app, clerk1):
    m = make_member(app, "测男性", male=True)
    refused(post_policy(clerk1, app, m["id_number"], "P02"), app, m, "product_id", "性别错误")


def test_a_man_of_60_is_over_age(app, clerk1):
    m = make_member(app, "测超龄", age=60, male=True)
    refused(post_policy(clerk1, app, m["id_number"]), app, m, "member_ref", "超龄")


def test_a_woman_of_55_on_the_effective_date_is_over_age_and_54_is_not(app, clerk1):
    old = make_member(app, "测五五", age=55, birth=birth_for(55, days_after=0))  # her birthday is the effective date
    refused(post_policy(clerk1, app, old["id_number"]), app, old, "member_ref", "超龄")
    young = make_member(app, "测五四", birth=birth_for(55, days_after=-1))  # 55 the day after
    assert saved(post_policy(clerk1, app, young["id_number"]))


def test_sixteen_is_under_age(app, clerk1):
    m = make_member(app, "测未满", age=16, male=True)
    refused(post_policy(clerk1, app, m["id_number"]), app, m, "member_ref", "未满投保年龄")


def test_an_amount_that_does_not_match_the_shares_is_refused(app, clerk1):
    m = make_member(app, "测金额")
    refused(
        post_policy(clerk1, app, m["id_number"], "P03", shares=2, amount="30"), app, m, "amount", "投保金额与份数不符"
    )


def test_more_shares_than_the_product_allows_are_refused(app, clerk1):
    m = make_member(app, "测份数")
    page = post_policy(clerk1, app, m["id_number"], "P01", shares=3, amount="150")
    refused(page, app, m, "shares", "份数应在1至2之间")


# ---- over age, not formally retired (agency approved): ask, then save --------------------------
def test_an_over_age_member_with_the_exception_is_asked_first_and_saved_after_confirming(app, clerk1):
    m = make_member(app, "测局级", age=57, exception=True)
    page = post_policy(clerk1, app, m["id_number"])
    refused(page, app, m, "confirm_over_age", "此会员超出投保年龄，是否继续投保")
    assert policies_of(app, m) == []
    page = post_policy(clerk1, app, m["id_number"], confirm_over_age="y")
    assert saved(page)
    [pol] = policies_of(app, m)
    assert pol.status == PolicyStatus.NEW


def test_at_65_even_the_exception_does_not_help(app, clerk1):
    m = make_member(app, "测六五", age=65, male=True, exception=True)
    refused(post_policy(clerk1, app, m["id_number"], confirm_over_age="y"), app, m, "member_ref", "超龄")


# ---- the member look-up (on leaving the field) --------------------------------------------------
def test_lookup_of_an_own_member_gives_name_gender_age_and_unit(app, clerk1):
    m = make_member(app, "测查找", age=40, male=True)
    for q in (m["id_number"], m["member_no"], str(int(m["member_no"]))):
        data = clerk1.get(f"/admin/policies/lookup/?q={q}&effective={EFF.isoformat()}").get_json()
        assert data["ok"] is True, data
        assert (data["name"], data["gender"], data["age"], data["member_no"]) == ("测查找", "男", 40, m["member_no"])
        assert data["unit"] == "东城区第一机床厂工会"


def test_lookup_of_another_units_member_says_not_found_with_the_transfer_hint_and_no_data(app, clerk1):
    m = make_member(app, "测他人", org="010201")
    for q in (m["id_number"], m["member_no"]):
        resp = clerk1.get(f"/admin/policies/lookup/?q={q}")
        data = resp.get_json()
        assert data["ok"] is False and data["message"] == "查无此会员信息" and "会员调动" in data["hint"]
        text = resp.get_data(as_text=True)
        for secret in ("测他人", "西城区供电局工会", m["member_no"] if q != m["member_no"] else m["id_number"]):
            assert secret not in text
        assert set(data) <= {"ok", "code", "message", "hint"}


def test_lookup_of_someone_never_admitted_says_so_with_the_admission_hint(app, clerk1):
    data = clerk1.get(f"/admin/policies/lookup/?q={new_id(birth_for(30), True)}").get_json()
    assert data["ok"] is False and data["message"] == "会员信息不存在，请检查会员信息" and "入会" in data["hint"]


def test_lookup_of_a_malformed_id_number_says_what_is_wrong(app, clerk1):
    data = clerk1.get("/admin/policies/lookup/?q=120101900101123").get_json()
    assert (data["ok"], data["code"], data["message"]) == (False, "ID_LENGTH", "身份证号必须为18位")
    m = make_member(app, "测查校验")
    right = m["id_number"][17]
    data = clerk1.get(f"/admin/policies/lookup/?q={m['id_number'][:17]}{'0' if right != '0' else '1'}").get_json()
    assert (data["ok"], data["code"]) == (False, "ID_CHECKSUM")
    assert data["message"] == f"投保人身份证不合法,错误原因:检验位应为{right}" and "会员变更" in data["hint"]


def test_the_form_is_for_units_only(app, client):
    login_as(app, client, "agency1")
    assert client.get("/admin/policies/new/").status_code in (302, 403)


def test_a_new_policy_of_an_earlier_period_is_still_business_in_flight(app, clerk1):
    """有在途业务 whatever the period: the NEW one must be reported first (manual 一(四)5)."""
    m = make_member(app, "测在途三")
    make_policy(app, m, "P03", PolicyStatus.NEW, start=EFF)
    after_it = add_months(EFF, 13)  # begins after the NEW one would have run out
    refused(post_policy(clerk1, app, m["id_number"], "P03", effective=after_it), app, None, "product_id", "有在途业务")
    assert len(policies_of(app, m)) == 1


def test_editing_an_own_new_policy_does_not_count_it_against_itself(app, clerk1):
    m = make_member(app, "测修改")
    pid = make_policy(app, m, "P03", PolicyStatus.NEW, shares=5)
    prod = product(app, "P03")
    url = f"/admin/policies/edit/?id={pid}"
    page = clerk1.post(
        url,
        data={
            "csrf_token": csrf_token(clerk1, url),
            "product_id": prod["id"],
            "member_ref": m["member_no"],
            "shares": 4,
            "amount": "80.00",
            "expected_effective_date": EFF.isoformat(),
        },
    )
    assert saved(page)
    [pol] = policies_of(app, m)
    assert (pol.id, pol.shares, pol.amount, pol.status) == (pid, 4, Decimal("80.00"), PolicyStatus.NEW)
    with app.app_context():
        [row] = db.session.scalars(
            sa.select(AuditLog).where(AuditLog.entity == "policy", AuditLog.entity_id == pid)
        ).all()
        assert row.action == "update" and row.before.get("shares") == 5 and row.after["shares"] == 4

"""The agency's 超龄例外 is honoured by every way in (manual 一(三)1, 一(四)9): 入会 one by one and by
批量入会, 投保 one by one, by 新会员投保 and by 模板批量投保.  Each asks the manual's question
"此会员超出投保年龄，是否继续投保" first (a tick on the forms; on a batch, 业务校验 asks and 【业务办理】
is the answer), and none accepts anyone of 65 or more, exception or not.

Can an exception exist before 入会?  Yes: the manual says the person "需提供相关文件，代办处同意后，进行
入会操作" — the request is made for an ID number (the person need not be a member yet), and 入会,
single or batch, then admits them with the exception recorded."""

from __future__ import annotations

import io
from datetime import date

import openpyxl
import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as
from test_member_entry import errors, make_id, post_member, years_ago
from test_over_age import approved_request
from test_policies_entry import EFF, birth_for, make_member, make_policy, policies_of, post_policy, product, refused

from models import ApplicationStatus as AS
from models import Member, Org, OverAgeApplication, PolicyStatus, User, db
from models.audit import audit_entries
from rules.products import add_months


def members_xlsx(rows) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["姓名", "身份证号"])
    for name, idn in rows:
        ws.append([name, idn])
        ws.cell(ws.max_row, 2).number_format = "@"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def policies_xlsx(rows) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["姓名", "身份证号", "份数", "投保金额"])
    for name, idn in rows:
        ws.append([name, idn, 1, 20])
        ws.cell(ws.max_row, 2).number_format = "@"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def batch(client, kind: str, data: bytes, **fields) -> tuple[str, str]:
    """Upload, then 业务校验: (the batch page's address, the check's page)."""
    url = f"/admin/batches/upload/{kind}/"
    page = client.post(
        url,
        data={"csrf_token": csrf_token(client, url), "file": (io.BytesIO(data), f"{kind}.xlsx"), **fields},
        content_type="multipart/form-data",
    )
    assert page.status_code == 302, page.get_data(as_text=True)[-1500:]
    loc = page.headers["Location"]
    return loc, stage(client, loc, "check")


def stage(client, loc: str, name: str) -> str:
    return client.post(f"{loc}{name}/", data={"csrf_token": csrf_token(client, loc)}).get_data(as_text=True)


def member_of(app, idn) -> Member | None:
    with app.app_context():
        m = db.session.scalar(sa.select(Member).where(Member.id_number == idn))
        if m is not None:
            db.session.expunge(m)
        return m


def old_exception(app, idn: str, name: str, org: str = "010101") -> None:
    """An exception the agency approved while the person was still under 65 (they are 65 now)."""
    with app.app_context():
        agency = db.session.scalar(sa.select(User).where(User.username == "agency1"))
        gender = "M" if int(idn[16]) % 2 else "F"
        db.session.add(
            OverAgeApplication(
                org_id=db.session.scalar(sa.select(Org.id).where(Org.code == org)),
                id_number=idn,
                name=name,
                gender=gender,
                birth_date=date(int(idn[6:10]), int(idn[10:12]), int(idn[12:14])),
                reason="局级干部，未办理正式退休手续",
                status=AS.APPROVED,
                decided_by_id=agency.id,
            )
        )
        db.session.commit()


# ---- 入会 --------------------------------------------------------------------------------------------
def test_member_aged_62_with_agency_consent_can_be_admitted_one_by_one_after_confirming(app, client):
    idn = make_id(years_ago(62, days=30), seq=61, male=True)
    approved_request(app, client, idn, name="钱副局")
    assert any(
        "此会员超出投保年龄，是否继续投保" in e for e in errors(post_member(client, name="钱副局", id_number=idn))
    )
    assert member_of(app, idn) is None
    assert post_member(client, name="钱副局", id_number=idn, confirm_over_age="y").status_code == 302
    assert member_of(app, idn).over_age_exception


def test_member_aged_62_with_agency_consent_can_be_admitted_by_batch_the_check_asks_first(app, client):
    idn = make_id(years_ago(62, days=30), seq=63, male=True)
    plain = make_id(years_ago(30), seq=65, male=True)
    a = approved_request(app, client, idn, name="孙副局")
    loc, html = batch(client, "members", members_xlsx([("孙副局", idn), ("周青年", plain)]))
    assert "通过 2 行，失败 0 行" in html
    assert "此会员超出投保年龄，是否继续投保" in html and "第2行（孙副局）" in html, html[-3000:]
    assert member_of(app, idn) is None  # the check writes nothing
    html = stage(client, loc, "process")
    assert "成功 2 行" in html and "已办理 1 名超出投保年龄的人员" in html
    m = member_of(app, idn)
    assert m.over_age_exception and m.over_age_note == "局级干部，未办理正式退休手续"
    assert not member_of(app, plain).over_age_exception
    with app.app_context():
        assert db.session.get(Member, m.id).over_age_approved_by.username == "agency1"
        assert db.session.get(OverAgeApplication, a.id).member_id == m.id
        e = audit_entries()
        audit = db.session.scalars(sa.select(e.c.action).where(e.c.entity == "member", e.c.entity_id == m.id)).all()
        assert sorted(audit) == ["create", "over_age"]
    result = openpyxl.load_workbook(io.BytesIO(client.get(f"{loc}result/").data)).active
    row = [c.value for c in list(result.iter_rows())[1]]
    assert "成功" in row and any("代办处已同意超龄例外" in str(v) for v in row), row


def test_member_aged_62_without_agency_consent_is_refused_by_batch_with_the_way_to_ask(app, client):
    idn = make_id(years_ago(62, days=30), seq=67, male=True)
    login_as(app, client, "clerk1")
    _, html = batch(client, "members", members_xlsx([("吴副局", idn)]))
    assert "失败 1 行" in html and "超龄（62周岁）" in html and "【超龄例外申请】" in html


def test_a_consent_asked_by_another_unit_does_not_admit_in_mine(app, client):
    idn = make_id(years_ago(62, days=30), seq=69, male=True)
    old_exception(app, idn, "郑副局", org="010201")  # clerk3's unit, under another agency
    login_as(app, client, "clerk1")
    _, html = batch(client, "members", members_xlsx([("郑副局", idn)]))
    assert "失败 1 行" in html and "超龄（62周岁）" in html


def test_member_aged_65_is_never_admitted_not_even_with_an_old_consent(app, client):
    idn = make_id(years_ago(65, days=30), seq=71, male=True)
    old_exception(app, idn, "王老")
    login_as(app, client, "clerk1")
    _, html = batch(client, "members", members_xlsx([("王老", idn)]))
    assert "失败 1 行" in html and "超龄（65周岁）" in html and "此会员超出投保年龄，是否继续投保" not in html
    page = post_member(client, name="王老", id_number=idn, confirm_over_age="y")
    assert page.status_code == 200 and any("超龄（65周岁）" in e for e in errors(page))
    assert member_of(app, idn) is None


# ---- 投保 --------------------------------------------------------------------------------------------
@pytest.fixture
def agreed(app, client):
    """A confirmed member of clerk1's unit, a man of 62 on the effective date, with the agency's consent."""
    m = make_member(app, "冯副局", male=True, birth=birth_for(62))
    approved_request(app, client, m["id_number"], name="冯副局")
    with app.app_context():
        assert db.session.get(Member, m["id"]).over_age_exception
    return m


def test_member_aged_62_with_agency_consent_can_be_enrolled_one_by_one_after_confirming(app, client, agreed):
    refused(post_policy(client, app, agreed["id_number"]), app, agreed, "confirm_over_age", "是否继续投保")
    assert post_policy(client, app, agreed["id_number"], confirm_over_age="y").status_code == 302


def enrol_page(client, member_id):
    return client.get(f"/admin/members/bulk/enrol/?rid={member_id}").get_data(as_text=True)


def enrol(app, client, member_id, **extra):
    data = {
        "csrf_token": csrf_token(client, f"/admin/members/bulk/enrol/?rid={member_id}"),
        "expected": 1,
        "p-product": product_id(app),
        "p-amount": "20.00",
        "p-effective": EFF.isoformat(),
        **extra,
    }
    return client.post(f"/admin/members/bulk/enrol/?rid={member_id}", data=data).get_data(as_text=True)


def product_id(app) -> str:
    return str(product(app, "P03")["id"])


def test_member_aged_62_with_agency_consent_can_be_enrolled_by_新会员投保_after_confirming(app, client, agreed):
    html = enrol_page(client, agreed["id"])
    assert "此会员超出投保年龄，是否继续投保" in html and "冯副局" in html and 'name="p-confirm_over_age"' in html
    html = enrol(app, client, agreed["id"])  # not ticked: not enrolled, and the failure list says why
    assert "投保失败 1 人" in html and "未确认继续投保" in html
    assert policies_of(app, agreed) == []
    html = enrol(app, client, agreed["id"], **{"p-confirm_over_age": "y"})
    assert [p.status for p in policies_of(app, agreed)] == [PolicyStatus.NEW]


def test_the_question_is_not_asked_when_no_member_of_the_query_is_over_age(app, client):
    m = make_member(app, "褚青年", male=True, age=30)
    login_as(app, client, "clerk1")
    html = enrol_page(client, m["id"])
    assert "是否继续投保" not in html and "p-confirm_over_age" not in html
    enrol(app, client, m["id"])
    assert [p.status for p in policies_of(app, m)] == [PolicyStatus.NEW]


def test_member_aged_62_with_agency_consent_can_be_enrolled_by_batch_the_check_asks_first(app, client, agreed):
    loc, html = batch(
        client,
        "policies",
        policies_xlsx([("冯副局", agreed["id_number"])]),
        product="P03",
        effective=EFF.isoformat(),
        use_template_amount="1",
    )
    assert "通过 1 行" in html and "此会员超出投保年龄，是否继续投保" in html and "第2行" in html, html[-3000:]
    assert policies_of(app, agreed) == []
    assert "成功 1 行" in stage(client, loc, "process")
    assert [p.status for p in policies_of(app, agreed)] == [PolicyStatus.NEW]


def test_member_aged_65_is_never_enrolled_not_even_with_the_consent(app, client):
    m = make_member(app, "卫老", male=True, birth=birth_for(65, ref=date.today()))
    old_exception(app, m["id_number"], "卫老")
    with app.app_context():
        db.session.get(Member, m["id"]).over_age_exception = True
        db.session.commit()
    login_as(app, client, "clerk1")
    refused(post_policy(client, app, m["id_number"], confirm_over_age="y"), app, m, "member_ref", "超龄")
    assert "是否继续投保" not in enrol_page(client, m["id"])
    assert "投保失败 1 人" in enrol(app, client, m["id"], **{"p-confirm_over_age": "y"})
    _, html = batch(
        client,
        "policies",
        policies_xlsx([("卫老", m["id_number"])]),
        product="P03",
        effective=EFF.isoformat(),
        use_template_amount="1",
    )
    assert "失败 1 行" in html and "超龄" in html
    assert policies_of(app, m) == []


def test_批量续转_asks_the_question_for_a_member_with_the_consent_and_renews_only_when_confirmed(app, client, agreed):
    """Manual 一(二)3: the renewal of an effective policy of a member over the limit asks it too."""
    expiring = make_policy(app, agreed, "P03", PolicyStatus.EFFECTIVE, start=add_months(EFF, -12))
    url = f"/admin/policies/bulk/renew/?rid={expiring}"
    html = client.get(url).get_data(as_text=True)
    assert "此会员超出投保年龄，是否继续投保" in html and 'name="p-confirm_over_age"' in html
    data = {
        "csrf_token": csrf_token(client, url),
        "expected": 1,
        "p-product": product_id(app),
        "p-amount": "20.00",
        "p-effective": EFF.isoformat(),
    }
    assert "续转失败 1 人" in client.post(url, data=data).get_data(as_text=True)
    client.post(url, data={**data, "p-confirm_over_age": "y"})
    assert [p.renewed_from_id for p in policies_of(app, agreed) if p.status == PolicyStatus.NEW] == [expiring]

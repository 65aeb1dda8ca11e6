"""超龄例外 (manual 一(三)1, 一(四)9): the clerk requests it (person, reason, a PDF/JPG/PNG ≤ 5 MB checked by
content), 代办处 approves or rejects; only then do 入会 and 投保 accept the person, after the manual's
question "此会员超出投保年龄，是否继续投保".  65 or older: never."""

from __future__ import annotations

import io
from datetime import date

import sqlalchemy as sa
from conftest import csrf_token, login_as
from test_member_entry import errors, make_id, post_member, years_ago
from test_policies_entry import EFF, birth_for, make_member, post_policy, refused

from models import ApplicationStatus as AS
from models import AuditLog, Member, OverAgeApplication, db

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def request_exception(
    client, id_number, name="钱局长", reason="局级干部，未办理正式退休手续", data=PDF, filename="证明.pdf"
):
    fields = {
        "csrf_token": csrf_token(client, "/admin/over_age/new/"),
        "id_number": id_number,
        "name": name,
        "reason": reason,
    }
    if data is not None:
        fields["document"] = (io.BytesIO(data), filename)
    return client.post("/admin/over_age/new/", data=fields, content_type="multipart/form-data")


def request_of(app, id_number) -> OverAgeApplication | None:
    with app.app_context():
        a = db.session.scalar(
            sa.select(OverAgeApplication)
            .where(OverAgeApplication.id_number == id_number)
            .order_by(OverAgeApplication.id.desc())
        )
        if a is not None:
            db.session.expunge(a)
        return a


def decide(client, action, app_id, **fields):
    data = {"csrf_token": csrf_token(client), "expected": 1}
    data.update(fields)
    return client.post(f"/admin/over_age/bulk/{action}/?rid={app_id}", data=data, follow_redirects=True)


def approved_request(app, client, id_number, name="钱局长"):
    login_as(app, client, "clerk1")
    assert request_exception(client, id_number, name).status_code == 302
    a = request_of(app, id_number)
    decide(client, "submit", a.id)
    login_as(app, client, "agency1")
    decide(client, "approve", a.id)
    login_as(app, client, "clerk1")
    return request_of(app, id_number)


def test_without_an_approved_exception_an_over_age_person_cannot_be_admitted(app, client):
    login_as(app, client, "clerk1")
    page = post_member(
        client, name="钱局长", id_number=make_id(years_ago(58, days=30), male=False), confirm_over_age="y"
    )
    assert any("超龄（58周岁）" in e and "【超龄例外申请】" in e for e in errors(page))
    assert "经代办处同意" in page.get_data(as_text=True)


def test_the_clerk_requests_the_agency_approves_and_then_admission_asks_and_saves(app, client):
    idn = make_id(years_ago(58, days=30), seq=41, male=False)
    a = approved_request(app, client, idn)
    assert a.status == AS.APPROVED and a.decided_by_id is not None
    page = post_member(client, name="钱局长", id_number=idn)
    assert any("此会员超出投保年龄，是否继续投保" in e for e in errors(page))
    page = post_member(client, name="钱局长", id_number=idn, confirm_over_age="y")
    assert page.status_code == 302
    with app.app_context():
        m = db.session.scalar(sa.select(Member).where(Member.id_number == idn))
        assert m.over_age_exception and m.over_age_note == "局级干部，未办理正式退休手续"
        assert m.over_age_approved_by.username == "agency1"
        assert db.session.get(OverAgeApplication, a.id).member_id == m.id


def test_an_over_age_member_gets_the_exception_on_approval_and_then_enrolment_asks_first(app, client):
    m = make_member(app, "超龄甲", birth=birth_for(56))  # a woman of 56 on the effective date
    login_as(app, client, "clerk1")
    refused(post_policy(client, app, m["id_number"], confirm_over_age="y"), app, m, "member_ref", "超龄")
    approved_request(app, client, m["id_number"], name="超龄甲")
    with app.app_context():
        assert db.session.get(Member, m["id"]).over_age_exception
        audit = db.session.scalar(
            sa.select(AuditLog).where(AuditLog.action == "over_age", AuditLog.entity_id == m["id"])
        )
        assert audit.before == {"over_age_exception": False} and audit.user.username == "agency1"
    refused(post_policy(client, app, m["id_number"]), app, m, "confirm_over_age", "此会员超出投保年龄，是否继续投保")
    assert post_policy(client, app, m["id_number"], confirm_over_age="y").status_code == 302


def test_65_or_older_can_never_be_requested(app, client):
    login_as(app, client, "clerk1")
    html = request_exception(client, make_id(years_ago(65), seq=42)).get_data(as_text=True)
    assert "已满65周岁（65周岁）" in html and "不能申请超龄例外" in html


def test_someone_not_over_the_limit_needs_no_request(app, client):
    login_as(app, client, "clerk1")
    html = request_exception(client, make_id(years_ago(40), seq=43)).get_data(as_text=True)
    assert "未超过投保年龄，无需申请超龄例外" in html


def test_the_document_is_checked_by_its_content_and_size(app, client):
    login_as(app, client, "clerk1")
    idn = make_id(years_ago(61), seq=44)
    html = request_exception(client, idn, data=b"PK\x03\x04 an xlsx renamed", filename="证明.pdf").get_data(
        as_text=True
    )
    assert "只能是 PDF、JPG 或 PNG 格式" in html
    html = request_exception(client, idn, data=PDF + b"0" * (5 * 1024 * 1024)).get_data(as_text=True)
    assert "超过 5 MB 的上限" in html
    html = request_exception(client, idn, data=None).get_data(as_text=True)
    assert "请选择要上传的证明文件" in html
    assert request_of(app, idn) is None
    assert request_exception(client, idn, data=PNG, filename="scan.jpg").status_code == 302
    a = request_of(app, idn)
    assert a.document_kind.value == "png" and a.document_size == len(PNG)


def test_the_document_downloads_within_scope_only(app, client):
    idn = make_id(years_ago(61), seq=45)
    login_as(app, client, "clerk1")
    request_exception(client, idn)
    a = request_of(app, idn)
    got = client.get(f"/admin/over_age/document/{a.id}/")
    assert got.status_code == 200 and got.data == PDF and got.mimetype == "application/pdf"
    decide(client, "submit", a.id)
    login_as(app, client, "agency1")
    assert client.get(f"/admin/over_age/document/{a.id}/").data == PDF
    for other in ("clerk2", "clerk3"):
        login_as(app, client, other)
        assert client.get(f"/admin/over_age/document/{a.id}/").status_code == 404
        assert client.get(f"/admin/over_age/details/?id={a.id}").status_code == 404


def test_a_rejected_request_shows_the_reason_and_admission_stays_refused(app, client):
    idn = make_id(years_ago(61), seq=46)
    login_as(app, client, "clerk1")
    request_exception(client, idn, name="赵处长")
    a = request_of(app, idn)
    decide(client, "submit", a.id)
    login_as(app, client, "agency1")
    assert "待审批的超龄例外申请" in client.get("/admin/").get_data(as_text=True)
    decide(client, "reject", a.id, **{"p-reason": "文件不清晰，请重新扫描"})
    login_as(app, client, "clerk1")
    assert "文件不清晰，请重新扫描" in client.get("/admin/").get_data(as_text=True)
    detail = client.get(f"/admin/over_age/details/?id={a.id}").get_data(as_text=True)
    assert "驳回原因：<strong>文件不清晰，请重新扫描</strong>" in detail
    page = post_member(client, name="赵处长", id_number=idn, confirm_over_age="y")
    assert any("超龄" in e for e in errors(page))


def test_a_second_request_for_the_same_person_is_refused(app, client):
    idn = make_id(years_ago(60), seq=47)
    login_as(app, client, "clerk1")
    request_exception(client, idn)
    html = request_exception(client, idn).get_data(as_text=True)
    assert "已有一份未审批的超龄例外申请" in html


def test_a_member_of_another_unit_is_not_found(app, client):
    other = make_member(app, "他单位超龄", org="010201", birth=birth_for(57))
    login_as(app, client, "clerk1")
    html = request_exception(client, other["id_number"], name="他单位超龄").get_data(as_text=True)
    assert "查无此会员信息" in html and "西城区供电局工会" not in html


def test_a_request_without_a_document_cannot_be_submitted(app, client):
    with app.app_context():
        from models import Gender, Org

        org = db.session.scalar(sa.select(Org.id).where(Org.code == "010101"))
        a = OverAgeApplication(
            org_id=org,
            id_number=make_id(years_ago(60), seq=48),
            name="无附件",
            gender=Gender.MALE,
            birth_date=date(1966, 1, 1),
            reason="生成的申请",
        )
        db.session.add(a)
        db.session.commit()
        aid = a.id
    login_as(app, client, "clerk1")
    html = client.get(f"/admin/over_age/bulk/submit/?rid={aid}").get_data(as_text=True)
    assert "未上传证明文件" in html
    assert request_of(app, make_id(years_ago(60), seq=48)).status == AS.NEW


def test_the_age_of_the_request_is_the_age_today():
    # the refusal rules themselves
    from actions.new_applications import over_age_refusal

    today = date(2026, 6, 1)
    assert over_age_refusal("F", date(1961, 6, 2), today) is None  # 64
    assert "已满65周岁" in over_age_refusal("F", date(1961, 6, 1), today)
    assert "无需申请" in over_age_refusal("M", date(1968, 6, 2), today)  # 57, 58 in a year
    assert over_age_refusal("M", date(1967, 6, 1), today) is None  # 59, 60 within a year
    assert over_age_refusal("F", date(1972, 2, 29), date(2028, 2, 29)) is None  # 55 on a leap day
    _ = EFF

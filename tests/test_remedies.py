"""One step from a failure to its remedy (manual 一(三), 一(四)): from a 投保 batch's result screen, from
the 入会 batch result and from 【批量投保失败人员名单】, the applications that put the rows right, all at
once, as 新建 drafts; pressed twice, nothing is created twice."""

from __future__ import annotations

import io
import re
from datetime import date

import openpyxl
import sqlalchemy as sa
from conftest import csrf_token, login_as
from test_batch_screen import run, upload
from test_policies_batch import xlsx
from test_policies_entry import EFF, birth_for, make_member, new_id

from models import ApplicationStatus as AS
from models import (
    AuditLog,
    ChangeApplication,
    Member,
    Org,
    OverAgeApplication,
    TransferApplication,
    db,
)


def _org(code):
    return db.session.scalar(sa.select(Org.id).where(Org.code == code))


def with_bad_check_digit(app, member) -> str:
    """A member stored with a number whose check digit is wrong (old data): the file repeats it."""
    bad = member["id_number"][:17] + ("0" if member["id_number"][17] != "0" else "1")
    with app.app_context():
        db.session.execute(sa.update(Member).where(Member.id == member["id"]).values(id_number=bad))
        db.session.commit()
    return bad


def policy_batch(app, client, rows):
    login_as(app, client, "clerk1")
    page = upload(
        client, xlsx(rows), name="投保.xlsx", kind="policies", product="P03", effective=EFF.isoformat(), amount="20"
    )
    assert page.status_code == 302, page.get_data(as_text=True)[-500:]
    loc = page.headers["Location"]
    html = run(client, loc, "process").get_data(as_text=True)
    return loc, html


def remedy(client, loc, kind):
    return client.post(f"{loc}remedy/{kind}/", data={"csrf_token": csrf_token(client)}, follow_redirects=True)


def count(model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_a_policy_batch_result_offers_each_remedy_and_each_creates_its_drafts_once(app, client):
    west = make_member(app, "调入甲", org="010201")
    west_wrong_name = make_member(app, "调入乙", org="010201")
    named = make_member(app, "姓名甲")
    checksum = make_member(app, "校验甲")
    bad = with_bad_check_digit(app, checksum)
    old = make_member(app, "超龄甲", birth=birth_for(56))
    missing = new_id(date(1990, 4, 5), male=True)
    loc, html = policy_batch(
        app,
        client,
        [
            ("调入甲", west["id_number"], 1, 20),
            ("调入丙", west_wrong_name["id_number"], 1, 20),  # the file's name is not the member's
            ("姓名乙", named["id_number"], 1, 20),
            ("校验甲", bad, 1, 20),
            ("超龄甲", old["id_number"], 1, 20),
            ("新人甲", missing, 1, 20),
        ],
    )
    for words in ("【生成调动申请】", "【生成变更申请】", "【生成入会文件】", "【生成超龄例外申请】"):
        assert words in html, words
    assert re.search(r'id="remedy-transfer"', html)

    page = remedy(client, loc, "transfer").get_data(as_text=True)
    assert "已生成 1 份会员调动申请（新建）" in page and "文件中没有姓名或姓名与该会员不一致 1 人" in page
    with app.app_context():
        t = db.session.scalar(sa.select(TransferApplication).where(TransferApplication.member_id == west["id"]))
        assert t.status == AS.NEW and t.to_org_id == _org("010101") and t.from_org_id == _org("010201")
        assert count(TransferApplication, TransferApplication.member_id == west_wrong_name["id"]) == 0
        assert count(AuditLog, AuditLog.action == "lookup", AuditLog.entity_id == west["id"]) == 1
    assert "调入甲" in page  # the list of drafts to review, masked
    assert west["id_number"] not in page
    page = remedy(client, loc, "transfer").get_data(as_text=True)
    assert "已生成 0 份会员调动申请" in page and "已有未审批的调动申请 1 人" in page

    page = remedy(client, loc, "change").get_data(as_text=True)
    assert "已生成 2 份会员变更申请（新建）" in page
    with app.app_context():
        c = db.session.scalar(sa.select(ChangeApplication).where(ChangeApplication.member_id == named["id"]))
        assert (c.old_name, c.new_name, c.status) == ("姓名甲", "姓名乙", AS.NEW)
        c2 = db.session.scalar(sa.select(ChangeApplication).where(ChangeApplication.member_id == checksum["id"]))
        assert c2.old_id_number == bad and c2.new_id_number is None and "检验位应为" in c2.reason
    assert "已生成 0 份会员变更申请" in remedy(client, loc, "change").get_data(as_text=True)

    page = remedy(client, loc, "over_age").get_data(as_text=True)
    assert "已生成 1 份超龄例外申请（新建）" in page
    with app.app_context():
        a = db.session.scalar(sa.select(OverAgeApplication).where(OverAgeApplication.id_number == old["id_number"]))
        assert a.member_id == old["id"] and a.status == AS.NEW and a.document_sha256 is None
    assert "已生成 0 份超龄例外申请" in remedy(client, loc, "over_age").get_data(as_text=True)

    got = client.get(f"{loc}remedy/admission/")
    assert got.status_code == 200
    ws = openpyxl.load_workbook(io.BytesIO(got.data)).worksheets[0]
    assert [c.value for c in ws[1]] == ["姓名", "身份证号"]
    assert [(r[0].value, r[1].value) for r in ws.iter_rows(min_row=2) if r[0].value or r[1].value] == [
        ("新人甲", missing)
    ]
    assert ws["B2"].number_format == "@"


def test_a_generated_change_cannot_be_reported_until_the_new_number_is_filled_in(app, client):
    checksum = make_member(app, "校验乙")
    bad = with_bad_check_digit(app, checksum)
    loc, _html = policy_batch(app, client, [("校验乙", bad, 1, 20)])
    remedy(client, loc, "change")
    with app.app_context():
        cid = db.session.scalar(sa.select(ChangeApplication.id).where(ChangeApplication.member_id == checksum["id"]))
    html = client.get(f"/admin/changes/bulk/submit/?rid={cid}").get_data(as_text=True)
    assert "未填写变更后的姓名或身份证号" in html
    good = checksum["id_number"]
    page = client.post(
        f"/admin/changes/edit/?id={cid}",
        data={"csrf_token": csrf_token(client), "new_name": "", "new_id_number": good, "reason": "更正检验位"},
    )
    assert page.status_code == 302
    page = client.post(
        f"/admin/changes/bulk/submit/?rid={cid}",
        data={"csrf_token": csrf_token(client), "expected": 1},
        follow_redirects=True,
    )
    assert "已上报 1 条" in page.get_data(as_text=True)


def test_the_admission_batch_offers_transfers_for_members_of_other_units(app, client):
    other = make_member(app, "入会调入", org="010102")
    login_as(app, client, "clerk1")
    page = upload(client, xlsx([("入会调入", other["id_number"])], header=["姓名", "身份证号"]))
    loc = page.headers["Location"]
    html = run(client, loc, "process").get_data(as_text=True)
    assert "【生成调动申请】" in html
    page = remedy(client, loc, "transfer").get_data(as_text=True)
    assert "已生成 1 份会员调动申请（新建）" in page
    html = client.get(loc).get_data(as_text=True)  # the result page later: the buttons from what was recorded
    assert "【生成调动申请】" in html


def test_remedies_of_another_units_batch_and_for_non_clerks_are_not_there(app, client):
    west = make_member(app, "调入丁", org="010201")
    loc, _html = policy_batch(app, client, [("调入丁", west["id_number"], 1, 20)])
    for user in ("clerk2", "clerk3"):
        login_as(app, client, user)
        assert remedy(client, loc, "transfer").status_code == 404
        assert client.get(f"{loc}remedy/admission/").status_code == 404
    login_as(app, client, "agency1")  # the batch is in scope, but applications are a unit's
    assert "【生成调动申请】" not in client.get(loc).get_data(as_text=True)
    assert remedy(client, loc, "transfer").status_code == 404
    with app.app_context():
        assert count(TransferApplication, TransferApplication.member_id == west["id"]) == 0


def test_the_failure_list_of_new_member_enrolment_offers_over_age_requests(app, client):
    old = make_member(app, "新投超龄", birth=birth_for(57))
    login_as(app, client, "clerk1")
    q = f"member_no={old['member_no']}"
    token = csrf_token(client, f"/admin/members/bulk/enrol/?{q}")
    with app.app_context():
        p03 = db.session.scalar(sa.text("SELECT id FROM product WHERE code = 'P03'"))
    html = client.post(
        f"/admin/members/bulk/enrol/?{q}",
        data={
            "csrf_token": token,
            "expected": 1,
            "p-product": str(p03),
            "p-amount": "20",
            "p-effective": EFF.isoformat(),
        },
    ).get_data(as_text=True)
    assert "批量投保失败人员名单" in html and "【生成超龄例外申请】" in html
    action = re.search(r'action="([^"]+/remedy/over_age/)"', html).group(1)
    page = client.post(action, data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    assert "已生成 1 份超龄例外申请（新建）" in page
    login_as(app, client, "clerk2")  # someone else's failure list
    assert client.post(action, data={"csrf_token": csrf_token(client)}).status_code == 404


def test_the_admission_batch_offers_over_age_requests_for_people_not_yet_admitted(app, client):
    from test_member_entry import make_id, years_ago

    old = make_id(years_ago(58, days=20), seq=61, male=False)
    too_old = make_id(years_ago(66), seq=62, male=False)
    login_as(app, client, "clerk1")
    page = upload(client, xlsx([("钱处长", old), ("孙老", too_old)], header=["姓名", "身份证号"]))
    loc = page.headers["Location"]
    html = run(client, loc, "check").get_data(as_text=True)
    assert "【生成超龄例外申请】" in html and "【超龄例外申请】" in html
    page = remedy(client, loc, "over_age").get_data(as_text=True)
    assert "已生成 1 份超龄例外申请（新建）" in page and "已满65周岁 1 人" in page
    with app.app_context():
        a = db.session.scalar(sa.select(OverAgeApplication).where(OverAgeApplication.id_number == old))
        assert (a.name, a.member_id, a.org_id, a.status) == ("钱处长", None, _org("010101"), AS.NEW)
        assert count(OverAgeApplication, OverAgeApplication.id_number == too_old) == 0

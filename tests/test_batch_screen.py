"""批量业务 screen (manual 一(一)2): 首页 template → upload → 业务校验 → 业务办理 → result download,
and nobody reaches another unit's batches."""

import io
import re

import hostile
import openpyxl
import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as

from models import Member, Org, db
from rules import id_check_digit


def make_id(seq: int, male: bool = True) -> str:
    first17 = f"11010519900307{seq:02d}{1 if male else 2}"
    return first17 + id_check_digit(first17)


def xlsx(rows, header=("姓名", "身份证号")) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(header))
    for r in rows:
        ws.append(list(r))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def upload(client, data: bytes, name="入会.xlsx", kind="members", **fields):
    token = csrf_token(client, f"/admin/batches/upload/{kind}/")
    return client.post(
        f"/admin/batches/upload/{kind}/",
        data={"csrf_token": token, "file": (io.BytesIO(data), name), **fields},
        content_type="multipart/form-data",
    )


def run(client, location, stage):
    return client.post(f"{location}{stage}/", data={"csrf_token": csrf_token(client, location)})


def test_home_offers_the_member_template_with_text_id_column_notes_and_length_check(app, client):
    login_as(app, client, "clerk1")
    html = client.get("/admin/").get_data(as_text=True)
    link = re.search(r'href="([^"]+)">【批量入会模板】', html).group(1)
    resp = client.get(link)
    wb = openpyxl.load_workbook(io.BytesIO(resp.data))
    ws = wb.worksheets[0]
    assert [c.value for c in ws[1]] == ["姓名", "身份证号"]
    assert ws["B2"].number_format == "@"
    dv = ws.data_validations.dataValidation[0]
    assert dv.type == "textLength" and dv.formula1 == "18" and "B2" in str(dv.sqref)
    notes = " ".join(str(r[0].value) for r in wb["填写说明"].iter_rows())
    assert "身份证号必须为18位" in notes and "姓名中间不得有空格" in notes and "小于55周岁" in notes


def test_clerk_uploads_checks_and_processes_a_file_then_downloads_the_result(app, client):
    login_as(app, client, "clerk1")
    page = upload(
        client,
        xlsx([("甲一", make_id(11)), ("乙二", make_id(13)), ("丙 三", make_id(15)), ("丁四", "11010519900307001")]),
    )
    assert page.status_code == 302
    loc = page.headers["Location"]
    html = run(client, loc, "check").get_data(as_text=True)
    assert "通过 2 行，失败 2 行" in html
    assert "第4行" in html and "姓名中间不得有空格" in html and "身份证号必须为18位" in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Member).where(Member.name == "甲一")) == 0
    html = run(client, loc, "process").get_data(as_text=True)
    assert "成功 2 行，失败 2 行" in html and "批量入会处理结果下载" in html
    with app.app_context():
        made = db.session.scalars(sa.select(Member).where(Member.name.in_(["甲一", "乙二"]))).all()
        assert {m.org.code for m in made} == {"010101"} and len(made) == 2
    result = openpyxl.load_workbook(io.BytesIO(client.get(f"{loc}result/").data)).active
    rows = [[c.value for c in r] for r in result.iter_rows()]
    assert rows[0] == ["姓名", "身份证号", "处理结果", "失败原因", "会员编号"]
    assert rows[1][2] == "成功" and rows[3][2] == "失败" and "姓名中间不得有空格" in rows[3][3]
    with app.app_context():
        no = db.session.scalar(sa.select(Member.member_no).where(Member.name == "甲一"))
    assert rows[1][4] == no and rows[3][4] is None
    failed = openpyxl.load_workbook(io.BytesIO(client.get(f"{loc}failed/").data)).active
    assert [[c.value for c in r][:2] for r in failed.iter_rows()][1:] == [
        ["丙 三", make_id(15)],
        ["丁四", "11010519900307001"],
    ]


def test_the_same_file_uploaded_again_creates_nothing_twice_and_says_so(app, client):
    login_as(app, client, "clerk1")
    data = xlsx([("甲一", make_id(21)), ("乙二", make_id(23))])
    first = upload(client, data).headers["Location"]
    run(client, first, "check")
    run(client, first, "process")
    again = upload(client, data).headers["Location"]
    assert "内容完全相同" in client.get(again).get_data(as_text=True)
    run(client, again, "check")
    html = run(client, again, "process").get_data(as_text=True)
    assert "成功 0 行，失败 2 行" in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Member).where(Member.name == "甲一")) == 1


def test_processing_a_batch_twice_is_refused(app, client):
    login_as(app, client, "clerk1")
    loc = upload(client, xlsx([("甲一", make_id(31))])).headers["Location"]
    run(client, loc, "check")
    run(client, loc, "process")
    html = run(client, loc, "process").get_data(as_text=True)
    assert "办理过，不会重复办理" in html


@pytest.mark.parametrize(
    "data,name,message",
    [
        (b"PK\x03\x04 this is a docx", "renamed.xlsx", "不是有效的 Excel 文件"),
        (b"%PDF-1.4", "scan.pdf", "不支持的文件类型"),
        (b"", "empty.xlsx", "文件是空的"),
        # issue 15: a CSV cell over 131,072 characters, a cell far away
        (hostile.csv_with_huge_cell(), "big.csv", "第 2 行有一个单元格超过 131072 个字符"),
        (hostile.far_cell_xlsx("GR100000"), "far.xlsx", "超过每行 100 列的上限"),
    ],
)
def test_a_bad_file_gives_a_chinese_message_and_no_500(app, client, data, name, message):
    login_as(app, client, "clerk1")
    page = upload(client, data, name)
    if page.status_code == 302:
        page = run(client, page.headers["Location"], "check")
    assert page.status_code == 200
    assert message in page.get_data(as_text=True)


def test_a_file_over_the_size_limit_is_refused_with_a_clear_message(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", 1000)
    login_as(app, client, "clerk1")
    page = upload(client, xlsx([("甲一", make_id(41))] * 50))
    assert "超过 0 MB 的上限" in page.get_data(as_text=True) or "的上限，请拆分" in page.get_data(as_text=True)


def test_an_agency_must_choose_the_unit_and_only_one_of_its_own(app, client):
    login_as(app, client, "agency1")
    html = client.get("/admin/batches/upload/members/").get_data(as_text=True)
    assert "东城区百货公司工会" in html and "西城区供电局工会" not in html
    loc = upload(client, xlsx([("甲一", make_id(51))]), org_code="010201").headers["Location"]
    assert "不是您管辖范围内的基层单位" in run(client, loc, "check").get_data(as_text=True)
    loc = upload(client, xlsx([("乙二", make_id(53))]), org_code="010102").headers["Location"]
    run(client, loc, "check")
    run(client, loc, "process")
    with app.app_context():
        assert db.session.scalar(sa.select(Org.code).join(Member).where(Member.name == "乙二")) == "010102"


def test_nobody_reaches_another_units_batch(app, client):
    login_as(app, client, "clerk1")
    loc = upload(client, xlsx([("甲一", make_id(61)), ("乙 二", make_id(63))])).headers["Location"]
    run(client, loc, "check")
    run(client, loc, "process")
    for other in ("clerk2", "clerk3"):
        login_as(app, client, other)
        for suffix in ("", "result/", "failed/", "progress/"):
            assert client.get(f"{loc}{suffix}").status_code == 404, (other, suffix)
        for stage in ("check", "process"):
            page = client.post(f"{loc}{stage}/", data={"csrf_token": csrf_token(client)})
            assert page.status_code == 404
        assert "甲一" not in client.get("/admin/batches/export/csv/").get_data(as_text=True)
    login_as(app, client, "agency1")  # the agency above sees it, but may not run someone else's batch
    assert client.get(loc).status_code == 200
    assert client.post(f"{loc}check/", data={"csrf_token": csrf_token(client)}).status_code == 403


def test_a_50_mb_upload_is_refused_with_a_chinese_page_not_a_stack_trace(app, client):
    login_as(app, client, "clerk1")
    token = csrf_token(client, "/admin/batches/upload/members/")
    big = b"0" * (50 * 1024 * 1024)
    page = client.post(
        "/admin/batches/upload/members/",
        data={"csrf_token": token, "file": (io.BytesIO(big), "big.xlsx")},
        content_type="multipart/form-data",
    )
    assert page.status_code == 413
    html = page.get_data(as_text=True)
    assert "文件太大" in html and "20 MB" in html and "Traceback" not in html

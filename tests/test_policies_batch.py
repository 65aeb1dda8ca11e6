"""模板批量投保 (manual 一(二)4): the `policies` upload kind through the CLI (DESIGN.md §9) and the 投保
tab of 批量业务, with every failure reason of manual 一(四) reported per row by its code."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from decimal import Decimal

import openpyxl
import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as
from test_policies_entry import EFF, birth_for, make_member, make_policy, new_id, policies_of

from models import BatchStatus, Gender, ImportBatch, Member, MemberStatus, Org, PolicyStatus, db
from models.audit import audit_entries
from rules.products import add_months

HEADER = ["姓名", "身份证号", "份数", "投保金额"]


def xlsx(rows, header=HEADER) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(header))
    for r in rows:
        ws.append(list(r))
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str):
                cell.number_format = "@"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.fixture
def cli(app, ctx, tmp_path):
    runner = app.test_cli_runner()

    def invoke(mode, rows, *options, header=HEADER, name="投保.xlsx", product="P03", user="clerk1"):
        path = tmp_path / name
        path.write_bytes(xlsx(rows, header))
        args = ["batch", mode, "policies", str(path), "--user", user, "--effective", EFF.isoformat(), "--json"]
        if product:
            args += ["--product", product]
        result = runner.invoke(args=args + [str(o) for o in options])
        assert result.exit_code == 0, (result.exit_code, result.output)
        return json.loads(result.stdout)

    return invoke


def codes(data) -> dict:
    return {r["row"]: r["code"] for r in data["rows"]}


def own(app, name, **kw):
    return make_member(app, name, **kw)


# ---- every failure reason, one row each, through the CLI -----------------------------------------
@pytest.fixture
def cases(app):
    """One row per reason of manual 一(四) (product P03, 20 元/份, at most 5 shares)."""
    ok = own(app, "测通过")
    ok_no = own(app, "测编号")
    other = own(app, "测外单位", org="010102")
    new = own(app, "测新建", status=MemberStatus.NEW)
    checksum = own(app, "测校验位")
    wrong_digit = "0" if checksum["id_number"][17] != "0" else "1"
    named = own(app, "测姓名")
    in_flight = own(app, "测在途")
    make_policy(app, in_flight, "P03", PolicyStatus.NEW)
    over = own(app, "测超份")
    make_policy(app, over, "P03", PolicyStatus.EFFECTIVE, start=add_months(EFF, -6), shares=4)
    dup = own(app, "测重复")
    make_policy(app, dup, "P03", PolicyStatus.EFFECTIVE, start=EFF, shares=1)
    dup_agency = own(app, "测代办")
    make_policy(app, dup_agency, "P03", PolicyStatus.AGENCY_REPORTED, start=EFF, shares=1)
    old = own(app, "测超龄", age=60, male=True)
    young = own(app, "测未满", age=16)
    reported = own(app, "测已上报")
    make_policy(app, reported, "P03", PolicyStatus.REPORTED)
    amount = own(app, "测金额")
    recorded = own(app, "测登记", male=True)
    with app.app_context():  # recorded as a woman, the ID number says a man
        db.session.get(Member, recorded["id"]).gender = Gender.FEMALE
        db.session.commit()
    lower_x = own(app, "测小写")
    rows = [
        (2, "测通过", ok["id_number"], 1, 20, None),
        (3, "测外单位", other["id_number"], 1, 20, "NOT_IN_UNIT"),
        (4, "测从未", new_id(birth_for(30), True), 1, 20, "MEMBER_MISSING"),
        (5, "测新建", new["id_number"], 1, 20, "NOT_CONFIRMED"),
        (6, "测十五", "120101900101123", 1, 20, "ID_LENGTH"),
        (7, "测校验位", checksum["id_number"][:17] + wrong_digit, 1, 20, "ID_CHECKSUM"),
        (8, "测性名", named["id_number"], 1, 20, "NAME_MISMATCH"),
        (9, "测在途", in_flight["id_number"], 1, 20, "IN_FLIGHT"),
        (10, "测超份", over["id_number"], 2, 40, "OVER_SHARES"),
        (11, "测重复", dup["id_number"], 1, 20, "DUPLICATE"),
        (12, "测代办", dup_agency["id_number"], 1, 20, "DUPLICATE"),
        (13, "测超龄", old["id_number"], 1, 20, "OVER_AGE"),
        (14, "测未满", young["id_number"], 1, 20, "UNDER_AGE"),
        (15, "测金额", amount["id_number"], 2, 30, "AMOUNT_MISMATCH"),
        (16, "测通过", ok["id_number"], 1, 20, "DUP_IN_FILE"),
        (17, " 测小写 ", f" {lower_x['id_number'][:6]} {lower_x['id_number'][6:]}　", 3, 60, None),
        (18, "测超份", over["id_number"], 1, 20, "DUP_IN_FILE"),
        (19, "测已上报", reported["id_number"], 1, 20, "IN_FLIGHT"),
        (20, "测登记", recorded["id_number"], 1, 20, "GENDER"),
    ]
    return {
        "rows": rows,
        "ok": [ok, lower_x],
        "failed": [other, new, checksum, named, in_flight, over, dup, old, young, amount],
        "ok_no": ok_no,
        "lower_x": lower_x,
        "checksum": checksum,
    }


def test_check_reports_every_failure_reason_by_its_code(cli, cases):
    data = cli("check", [r[1:5] for r in cases["rows"]])
    assert data["kind"] == "policies"
    assert codes(data) == {r[0]: r[5] for r in cases["rows"]}
    assert (data["ok"], data["errors"], data["created"]) == (2, 17, 0)
    msgs = {r["row"]: r["message"] for r in data["rows"]}
    right = cases["checksum"]["id_number"][17]
    assert msgs[3].startswith("查无此会员信息") and "会员调动" in msgs[3]
    assert msgs[4].startswith("会员信息不存在，请检查会员信息") and "入会" in msgs[4]
    assert msgs[5] == "会员未上报财务确认，不能投保"
    assert msgs[6] == "身份证号必须为18位"
    assert msgs[7] == f"投保人身份证不合法,错误原因:检验位应为{right}"
    assert msgs[8].startswith("投保人姓名与会员姓名不一致，请检查投保人姓名")
    assert "登记性别与身份证号不符" in msgs[20]
    for row, text in [
        (9, "有在途业务"),
        (10, "超份数"),
        (11, "投保记录重复"),
        (13, "超龄"),
        (14, "未满投保年龄"),
        (15, "投保金额与份数不符"),
        (16, "文件中身份证号重复"),
    ]:
        assert msgs[row].startswith(text), (row, msgs[row])
    warnings = {r["row"]: r["warnings"] for r in data["rows"]}
    assert set(warnings[17]) == {"ID_NORMALIZED", "NAME_TRIMMED"} and warnings[2] == []


def test_check_writes_nothing_but_the_batch(app, cli, cases):
    data = cli("check", [r[1:5] for r in cases["rows"]])
    for m in cases["ok"]:
        assert policies_of(app, m) == []
    with app.app_context():
        batch = db.session.get(ImportBatch, data["batch_id"])
        assert batch.status == BatchStatus.CHECKED and (batch.ok_rows, batch.error_rows) == (2, 17)


def test_process_creates_new_policies_for_the_passing_rows_only(app, cli, cases):
    data = cli("process", [r[1:5] for r in cases["rows"]])
    assert (data["ok"], data["errors"], data["created"]) == (2, 17, 2)
    assert codes(data) == {r[0]: r[5] for r in cases["rows"]}
    first, second = policies_of(app, cases["ok"][0]), policies_of(app, cases["lower_x"])
    assert [(p.shares, p.amount, p.status) for p in first] == [(1, Decimal("20.00"), PolicyStatus.NEW)]
    assert [(p.shares, p.amount, p.status) for p in second] == [(3, Decimal("60.00"), PolicyStatus.NEW)]
    for p in first + second:
        assert p.expected_effective_date == EFF and p.expiry_date == add_months(EFF, 12) - timedelta(days=1)
        assert p.import_batch_id == data["batch_id"]
    with app.app_context():
        assert db.session.get(Org, first[0].org_id).code == "010101"
        e = audit_entries()
        logged = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(e)
            .where(e.c.entity == "policy", e.c.entity_id.in_([first[0].id, second[0].id]))
        )
        assert logged == 2
    for m in cases["failed"]:
        assert all(p.status != PolicyStatus.NEW or p.import_batch_id is None for p in policies_of(app, m))


def test_processing_the_same_file_again_creates_nothing_in_flight(app, cli, cases):
    rows = [r[1:5] for r in cases["rows"]]
    assert cli("process", rows)["created"] == 2
    again = cli("process", rows)
    assert again["created"] == 0 and again["ok"] == 0
    assert codes(again)[2] == "IN_FLIGHT" and codes(again)[17] == "IN_FLIGHT"
    assert len(policies_of(app, cases["ok"][0])) == 1


def test_a_member_number_column_finds_the_member_too(app, cli, cases):
    m = cases["ok_no"]
    data = cli(
        "process",
        [("测编号", m["member_no"], 1, 20), ("测编号", str(int(m["member_no"])), 1, 20)],
        header=["姓名", "会员编号", "份数", "投保金额"],
    )
    assert codes(data) == {2: None, 3: "DUP_IN_FILE"}
    assert len(policies_of(app, m)) == 1


def test_a_man_cannot_take_the_womens_product(app, cli):
    man = own(app, "测男性", male=True)
    woman = own(app, "测女性")
    data = cli("check", [("测男性", man["id_number"], 1, 30), ("测女性", woman["id_number"], 1, 30)], product="P02")
    assert codes(data) == {2: "GENDER", 3: None}
    assert data["rows"][0]["message"].startswith("性别错误")


def test_an_amount_override_is_used_for_every_row(app, cli):
    a, b = own(app, "测统一甲"), own(app, "测统一乙")
    data = cli(
        "process", [("测统一甲", a["id_number"], 2, 999), ("测统一乙", b["id_number"], 2, None)], "--amount", "40"
    )
    assert codes(data) == {2: None, 3: None}
    assert [p.amount for p in policies_of(app, a) + policies_of(app, b)] == [Decimal("40.00")] * 2


def test_an_override_that_does_not_match_the_shares_fails_each_row(app, cli):
    a = own(app, "测统一丙")
    data = cli("check", [("测统一丙", a["id_number"], 1, 20)], "--amount", "50")
    assert codes(data) == {2: "AMOUNT_MISMATCH"}


# ---- the 投保 tab of 批量业务 on the web ----------------------------------------------------------
def upload(client, data: bytes, **fields):
    token = csrf_token(client, "/admin/batches/upload/policies/")
    return client.post(
        "/admin/batches/upload/policies/",
        data={
            "csrf_token": token,
            "file": (io.BytesIO(data), "批量投保.xlsx"),
            "product": "P03",
            "effective": EFF.isoformat(),
            **fields,
        },
        content_type="multipart/form-data",
    )


def run(client, location, stage):
    return client.post(f"{location}{stage}/", data={"csrf_token": csrf_token(client, location)})


def test_web_upload_with_template_amounts_checks_the_amounts_of_the_file(app, client):
    login_as(app, client, "clerk1")
    a, b = own(app, "测模板甲"), own(app, "测模板乙")
    page = upload(
        client,
        xlsx([("测模板甲", a["id_number"], 2, 40), ("测模板乙", b["id_number"], 2, 30)]),
        use_template_amount="1",
    )
    assert page.status_code == 302, page.get_data(as_text=True)[-2000:]
    loc = page.headers["Location"]
    html = run(client, loc, "check").get_data(as_text=True)
    assert "通过 1 行，失败 1 行" in html and "投保金额与份数不符" in html
    html = run(client, loc, "process").get_data(as_text=True)
    assert "成功 1 行，失败 1 行" in html
    assert [(p.shares, p.amount) for p in policies_of(app, a)] == [(2, Decimal("40.00"))]
    assert policies_of(app, b) == []
    result = openpyxl.load_workbook(io.BytesIO(client.get(f"{loc}result/").data)).active
    rows = [[c.value for c in r] for r in result.iter_rows()]
    assert rows[0] == HEADER + ["处理结果", "失败原因"]
    assert rows[1][4] == "成功" and rows[2][4] == "失败" and "投保金额与份数不符" in rows[2][5]


def test_web_upload_with_one_amount_uses_it_for_every_row_and_twice_creates_nothing(app, client):
    login_as(app, client, "clerk1")
    a, b = own(app, "测统一丁"), own(app, "测统一戊")
    data = xlsx([("测统一丁", a["id_number"], 3, 1), ("测统一戊", b["id_number"], 3, None)])
    loc = upload(client, data, amount="60").headers["Location"]
    run(client, loc, "check")
    html = run(client, loc, "process").get_data(as_text=True)
    assert "成功 2 行，失败 0 行" in html
    made = policies_of(app, a) + policies_of(app, b)
    assert [(p.shares, p.amount, p.status) for p in made] == [(3, Decimal("60.00"), PolicyStatus.NEW)] * 2
    with app.app_context():
        batch = db.session.scalar(sa.select(ImportBatch).order_by(ImportBatch.id.desc()).limit(1))
        assert batch.params.get("amount") == "60" and batch.params.get("product") == "P03"
    # the same file again: checked against what the first one created, nothing twice
    again = upload(client, data, amount="60").headers["Location"]
    run(client, again, "check")
    html = run(client, again, "process").get_data(as_text=True)
    assert "成功 0 行，失败 2 行" in html and "有在途业务" in html
    assert len(policies_of(app, a) + policies_of(app, b)) == 2
    # and the processed batch itself is never run twice
    html = run(client, loc, "process").get_data(as_text=True)
    assert "不会重复办理" in html
    assert len(policies_of(app, a) + policies_of(app, b)) == 2


def test_web_upload_needs_an_amount_or_the_template_amount_choice(app, client):
    login_as(app, client, "clerk1")
    a = own(app, "测缺金额")
    page = upload(client, xlsx([("测缺金额", a["id_number"], 1, 20)]))
    assert page.status_code == 200
    assert "请输入投保金额，或勾选“以模板金额为准”" in page.get_data(as_text=True)


def test_web_upload_tab_offers_the_products(app, client):
    login_as(app, client, "clerk1")
    html = client.get("/admin/batches/upload/policies/").get_data(as_text=True)
    assert "职工意外伤害互助保障" in html and "use_template_amount" in html and 'name="effective"' in html
    assert re.search(r'value="P03"', html)

"""`flask --app app batch check|process KIND FILE --user U [--org CODE] [--result OUT.xlsx] [--json]`
(DESIGN.md §9): one JSON object on stdout, exit 0 whenever the file could be read, exit 2 with one
Chinese line on stderr when it could not."""

from __future__ import annotations

import itertools
import json
import re
from datetime import date
from pathlib import Path

import hostile
import openpyxl
import pytest
import sqlalchemy as sa

from models import BatchStatus, ImportBatch, Member, Org, db
from rules.idnumber import id_check_digit

HEADER = ["姓名", "身份证号"]
_fresh = itertools.count()


def fresh_id() -> str:
    """A valid, unused ID of someone aged 21-50, born on the 30th (demo members: days 1-28)."""
    k = next(_fresh)
    j = k // 1000
    birth = date(date.today().year - 21 - j % 30, [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12][(j // 30) % 11], 30)
    first17 = f"110105{birth:%Y%m%d}{k % 1000:03d}"
    return first17 + id_check_digit(first17)


def write_xlsx(path: Path, rows: list) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row or [], start=1):
            if value is not None:
                cell = ws.cell(r, c, value)
                if isinstance(value, str):
                    cell.number_format = "@"
    wb.save(path)
    return path


def mixed_file(tmp_path: Path) -> tuple[Path, list[str]]:
    """Rows 2 and 4 valid (4 with a lower-case x fixed), row 3 a 15-digit number."""
    a = fresh_id()
    b = next(i for i in (fresh_id() for _ in range(1000)) if i.endswith("X"))
    return write_xlsx(
        tmp_path / "members.xlsx", [HEADER, ["张伟", a], ["王芳", "110105900101123"], ["李娜", b[:17] + "x"]]
    ), [a, b]


@pytest.fixture
def cli(app, ctx):
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=["batch", *[str(a) for a in args]])

    return invoke


def count_members(ids=None) -> int:
    q = sa.select(sa.func.count()).select_from(Member)
    if ids is not None:
        q = q.where(Member.id_number.in_(ids))
    return db.session.scalar(q)


def assert_refused(result, *expected: str) -> str:
    """Exit 2, nothing on stdout, one Chinese line on stderr."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.stdout == ""
    msg = result.stderr.strip()
    assert msg and "\n" not in msg and re.search(r"[\u4e00-\u9fff]", msg), result.stderr
    assert "Traceback" not in result.output
    for text in expected:
        assert text in msg, msg
    return msg


def test_check_json_prints_one_json_object_in_the_documented_shape(cli, tmp_path):
    path, _ = mixed_file(tmp_path)
    result = cli("check", "members", path, "--user", "clerk1", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert list(data) == ["batch_id", "kind", "ok", "errors", "created", "rows"]
    assert (data["kind"], data["ok"], data["errors"], data["created"]) == ("members", 2, 1, 0)
    assert data["rows"] == [
        {"row": 2, "status": "ok", "code": None, "message": "", "warnings": []},
        {"row": 3, "status": "error", "code": "ID_LENGTH", "message": "身份证号必须为18位", "warnings": []},
        {"row": 4, "status": "ok", "code": None, "message": "", "warnings": ["ID_NORMALIZED"]},
    ]
    batch = db.session.get(ImportBatch, data["batch_id"])
    assert batch.status == BatchStatus.CHECKED and batch.file_name == "members.xlsx"
    assert batch.user.username == "clerk1"


def test_check_exits_0_even_when_every_row_fails(cli, tmp_path):
    path = write_xlsx(tmp_path / "bad.xlsx", [HEADER, ["张 伟", fresh_id()], ["王芳", "123"], ["李娜", None]])
    result = cli("check", "members", path, "--user", "clerk1", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["ok"], data["errors"]) == (0, 3)
    assert [r["code"] for r in data["rows"]] == ["NAME_SPACE", "ID_LENGTH", "ID_EMPTY"]


def test_check_creates_no_member(cli, tmp_path):
    path, ids = mixed_file(tmp_path)
    before = count_members()
    result = cli("check", "members", path, "--user", "clerk1", "--json")
    assert result.exit_code == 0
    assert count_members() == before and count_members(ids) == 0


def test_check_with_result_writes_the_result_file_and_still_creates_nothing(cli, tmp_path):
    path, ids = mixed_file(tmp_path)
    out = tmp_path / "checked.xlsx"
    assert cli("check", "members", path, "--user", "clerk1", "--result", out).exit_code == 0
    rows = [list(r) for r in openpyxl.load_workbook(out).active.iter_rows(values_only=True)]
    assert rows[0] == HEADER + ["处理结果", "失败原因"]
    assert [r[2] for r in rows[1:]] == ["成功", "失败", "成功"]
    assert count_members(ids) == 0


def test_process_creates_the_members_and_writes_the_result_file(cli, tmp_path):
    path, ids = mixed_file(tmp_path)
    out = tmp_path / "out.xlsx"
    result = cli("process", "members", path, "--user", "clerk1", "--result", out, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["ok"], data["errors"], data["created"]) == (2, 1, 2)
    members = db.session.scalars(sa.select(Member).where(Member.import_batch_id == data["batch_id"])).all()
    assert sorted(m.id_number for m in members) == sorted(ids)
    assert {m.org.code for m in members} == {"010101"}
    rows = [list(r) for r in openpyxl.load_workbook(out).active.iter_rows(values_only=True)]
    assert rows[0] == HEADER + ["处理结果", "失败原因", "会员编号"]
    numbers = {m.id_number: m.member_no for m in members}
    assert [r[4] for r in rows[1:]] == [numbers[ids[0]], None, numbers[ids[1]]], "each admitted row's 会员编号"
    assert [r[:3] for r in rows[1:]] == [
        ["张伟", ids[0], "成功"],
        ["王芳", "110105900101123", "失败"],
        ["李娜", ids[1][:17] + "x", "成功"],
    ]
    assert rows[2][3] == "身份证号必须为18位"
    assert db.session.get(ImportBatch, data["batch_id"]).status == BatchStatus.PROCESSED


def test_process_of_the_same_file_twice_creates_nothing_the_second_time(cli, tmp_path):
    path, ids = mixed_file(tmp_path)
    first = json.loads(cli("process", "members", path, "--user", "clerk1", "--json").stdout)
    second = cli("process", "members", path, "--user", "clerk1", "--json")
    assert second.exit_code == 0
    again = json.loads(second.stdout)
    assert (first["created"], again["created"], again["ok"]) == (2, 0, 0)
    assert [r["code"] for r in again["rows"]] == ["ALREADY_MEMBER", "ID_LENGTH", "ALREADY_MEMBER"]
    assert count_members(ids) == 2


def test_without_json_a_chinese_summary_lists_the_failed_rows(cli, tmp_path):
    path, _ = mixed_file(tmp_path)
    result = cli("process", "members", path, "--user", "clerk1")
    assert result.exit_code == 0
    assert re.search(r"批次 \d+：办理完成，共 3 行，通过 2 行，失败 1 行，已办理 2 行", result.stdout)
    assert "第3行 [ID_LENGTH] 身份证号必须为18位" in result.stdout


def test_an_unknown_user_exits_2(cli, tmp_path):
    path, _ = mixed_file(tmp_path)
    assert_refused(cli("check", "members", path, "--user", "nobody", "--json"), "用户“nobody”不存在")


def test_a_missing_file_exits_2(cli, tmp_path):
    assert_refused(cli("check", "members", tmp_path / "missing.xlsx", "--user", "clerk1", "--json"), "无法打开文件")


def test_an_unknown_kind_exits_2_with_a_chinese_message(cli, tmp_path):
    path, _ = mixed_file(tmp_path)
    batches = db.session.scalar(sa.select(sa.func.count()).select_from(ImportBatch))
    assert_refused(cli("check", "claims", path, "--user", "clerk1", "--json"), "未知的批量业务类型“claims”", "members")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportBatch)) == batches


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("members.xlsx", b"\x00\x01not a workbook" * 100, "不是有效的 Excel 文件"),
        ("members.pdf", b"%PDF-1.4\n", "不支持的文件类型"),
        ("members.csv", "姓名,电话\n张伟,13900000000\n".encode(), "缺少“身份证号”列"),
        ("members.csv", "姓名,身份证号\n".encode(), "只有表头"),
        ("members.csv", b"", "文件是空的"),
        ("members.csv", hostile.csv_with_huge_cell(), "超过 131072 个字符"),  # was exit 1 (issue 15)
        ("members.xlsx", hostile.far_cell_xlsx("GR100000"), "GR 列"),  # was 856 MB and exit 0
    ],
)
def test_a_file_that_cannot_be_read_exits_2_with_one_chinese_line(cli, tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    before = count_members()
    for mode in ("check", "process"):
        assert_refused(cli(mode, "members", path, "--user", "clerk1", "--json"), expected)
    assert count_members() == before


def test_a_file_over_the_size_limit_exits_2(app, cli, tmp_path, monkeypatch):
    path, _ = mixed_file(tmp_path)
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", 100)
    assert_refused(cli("process", "members", path, "--user", "clerk1"), "超过")


def test_an_agency_user_must_give_the_unit_with_org(cli, tmp_path):
    path, ids = mixed_file(tmp_path)
    assert_refused(cli("process", "members", path, "--user", "agency1", "--json"), "请选择会员入会的基层单位")
    assert_refused(
        cli("process", "members", path, "--user", "agency1", "--org", "010201"),
        "单位编号“010201”不是您管辖范围内的基层单位",
    )
    assert count_members(ids) == 0
    result = cli("process", "members", path, "--user", "agency1", "--org", "010102", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["created"] == 2
    orgs = db.session.scalars(
        sa.select(Org.code).join(Member, Member.org_id == Org.id).where(Member.id_number.in_(ids))
    ).all()
    assert orgs == ["010102", "010102"]


def test_user_is_required(cli, tmp_path):
    path, _ = mixed_file(tmp_path)
    result = cli("check", "members", path)
    assert result.exit_code == 2 and "--user" in result.stderr

"""批量入会 (the `members` batch kind) end to end: real files in, codes and Excel row numbers out,
members, audit rows, per-row outcomes and result files written (DESIGN.md §4, §6, §9).

Every test builds its files in tmp_path (openpyxl, csv) and drives the pipeline as the screens and
the CLI do: create_batch → check_batch / process_batch → write_failed.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
import re
import zipfile
from datetime import date
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa

import batch.pipeline as pipeline
import batch.stage as stage
from batch import BatchFileError, check_batch, create_batch, process_batch, write_failed
from models import (
    BatchStatus,
    Gender,
    ImportBatch,
    ImportRow,
    Member,
    MemberStatus,
    Org,
    RowStatus,
    User,
    db,
)
from models.audit import audit_entries
from models.storage import result_path
from rules.idnumber import id_check_digit

FIXTURES = Path(__file__).parent / "fixtures"
HEADER = ["姓名", "身份证号"]
REGION = "110105"
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强"]

# tests/fixtures/members.xls (written once with xlwt, which is not a dependency): 姓名 / 身份证号
XLS_ROWS = [("王芳", "110105199003290028"), ("李强", "110105199507300138"), ("赵敏", "110105200001310246")]


# --- ID numbers -------------------------------------------------------------------------------


def make_id(birth: date, seq: int, region: str = REGION) -> str:
    """A valid ID: region + birth date + 3-digit sequence (odd last digit = male) + check digit."""
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    return first17 + id_check_digit(first17)


def born_years_ago(years: int, today: date | None = None) -> date:
    """The birth date of someone who turns `years` today (29 February: the 28th)."""
    today = today or date.today()
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


def id_of_age(years: int, male: bool, seq: int = 10) -> str:
    return make_id(born_years_ago(years), seq * 2 + (1 if male else 0))


_fresh = itertools.count()
_MONTHS = [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]


def fresh_id(male: bool | None = None) -> str:
    """A valid, unused ID of someone aged 20-50.  Born on the 30th: the demo members are born on
    days 1-28, so these never collide with them."""
    today = date.today()
    while True:
        k = next(_fresh)
        seq = k % 1000
        if male is not None and (seq % 2 == 1) != male:
            continue
        j = k // 1000
        birth = date(today.year - 21 - j % 30, _MONTHS[(j // 30) % len(_MONTHS)], 30)
        return make_id(birth, seq)


def id_with_check_digit(want: str) -> str:
    """A valid ID whose check digit is `want` (e.g. 'X')."""
    for _ in range(10_000):
        idn = fresh_id()
        if idn[-1] == want:
            return idn
    raise AssertionError(want)


def wrong_check_digit(idn: str) -> str:
    right = idn[-1]
    return idn[:17] + ("0" if right != "0" else "1")


# --- files ------------------------------------------------------------------------------------


def write_xlsx(path: Path, rows: list, text: bool = True) -> Path:
    """rows[i] is Excel row i+1; None is a blank row.  Strings are text cells (also '=…')."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "批量入会"
    for r, row in enumerate(rows, start=1):
        if row is None:
            continue
        for c, value in enumerate(row, start=1):
            if value is None:
                continue
            cell = ws.cell(r, c, value)
            if isinstance(value, str) and text:
                cell.data_type = "s"  # not a formula, even when it starts with '='
                cell.number_format = "@"
    wb.save(path)
    return path


def write_csv(path: Path, rows: list, encoding: str = "utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        for row in rows:
            w.writerow(row or [])
    return path


def members_file(tmp_path: Path, rows: list, name: str = "members.xlsx") -> Path:
    return write_xlsx(tmp_path / name, [HEADER] + rows)


# --- pipeline ---------------------------------------------------------------------------------


def get_user(username: str) -> User:
    return db.session.scalar(sa.select(User).where(User.username == username))


def upload(path: Path, username: str = "clerk1", org: str | None = None):
    user = get_user(username)
    batch = create_batch("members", path.read_bytes(), path.name, user, {"org_code": org} if org else None)
    return batch, user


def check(path: Path, username: str = "clerk1", org: str | None = None):
    batch, user = upload(path, username, org)
    return check_batch(batch, user)


def process(path: Path, username: str = "clerk1", org: str | None = None, **kw):
    batch, user = upload(path, username, org)
    return process_batch(batch, user, **kw)


def as_json(outcome) -> dict:
    return json.loads(json.dumps(outcome.as_json(), ensure_ascii=False))


def rows_of(outcome) -> dict[int, dict]:
    return {r["row"]: r for r in as_json(outcome)["rows"]}


def only_row(outcome) -> dict:
    rows = as_json(outcome)["rows"]
    assert len(rows) == 1, rows
    return rows[0]


def members_of(batch) -> list[Member]:
    return list(db.session.scalars(sa.select(Member).where(Member.import_batch_id == batch.id).order_by(Member.id)))


def demo_member(org_code: str) -> Member:
    return db.session.scalar(
        sa.select(Member).join(Org, Org.id == Member.org_id).where(Org.code == org_code).order_by(Member.id).limit(1)
    )


def assert_fails(outcome, row: int, code: str) -> dict:
    r = rows_of(outcome)[row]
    assert (r["status"], r["code"]) == ("error", code), r
    assert r["message"], r
    return r


def assert_ok(outcome, row: int, warnings: list[str] | None = None) -> dict:
    r = rows_of(outcome)[row]
    assert (r["status"], r["code"], r["message"]) == ("ok", None, ""), r
    if warnings is not None:
        assert r["warnings"] == warnings
    return r


# === every failure code of 入会, through a real file ===========================================


def test_a_15_digit_legacy_number_and_a_17_digit_number_fail_with_ID_LENGTH(ctx, tmp_path):
    good = fresh_id()
    out = check(members_file(tmp_path, [["张伟", good], ["王芳", "110105900101123"], ["李娜", good[:17]]]))
    assert_ok(out, 2)
    assert assert_fails(out, 3, "ID_LENGTH")["message"] == "身份证号必须为18位"
    assert_fails(out, 4, "ID_LENGTH")


def test_a_wrong_check_digit_fails_with_ID_CHECKSUM_naming_the_right_one(ctx, tmp_path):
    x_id = id_with_check_digit("X")
    digit_id = id_with_check_digit("7")
    out = check(members_file(tmp_path, [["张伟", wrong_check_digit(x_id)], ["王芳", wrong_check_digit(digit_id)]]))
    assert assert_fails(out, 2, "ID_CHECKSUM")["message"].startswith("投保人身份证不合法,错误原因:检验位应为X")
    assert "检验位应为7" in assert_fails(out, 3, "ID_CHECKSUM")["message"]


def test_an_impossible_birth_date_fails_with_ID_BIRTHDATE(ctx, tmp_path):
    feb30 = "11010519900230123"
    feb29_common_year = "11010519910229123"
    out = check(members_file(tmp_path, [["张伟", feb30 + id_check_digit(feb30)], ["王芳", feb29_common_year + "5"]]))
    assert assert_fails(out, 2, "ID_BIRTHDATE")["message"] == "身份证号出生日期不合法"
    assert_fails(out, 3, "ID_BIRTHDATE")


def test_an_id_excel_stored_as_a_number_fails_with_ID_NUMERIC_CELL(ctx, tmp_path):
    path = write_xlsx(
        tmp_path / "numbers.xlsx",
        [
            HEADER,
            ["张伟", int(fresh_id(male=True)[:17] + "1")],  # a number cell: Excel keeps 15 digits of it
            ["王芳", "1.10105E+17"],  # what Excel shows of it, pasted back as text
            ["李娜", fresh_id()],
        ],
    )
    out = check(path)
    msg = assert_fails(out, 2, "ID_NUMERIC_CELL")["message"]
    assert msg == "身份证号单元格为数字格式，已丢失精度，请设为文本后重填"
    assert_fails(out, 3, "ID_NUMERIC_CELL")
    assert_ok(out, 4)


def test_an_empty_id_fails_with_ID_EMPTY(ctx, tmp_path):
    out = check(members_file(tmp_path, [["张伟", fresh_id()], ["王芳", None], ["李娜", "  \u3000 "]]))
    assert_ok(out, 2)
    assert_fails(out, 3, "ID_EMPTY")
    assert_fails(out, 4, "ID_EMPTY")


def test_letters_or_symbols_in_the_id_fail_with_ID_CHARS(ctx, tmp_path):
    good = fresh_id()
    out = check(
        members_file(
            tmp_path,
            [["张伟", good[:17] + "A"], ["王芳", good[:8] + "O" + good[9:]], ["李娜", good[:10] + "-" + good[11:]]],
        )
    )
    for row in (2, 3, 4):
        assert assert_fails(out, row, "ID_CHARS")["message"] == "身份证号只能包含数字和末位X"


def test_a_space_inside_the_name_fails_with_NAME_SPACE(ctx, tmp_path):
    out = check(
        members_file(tmp_path, [["张 三", fresh_id()], ["李\u3000四", fresh_id()], ["阿依古丽·买买提", fresh_id()]])
    )
    assert assert_fails(out, 2, "NAME_SPACE")["message"] == "姓名中间不得有空格"
    assert_fails(out, 3, "NAME_SPACE")
    assert_ok(out, 4)  # the middle dot is allowed


def test_an_empty_name_fails_with_NAME_EMPTY(ctx, tmp_path):
    out = check(members_file(tmp_path, [[None, fresh_id()], [" ", fresh_id()]]))
    assert assert_fails(out, 2, "NAME_EMPTY")["message"] == "姓名不能为空"
    assert_fails(out, 3, "NAME_EMPTY")


def test_someone_who_turns_16_today_is_UNDER_AGE_and_17_is_old_enough(ctx, tmp_path):
    out = check(
        members_file(
            tmp_path,
            [
                ["张伟", id_of_age(16, male=True)],
                ["王芳", id_of_age(16, male=False)],
                ["李娜", id_of_age(17, male=False)],
            ],
        )
    )
    msg = assert_fails(out, 2, "UNDER_AGE")["message"]
    assert msg.startswith("未满投保年龄") and "16周岁" in msg
    assert_fails(out, 3, "UNDER_AGE")
    assert_ok(out, 4)


def test_a_woman_who_turns_55_and_a_man_who_turns_60_today_are_OVER_AGE(ctx, tmp_path):
    out = check(
        members_file(
            tmp_path,
            [
                ["王芳", id_of_age(55, male=False)],
                ["张伟", id_of_age(60, male=True)],
                ["李娜", id_of_age(54, male=False)],
                ["杨磊", id_of_age(59, male=True)],
                ["刘洋", id_of_age(55, male=True)],
            ],
        )
    )
    assert "55周岁" in assert_fails(out, 2, "OVER_AGE")["message"]
    assert "60周岁" in assert_fails(out, 3, "OVER_AGE")["message"]
    assert_ok(out, 4)
    assert_ok(out, 5)
    assert_ok(out, 6)  # a man of 55 is still eligible


def test_a_member_of_ones_own_unit_is_ALREADY_MEMBER_naming_the_unit_and_member_no(ctx, tmp_path):
    m = demo_member("010101")
    out = check(members_file(tmp_path, [["张伟", fresh_id()], [m.name, m.id_number]]))
    assert_ok(out, 2)
    msg = assert_fails(out, 3, "ALREADY_MEMBER")["message"]
    assert msg.startswith("该会员已入会")
    assert "东城区第一机床厂工会" in msg and m.member_no in msg


def test_a_member_of_another_units_is_ALREADY_MEMBER_without_naming_that_unit(ctx, tmp_path):
    m = demo_member("010201")  # clerk3's unit, outside clerk1's scope
    out = check(members_file(tmp_path, [[m.name, m.id_number]]))
    msg = assert_fails(out, 2, "ALREADY_MEMBER")["message"]
    assert "西城区供电局工会" not in msg and m.member_no not in msg
    assert "会员调动" in msg


def test_the_second_occurrence_of_an_id_in_the_file_is_DUP_IN_FILE_naming_the_first_row(ctx, tmp_path):
    dup = fresh_id()
    out = check(
        members_file(tmp_path, [["张伟", dup], ["王芳", fresh_id()], ["张伟", dup.lower()], ["张伟", " " + dup]])
    )
    assert_ok(out, 2)
    assert_ok(out, 3)
    for row in (4, 5):
        msg = assert_fails(out, row, "DUP_IN_FILE")["message"]
        assert msg.startswith("文件中身份证号重复") and "第2行" in msg


# === warnings: the value is fixed and the row goes on ==========================================


def test_spaces_full_width_digits_and_a_lowercase_x_in_the_id_are_fixed_with_ID_NORMALIZED(ctx, tmp_path):
    spaced, inner, full = fresh_id(), fresh_id(), fresh_id()
    x_id = id_with_check_digit("X")
    full_width = full.translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})
    rows = [
        [" 张伟", f" {spaced} "],
        ["王芳", f"{inner[:6]} {inner[6:14]}\u3000{inner[14:]}"],
        ["李娜", full_width],
        ["刘洋", x_id[:17] + "x"],
        ["陈静", fresh_id()],
    ]
    batch, user = upload(members_file(tmp_path, rows))
    out = process_batch(batch, user)
    assert_ok(out, 2, ["NAME_TRIMMED", "ID_NORMALIZED"])
    for row in (3, 4, 5):
        assert_ok(out, row, ["ID_NORMALIZED"])
    assert_ok(out, 6, [])
    stored = {m.name: m.id_number for m in members_of(batch)}
    assert stored == {"张伟": spaced, "王芳": inner, "李娜": full, "刘洋": x_id, "陈静": rows[4][1]}


def test_spaces_around_the_name_are_trimmed_with_NAME_TRIMMED(ctx, tmp_path):
    batch, user = upload(members_file(tmp_path, [[" 张三 ", fresh_id()], ["\u3000李四", fresh_id()]]))
    out = process_batch(batch, user)
    assert_ok(out, 2, ["NAME_TRIMMED"])
    assert_ok(out, 3, ["NAME_TRIMMED"])
    assert [m.name for m in members_of(batch)] == ["张三", "李四"]
    assert out.results[0].warnings_text == "姓名前后空格已去除"


# === file formats and layouts ==================================================================


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"], ids=["gbk", "utf8-bom", "utf8"])
def test_a_csv_file_is_read_in_gbk_or_utf8_with_or_without_bom(ctx, tmp_path, encoding):
    ids = [fresh_id(), fresh_id()]
    path = write_csv(tmp_path / "members.csv", [HEADER, ["张伟", ids[0]], ["欧阳娜娜", ids[1]]], encoding)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    batch, user = upload(path)
    out = process_batch(batch, user)
    assert (out.ok_count, out.error_count, out.created) == (2, 0, 2)
    assert [(m.name, m.id_number) for m in members_of(batch)] == [("张伟", ids[0]), ("欧阳娜娜", ids[1])]


def test_an_xls_file_is_read(ctx):
    path = FIXTURES / "members.xls"
    assert path.read_bytes()[:8] == bytes.fromhex("d0cf11e0a1b11ae1")  # BIFF8 in an OLE2 container
    batch, user = upload(path)
    out = process_batch(batch, user)
    assert [(r["row"], r["status"]) for r in as_json(out)["rows"]] == [(2, "ok"), (3, "ok"), (4, "ok")]
    members = members_of(batch)
    assert [(m.name, m.id_number) for m in members] == XLS_ROWS
    assert [m.gender for m in members] == [Gender.FEMALE, Gender.MALE, Gender.FEMALE]
    assert [m.birth_date for m in members] == [date(1990, 3, 29), date(1995, 7, 30), date(2000, 1, 31)]


def test_columns_in_another_order_with_extra_columns_are_found_by_their_header(ctx, tmp_path):
    a, b = fresh_id(), fresh_id()
    path = write_xlsx(
        tmp_path / "reordered.xlsx",
        [
            ["序号", "身份证号", "备注", "姓名"],
            ["1", a, "新员工", "张伟"],
            ["2", b, None, "王芳"],
            ["3", "123", "错号", "李娜"],
        ],
    )
    batch, user = upload(path)
    out = process_batch(batch, user)
    assert_ok(out, 2)
    assert_ok(out, 3)
    assert_fails(out, 4, "ID_LENGTH")
    assert [(m.name, m.id_number) for m in members_of(batch)] == [("张伟", a), ("王芳", b)]


@pytest.mark.parametrize("id_header", ["证件号码", "身份证号码", "身份证号*", " 身份证号（必填） "])
def test_header_variants_of_the_id_column_are_recognised(ctx, tmp_path, id_header):
    path = write_xlsx(tmp_path / "variant.xlsx", [["姓名", id_header], ["张伟", fresh_id()], ["王芳", "12345"]])
    out = check(path)
    assert_ok(out, 2)
    assert_fails(out, 3, "ID_LENGTH")


def test_a_title_row_above_the_header_is_skipped_and_row_numbers_match_excel(ctx, tmp_path):
    path = write_xlsx(
        tmp_path / "titled.xlsx",
        [
            ["东城区第一机床厂工会 2026年批量入会名单"],
            None,
            HEADER,
            ["张伟", fresh_id()],
            ["王芳", "12345"],
        ],
    )
    out = check(path)
    assert out.table.header_row == 3
    assert sorted(rows_of(out)) == [4, 5]
    assert_ok(out, 4)
    assert_fails(out, 5, "ID_LENGTH")


def test_blank_rows_in_between_are_skipped_and_row_numbers_still_match_excel(ctx, tmp_path):
    path = write_xlsx(
        tmp_path / "gaps.xlsx",
        [
            HEADER,
            ["张伟", fresh_id()],
            None,
            ["  ", " "],  # only spaces: blank too
            ["王芳", "12345"],
            None,
            None,
            ["李娜", fresh_id()],
        ],
    )
    out = check(path)
    assert sorted(rows_of(out)) == [2, 5, 8]
    assert_ok(out, 2)
    assert_fails(out, 5, "ID_LENGTH")
    assert_ok(out, 8)
    assert (out.batch.total_rows, out.batch.ok_rows, out.batch.error_rows) == (3, 2, 1)


def test_blank_rows_in_a_csv_keep_the_csv_line_numbers(ctx, tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text(f"姓名,身份证号\r\n张伟,{fresh_id()}\r\n\r\n , \r\n王芳,12345\r\n", encoding="utf-8")
    out = check(path)
    assert_ok(out, 2)
    assert_fails(out, 5, "ID_LENGTH")


# === 业务办理 ===================================================================================


def _mixed_file(tmp_path: Path) -> tuple[Path, dict]:
    """A file with 3 valid rows (one normalized) and 3 failing ones."""
    ok = {"张伟": fresh_id(male=True), "王芳": fresh_id(male=False), "李娜": fresh_id(male=False)}
    rows = [
        ["张伟", ok["张伟"]],
        ["王 芳", fresh_id()],
        ["王芳", ok["王芳"]],
        ["刘洋", "110105900101123"],
        ["李娜", f" {ok['李娜']}"],
        ["陈静", id_of_age(16, male=False)],
    ]
    return members_file(tmp_path, rows), ok


def test_processing_creates_new_members_of_the_uploaders_unit_with_gender_and_birth_from_the_id(ctx, tmp_path):
    path, ok = _mixed_file(tmp_path)
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Member))
    batch, user = upload(path)
    out = process_batch(batch, user)
    assert out.created == 3
    members = members_of(batch)
    assert {m.name: m.id_number for m in members} == ok
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Member)) == before + 3
    for m in members:
        assert m.org.code == "010101"
        assert m.status == MemberStatus.NEW
        assert m.gender == (Gender.MALE if int(m.id_number[16]) % 2 else Gender.FEMALE)
        idn = m.id_number
        assert m.birth_date == date(int(idn[6:10]), int(idn[10:12]), int(idn[12:14]))
        assert re.fullmatch(r"\d{10}", m.member_no)
        assert m.import_batch_id == batch.id
        assert m.created_by_id == user.id
        assert m.admitted_on == date.today()
    all_nos = db.session.scalars(sa.select(Member.member_no)).all()
    assert len(all_nos) == len(set(all_nos))


def test_processing_audits_every_member_it_created_in_one_audit_row(ctx, tmp_path):
    path, _ = _mixed_file(tmp_path)
    batch, user = upload(path)
    process_batch(batch, user)
    ids = {m.id for m in members_of(batch)}
    e = audit_entries()
    audits = db.session.execute(sa.select(e).where(e.c.entity == "member", e.c.entity_id.in_(ids))).all()
    assert sorted(a.entity_id for a in audits) == sorted(ids)
    assert {(a.action, a.user_id) for a in audits} == {("create", user.id)}
    assert len({a.id for a in audits}) == 1  # one row names them all


def test_processing_keeps_one_import_row_per_data_row_and_the_batch_counts(ctx, tmp_path):
    path, _ = _mixed_file(tmp_path)
    batch, user = upload(path)
    process_batch(batch, user)
    db.session.expire_all()
    rows = db.session.execute(
        sa.select(ImportRow.row_no, ImportRow.status, ImportRow.code, ImportRow.warnings)
        .where(ImportRow.batch_id == batch.id)
        .order_by(ImportRow.row_no)
    ).all()
    assert [tuple(r) for r in rows] == [
        (2, RowStatus.OK, None, ""),
        (3, RowStatus.ERROR, "NAME_SPACE", ""),
        (4, RowStatus.OK, None, ""),
        (5, RowStatus.ERROR, "ID_LENGTH", ""),
        (6, RowStatus.OK, None, "ID_NORMALIZED"),
        (7, RowStatus.ERROR, "UNDER_AGE", ""),
    ]
    b = db.session.get(ImportBatch, batch.id)
    assert b.status == BatchStatus.PROCESSED and b.processed_at is not None
    assert (b.total_rows, b.ok_rows, b.error_rows, b.created_rows) == (6, 3, 3, 3)


def test_checking_writes_nothing_but_the_batch_record_and_its_failed_rows(ctx, tmp_path):
    path, _ = _mixed_file(tmp_path)
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Member))
    out = check(path)
    assert (out.ok_count, out.error_count, out.created) == (3, 3, 0)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Member)) == before
    # the failed rows' outcomes, from which anyone's 失败行下载 is made without checking again
    stored = db.session.execute(
        sa.select(ImportRow.row_no, ImportRow.status).where(ImportRow.batch_id == out.batch.id)
    ).all()
    assert sorted(stored) == sorted((r.row, RowStatus.ERROR) for r in out.failed)
    b = db.session.get(ImportBatch, out.batch.id)
    assert b.status == BatchStatus.CHECKED and (b.total_rows, b.ok_rows, b.error_rows, b.created_rows) == (6, 3, 3, 0)


def test_the_result_file_is_the_uploaded_sheet_plus_result_and_reason_columns(ctx, tmp_path):
    path, ok = _mixed_file(tmp_path)
    out_file = tmp_path / "result.xlsx"
    batch, user = upload(path)
    process_batch(batch, user, result_file=out_file)
    uploaded = [list(r) for r in openpyxl.load_workbook(path).active.iter_rows(values_only=True)]
    for f in (out_file, result_path(batch)):
        got = [list(r) for r in openpyxl.load_workbook(f).active.iter_rows(values_only=True)]
        assert got[0] == HEADER + ["处理结果", "失败原因", "会员编号"]
        assert [r[:2] for r in got] == [r[:2] for r in uploaded]
        assert [r[2] for r in got[1:]] == ["成功", "失败", "成功", "失败", "成功", "失败"]
        # the new 会员编号 of each admitted row, as the database holds it; none for a failed row
        numbers = dict(
            db.session.execute(
                sa.select(Member.id_number, Member.member_no).where(Member.import_batch_id == batch.id)
            ).all()
        )
        assert len(numbers) == 3
        for r in got[1:]:
            expected = numbers.get(str(r[1]).replace(" ", "").upper()) if r[2] == "成功" else None
            assert r[4] == expected and (r[2] != "成功" or re.fullmatch(r"\d{10}", r[4])), r
        assert got[1][3] is None
        assert got[2][3] == "姓名中间不得有空格"
        assert got[4][3] == "身份证号必须为18位"
        assert got[5][3] == "身份证号已自动修正（去除空格、全角转半角、末位x改为大写）"
        assert got[6][3].startswith("未满投保年龄")


def test_cells_that_a_spreadsheet_would_run_as_a_formula_are_escaped_in_the_result_file(ctx, tmp_path):
    path = write_xlsx(
        tmp_path / "formula.xlsx",
        [
            ["姓名", "身份证号", "备注"],
            ["张伟", fresh_id(), '=HYPERLINK("http://x","点我")'],
            ["=1+1", fresh_id(), "+86 139"],
            ["王芳", fresh_id(), "-3"],
            ["@SUM(A1)", "=A1", "普通备注"],
        ],
    )
    out_file = tmp_path / "result.xlsx"
    batch, user = upload(path)
    out = process_batch(batch, user, result_file=out_file)
    assert_fails(out, 3, "NAME_CHARS")
    assert_fails(out, 5, "ID_LENGTH")
    ws = openpyxl.load_workbook(out_file).active
    got = [list(r) for r in ws.iter_rows(values_only=True)]
    assert got[1][2] == '\'=HYPERLINK("http://x","点我")'
    assert got[2][0] == "'=1+1" and got[2][2] == "'+86 139"
    assert got[3][2] == "'-3"
    assert got[4][:3] == ["'@SUM(A1)", "'=A1", "普通备注"]
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)


# === 失败行下载 ================================================================================


def test_failed_rows_download_has_only_the_failed_rows_in_the_template_columns(ctx, tmp_path):
    a, b = fresh_id(), fresh_id()
    path = write_xlsx(
        tmp_path / "members.xlsx",
        [
            ["序号", "身份证号", "姓名", "备注"],
            ["1", a, "张伟", "x"],
            ["2", b, "王 芳", "y"],
            ["3", "110105900101123", "刘洋", "z"],
            ["4", fresh_id(), "李娜", "w"],
        ],
    )
    batch, user = upload(path)
    process_batch(batch, user)
    failed = write_failed(batch, user)
    got = [list(r) for r in openpyxl.load_workbook(failed).active.iter_rows(values_only=True)]
    assert got == [
        ["姓名", "身份证号", "失败原因"],
        ["王 芳", b, "第3行：姓名中间不得有空格"],
        ["刘洋", "110105900101123", "第4行：身份证号必须为18位"],
    ]


def test_fixing_the_failed_rows_file_and_uploading_it_as_it_is_creates_exactly_those_rows(ctx, tmp_path):
    path, ok = _mixed_file(tmp_path)
    batch, user = upload(path)
    first = process_batch(batch, user)
    assert first.created == 3
    failed = tmp_path / "失败行.xlsx"  # as the clerk saves the download
    failed.write_bytes(write_failed(batch, user).getvalue())

    wb = openpyxl.load_workbook(failed)
    ws = wb.active
    fixed = {"王芳芳": fresh_id(), "刘洋": fresh_id(male=True), "陈静": fresh_id(male=False)}
    assert [ws.cell(r, 1).value for r in range(2, ws.max_row + 1)] == ["王 芳", "刘洋", "陈静"]
    for r, (name, idn) in zip(range(2, 5), fixed.items()):
        ws.cell(r, 1).value = name
        ws.cell(r, 2).value = idn  # the column is text-formatted: the clerk types the ID as text
    wb.save(failed)

    again, user = upload(failed)
    out = process_batch(again, user)
    assert (out.ok_count, out.error_count, out.created) == (3, 0, 3)
    assert {m.name: m.id_number for m in members_of(again)} == fixed
    assert {m.name for m in members_of(batch)} == set(ok)


def test_a_failed_rows_file_uploaded_unfixed_fails_the_same_way_and_creates_nothing(ctx, tmp_path):
    # an ID that Excel stored as a number must stay an ID_NUMERIC_CELL failure: the failed-rows file
    # must not turn the rounded number into a plausible 18-digit text ID (that may pass the checksum,
    # or, as here, hit the ID of another row of the file that was just admitted)
    number_id = id_with_check_digit("8")
    path = write_xlsx(
        tmp_path / "members.xlsx", [HEADER, ["张伟", int(number_id)], ["王 芳", fresh_id()], ["李娜", fresh_id()]]
    )
    batch, user = upload(path)
    assert process_batch(batch, user).created == 1
    failed = tmp_path / "失败行.xlsx"
    failed.write_bytes(write_failed(batch, user).getvalue())
    again, user = upload(failed)
    out = process_batch(again, user)
    assert out.created == 0
    assert_fails(out, 2, "ID_NUMERIC_CELL")
    assert_fails(out, 3, "NAME_SPACE")
    assert db.session.scalar(sa.select(Member).where(Member.id_number == number_id)) is None


def test_failed_rows_of_a_processed_batch_are_those_recorded_when_it_was_processed(ctx, tmp_path):
    path, _ = _mixed_file(tmp_path)
    batch, user = upload(path)
    process_batch(batch, user)  # its valid rows are members now; a re-check would call them ALREADY_MEMBER
    got = [list(r) for r in openpyxl.load_workbook(write_failed(batch, user)).active.iter_rows(values_only=True)]
    assert [r[2].split("：")[0] for r in got[1:]] == ["第3行", "第5行", "第7行"]


# === the same file twice =======================================================================


def test_the_same_file_processed_twice_creates_nothing_the_second_time(ctx, tmp_path):
    path, ok = _mixed_file(tmp_path)
    first = process(path)
    assert first.created == 3
    second = process(path)
    assert second.batch.id != first.batch.id
    assert second.created == 0 and second.ok_count == 0
    again = rows_of(second)
    for row in (2, 4, 6):
        msg = assert_fails(second, row, "ALREADY_MEMBER")["message"]
        assert "东城区第一机床厂工会" in msg
    assert {again[r]["code"] for r in (3, 5, 7)} == {"NAME_SPACE", "ID_LENGTH", "UNDER_AGE"}
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(Member).where(Member.id_number.in_(list(ok.values()))))
        == 3
    )
    assert db.session.get(ImportBatch, second.batch.id).created_rows == 0
    assert pipeline.earlier_upload(second.batch).id == first.batch.id


def test_processing_an_already_processed_batch_again_is_refused_and_creates_nothing(ctx, tmp_path):
    path, _ = _mixed_file(tmp_path)
    batch, user = upload(path)
    assert process_batch(batch, user).created == 3
    count = db.session.scalar(sa.select(sa.func.count()).select_from(Member))
    with pytest.raises(BatchFileError, match=r"已.*办理过"):
        process_batch(batch, user)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Member)) == count
    assert len(members_of(batch)) == 3


def test_a_checked_batch_can_then_be_processed(ctx, tmp_path):
    path, ok = _mixed_file(tmp_path)
    batch, user = upload(path)
    assert check_batch(batch, user).ok_count == 3
    assert process_batch(batch, user).created == 3
    assert {m.name: m.id_number for m in members_of(batch)} == ok


# === a crash in the middle of 业务办理 =========================================================


@pytest.mark.parametrize("checked_first", [True, False], ids=["from-the-check", "file-read-again"])
def test_a_crash_in_the_middle_of_processing_leaves_nothing_behind(ctx, tmp_path, monkeypatch, checked_first):
    """Both ways 业务办理 writes: from what 业务校验 kept (batch/stage.py), and reading and checking
    the file again (no 业务校验 first)."""
    path, _ = _mixed_file(tmp_path)
    batch, user = upload(path)
    if checked_first:
        check_batch(batch, user)
    real_copy, real_staged = pipeline.bulk_insert, stage.outcomes_from_stage
    seen = {}

    def members_in():
        # the members are in by now (inside the transaction) …
        seen["members"] = db.session.scalar(
            sa.select(sa.func.count()).select_from(Member).where(Member.import_batch_id == batch.id)
        )
        raise RuntimeError("disk full")

    def crashing(session, table, columns, rows):
        if table.name == "import_row":
            members_in()
        return real_copy(session, table, columns, rows)

    monkeypatch.setattr(pipeline, "bulk_insert", crashing)
    monkeypatch.setattr(stage, "outcomes_from_stage", lambda batch_id: members_in())
    with pytest.raises(RuntimeError, match="disk full"):
        process_batch(batch, user)
    assert seen["members"] == 3
    db.session.expire_all()
    # … and gone afterwards, with their audit rows and the row outcomes
    assert members_of(batch) == []
    e = audit_entries()
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(e)
            .where(e.c.entity == "member", e.c.after.isnot(None), e.c.entity_id.notin_(sa.select(Member.id)))
        )
        == 0
    )
    # the row outcomes are those its 业务校验 stored (its failed rows), none of the processing's
    assert set(db.session.scalars(sa.select(ImportRow.status).where(ImportRow.batch_id == batch.id)).all()) <= {
        RowStatus.ERROR
    }
    b = db.session.get(ImportBatch, batch.id)
    assert b.status != BatchStatus.PROCESSED and b.created_rows == 0

    monkeypatch.setattr(pipeline, "bulk_insert", real_copy)  # the clerk tries again: it goes through once
    monkeypatch.setattr(stage, "outcomes_from_stage", real_staged)
    assert process_batch(b, user).created == 3
    assert len(members_of(batch)) == 3


# === files that cannot be read ================================================================


def _docx(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
            'package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        z.writestr("word/document.xml", "<w:document/>")
    return path


BAD_FILES = {
    "docx-renamed-xlsx": (lambda p: _docx(p / "members.xlsx"), "不是有效的 Excel 文件"),
    "random-bytes-xlsx": (
        lambda p: (p / "members.xlsx").write_bytes(random.Random(7).randbytes(5000)) and p / "members.xlsx",
        "不是有效的 Excel 文件",
    ),
    "empty-sheet": (lambda p: write_xlsx(p / "members.xlsx", []), "没有数据"),
    "empty-csv": (lambda p: write_csv(p / "members.csv", [None, None]), "没有数据"),
    "header-only": (lambda p: write_xlsx(p / "members.xlsx", [HEADER, None]), "只有表头"),
    "no-id-column": (
        lambda p: write_xlsx(p / "members.xlsx", [["姓名", "电话"], ["张伟", "13900000000"]]),
        "缺少“身份证号”列",
    ),
    "no-header": (lambda p: write_xlsx(p / "members.xlsx", [["张伟", "110105199001011234"]]), "找不到表头"),
    "pdf": (
        lambda p: (p / "members.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n") and p / "members.pdf",
        "不支持的文件类型“.pdf”",
    ),
    "binary-csv": (
        lambda p: (p / "members.csv").write_bytes(b"PK\x03\x04\x00\x00" * 50) and p / "members.csv",
        "不是文本格式",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_file_that_is_no_readable_table_is_refused_with_a_one_line_chinese_message(ctx, tmp_path, case):
    make, expected = BAD_FILES[case]
    path = make(tmp_path)
    batch, user = upload(path)
    with pytest.raises(BatchFileError) as exc:
        check_batch(batch, user)
    msg = str(exc.value)
    assert expected in msg
    assert "\n" not in msg and re.search(r"[\u4e00-\u9fff]", msg)
    b = db.session.get(ImportBatch, batch.id)
    assert b.status == BatchStatus.FAILED and b.message == msg
    with pytest.raises(BatchFileError):
        process_batch(b, user)
    assert members_of(batch) == []


def test_a_file_over_the_size_limit_is_refused_before_it_is_stored(app, ctx, tmp_path, monkeypatch):
    path = members_file(tmp_path, [["张伟", fresh_id()]])
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", path.stat().st_size - 1)
    batches = db.session.scalar(sa.select(sa.func.count()).select_from(ImportBatch))
    with pytest.raises(BatchFileError, match="超过.*上限") as exc:
        upload(path)
    assert "\n" not in str(exc.value)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportBatch)) == batches
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", path.stat().st_size)
    assert check(path).ok_count == 1


def test_more_rows_than_the_limit_are_refused(app, ctx, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_MAX_ROWS", 5)
    five = members_file(tmp_path, [[NAMES[i], fresh_id()] for i in range(5)], "five.xlsx")
    assert check(five).ok_count == 5
    six = members_file(tmp_path, [None] + [[NAMES[i], fresh_id()] for i in range(6)], "six.xlsx")
    batch, user = upload(six)
    with pytest.raises(BatchFileError, match="文件有 6 行数据，超过每个文件 5 行的上限"):
        process_batch(batch, user)
    assert members_of(batch) == []


# === agency users name the unit ================================================================


def test_an_agency_user_without_a_unit_is_told_to_choose_one(ctx, tmp_path):
    batch, user = upload(members_file(tmp_path, [["张伟", fresh_id()]]), "agency1")
    with pytest.raises(BatchFileError, match="请选择会员入会的基层单位"):
        process_batch(batch, user)
    assert members_of(batch) == []


def test_an_agency_user_admits_members_into_a_unit_of_its_own(ctx, tmp_path):
    own = demo_member("010101")
    batch, user = upload(
        members_file(tmp_path, [["张伟", fresh_id()], ["王芳", fresh_id()], [own.name, own.id_number]]),
        "agency1",
        org="010102",
    )
    out = process_batch(batch, user)
    assert out.created == 2
    assert {m.org.code for m in members_of(batch)} == {"010102"}
    # the agency sees the whole subtree: the existing member's unit is named
    assert "东城区第一机床厂工会" in assert_fails(out, 4, "ALREADY_MEMBER")["message"]


@pytest.mark.parametrize("org", ["010201", "0101", "999999"])
def test_an_agency_user_cannot_admit_into_a_unit_that_is_not_its_own(ctx, tmp_path, org):
    batch, user = upload(members_file(tmp_path, [["张伟", fresh_id()]]), "agency1", org=org)
    with pytest.raises(BatchFileError, match=f"单位编号“{org}”不是您管辖范围内的基层单位"):
        process_batch(batch, user)
    assert members_of(batch) == []


@pytest.mark.parametrize("username", ["office1", "admin"])
def test_office_and_federation_users_admit_into_any_unit_below_them(ctx, tmp_path, username):
    other = demo_member("010201")
    batch, user = upload(
        members_file(tmp_path, [["张伟", fresh_id()], [other.name, other.id_number]]), username, org="010201"
    )
    out = process_batch(batch, user)
    assert out.created == 1
    assert {m.org.code for m in members_of(batch)} == {"010201"}
    assert other.member_no in assert_fails(out, 3, "ALREADY_MEMBER")["message"]


def test_a_unit_clerk_cannot_send_members_to_another_unit(ctx, tmp_path):
    batch, user = upload(members_file(tmp_path, [["张伟", fresh_id()]]), "clerk1", org="010102")
    assert process_batch(batch, user).created == 1
    assert {m.org.code for m in members_of(batch)} == {"010101"}


# === the statement count does not grow with the row count ======================================


def test_the_number_of_sql_statements_does_not_grow_with_the_row_count(ctx, tmp_path):
    def run(n: int) -> tuple[int, int]:
        rows = [[NAMES[i % len(NAMES)], fresh_id()] for i in range(n)]
        rows[7][1] = rows[3][1]  # one DUP_IN_FILE
        rows[9][1] = "12345"  # one ID_LENGTH
        rows[11][1] = demo_member("010101").id_number  # one ALREADY_MEMBER
        path = write_csv(tmp_path / f"members_{n}.csv", [HEADER] + rows)
        data = path.read_bytes()
        db.session.commit()
        db.session.remove()
        statements = []

        def count(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            user = get_user("clerk1")
            batch = create_batch("members", data, path.name, user)
            check_batch(batch, user)
            out = process_batch(batch, user)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        assert (out.created, out.error_count) == (n - 3, 3)
        return len(statements), out.created

    small, created_small = run(1000)
    large, created_large = run(50000)
    assert (created_small, created_large) == (997, 49997)
    assert small == large
    assert small < 40


def test_checking_a_processed_batch_again_leaves_its_recorded_outcome_alone(ctx, tmp_path):
    path, _ = _mixed_file(tmp_path)
    batch, user = upload(path)
    process_batch(batch, user)
    again = check_batch(batch, user)  # 业务校验 clicked once more: every valid row is a member by now
    assert {r.code for r in again.results} >= {"ALREADY_MEMBER"}
    db.session.expire_all()
    b = db.session.get(ImportBatch, batch.id)
    assert b.status == BatchStatus.PROCESSED
    assert (b.total_rows, b.ok_rows, b.error_rows, b.created_rows) == (6, 3, 3, 3)


def test_a_processed_batch_stays_processed_when_a_later_re_check_cannot_read_it(app, ctx, tmp_path, monkeypatch):
    path, _ = _mixed_file(tmp_path)
    batch, user = upload(path)
    process_batch(batch, user)
    monkeypatch.setitem(app.config, "UPLOAD_MAX_ROWS", 5)  # the limit lowered since
    with pytest.raises(BatchFileError, match="上限"):
        write_failed(batch, user)  # 失败行下载 re-reads the file
    db.session.expire_all()
    b = db.session.get(ImportBatch, batch.id)
    assert b.status == BatchStatus.PROCESSED and b.created_rows == 3
    with pytest.raises(BatchFileError, match=r"已.*办理过"):
        process_batch(b, user)

"""One pass per file (issue 13, batch/stage.py): 业务办理 after 业务校验 writes from what the check
kept, without reading or checking the file again, and is exactly as strict as a full re-check:
whatever changed in between (a member admitted, deleted, moved, confirmed; a policy put in flight;
the stage lost) is found set-based, and then the file is checked again."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from test_batch_members import (
    HEADER,
    NAMES,
    assert_fails,
    assert_ok,
    demo_member,
    fresh_id,
    get_user,
    members_file,
    members_of,
    upload,
)
from test_policies_batch import xlsx
from test_policies_entry import EFF, make_member, make_policy

import batch.pipeline as pipeline
from batch import check_batch, create_batch, process_batch
from models import (
    BatchStage,
    Gender,
    ImportBatch,
    ImportRow,
    Member,
    MemberStatus,
    Org,
    Policy,
    PolicyStatus,
    db,
)
from models.audit import audit_entries
from models.storage import checked_path, result_path


@pytest.fixture
def reads(monkeypatch):
    """Counts how often the upload is read."""
    seen = []
    real = pipeline.read_table

    def counting(*a, **kw):
        seen.append(a)
        return real(*a, **kw)

    monkeypatch.setattr(pipeline, "read_table", counting)
    return seen


def staged(batch_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(BatchStage).where(BatchStage.batch_id == batch_id))


def mixed_members(tmp_path: Path):
    """Rows 2–4 new people, row 5 a member of clerk1's unit, row 6 a name with a space."""
    own = demo_member("010101")
    rows = [[NAMES[0], fresh_id()], [NAMES[1], fresh_id()], [NAMES[2], fresh_id()], [own.name, own.id_number]]
    rows.append(["张 伟", fresh_id()])
    return members_file(tmp_path, rows), rows


# === 入会 ========================================================================================


def test_processing_after_the_check_writes_what_the_check_kept_without_reading_the_file_again(
    ctx, tmp_path, monkeypatch
):
    path, rows = mixed_members(tmp_path)
    batch, user = upload(path)
    checked = check_batch(batch, user)
    assert (checked.ok_count, checked.error_count) == (3, 2)
    assert staged(batch.id) == 5 and checked_path(batch).exists()
    real_read = pipeline.read_table
    monkeypatch.setattr(pipeline, "read_table", lambda *a, **kw: pytest.fail("the file was read again"))
    out = process_batch(batch, user)
    assert out.created == 3
    for row in (2, 3, 4):
        assert_ok(out, row)
    assert_fails(out, 5, "ALREADY_MEMBER")
    assert_fails(out, 6, "NAME_SPACE")
    got = {m.id_number: (m.name, m.status, m.org.code) for m in members_of(batch)}
    assert got == {rows[i][1]: (rows[i][0], MemberStatus.NEW, "010101") for i in range(3)}
    # the new 会员编号 are consecutive in row order, as the result file shows them
    numbers = [m.member_no for m in sorted(members_of(batch), key=lambda m: m.id_number)]
    shown = {r.row: r.values.get("member_no") for r in out.results if r.ok}
    assert sorted(shown.values()) == sorted(numbers)
    assert [shown[2], shown[3], shown[4]] == sorted(shown.values())
    # the outcome per row, the audit rows and the result file, as a full run writes them
    outcomes = dict(
        db.session.execute(
            sa.select(ImportRow.row_no, ImportRow.code).where(ImportRow.batch_id == batch.id).order_by(ImportRow.row_no)
        ).all()
    )
    assert outcomes == {2: None, 3: None, 4: None, 5: "ALREADY_MEMBER", 6: "NAME_SPACE"}
    e = audit_entries()
    audit = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(e)
        .where(e.c.entity == "member", e.c.entity_id.in_([m.id for m in members_of(batch)]))
    )
    assert audit == 3
    sheet = list(openpyxl.load_workbook(result_path(batch)).active.iter_rows(values_only=True))
    assert sheet[0][:4] == (*HEADER, "处理结果", "失败原因")
    assert [r[2] for r in sheet[1:]] == ["成功", "成功", "成功", "失败", "失败"]
    assert [r[4] for r in sheet[1:4]] == [shown[2], shown[3], shown[4]]
    # what the check kept is gone
    assert staged(batch.id) == 0 and not checked_path(batch).exists()
    monkeypatch.setattr(pipeline, "read_table", real_read)
    with pytest.raises(Exception, match="办理过"):
        process_batch(db.session.get(ImportBatch, batch.id), user)


def test_a_person_admitted_elsewhere_between_check_and_processing_is_ALREADY_MEMBER_and_not_created_twice(
    ctx, tmp_path, reads
):
    path, rows = mixed_members(tmp_path)
    batch, user = upload(path)
    check_batch(batch, user)
    # clerk2 admits the person of row 3 meanwhile
    other = members_file(tmp_path, [[rows[1][0], rows[1][1]]], "other.xlsx")
    clerk2 = get_user("clerk2")
    assert process_batch(create_batch("members", other.read_bytes(), other.name, clerk2), clerk2).created == 1
    reads.clear()
    out = process_batch(db.session.get(ImportBatch, batch.id), get_user("clerk1"))
    assert reads, "the file is checked again when something changed"
    assert out.created == 2
    assert_fails(out, 3, "ALREADY_MEMBER")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Member).where(Member.id_number == rows[1][1])) == 1


def test_a_member_deleted_between_check_and_processing_is_admitted_as_a_full_re_check_would(ctx, tmp_path):
    new_person = fresh_id()
    first = members_file(tmp_path, [["李娜", new_person]], "first.xlsx")
    b1, user = upload(first)
    assert process_batch(b1, user).created == 1
    path = members_file(tmp_path, [["王芳", fresh_id()], ["李娜", new_person]])
    batch, user = upload(path)
    assert_fails(check_batch(batch, user), 3, "ALREADY_MEMBER")
    db.session.delete(db.session.scalar(sa.select(Member).where(Member.id_number == new_person)))
    db.session.commit()
    out = process_batch(db.session.get(ImportBatch, batch.id), get_user("clerk1"))
    assert out.created == 2
    assert_ok(out, 3)


def test_a_lost_stage_is_no_loss_the_file_is_checked_again(ctx, tmp_path, reads):
    path, rows = mixed_members(tmp_path)
    batch, user = upload(path)
    check_batch(batch, user)
    db.session.execute(sa.delete(BatchStage))  # what a crash does to an UNLOGGED table
    db.session.commit()
    reads.clear()
    out = process_batch(db.session.get(ImportBatch, batch.id), get_user("clerk1"))
    assert reads and out.created == 3
    assert {m.id_number for m in members_of(batch)} == {r[1] for r in rows[:3]}


def test_a_missing_check_file_is_no_loss_the_file_is_checked_again(ctx, tmp_path, reads):
    path, rows = mixed_members(tmp_path)
    batch, user = upload(path)
    check_batch(batch, user)
    checked_path(batch).unlink()
    reads.clear()
    out = process_batch(db.session.get(ImportBatch, batch.id), get_user("clerk1"))
    assert reads and out.created == 3
    assert staged(batch.id) == 0


def test_the_check_of_another_user_is_not_used(ctx, tmp_path, reads):
    path, _ = mixed_members(tmp_path)
    batch, clerk1 = upload(path)
    check_batch(batch, clerk1)
    reads.clear()
    agency = get_user("agency1")  # a different user, a different scope: the file is checked for them
    batch = db.session.get(ImportBatch, batch.id)
    batch.params = {"org_code": "010101"}
    db.session.commit()
    out = process_batch(batch, agency)
    assert reads and out.created == 3


def test_a_second_check_replaces_the_first(ctx, tmp_path, monkeypatch):
    path, _ = mixed_members(tmp_path)
    batch, user = upload(path)
    check_batch(batch, user)
    check_batch(db.session.get(ImportBatch, batch.id), user)
    assert staged(batch.id) == 5
    monkeypatch.setattr(pipeline, "read_table", lambda *a, **kw: pytest.fail("the file was read again"))
    assert process_batch(db.session.get(ImportBatch, batch.id), user).created == 3


# === 投保 ========================================================================================


def policies_batch(app, rows, user="clerk1"):
    u = get_user(user)
    data = xlsx(rows)
    return create_batch("policies", data, "投保.xlsx", u, {"product": "P03", "effective": EFF.isoformat()}), u


def test_policies_after_the_check_are_written_from_it_without_reading_the_file_again(app, ctx, monkeypatch):
    a, b = make_member(app, "阶甲"), make_member(app, "阶乙")
    busy = make_member(app, "阶在途")
    make_policy(app, busy, "P03", PolicyStatus.NEW)
    batch, user = policies_batch(
        app, [("阶甲", a["id_number"], 1, 20), ("阶乙", b["id_number"], 2, 40), ("阶在途", busy["id_number"], 1, 20)]
    )
    assert check_batch(batch, user).ok_count == 2
    monkeypatch.setattr(pipeline, "read_table", lambda *a, **kw: pytest.fail("the file was read again"))
    out = process_batch(batch, user)
    assert out.created == 2
    assert_fails(out, 4, "IN_FLIGHT")
    got = db.session.execute(
        sa.select(Policy.member_id, Policy.shares, Policy.amount, Policy.status, Policy.expected_effective_date).where(
            Policy.import_batch_id == batch.id
        )
    ).all()
    assert sorted(got) == sorted([(a["id"], 1, 20, PolicyStatus.NEW, EFF), (b["id"], 2, 40, PolicyStatus.NEW, EFF)])
    assert staged(batch.id) == 0


def test_a_policy_put_in_flight_between_check_and_processing_fails_its_row_IN_FLIGHT(app, ctx, reads):
    a, b = make_member(app, "阶丙"), make_member(app, "阶丁")
    batch, user = policies_batch(app, [("阶丙", a["id_number"], 1, 20), ("阶丁", b["id_number"], 1, 20)])
    assert check_batch(batch, user).ok_count == 2
    make_policy(app, b, "P03", PolicyStatus.NEW)  # 逐一投保 of the same member meanwhile
    reads.clear()
    out = process_batch(db.session.get(ImportBatch, batch.id), get_user("clerk1"))
    assert reads
    assert out.created == 1
    assert_fails(out, 3, "IN_FLIGHT")
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Policy)
            .where(Policy.member_id == b["id"], Policy.product_id.isnot(None))
        )
        == 1
    )


def test_a_live_policy_that_appears_meanwhile_counts_against_the_shares(app, ctx, reads):
    a = make_member(app, "阶戊")
    batch, user = policies_batch(app, [("阶戊", a["id_number"], 2, 40)])
    assert check_batch(batch, user).ok_count == 1
    make_policy(app, a, "P03", PolicyStatus.EFFECTIVE, start=EFF.replace(day=1), shares=4)
    out = process_batch(db.session.get(ImportBatch, batch.id), get_user("clerk1"))
    assert reads and out.created == 0
    assert out.results[0].code in ("OVER_SHARES", "DUPLICATE")


def test_a_member_moved_to_another_unit_meanwhile_is_NOT_IN_UNIT(app, ctx, reads):
    a, b = make_member(app, "阶己"), make_member(app, "阶庚")
    batch, user = policies_batch(app, [("阶己", a["id_number"], 1, 20), ("阶庚", b["id_number"], 1, 20)])
    assert check_batch(batch, user).ok_count == 2
    m = db.session.get(Member, b["id"])  # 会员调动 approved meanwhile (an UPDATE bumps the version)
    m.org = db.session.scalar(sa.select(Org).where(Org.code == "010201"))
    db.session.commit()
    out = process_batch(db.session.get(ImportBatch, batch.id), get_user("clerk1"))
    assert reads and out.created == 1
    assert_fails(out, 3, "NOT_IN_UNIT")


def test_a_member_confirmed_meanwhile_is_enrolled_as_a_full_re_check_would(app, ctx, reads):
    a = make_member(app, "阶辛", status=MemberStatus.NEW)
    batch, user = policies_batch(app, [("阶辛", a["id_number"], 1, 20)])
    assert_fails(check_batch(batch, user), 2, "NOT_CONFIRMED")
    db.session.get(Member, a["id"]).status = MemberStatus.CONFIRMED  # 上报 meanwhile
    db.session.commit()
    out = process_batch(db.session.get(ImportBatch, batch.id), get_user("clerk1"))
    assert reads and out.created == 1


def test_a_member_admitted_meanwhile_for_a_number_that_found_none_is_found(app, ctx, reads):
    from test_policies_entry import birth_for, new_id

    number = new_id(birth_for(30), False)
    batch, user = policies_batch(app, [("阶壬", number, 1, 20)])
    assert_fails(check_batch(batch, user), 2, "MEMBER_MISSING")
    m = Member(
        member_no="9900000001",
        id_number=number,
        name="阶壬",
        gender=Gender.FEMALE,
        birth_date=birth_for(30),
        org=db.session.scalar(sa.select(Org).where(Org.code == "010101")),
        status=MemberStatus.CONFIRMED,
    )
    db.session.add(m)
    db.session.commit()
    out = process_batch(db.session.get(ImportBatch, batch.id), get_user("clerk1"))
    assert reads and out.created == 1

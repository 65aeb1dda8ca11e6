"""Admission (入会) checks, set-based: the one checker behind the 入会 form (views/member_form.py) and
批量入会 (batch/members.py), shaped like the enrolment checker (batch/enrolment.py).  The pure rules
per request (身份证号, 姓名, the same number twice, age), then one query whatever the number of
requests (which of the numbers are members already), then the over-age question.  One wording of
each message (DESIGN.md §4, the manual 一(一)1)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

import sqlalchemy as sa

from models import ApplicationStatus, Member, Org, OverAgeApplication, db
from models.scope import scope_filter
from rules import AGE_HARD_LIMIT, Code, check_age, check_name, parse_id

from .pipeline import RowResult
from .sql import in_values

OVER_AGE_ADVICE = (
    "如未办理正式退休手续（如局级干部、高级职称），请先通过【超龄例外申请】上传相关文件，经代办处同意后再办理入会"
)
OTHER_UNIT_ADVICE = "如需转入本单位，请通过【会员调动管理】办理调入"


class AdmissionRequest(NamedTuple):
    """One person to admit; a plain tuple (row, name, id_number, over_age_exception) will do."""

    row: int
    name: object = None  # the cells as read (cleaned here)
    id_number: object = None
    over_age_exception: bool = False  # 未办理正式退休手续, agreed by the agency (single entry only)


@dataclass
class AdmissionContext:
    user: object
    today: date = field(default_factory=date.today)  # admission date: the age is counted on it
    confirmed_over_age: bool = False  # the form asks "是否继续" first; a batch's 业务办理 is its 确定
    exclude_member_id: int | None = None  # the member being edited does not count against itself
    # look up the agency's approved exceptions (超龄例外申请) of the over-age rows, in one query
    # (批量入会); the form looks up its one ID number itself and passes it in the request
    agreed_exceptions: bool = False


def check_admissions(requests: Iterable, ctx: AdmissionContext) -> list[RowResult]:
    """A RowResult per request; a passing one's `values` are what a member row is written from
    (id_number, name, gender, birth_date) and needs_confirmation."""
    # one pass, no per-row work beyond the rules themselves (this loop runs for every row of both
    # 业务校验 and 业务办理 of a batch: 50,000 rows are ~0.2 s of it)
    today = ctx.today
    results: list[RowResult] = []
    append = results.append
    first_row: dict[str, int] = {}
    setdefault = first_row.setdefault
    _parse_id, _check_name, _check_age, _RowResult = parse_id, check_name, check_age, RowResult
    dup_code, dup_message = Code.DUP_IN_FILE, Code.DUP_IN_FILE.message
    over_age: dict[str, tuple] = {}  # number -> (index, values, warnings): over the limit, under 65
    for row_no, name, id_number, exception in requests:
        idc = _parse_id(id_number, today)
        namec = _check_name(name)
        warnings = namec.warnings + idc.warnings
        if not idc.ok:
            append(_RowResult(row_no, idc.code, idc.message, warnings))
            continue
        if not namec.ok:
            append(_RowResult(row_no, namec.code, namec.message, warnings))
            continue
        gender, birth_date, number = idc.value
        first = setdefault(number, row_no)
        if first != row_no:
            append(_RowResult(row_no, dup_code, f"{dup_message}（与第{first}行相同）", warnings))
            continue
        age = _check_age(gender, birth_date, today, exception)
        values = {"id_number": number, "name": namec.value, "gender": gender, "birth_date": birth_date}
        if not age.ok:
            if age.code == Code.OVER_AGE and age.value < AGE_HARD_LIMIT and ctx.agreed_exceptions:
                over_age[number] = (len(results), values, warnings)
            append(_RowResult(row_no, age.code, age_message(age), warnings))
            continue
        if age.needs_confirmation:
            values["needs_confirmation"] = True
        append(_RowResult(row_no, None, "", warnings, values))
    if over_age:
        for number in agreed_exceptions(list(over_age), ctx.user):
            i, values, warnings = over_age[number]
            values["needs_confirmation"] = True
            results[i] = _RowResult(results[i].row, None, "", (*warnings, Code.OVER_AGE_AGREED), values)
    _check_existing(results, ctx)
    if not ctx.confirmed_over_age:
        for r in results:
            if r.ok and r.values.get("needs_confirmation"):
                r.fail(Code.NEEDS_CONFIRMATION)
    return results


def agreed_exceptions(numbers: list[str], user) -> set[str]:
    """Of these ID numbers, those with an agency-approved 超龄例外申请 in the user's scope: one query."""
    return set(
        db.session.scalars(
            sa.select(OverAgeApplication.id_number).where(
                in_values(db.session, OverAgeApplication.id_number, numbers),
                OverAgeApplication.status == ApplicationStatus.APPROVED,
                scope_filter(OverAgeApplication, user),
            )
        )
    )


def age_message(age) -> str:
    """超龄 / 未满投保年龄 with the age, and what to do where something can be done."""
    text = f"{age.message}（{age.value}周岁）"
    if age.code == Code.OVER_AGE and age.value < AGE_HARD_LIMIT:
        text += f"。{OVER_AGE_ADVICE}"
    return text


def _check_existing(results: list[RowResult], ctx: AdmissionContext) -> None:
    """ALREADY_MEMBER, in one query whatever the row count; the unit is named when it is in scope."""
    pending = {r.values["id_number"]: r for r in results if r.ok}
    if not pending:
        return
    stmt = (
        sa.select(
            Member.id_number,
            Member.member_no,
            Org.name,
            scope_filter(Org, ctx.user).label("mine"),
            Member.id,
            Member.version,
        )
        .join(Org, Org.id == Member.org_id)
        .where(in_values(db.session, Member.id_number, list(pending)))
    )
    if ctx.exclude_member_id is not None:
        stmt = stmt.where(Member.id != ctx.exclude_member_id)
    for id_number, member_no, org_name, is_mine, member_id, version in db.session.execute(stmt).all():
        if is_mine:
            msg = f"{Code.ALREADY_MEMBER.message}（{org_name}，会员编号 {member_no}）"
        else:
            msg = f"{Code.ALREADY_MEMBER.message}（在其他单位）。{OTHER_UNIT_ADVICE}"
        r = pending[id_number]
        r.fail(Code.ALREADY_MEMBER, msg)
        r.facts = (member_id, version)  # what a staged check re-verifies (batch/stage.py)

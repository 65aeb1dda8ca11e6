"""One step from a failure to its remedy (manual 一(三), 一(四)): from the rows a 投保 or 入会 batch (or
新会员投保 / 批量续转) could not do, the applications that put them right, all at once, as 新建 drafts
listed for review before 提交.

    NOT_IN_UNIT, ALREADY_MEMBER (another unit)  → 会员调动申请   (【生成调动申请】)
    ID_CHECKSUM, GENDER, NAME_MISMATCH           → 会员变更申请   (【生成变更申请】, the file's name prefilled)
    MEMBER_MISSING                               → a filled 批量入会模板 (【生成入会文件】, nothing is written)
    OVER_AGE (under 65)                          → 超龄例外申请   (【生成超龄例外申请】, document still to attach)

Set-based: one query finds the people of all rows, one INSERT … ON CONFLICT DO NOTHING writes the
drafts (the partial unique indexes allow one undecided application per member, or ID number, and
kind), one INSERT … SELECT their audit rows.  Pressed twice, the second press creates nothing and
says why.  A transfer shows another unit's member (masked): it needs the file's name to match the
member's, and counts against the user's hourly look-ups like 【查找】.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa

from batch.admission import agreed_exceptions
from batch.enrolment import members_named
from batch.pipeline import FailedRow
from models import ApplicationStatus as AS
from models import (
    ChangeApplication,
    Member,
    OverAgeApplication,
    TransferApplication,
    db,
    scope_filter,
    utcnow,
    write_audit,
)
from models.applications import PENDING, PENDING_SQL
from rules import check_name, normalize_id, parse_id, parse_member_no

from .applications import TRANSFER_BLOCKING, has_in_flight
from .new_applications import lookups_in_last_hour, over_age_refusal

TRANSFER_CODES = frozenset({"NOT_IN_UNIT", "ALREADY_MEMBER"})
CHANGE_CODES = frozenset({"ID_CHECKSUM", "GENDER", "NAME_MISMATCH"})
ADMISSION_CODES = frozenset({"MEMBER_MISSING"})
OVER_AGE_CODES = frozenset({"OVER_AGE"})

REMEDIES = {  # kind -> (codes, button words, the application list it leads to)
    "transfer": (TRANSFER_CODES, "生成调动申请", "transfers"),
    "change": (CHANGE_CODES, "生成变更申请", "changes"),
    "admission": (ADMISSION_CODES, "生成入会文件", None),
    "over_age": (OVER_AGE_CODES, "生成超龄例外申请", "over_age"),
}


@dataclass
class Remedy:
    created: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> rows

    def message(self, what: str, submit_words: str) -> str:
        text = f"已生成 {self.created} 份{what}（新建）"
        if self.created:
            text += f"，请在列表中核对后点【{submit_words}】"
        if self.skipped:
            text += "；未生成：" + "，".join(f"{why} {n} 人" for why, n in self.skipped.items())
        return text + "。"


def remedies_for(codes: Counter) -> list[tuple[str, str, int]]:
    """(kind, button words, how many rows) of the remedies failed rows with these codes call for."""
    out = []
    for kind, (kind_codes, words, _list) in REMEDIES.items():
        n = sum(codes[c] for c in kind_codes)
        if n:
            out.append((kind, words, n))
    return out


def _id_text(value) -> str | None:
    """The file's 身份证号 cleaned as far as it can be (spaces, full-width, lowercase x): a number
    whose check digit is wrong is kept as it is, since a member may be stored with exactly that."""
    if value in (None, ""):
        return None
    norm = normalize_id(value)
    return norm.value if norm.ok else None


def _member_no(value) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return parse_member_no(str(value))


def _people(rows: list[FailedRow]) -> dict:
    """The members the rows name (by 身份证号 or 会员编号), in one query; by ("idn", …) and ("no", …)."""
    idns = sorted({i for i in (_id_text(r.id_number) for r in rows) if i})
    nos = sorted({n for n in (_member_no(r.member_no) for r in rows) if n})
    named = members_named(idns, nos)
    if named is None:
        return {}
    return {
        key: m
        for m in db.session.scalars(sa.select(Member).where(named))
        for key in (("idn", m.id_number), ("no", m.member_no))
    }


def _member_of(row: FailedRow, people: dict) -> Member | None:
    idn, no = _id_text(row.id_number), _member_no(row.member_no)
    return people.get(("idn", idn)) if idn else people.get(("no", no)) if no else None


def _in_scope(members, user, model=Member) -> set[int]:
    ids = [m.id for m in members]
    if not ids:
        return set()
    return set(db.session.scalars(sa.select(Member.id).where(Member.id.in_(ids), scope_filter(Member, user))))


def _named(rows: list[FailedRow], codes, user) -> tuple[list[FailedRow], dict, set[int]]:
    """The rows of these codes, the member each names (None: nobody) and which of those members
    the user's scope holds: two queries, whatever the row count."""
    rows = [r for r in rows if r.code in codes]
    people = _people(rows)
    found = {r.row: _member_of(r, people) for r in rows}
    return rows, found, _in_scope([m for m in found.values() if m is not None], user)


def _write_drafts(out: Remedy, model, drafts: list[dict], index_column: str, user, entity: str, pending: str):
    """Write the drafts and count them; those refused because one is already `pending` are counted
    as skipped for that reason.  The new ids."""
    created = _insert_drafts(model, drafts, index_column, user, entity, {"status": AS.NEW.value})
    out.created = len(created)
    if len(drafts) > out.created:
        out.skipped[pending] += len(drafts) - out.created
    return created


def _insert_drafts(model, rows: list[dict], index_column: str, user, entity: str, audit_after: dict) -> list[int]:
    """The drafts in one INSERT … ON CONFLICT DO NOTHING (an undecided one of the same member or
    ID number already there: nothing), their audit rows in one INSERT … SELECT; the new ids."""
    if not rows:
        return []
    marker = utcnow()
    for r in rows:
        r.update(status=AS.NEW.value, created_by_id=user.id, created_at=marker, updated_at=marker, version=1)
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(model.__table__).on_conflict_do_nothing(index_elements=[index_column], index_where=PENDING_SQL)
    db.session.execute(stmt, rows)
    written = sa.select(model.id).where(model.created_by_id == user.id, model.created_at == marker)
    write_audit("create", entity, written, user.id, after=audit_after)
    return list(db.session.scalars(written))


def failed_from_list(failures: list[dict]) -> list[FailedRow]:
    """The rows of a 批量投保失败人员名单 (新会员投保, 批量续转) as failed rows."""
    return [
        FailedRow(n, f.get("code") or "", f.get("reason", ""), f.get("name"), f.get("id_number"), f.get("member_no"))
        for n, f in enumerate(failures, start=1)
    ]


def run(kind: str, rows: list[FailedRow], user, per_hour: int) -> Remedy:
    if kind == "transfer":
        return transfers(rows, user, per_hour)
    if kind == "change":
        return changes(rows, user)
    return over_age(rows, user)


# ---- 【生成调动申请】 ---------------------------------------------------------------------------------
def transfers(rows: list[FailedRow], user, per_hour: int) -> Remedy:
    out = Remedy()
    rows, found, mine = _named(rows, TRANSFER_CODES, user)
    candidates = {m.id: m for m in found.values() if m is not None and m.id not in mine}
    busy = _busy_for_transfer(list(candidates))
    allowance = max(per_hour - lookups_in_last_hour(user), 0)
    drafts, seen = [], set()
    for r in rows:
        m = found[r.row]
        name = check_name(r.name).value if r.name not in (None, "") else None
        if m is None:
            out.skipped["文件中的身份证号或会员编号查不到会员"] += 1
        elif m.id in mine:
            out.skipped["已在本单位"] += 1
        elif name != m.name:  # a unit sees another unit's member only when it already knows who it is
            out.skipped["文件中没有姓名或姓名与该会员不一致"] += 1
        elif m.id in seen:
            out.skipped["文件中重复"] += 1
        elif busy.get(m.id):
            out.skipped[busy[m.id]] += 1
        elif len(drafts) >= allowance:
            out.skipped["超过每小时查找上限（请一小时后再生成）"] += 1
        else:
            seen.add(m.id)
            drafts.append(
                {
                    "member_id": m.id,
                    "from_org_id": m.org_id,
                    "to_org_id": user.org_id,
                    "reason": f"批量业务失败（第{r.row}行）：{r.message}"[:200],
                }
            )
    created = _write_drafts(
        out, TransferApplication, drafts, "member_id", user, "transfer_application", "已有未审批的调动申请"
    )
    if created:  # each is a look-up of another unit's member: audited and counted like 【查找】
        write_audit(
            "lookup",
            "member",
            sa.select(TransferApplication.member_id).where(TransferApplication.id.in_(created)),
            user.id,
            after={"term": "批量业务失败行", "found": True},
        )
    return out


def _busy_for_transfer(member_ids: list[int]) -> dict[int, str]:
    """Members who cannot move now, with why: an undecided transfer, or in-flight policies."""
    if not member_ids:
        return {}
    rows = db.session.execute(
        sa.select(
            Member.id,
            sa.exists().where(
                TransferApplication.member_id == Member.id, TransferApplication.status.in_(list(PENDING))
            ),
            has_in_flight(Member.id, TRANSFER_BLOCKING),
        ).where(Member.id.in_(member_ids))
    ).all()
    out = {}
    for mid, pending, in_flight in rows:
        if pending:
            out[mid] = "已有未审批的调动申请"
        elif in_flight:
            out[mid] = "在原单位有未办结的投保记录"
    return out


# ---- 【生成变更申请】 ---------------------------------------------------------------------------------
def changes(rows: list[FailedRow], user) -> Remedy:
    out = Remedy()
    rows, found, mine = _named(rows, CHANGE_CODES, user)
    drafts, seen = [], set()
    for r in rows:
        m = found[r.row]
        if m is None or m.id not in mine:
            out.skipped["本单位查不到该会员（请核对文件中的身份证号）"] += 1
            continue
        if m.id in seen:
            out.skipped["文件中重复"] += 1
            continue
        new_name = None
        if r.code == "NAME_MISMATCH":
            check = check_name(r.name)
            if not check.ok or check.value == m.name:
                out.skipped["文件中的姓名不能作为新姓名"] += 1
                continue
            new_name = check.value
        seen.add(m.id)
        drafts.append(
            {
                "member_id": m.id,
                "org_id": m.org_id,
                "old_name": m.name,
                "new_name": new_name,
                "old_id_number": m.id_number,
                "reason": f"批量业务失败（第{r.row}行）：{r.message}"[:200],
            }
        )
    _write_drafts(out, ChangeApplication, drafts, "member_id", user, "change_application", "已有未审批的变更申请")
    return out


# ---- 【生成超龄例外申请】 -------------------------------------------------------------------------------
def over_age(rows: list[FailedRow], user) -> Remedy:
    out = Remedy()
    rows, found, mine = _named(rows, OVER_AGE_CODES, user)
    drafts, seen = [], set()
    for r in rows:
        m = found[r.row]
        if m is not None and m.id not in mine:
            out.skipped["会员不在本单位"] += 1
            continue
        if m is not None:
            idn, name, gender, birth = m.id_number, m.name, m.gender.value, m.birth_date
        else:  # 入会: not a member yet, the file's number and name
            idc, namec = parse_id(r.id_number), check_name(r.name)
            if not idc.ok or not namec.ok:
                out.skipped["文件中的身份证号或姓名有误"] += 1
                continue
            idn, name, gender, birth = idc.value.number, namec.value, idc.value.gender, idc.value.birth_date
        refusal = over_age_refusal(gender, birth)
        if refusal:
            out.skipped["已满65周岁" if "65" in refusal else "未超龄"] += 1
            continue
        if idn in seen:
            out.skipped["文件中重复"] += 1
            continue
        seen.add(idn)
        drafts.append(
            {
                "org_id": user.org_id,
                "member_id": m.id if m is not None else None,
                "id_number": idn,
                "name": name,
                "gender": gender,
                "birth_date": birth,
                "reason": "",
            }
        )
    approved = agreed_exceptions([d["id_number"] for d in drafts], user) if drafts else set()
    if approved:
        out.skipped["已有代办处同意的超龄例外"] += len(approved)
        drafts = [d for d in drafts if d["id_number"] not in approved]
    _write_drafts(
        out, OverAgeApplication, drafts, "id_number", user, "over_age_application", "已有未审批的超龄例外申请"
    )
    return out


# ---- 【生成入会文件】 ---------------------------------------------------------------------------------
def admission_rows(rows: list[FailedRow]) -> list[tuple[str, str]]:
    """(姓名, 身份证号) of the MEMBER_MISSING rows, for a filled 批量入会模板 (nothing is written)."""
    out, seen = [], set()
    for r in rows:
        if r.code not in ADMISSION_CODES:
            continue
        idn = _id_text(r.id_number) or ("" if r.id_number is None else str(r.id_number))
        if idn in seen:
            continue
        seen.add(idn)
        name = check_name(r.name).value if r.name not in (None, "") else ""
        out.append((name or "", idn))
    return out

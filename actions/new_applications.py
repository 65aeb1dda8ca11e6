"""Creating applications: the transfer look-up (the one place a unit sees another unit's member,
masked, rate-limited and audited), 【提交新建申请】, and the checks of a change or an over-age
request that need the database.  The forms (views/application_forms.py) call these."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa

from models import (
    TRANSFER_WORKFLOW,
    ApplicationStatus,
    AuditLog,
    ChangeApplication,
    Member,
    OverAgeApplication,
    Policy,
    Product,
    TransferApplication,
    db,
    scope_filter,
    utcnow,
    write_audit,
)
from models.applications import PENDING
from rules import AGE_HARD_LIMIT, AGE_LIMIT, Code, age_on, mask_id, parse_id

from .applications import TRANSFER_BLOCKING, run_one

MEMBER_NO_RE = re.compile(r"^\d{1,10}$")
MISSING = f"{Code.MEMBER_MISSING.message}（该人员没有入过会，{Code.MEMBER_MISSING.hint}）"


def find_member(term: str) -> tuple[Member | None, str | None]:
    """The member a 证件号 or 会员号 names, whatever their unit (callers decide what to show)."""
    term = (term or "").strip()
    if not term:
        return None, "请输入证件号或会员号"
    if MEMBER_NO_RE.match(term):
        return db.session.scalar(sa.select(Member).where(Member.member_no == term.zfill(10))), None
    idc = parse_id(term)
    if not idc.ok:
        return None, idc.message
    return db.session.scalar(sa.select(Member).where(Member.id_number == idc.value.number)), None


def lookups_in_last_hour(user) -> int:
    since = utcnow() - timedelta(hours=1)
    return db.session.scalar(  # the look-ups, not the audit rows: one row may name several (models/audit.py)
        sa.select(sa.func.coalesce(sa.func.sum(AuditLog.entity_count), 0)).where(
            AuditLog.user_id == user.id, AuditLog.action == "lookup", AuditLog.created_at >= since
        )
    )


@dataclass
class Lookup:
    message: str = ""  # why nothing is shown (not found, malformed, too many look-ups)
    masked: dict = field(default_factory=dict)  # name, masked ID, current unit: nothing else
    refusal: str | None = None  # why no transfer can be asked for this member now

    @property
    def found(self) -> bool:
        return bool(self.masked)


def transfer_lookup(term: str, user, per_hour: int) -> Lookup:
    """【查找】 of 会员调动管理: masked data of a member of any unit, at most `per_hour` a user, each audited."""
    used = lookups_in_last_hour(user)
    if used >= per_hour:
        return Lookup(
            message=f"您在一小时内已查找 {used} 次，达到每小时 {per_hour} 次的上限。请稍后再试；"
            "如确有大量人员需要调入，请联系信息部。"
        )
    member, error = find_member(term)
    write_audit(
        "lookup",
        "member",
        [member.id if member is not None else 0],
        user.id,
        after={
            "term": mask_id(term.strip()) if not MEMBER_NO_RE.match(term.strip()) else term.strip(),
            "found": bool(member),
        },
    )
    db.session.commit()
    if error:
        return Lookup(message=error)
    if member is None:
        return Lookup(message=MISSING)
    masked = {"name": member.name, "id_number": mask_id(member.id_number), "unit": member.org.name}
    return Lookup(masked=masked, refusal=transfer_refusal(member, user))


def transfer_refusal(member: Member, user) -> str | None:
    """Why `user`'s unit cannot ask to take `member` now (None: it can)."""
    mine = db.session.scalar(sa.select(scope_filter(Member, user)).select_from(Member).where(Member.id == member.id))
    if mine:
        return f"该会员已在本单位（会员编号 {member.member_no}），无需调动"
    pending = db.session.scalar(
        sa.select(TransferApplication.id).where(
            TransferApplication.member_id == member.id, TransferApplication.status.in_(list(PENDING))
        )
    )
    if pending is not None:
        return f"该会员已有一份未审批的调动申请（申请编号 {pending}），请勿重复申请"
    in_flight = db.session.execute(
        sa.select(Product.name, Policy.status)
        .join(Product, Product.id == Policy.product_id)
        .where(Policy.member_id == member.id, Policy.status.in_(list(TRANSFER_BLOCKING)))
        .order_by(Policy.id)
    ).all()
    if in_flight:
        which = "、".join(f"“{name}”（{status.label}）" for name, status in in_flight)
        return f"该会员在原单位有未办结的投保记录：{which}。请原单位办结（生效或删除）后再申请调动"
    return None


def create_transfer(term: str, user, reason: str = "") -> tuple[int | None, str]:
    """【提交新建申请】: the application, submitted to 信息部 at once (one transaction)."""
    member, error = find_member(term)
    if error or member is None:
        return None, error or MISSING
    refusal = transfer_refusal(member, user)
    if refusal:
        return None, refusal
    app = TransferApplication(
        member_id=member.id,
        from_org_id=member.org_id,
        to_org_id=user.org_id,
        reason=(reason or "").strip() or None,
        created_by_id=user.id,
        status=ApplicationStatus.NEW,
    )
    db.session.add(app)
    try:
        db.session.flush()
    except sa.exc.IntegrityError:
        db.session.rollback()
        return None, "该会员刚刚已有一份调动申请，请勿重复申请"
    write_audit("create", "transfer_application", [app.id], user.id, after={"member_id": member.id})
    result = run_one(TRANSFER_WORKFLOW, "submit", app.id, user)
    if result.done != 1:
        db.session.rollback()
        return None, result.message
    db.session.commit()
    return app.id, f"已提交调动申请（申请编号 {app.id}），请等待信息部审批"


# ---- 会员变更 ----------------------------------------------------------------------------------------
def own_member(term: str, user) -> tuple[Member | None, str | None]:
    """A member of the user's own scope by 证件号 or 会员编号; another unit's is "查无此会员信息"."""
    member, error = find_member(term)
    if error:
        return None, error
    if member is None:
        return None, MISSING
    mine = db.session.scalar(sa.select(scope_filter(Member, user)).select_from(Member).where(Member.id == member.id))
    if not mine:
        return None, f"{Code.NOT_IN_UNIT.message}（会员不在本单位，{Code.NOT_IN_UNIT.hint}）"
    return member, None


def pending_change(member_id: int, except_id: int | None = None) -> int | None:
    return db.session.scalar(
        sa.select(ChangeApplication.id).where(
            ChangeApplication.member_id == member_id,
            ChangeApplication.status.in_(list(PENDING)),
            ChangeApplication.id != (except_id or 0),
        )
    )


def id_number_taken(number: str, member_id: int, except_app: int | None = None) -> str | None:
    """The new ID number is used by another member or asked for by another pending change."""
    other = db.session.scalar(sa.select(Member.id).where(Member.id_number == number, Member.id != member_id))
    if other is not None:
        return "该身份证号已被其他会员使用"
    asked = db.session.scalar(
        sa.select(ChangeApplication.id).where(
            ChangeApplication.new_id_number == number,
            ChangeApplication.status.in_(list(PENDING)),
            ChangeApplication.id != (except_app or 0),
        )
    )
    if asked is not None:
        return "该身份证号已在另一份未审批的变更申请中"
    return None


# ---- 超龄例外 ----------------------------------------------------------------------------------------
def over_age_refusal(gender: str, birth: date, today: date | None = None) -> str | None:
    """65 or older: never.  Not over the limit within a year: no exception needed."""
    today = today or date.today()
    age = age_on(birth, today)
    if age >= AGE_HARD_LIMIT:
        return f"该人员已满{AGE_HARD_LIMIT}周岁（{age}周岁），未办理正式退休手续也不能参保，不能申请超龄例外"
    in_a_year = age_on(birth, today.replace(year=today.year + 1) if (today.month, today.day) != (2, 29) else today)
    if in_a_year < AGE_LIMIT[gender]:
        return f"该人员{age}周岁，未超过投保年龄，无需申请超龄例外"
    return None


def over_age_existing(id_number: str, user, except_id: int | None = None) -> str | None:
    """Another undecided request for the ID number, or an approved one in the user's scope."""
    rows = db.session.execute(
        sa.select(OverAgeApplication.id, OverAgeApplication.status, scope_filter(OverAgeApplication, user)).where(
            OverAgeApplication.id_number == id_number,
            OverAgeApplication.id != (except_id or 0),
            OverAgeApplication.status.in_([*PENDING, ApplicationStatus.APPROVED]),
        )
    ).all()
    for app_id, status, mine in rows:
        if status in PENDING:
            return f"该人员已有一份未审批的超龄例外申请（申请编号 {app_id}）" + ("" if mine else "（在其他单位）")
        if mine:
            return f"该人员已有代办处同意的超龄例外（申请编号 {app_id}），无需重复申请"
    return None


def approved_over_age(id_number: str, user) -> OverAgeApplication | None:
    """The agency-approved exception for this ID number in the user's scope (入会 and 投保 read it)."""
    return db.session.scalar(
        sa.select(OverAgeApplication)
        .where(
            OverAgeApplication.id_number == id_number,
            OverAgeApplication.status == ApplicationStatus.APPROVED,
            scope_filter(OverAgeApplication, user),
        )
        .order_by(OverAgeApplication.decided_at.desc())
        .limit(1)
    )

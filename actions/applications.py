"""The one application workflow's actions (models/applications.py): 提交/上报, 通过, 驳回, 重新编辑.

Every kind supplies only its own rules: the conditions an application must still meet to be
submitted or approved (each with the reason shown when one does not), and `on_approve`, what
approval does.  The transitions themselves are the declared ones, set-based like every other:

    通过   lock the members concerned (in id order), then one UPDATE … WHERE id IN (query) AND
           status = 'SUBMITTED' AND <the kind's conditions> RETURNING id, with its audit rows;
           then `on_approve(ids)`: one UPDATE of the members and one INSERT … SELECT of their
           audit rows, for exactly the applications this transaction approved.

Two approvers approving (or one approving, one rejecting) the same application at once: the
second waits for the first's locks, then finds it no longer 已提交 and skips it — one effect, one
audit row.  An application whose member changed meanwhile (left the unit, its data changed, an
in-flight policy appeared) fails a condition and is skipped with that reason, never clobbered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from batch.sql import in_values
from models import (
    CHANGE_WORKFLOW,
    OVER_AGE_WORKFLOW,
    POLICY_IN_FLIGHT,
    TRANSFER_WORKFLOW,
    ChangeApplication,
    Member,
    OverAgeApplication,
    Policy,
    PolicyStatus,
    Product,
    TransferApplication,
    Workflow,
    db,
    utcnow,
)
from models import ApplicationStatus as AS
from models.audit import ACTION_LABELS, audit_select
from rules import check_age
from rules.age import AGE_HARD_LIMIT

from .base import Result, json_object, transition
from .workflow import special, transition_values

# what approval does to a member, as the audit log names it
ACTION_LABELS.update({"transfer": "会员调动", "change": "会员变更", "over_age": "超龄例外", "lookup": "调动查找"})

# a member with a policy in one of these states cannot move: it belongs to the old unit's work in hand
TRANSFER_BLOCKING = (*POLICY_IN_FLIGHT, PolicyStatus.AGENCY_REPORTED)


@dataclass
class ApplicationKind:
    workflow: Workflow
    submit_blockers: Callable  # () -> [(reason, SQL condition the application must meet)]
    approve_blockers: Callable
    on_approve: Callable  # (approved application ids, user) -> None
    approve_warnings: Callable | None = None  # (ids) -> [str], shown before approving
    # (model, ids, from_states) -> None: row locks on what the conditions read, taken before the
    # transition (default: the applications' members)
    lock: Callable | None = None


KINDS: dict = {}


def register(kind: ApplicationKind) -> ApplicationKind:
    wf = kind.workflow
    KINDS[wf.model] = kind
    special(
        wf,
        "submit",
        run=checked_run(wf, "submit", kind.submit_blockers, lock=kind.lock),
        blockers=kind.submit_blockers,
    )
    special(
        wf,
        "approve",
        run=checked_run(wf, "approve", kind.approve_blockers, effect=kind.on_approve, lock=kind.lock),
        blockers=kind.approve_blockers,
        # what the approver must see first (e.g. an in-flight policy the change makes ineligible)
        precheck=(lambda ids, user: (kind.approve_warnings(ids), None)) if kind.approve_warnings else None,
    )
    return kind


def _lock_members(model, ids, from_states) -> None:
    """Row locks on the members of the applications about to move, in id order (no deadlock
    between two approvers): what the conditions read cannot change until this transaction ends,
    and a second approver of the same application waits here, then finds it decided."""
    if not hasattr(model, "member_id"):
        return
    members = sa.select(model.member_id).where(model.id.in_(ids), model.status.in_(list(from_states)))
    db.session.execute(sa.select(Member.id).where(Member.id.in_(members)).order_by(Member.id).with_for_update()).all()


def skip_reasons(model, ids, from_states, blockers) -> dict[str, int]:
    """Rows of `ids` still in `from_states` that fail a condition, counted by the first they fail."""
    if not blockers:
        return {}
    from .base import blocker_code

    inner = (
        sa.select(blocker_code(blockers).label("code"))
        .where(model.id.in_(ids), model.status.in_(list(from_states)))
        .subquery()
    )
    rows = db.session.execute(
        sa.select(inner.c.code, sa.func.count()).where(inner.c.code > 0).group_by(inner.c.code)
    ).all()
    return {blockers[code - 1][0]: n for code, n in rows}


def checked_run(
    wf: Workflow, name: str, blockers: Callable, effect: Callable | None = None, lock: Callable | None = None
) -> Callable:
    t = wf.get(name)
    lock = lock or _lock_members

    def run(ids, user, expected=None, reason=None) -> Result:
        model = wf.model
        lock(model, ids, t.from_states)
        conds = list(blockers())
        values, after = transition_values(t, user, reason)
        done = transition(
            model,
            ids,
            t.from_states,
            t.to_state,
            user,
            t.action,
            values=values,
            after=after,
            where=tuple(c for _, c in conds),
            returning_ids=True,
        )
        if effect is not None and done:
            effect(done, user)
        blocked = skip_reasons(model, ids, t.from_states, conds)
        skipped = max((expected or len(done)) - len(done), 0)
        message = f"{t.done_words} {len(done)} 条，跳过 {skipped} 条（状态已变化）"
        if blocked:
            message += "；不能" + t.action_label + "：" + "，".join(f"{why} {n} 条" for why, n in blocked.items())
        return Result(len(done), skipped, message)

    return run


def _approved(model, ids: list[int]):
    return in_values(db.session, model.id, ids, sa.Integer)


def member_value(model, col):
    """The current value of a member column, for the application row at hand (correlated)."""
    return sa.select(col).where(Member.id == model.member_id).scalar_subquery()


def has_in_flight(member_id_col, states=TRANSFER_BLOCKING):
    return sa.exists().where(Policy.member_id == member_id_col, Policy.status.in_(list(states)))


# ---- 会员调动 --------------------------------------------------------------------------------------
T = TransferApplication


def transfer_submit_blockers():
    org = member_value(T, Member.org_id)
    return [
        ("会员已在本单位", org != T.to_org_id),
        ("会员所在单位已变化，请重新创建申请", org == T.from_org_id),
        ("会员在原单位有未办结的投保记录（新建、打回、上报或代办处已上报）", ~has_in_flight(T.member_id)),
    ]


def transfer_approve_blockers():
    return [
        ("会员已不在调出单位", member_value(T, Member.org_id) == T.from_org_id),
        ("会员在原单位有未办结的投保记录（新建、打回、上报或代办处已上报）", ~has_in_flight(T.member_id)),
    ]


def transfer_on_approve(ids: list[int], user) -> None:
    """The member's unit becomes the applicant's; their policies keep the unit they were enrolled in."""
    approved = _approved(T, ids)
    to_org = sa.select(T.to_org_id).where(T.member_id == Member.id, approved).scalar_subquery()
    db.session.execute(
        sa.update(Member)
        .where(Member.id.in_(sa.select(T.member_id).where(approved)))
        .values(org_id=to_org, updated_at=utcnow(), version=Member.version + 1)
        .execution_options(synchronize_session=False)
    )
    audit_select(
        "transfer",
        "member",
        user.id,
        sa.select(
            T.member_id,
            json_object("org_id", T.from_org_id),
            json_object("org_id", T.to_org_id, "application_id", T.id),
        ).where(approved),
    )


TRANSFER = register(
    ApplicationKind(TRANSFER_WORKFLOW, transfer_submit_blockers, transfer_approve_blockers, transfer_on_approve)
)


# ---- 会员变更 --------------------------------------------------------------------------------------
C = ChangeApplication


def _change_blockers(at_submit: bool):
    other_member = sa.orm.aliased(Member)
    other_app = sa.orm.aliased(ChangeApplication)
    out = []
    if at_submit:
        out.append(
            (
                "未填写变更后的姓名或身份证号，请先修改申请",
                sa.or_(C.new_name.is_not(None), C.new_id_number.is_not(None)),
            )
        )
    out += [
        ("会员已不在申请单位", member_value(C, Member.org_id) == C.org_id),
        (
            "会员的姓名或身份证号在申请后已被修改，请重新创建申请",
            sa.and_(member_value(C, Member.name) == C.old_name, member_value(C, Member.id_number) == C.old_id_number),
        ),
        (
            "该身份证号已被其他会员使用",
            sa.or_(
                C.new_id_number.is_(None),
                ~sa.exists().where(other_member.id_number == C.new_id_number, other_member.id != C.member_id),
            ),
        ),
        (
            "另有待审批的变更申请使用同一新身份证号",
            sa.or_(
                C.new_id_number.is_(None),
                ~sa.exists().where(
                    other_app.new_id_number == C.new_id_number,
                    other_app.id != C.id,
                    other_app.status == AS.SUBMITTED,
                ),
            ),
        ),
    ]
    return out


def change_on_approve(ids: list[int], user) -> None:
    """Name, ID number, and the gender and birth date that follow the ID, in one UPDATE."""
    approved = _approved(C, ids)

    def new(app_col, member_col):
        return (
            sa.select(sa.func.coalesce(app_col, member_col)).where(C.member_id == Member.id, approved).scalar_subquery()
        )

    db.session.execute(
        sa.update(Member)
        .where(Member.id.in_(sa.select(C.member_id).where(approved)))
        .values(
            name=new(C.new_name, Member.name),
            id_number=new(C.new_id_number, Member.id_number),
            gender=new(C.new_gender, Member.gender),
            birth_date=new(C.new_birth_date, Member.birth_date),
            updated_at=utcnow(),
            version=Member.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    audit_select(
        "change",
        "member",
        user.id,
        sa.select(
            C.member_id,
            json_object("name", C.old_name, "id_number", C.old_id_number),
            json_object(
                "name",
                sa.func.coalesce(C.new_name, C.old_name),
                "id_number",
                sa.func.coalesce(C.new_id_number, C.old_id_number),
                "gender",
                C.new_gender,
                "birth_date",
                C.new_birth_date,
                "application_id",
                C.id,
            ),
        ).where(approved),
    )


def change_warnings(ids) -> list[str]:
    """In-flight policies that the new gender or birth date would make ineligible: one query."""
    rows = db.session.execute(
        sa.select(
            C.id,
            C.old_name,
            C.new_gender,
            C.new_birth_date,
            Member.over_age_exception,
            Product.name,
            Product.gender_restriction,
            Policy.status,
            Policy.expected_effective_date,
        )
        .join(Member, Member.id == C.member_id)
        .join(Policy, Policy.member_id == C.member_id)
        .join(Product, Product.id == Policy.product_id)
        .where(
            C.id.in_(ids),
            C.status == AS.SUBMITTED,
            C.new_id_number.is_not(None),
            Policy.status.in_(list(TRANSFER_BLOCKING)),
        )
        .order_by(C.id)
        .limit(200)
    ).all()
    out = []
    for app_id, name, gender, birth, exception, product, restriction, status, when in rows:
        if restriction is not None and gender is not None and gender.value != restriction.value:
            out.append(
                f"变更申请 {app_id}（{name}）：新身份证号为{gender.label}性，在途保单“{product}”（{status.label}）仅限女性"
            )
            continue
        if gender is not None and birth is not None:
            age = check_age(gender.value, birth, when, exception=exception)
            if not age.ok:
                out.append(
                    f"变更申请 {app_id}（{name}）：按新身份证号，在途保单“{product}”（{status.label}）"
                    f"预期生效时 {age.value} 周岁，{age.message}"
                )
    return out


CHANGE = register(
    ApplicationKind(
        CHANGE_WORKFLOW,
        lambda: _change_blockers(True),
        lambda: _change_blockers(False),
        change_on_approve,
        approve_warnings=change_warnings,
    )
)


# ---- 超龄例外 --------------------------------------------------------------------------------------
O = OverAgeApplication  # noqa: E741


def hard_limit_birth(today: date | None = None) -> date:
    """Born after this date: under 65 today."""
    today = today or date.today()
    try:
        return today.replace(year=today.year - AGE_HARD_LIMIT)
    except ValueError:  # 29 February
        return date(today.year - AGE_HARD_LIMIT, 2, 28)


def _over_age_blockers(at_submit: bool):
    out = []
    if at_submit:
        out.append(("未上传证明文件，请先修改申请并上传", O.document_sha256.is_not(None)))
        out.append(("未填写申请理由，请先修改申请", O.reason != ""))
    out += [
        ("已满65周岁，不能参保", O.birth_date > hard_limit_birth()),
        (
            "会员已不在申请单位",
            sa.or_(O.member_id.is_(None), member_value(O, Member.org_id) == O.org_id),
        ),
    ]
    return out


def over_age_on_approve(ids: list[int], user) -> None:
    """The member of that ID number in the applicant's unit (if already admitted) gets the exception;
    a person not yet admitted gets it at 入会 (views/member_form.py reads the approved application)."""
    approved = _approved(O, ids)
    mine = sa.select(O.id).where(O.id_number == Member.id_number, O.org_id == Member.org_id, approved)
    note = sa.select(O.reason).where(O.id_number == Member.id_number, approved).limit(1).scalar_subquery()
    audit_select(  # before the UPDATE: `before` is what the member had
        "over_age",
        "member",
        user.id,
        sa.select(
            Member.id,
            json_object("over_age_exception", Member.over_age_exception),
            json_object("over_age_exception", sa.true(), "application_id", O.id),
        )
        .join(O, sa.and_(O.id_number == Member.id_number, O.org_id == Member.org_id))
        .where(approved),
    )
    db.session.execute(
        sa.update(Member)
        .where(sa.exists(mine))
        .values(
            over_age_exception=True,
            over_age_note=note,
            over_age_approved_by_id=user.id,
            updated_at=utcnow(),
            version=Member.version + 1,
        )
        .execution_options(synchronize_session=False)
    )


OVER_AGE = register(
    ApplicationKind(
        OVER_AGE_WORKFLOW,
        lambda: _over_age_blockers(True),
        lambda: _over_age_blockers(False),
        over_age_on_approve,
    )
)


def run_one(wf: Workflow, name: str, app_id: int, user, reason: str | None = None) -> Result:
    """A transition of one application (e.g. 【提交新建申请】 right after creating it)."""
    from .workflow import workflow_actions

    action = next(a for a in workflow_actions(wf) if a.name == name)
    ids = sa.select(wf.model.id).where(wf.model.id == app_id)
    return action.run(ids, user, expected=1, reason=reason)


def reasons_blocking(wf: Workflow, name: str, app_id: int) -> list[str]:
    """Why this application could not go through `name` now (shown on its detail page)."""
    kind = KINDS.get(wf.model)
    if kind is None:
        return []
    blockers = kind.submit_blockers() if name == "submit" else kind.approve_blockers() if name == "approve" else []
    t = wf.get(name)
    found = skip_reasons(wf.model, sa.select(wf.model.id).where(wf.model.id == app_id), t.from_states, blockers)
    return list(found)

"""Applications that need a decision above the unit (DESIGN.md §2–3): early termination, member
transfer (会员调动), member data change (会员变更) and the over-age exception (超龄例外).

Every kind has the same states and the same transitions, declared once by `application_workflow`:
新建 → 提交/上报 → 通过 | 驳回 (with a reason the applicant sees), and 驳回 → 新建 to correct and
submit again.  What approval does is each kind's own (actions/applications.py, `on_approve`).
The applicant's unit is `org_id` (a transfer's receiving unit): the one scope rule sees to it
that a unit sees its own applications and an approver those of its subtree.
"""

from __future__ import annotations

import sqlalchemy as sa

from .base import LabeledEnum, Timestamps, Versioned, db, enum_type
from .member import Gender
from .roles import AGENCY, INFO, OFFICE, UNIT
from .workflow import Transition, Workflow


class ApplicationStatus(LabeledEnum):
    NEW = ("NEW", "新建")
    SUBMITTED = ("SUBMITTED", "已提交")
    APPROVED = ("APPROVED", "通过")
    REJECTED = ("REJECTED", "驳回")


AS = ApplicationStatus
PENDING = (AS.NEW, AS.SUBMITTED)  # not decided yet: one per member (or ID number) and kind
PENDING_SQL = sa.text("status IN ('NEW', 'SUBMITTED')")


# The policies of a 保单提前终止申请, each with the refund worked out when the application was made
# (rules/termination.py: its amount, period and the requested end date never change afterwards).
termination_policy = sa.Table(
    "termination_policy",
    db.metadata,
    sa.Column("application_id", sa.Integer, sa.ForeignKey("termination_application.id"), primary_key=True),
    sa.Column("policy_id", sa.Integer, sa.ForeignKey("policy.id"), primary_key=True),
    sa.Column("refund", sa.Numeric(12, 2)),
    # "is this policy in a pending application?" — asked for every policy ticked or shown
    sa.Index("ix_termination_policy_policy_id", "policy_id"),
)


class _Decided:
    status = sa.Column(enum_type(ApplicationStatus), nullable=False, default=ApplicationStatus.NEW)
    submitted_at = sa.Column(sa.DateTime)
    decided_at = sa.Column(sa.DateTime)
    decision_note = sa.Column(sa.String(200))  # the reason of a 驳回, which the applicant reads

    @sa.orm.declared_attr
    def created_by_id(cls):
        return sa.Column(sa.Integer, sa.ForeignKey("user.id"))

    @sa.orm.declared_attr
    def decided_by_id(cls):
        return sa.Column(sa.Integer, sa.ForeignKey("user.id"))

    @sa.orm.declared_attr
    def created_by(cls):
        return db.relationship("User", foreign_keys=[cls.created_by_id])

    @sa.orm.declared_attr
    def decided_by(cls):
        return db.relationship("User", foreign_keys=[cls.decided_by_id])


class TerminationApplication(_Decided, Timestamps, Versioned, db.Model):
    """保单提前终止 (manual 一(五)5–7): a unit asks to end some of its 打印生效 policies on one date,
    for one reason; the office decides; approval ends each policy (提前终止) with its refund.
    `refund` is the sum of the policies' refunds (termination_policy.refund)."""

    __tablename__ = "termination_application"

    id = sa.Column(sa.Integer, primary_key=True)
    org_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), nullable=False, index=True)
    reason = sa.Column(sa.String(200), nullable=False, default="")
    requested_end_date = sa.Column(sa.Date, nullable=False)
    refund = sa.Column(sa.Numeric(12, 2))

    org = db.relationship("Org")
    policies = db.relationship("Policy", secondary=termination_policy)

    def __str__(self) -> str:
        return f"提前终止申请 {self.id}"


class TransferApplication(_Decided, Timestamps, Versioned, db.Model):
    """会员调动: the receiving unit (to_org) asks to take a member of another unit (from_org)."""

    __tablename__ = "transfer_application"

    id = sa.Column(sa.Integer, primary_key=True)
    member_id = sa.Column(sa.Integer, sa.ForeignKey("member.id"), nullable=False, index=True)
    from_org_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), nullable=False, index=True)
    to_org_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), nullable=False, index=True)
    reason = sa.Column(sa.String(200))
    org_id = sa.orm.synonym("to_org_id")  # the applicant's unit, as every application has it

    member = db.relationship("Member")
    from_org = db.relationship("Org", foreign_keys=[from_org_id])
    to_org = db.relationship("Org", foreign_keys=[to_org_id])

    __table_args__ = (
        # one undecided transfer per member, whichever unit asks (pressing 【生成调动申请】 twice, or two units at once)
        sa.Index(
            "ux_transfer_application_pending_member",
            "member_id",
            unique=True,
            postgresql_where=PENDING_SQL,
            sqlite_where=PENDING_SQL,
        ),
    )

    def __str__(self) -> str:
        return f"调动申请 {self.id}"


class ChangeApplication(_Decided, Timestamps, Versioned, db.Model):
    """会员变更: a new name and/or ID number for a member of the applicant's unit; gender and birth
    date follow the new ID number (worked out when the application is saved)."""

    __tablename__ = "change_application"

    id = sa.Column(sa.Integer, primary_key=True)
    member_id = sa.Column(sa.Integer, sa.ForeignKey("member.id"), nullable=False, index=True)
    org_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), nullable=False, index=True)
    old_name = sa.Column(sa.String(50))
    new_name = sa.Column(sa.String(50))
    old_id_number = sa.Column(sa.String(18))
    new_id_number = sa.Column(sa.String(18))
    new_gender = sa.Column(enum_type(Gender))
    new_birth_date = sa.Column(sa.Date)
    reason = sa.Column(sa.String(200), nullable=False, default="")

    member = db.relationship("Member")
    org = db.relationship("Org")

    __table_args__ = (
        sa.Index(
            "ux_change_application_pending_member",
            "member_id",
            unique=True,
            postgresql_where=PENDING_SQL,
            sqlite_where=PENDING_SQL,
        ),
    )

    def __str__(self) -> str:
        return f"变更申请 {self.id}"


class DocumentKind(LabeledEnum):
    PDF = ("pdf", "PDF")
    JPG = ("jpg", "JPG 图片")
    PNG = ("png", "PNG 图片")


class OverAgeApplication(_Decided, Timestamps, Versioned, db.Model):
    """超龄例外 (manual 一(三)1, 一(四)9): a person over the age limit but under 65, not formally
    retired, with a document proving it; the agency decides.  The person may not be a member yet
    (入会 then accepts the ID number), or a member of the unit (投保 then accepts them)."""

    __tablename__ = "over_age_application"

    id = sa.Column(sa.Integer, primary_key=True)
    org_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), nullable=False, index=True)
    member_id = sa.Column(sa.Integer, sa.ForeignKey("member.id"), index=True)
    id_number = sa.Column(sa.String(18), nullable=False, index=True)
    name = sa.Column(sa.String(50), nullable=False)
    gender = sa.Column(enum_type(Gender), nullable=False)
    birth_date = sa.Column(sa.Date, nullable=False)
    reason = sa.Column(sa.String(200), nullable=False, default="")
    # the attached document, kept by models/storage.py (none only for exceptions granted before this screen)
    document_name = sa.Column(sa.String(255))  # as uploaded, for the download's name
    document_kind = sa.Column(enum_type(DocumentKind))  # by content, not by the name's extension
    document_size = sa.Column(sa.Integer)
    document_sha256 = sa.Column(sa.String(64))

    org = db.relationship("Org")
    member = db.relationship("Member")

    __table_args__ = (
        sa.Index(
            "ux_over_age_application_pending_id_number",
            "id_number",
            unique=True,
            postgresql_where=PENDING_SQL,
            sqlite_where=PENDING_SQL,
        ),
    )

    def __str__(self) -> str:
        return f"超龄例外申请 {self.id}"


def application_workflow(
    model,
    noun: str,
    approvers: frozenset,
    submit_label: str = "当前查询结果提交",
    submit_action: tuple[str, str] = ("submit", "提交"),
    approver_words: str = "",
) -> Workflow:
    """The one application workflow: 新建 → 提交 → 通过 | 驳回, and 驳回 → 新建 to correct it."""
    submit, submit_words = submit_action
    return Workflow(
        model,
        noun,
        editable=(AS.NEW,),
        transitions=[
            Transition(
                name="submit",
                label=submit_label,
                from_states=(AS.NEW,),
                to_state=AS.SUBMITTED,
                roles=UNIT,
                action=submit,
                action_label=submit_words,
                clears=("decision_note", "decided_at", "decided_by_id"),
                stamps={"submitted_at": "now"},
                todo={AS.NEW: f"{noun}（新建，未{submit_words}）"},
                note=f"将当前查询结果中“新建”状态的{noun}{submit_words}，由{approver_words}审批。请先核对下面的名单。",
            ),
            Transition(
                name="approve",
                label="当前查询结果通过",
                from_states=(AS.SUBMITTED,),
                to_state=AS.APPROVED,
                roles=approvers,
                action="approve",
                action_label="通过",
                stamps={"decided_at": "now", "decided_by_id": "user"},
                todo={AS.SUBMITTED: f"待审批的{noun}"},
                note=f"通过当前查询结果中“已提交”的{noun}，通过后立即生效。不能通过的申请会列出原因并跳过。",
            ),
            Transition(
                name="reject",
                label="当前查询结果驳回",
                from_states=(AS.SUBMITTED,),
                to_state=AS.REJECTED,
                roles=approvers,
                action="reject",
                action_label="驳回",
                reason="驳回原因（申请单位会看到）",
                reason_column="decision_note",
                stamps={"decided_at": "now", "decided_by_id": "user"},
                danger=True,
                note=f"驳回当前查询结果中“已提交”的{noun}；申请单位会看到驳回原因，可修改后重新提交。",
            ),
            Transition(
                name="reopen",
                label="当前查询结果重新编辑",
                from_states=(AS.REJECTED,),
                to_state=AS.NEW,
                roles=UNIT,
                action="reopen",
                action_label="退回新建",
                todo={AS.REJECTED: f"被驳回的{noun}"},
                note=f"将被驳回的{noun}改回“新建”，修改后可重新{submit_words}（驳回原因仍会显示，直到重新{submit_words}）。",
            ),
        ],
    )


TRANSFER_WORKFLOW = application_workflow(TransferApplication, "会员调动申请", INFO, approver_words="信息部")
TERMINATION_WORKFLOW = application_workflow(
    TerminationApplication,
    "保单提前终止申请",
    OFFICE,
    submit_label="提交保单申请",  # manual 一(五)7
    approver_words="办事处",
)
CHANGE_WORKFLOW = application_workflow(
    ChangeApplication,
    "会员变更申请",
    INFO,
    submit_label="上报",
    submit_action=("report", "上报"),
    approver_words="信息部",
)
OVER_AGE_WORKFLOW = application_workflow(OverAgeApplication, "超龄例外申请", AGENCY, approver_words="代办处")

"""Applications that need a decision above the unit: early termination, transfer, data change."""

from __future__ import annotations

import sqlalchemy as sa

from .base import LabeledEnum, Timestamps, Versioned, db, enum_type


class ApplicationStatus(LabeledEnum):
    NEW = ("NEW", "新建")
    SUBMITTED = ("SUBMITTED", "已提交")
    APPROVED = ("APPROVED", "通过")
    REJECTED = ("REJECTED", "驳回")


termination_policy = sa.Table(
    "termination_policy",
    db.metadata,
    sa.Column("application_id", sa.Integer, sa.ForeignKey("termination_application.id"), primary_key=True),
    sa.Column("policy_id", sa.Integer, sa.ForeignKey("policy.id"), primary_key=True),
)


class _Decided:
    status = sa.Column(enum_type(ApplicationStatus), nullable=False, default=ApplicationStatus.NEW)
    submitted_at = sa.Column(sa.DateTime)
    decided_at = sa.Column(sa.DateTime)
    decision_note = sa.Column(sa.String(200))

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
    __tablename__ = "transfer_application"

    id = sa.Column(sa.Integer, primary_key=True)
    member_id = sa.Column(sa.Integer, sa.ForeignKey("member.id"), nullable=False, index=True)
    from_org_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), nullable=False, index=True)
    to_org_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), nullable=False, index=True)
    reason = sa.Column(sa.String(200))

    member = db.relationship("Member")
    from_org = db.relationship("Org", foreign_keys=[from_org_id])
    to_org = db.relationship("Org", foreign_keys=[to_org_id])

    def __str__(self) -> str:
        return f"调动申请 {self.id}"


class ChangeApplication(_Decided, Timestamps, Versioned, db.Model):
    __tablename__ = "change_application"

    id = sa.Column(sa.Integer, primary_key=True)
    member_id = sa.Column(sa.Integer, sa.ForeignKey("member.id"), nullable=False, index=True)
    org_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), nullable=False, index=True)
    old_name = sa.Column(sa.String(50))
    new_name = sa.Column(sa.String(50))
    old_id_number = sa.Column(sa.String(18))
    new_id_number = sa.Column(sa.String(18))
    reason = sa.Column(sa.String(200), nullable=False, default="")

    member = db.relationship("Member")
    org = db.relationship("Org")

    def __str__(self) -> str:
        return f"变更申请 {self.id}"

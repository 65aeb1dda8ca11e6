"""Orgs (a materialised-path tree), users with their roles, and the SMS send log of the login."""

from __future__ import annotations

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

from .base import LabeledEnum, Timestamps, db, enum_type


class OrgLevel(LabeledEnum):
    FEDERATION = ("federation", "总会")
    OFFICE = ("office", "办事处")
    AGENCY = ("agency", "代办处")
    UNIT = ("unit", "基层单位")


class Role(LabeledEnum):
    UNIT_CLERK = ("unit_clerk", "基层单位操作员")
    AGENCY_STAFF = ("agency_staff", "代办处操作员")
    OFFICE_STAFF = ("office_staff", "办事处操作员")
    INFO_DEPT = ("info_dept", "信息部")
    ADMIN = ("admin", "系统管理员")


class Org(db.Model):
    __tablename__ = "org"

    id = sa.Column(sa.Integer, primary_key=True)
    code = sa.Column(sa.String(20), nullable=False, unique=True)
    name = sa.Column(sa.String(100), nullable=False)
    level = sa.Column(enum_type(OrgLevel), nullable=False)
    parent_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), index=True)
    # "/000/01/0101/010101/": this org and everything under it is `path LIKE '/000/01/%'`
    path = sa.Column(sa.String(255), nullable=False)
    active = sa.Column(sa.Boolean, nullable=False, default=True, server_default=sa.true())

    parent = db.relationship("Org", remote_side=[id], backref="children")

    __table_args__ = (sa.Index("ix_org_path", "path", postgresql_ops={"path": "varchar_pattern_ops"}),)

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @staticmethod
    def path_for(parent: Org | None, code: str) -> str:
        return f"{parent.path if parent else '/'}{code}/"

    def is_within(self, other: Org) -> bool:
        return self.path.startswith(other.path)


class User(Timestamps, db.Model):
    __tablename__ = "user"

    id = sa.Column(sa.Integer, primary_key=True)
    username = sa.Column(sa.String(50), nullable=False, unique=True)
    display_name = sa.Column(sa.String(50), nullable=False, default="")
    password_hash = sa.Column(sa.String(255), nullable=False)
    phone = sa.Column(sa.String(20), nullable=False)  # E.164, +86 1xxxxxxxxxx
    org_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), nullable=False, index=True)
    role = sa.Column(enum_type(Role), nullable=False)
    active = sa.Column(sa.Boolean, nullable=False, default=True, server_default=sa.true())
    # login state lives here, not in process memory, so every worker agrees
    failed_attempts = sa.Column(sa.Integer, nullable=False, default=0, server_default="0")
    locked_until = sa.Column(sa.DateTime)
    login_code_hash = sa.Column(sa.String(255))
    login_code_sent_at = sa.Column(sa.DateTime)
    login_code_tries = sa.Column(sa.Integer, nullable=False, default=0, server_default="0")
    last_login_at = sa.Column(sa.DateTime)

    org = db.relationship("Org")

    def __str__(self) -> str:
        return self.display_name or self.username

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def masked_phone(self) -> str:
        p = self.phone or ""
        return p[:-8] + "****" + p[-4:] if len(p) >= 8 else "****"


class SmsSend(db.Model):
    """Every verification code sent: the basis of the send throttles and the daily SMS budget."""

    __tablename__ = "sms_send"

    id = sa.Column(sa.Integer, primary_key=True)
    user_id = sa.Column(sa.Integer, sa.ForeignKey("user.id"), index=True)
    phone = sa.Column(sa.String(20), nullable=False)
    ip = sa.Column(sa.String(45), nullable=False, default="")
    sent_at = sa.Column(sa.DateTime, nullable=False, index=True)

    __table_args__ = (sa.Index("ix_sms_send_ip_sent_at", "ip", "sent_at"),)


class LoginFailure(db.Model):
    """A wrong password, by client address and the username typed: the basis of the login
    throttle (growing delays per address and per username at that address; never a lock that a
    stranger elsewhere could set off)."""

    __tablename__ = "login_failure"

    id = sa.Column(sa.Integer, primary_key=True)
    ip = sa.Column(sa.String(45), nullable=False, default="")
    username = sa.Column(sa.String(50), nullable=False, default="")
    failed_at = sa.Column(sa.DateTime, nullable=False)

    __table_args__ = (
        sa.Index("ix_login_failure_ip_failed_at", "ip", "failed_at"),
        sa.Index("ix_login_failure_username_ip_failed_at", "username", "ip", "failed_at"),
    )

"""首页: who I am, what waits for me, and the templates to download."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, redirect, request, url_for
from flask_admin import AdminIndexView, expose

from models import (
    ApplicationStatus,
    ChangeApplication,
    Member,
    MemberStatus,
    Policy,
    PolicyStatus,
    TerminationApplication,
    TransferApplication,
    db,
    scoped,
)
from models.org import Role as R

from .auth import sms_budget_exhausted, sms_sent_today
from .base import current_user


def _count(model, *conds) -> int:
    stmt = scoped(sa.select(sa.func.count()).select_from(model), model, current_user()).where(*conds)
    return db.session.scalar(stmt)


def todo_items(user) -> list[tuple[str, int, str]]:
    """(label, count, url) of what waits for this user's role."""
    items = []
    if user.role == R.UNIT_CLERK:
        items += [
            (
                "被打回的会员",
                _count(Member, Member.status == MemberStatus.RETURNED),
                url_for("members.index_view", status=MemberStatus.RETURNED.value),
            ),
            (
                "新建未上报的会员",
                _count(Member, Member.status == MemberStatus.NEW),
                url_for("members.index_view", status=MemberStatus.NEW.value),
            ),
            (
                "被打回的投保记录",
                _count(Policy, Policy.status == PolicyStatus.RETURNED),
                url_for("policies.index_view", status=PolicyStatus.RETURNED.value),
            ),
            (
                "新建未上报的投保记录",
                _count(Policy, Policy.status == PolicyStatus.NEW),
                url_for("policies.index_view", status=PolicyStatus.NEW.value),
            ),
        ]
    if user.role == R.AGENCY_STAFF:
        items += [
            (
                "基层单位已上报、待核实的投保记录",
                _count(Policy, Policy.status == PolicyStatus.REPORTED),
                url_for("policies.index_view", status=PolicyStatus.REPORTED.value),
            )
        ]
    if user.role == R.OFFICE_STAFF:
        items += [
            (
                "代办处已上报、待确认生效的投保记录",
                _count(Policy, Policy.status == PolicyStatus.AGENCY_REPORTED),
                url_for("policies.index_view", status=PolicyStatus.AGENCY_REPORTED.value),
            ),
            (
                "待审批的保单提前终止申请",
                _count(TerminationApplication, TerminationApplication.status == ApplicationStatus.SUBMITTED),
                url_for("terminations.index_view"),
            ),
        ]
    if user.role in (R.INFO_DEPT, R.ADMIN):
        items += [
            (
                "待审批的会员调动申请",
                _count(TransferApplication, TransferApplication.status == ApplicationStatus.SUBMITTED),
                url_for("transfers.index_view"),
            ),
            (
                "待审批的会员变更申请",
                _count(ChangeApplication, ChangeApplication.status == ApplicationStatus.SUBMITTED),
                url_for("changes.index_view"),
            ),
        ]
    return items


class HomeView(AdminIndexView):
    def is_accessible(self):
        return current_user() is not None

    def inaccessible_callback(self, name, **kwargs):
        return redirect(url_for("auth.login", next=request.full_path))

    @expose("/")
    def index(self):
        user = current_user()
        budget_warning = None
        if user.role == R.ADMIN and sms_budget_exhausted():
            budget_warning = (
                f"今日短信验证码已发送 {sms_sent_today()} 条，达到每日上限 "
                f"{current_app.config['SMS_DAILY_BUDGET']} 条，系统已停止发送验证码。"
                "如属正常业务高峰，请调高 SMS_DAILY_BUDGET；否则可能有人恶意刷短信。"
            )
        from batch import KINDS

        templates = [
            (label, url_for("batches.template_view", kind=kind))
            for label, kind in current_app.config["HOME_TEMPLATES"]
            if kind in KINDS
        ]
        return self.render(
            "admin/home.html", user=user, todos=todo_items(user), budget_warning=budget_warning, templates=templates
        )

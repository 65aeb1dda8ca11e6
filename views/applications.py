"""会员调动管理, 会员变更管理, 保单提前终止: applications decided above the unit."""

from __future__ import annotations

import sqlalchemy as sa

from models import (
    ApplicationStatus,
    ChangeApplication,
    Member,
    Policy,
    TerminationApplication,
    TransferApplication,
    termination_policy,
)

from . import access, panel
from .base import ScopedModelView, money_formatter

STATUS_LABELS = {
    "status": "审批状态",
    "created_at": "创建时间",
    "submitted_at": "提交时间",
    "decided_at": "审批时间",
    "decided_by": "审批人",
    "created_by": "创建人",
    "decision_note": "审批意见",
    "updated_at": "修改时间",
}


def application_panel(model, member_cond, unit_column) -> list:
    """审批状态, 会员编号/身份证号, 单位 (manual 一(四)3: 审批状态选择新建，点击【搜索】)."""
    return [
        panel.enum_select("status", "审批状态", model.status, ApplicationStatus),
        panel.member_ref_text("member", "会员编号/身份证号", member_cond),
        panel.unit_text("unit", "单位编号", unit_column),
    ]


def _of_member(model):
    return lambda cond: model.member_id.in_(sa.select(Member.id).where(cond))


def _termination_of_member(cond):
    return TerminationApplication.id.in_(
        sa.select(termination_policy.c.application_id)
        .join(Policy, Policy.id == termination_policy.c.policy_id)
        .where(Policy.member_id.in_(sa.select(Member.id).where(cond)))
    )


class TransferView(ScopedModelView):
    roles = access.BUSINESS
    export_roles = access.BUSINESS
    column_list = ["member", "from_org", "to_org", "status", "created_at", "decided_at"]
    column_labels = dict(STATUS_LABELS, member="会员", from_org="调出单位", to_org="调入单位", reason="调动原因")
    search_panel = application_panel(
        TransferApplication,
        _of_member(TransferApplication),
        lambda orgs: sa.or_(TransferApplication.from_org_id.in_(orgs), TransferApplication.to_org_id.in_(orgs)),
    )
    column_default_sort = ("id", True)


class ChangeView(ScopedModelView):
    roles = access.BUSINESS
    export_roles = access.BUSINESS
    column_list = ["member", "old_name", "new_name", "old_id_number", "new_id_number", "status", "created_at"]
    column_labels = dict(
        STATUS_LABELS,
        member="会员",
        org="单位",
        old_name="原姓名",
        new_name="新姓名",
        old_id_number="原身份证号",
        new_id_number="新身份证号",
        reason="变更理由",
    )
    search_panel = application_panel(ChangeApplication, _of_member(ChangeApplication), ChangeApplication.org_id)
    column_default_sort = ("id", True)


class TerminationView(ScopedModelView):
    roles = access.BUSINESS
    export_roles = access.BUSINESS
    column_list = ["id", "org", "reason", "requested_end_date", "refund", "status", "created_at"]
    column_labels = dict(
        STATUS_LABELS,
        id="申请编号",
        org="单位",
        reason="终止原因",
        requested_end_date="申请终止日期",
        refund="退费金额",
        policies="保单",
    )
    column_formatters = {"refund": money_formatter("refund")}
    search_panel = application_panel(TerminationApplication, _termination_of_member, TerminationApplication.org_id)
    column_default_sort = ("id", True)
    column_details_exclude_list = ["policies"]

"""会员调动管理, 会员变更管理, 保单提前终止: applications decided above the unit."""

from __future__ import annotations

from flask_admin.contrib.sqla.filters import FilterEqual

from models import ApplicationStatus, ChangeApplication, TerminationApplication, TransferApplication

from . import access
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


def _status_filter(model):
    return FilterEqual(model.status, "审批状态", options=ApplicationStatus.choices())


class TransferView(ScopedModelView):
    roles = access.BUSINESS
    export_roles = access.BUSINESS
    column_list = ["member", "from_org", "to_org", "status", "created_at", "decided_at"]
    column_labels = dict(STATUS_LABELS, member="会员", from_org="调出单位", to_org="调入单位", reason="调动原因")
    column_filters = [_status_filter(TransferApplication)]
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
    column_filters = [_status_filter(ChangeApplication)]
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
    column_filters = [_status_filter(TerminationApplication)]
    column_default_sort = ("id", True)
    column_details_exclude_list = ["policies"]

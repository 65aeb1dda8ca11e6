"""保单管理: 投保管理, 即将到期订单, 收据."""
from __future__ import annotations

from flask_admin.contrib.sqla.filters import DateBetweenFilter, FilterEqual

from models import POLICY_EDITABLE, Policy, PolicyStatus, Product, Receipt, db

from . import roles as access
from .base import ScopedModelView, money_formatter, options

POLICY_LABELS = {
    "member": "会员", "member.member_no": "会员编号", "member.name": "姓名", "member.id_number": "身份证号",
    "product": "产品", "org": "单位", "shares": "份数", "amount": "投保金额",
    "expected_effective_date": "预期生效时间", "effective_date": "正式生效时间", "expiry_date": "到期日期",
    "policy_no": "保单号", "status": "状态", "return_reason": "打回原因", "renewed_from": "续转自",
    "receipt": "收据", "created_at": "录入时间", "updated_at": "修改时间",
}


@options
def product_options():
    return [(str(p.id), p.name) for p in db.session.query(Product).order_by(Product.code)]


class PolicyView(ScopedModelView):
    """投保管理."""

    roles = access.BUSINESS
    create_roles = edit_roles = delete_roles = access.UNIT
    export_roles = access.BUSINESS
    column_list = ["member.member_no", "member.name", "member.id_number", "product", "shares", "amount",
                   "expected_effective_date", "status", "org"]
    column_labels = POLICY_LABELS
    column_formatters = {"amount": money_formatter("amount")}
    column_default_sort = ("id", True)
    column_filters = [
        FilterEqual(Policy.status, "选择状态", options=PolicyStatus.choices()),
        FilterEqual(Policy.product_id, "产品名称", options=product_options),
        DateBetweenFilter(Policy.expected_effective_date, "预期生效时间"),
    ]
    form_columns = ["member", "product", "shares", "amount", "expected_effective_date"]
    form_ajax_refs = {"member": {"fields": ["member_no", "id_number", "name"], "page_size": 10,
                                 "placeholder": "输入会员编号、身份证号或姓名"}}

    def edit_refusal(self, model):
        if model.status not in POLICY_EDITABLE:
            return f"该投保记录当前状态为“{model.status.label}”，只有新建或打回状态的投保记录可以修改或删除。"
        return None


class ExpiringPolicyView(PolicyView):
    """即将到期订单: effective policies by expiry month."""

    create_roles = edit_roles = delete_roles = frozenset()
    column_list = ["policy_no", "member.member_no", "member.name", "member.id_number", "product", "shares",
                   "amount", "effective_date", "expiry_date", "org"]
    column_default_sort = "expiry_date"
    column_filters = [
        DateBetweenFilter(Policy.expiry_date, "到期日期"),
        FilterEqual(Policy.product_id, "产品名称", options=product_options),
    ]

    def get_query(self):
        return super().get_query().filter(Policy.status == PolicyStatus.EFFECTIVE)

    def get_count_query(self):
        return super().get_count_query().filter(Policy.status == PolicyStatus.EFFECTIVE)


class ReceiptView(ScopedModelView):
    """收据: issued by agencies for what units paid."""

    roles = frozenset(access.AGENCY | access.OFFICE | access.MANAGERS | access.UNIT)
    export_roles = access.BUSINESS
    column_list = ["receipt_no", "org", "headcount", "total", "issued_by", "issued_at"]
    column_labels = {"receipt_no": "收据号", "org": "缴费单位", "headcount": "人数", "total": "金额",
                     "issued_by": "开具人", "issued_at": "开具时间", "policies": "投保记录"}
    column_formatters = {"total": money_formatter("total")}
    column_default_sort = ("id", True)
    column_details_exclude_list = ["policies"]

"""保单管理: 投保管理 (list, 逐一投保, bulk actions), 即将到期订单, 收据."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask import abort, flash, has_request_context, jsonify, redirect, request
from flask_admin import expose
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import StringField
from wtforms.validators import InputRequired, Length

from actions import effective as office_actions
from actions import enrol as enrol_actions
from actions import exports as export_actions
from actions import policies as policy_actions
from actions import receipts as receipt_actions
from models import POLICY_WORKFLOW, Member, Policy, PolicyStatus, Product, Receipt, ReceiptStatus, db, scope_filter
from rules import Code, age_on, next_month, parse_id, parse_member_no, policy_expiry

from . import access, panel
from .access import current_user, has_role
from .base import ScopedModelView, money_formatter, record_link
from .bulk import WORKFLOW
from .policy_form import PolicyEntryForm

POLICY_LABELS = {  # the exports' column names, and the columns only the screens show
    **export_actions.LABELS,
    "product": "产品",
    "renewed_from": "续转自",
    "receipt": "收据",
    "terminated_on": "终止日期",
    "refund": "退费金额",
}


ABOVE_UNIT = access.BUSINESS - access.UNIT  # a clerk's list is one unit: no 当前单位编号 field for them


def _member_ids(cond):
    """Policies of the members matching `cond`, through the indexed member columns (no join that
    could multiply rows)."""
    return Policy.member_id.in_(sa.select(Member.id).where(cond))


def product_select(**kw):
    return panel.code_select("product", "产品名称", Policy.product_id, Product, lambda p: p.name, width="15rem", **kw)


def policy_panel() -> list:
    """投保管理 (manual 一(二)5–7, 二、1): 选择状态, 产品名称, 身份证号, 会员编号, 姓名, 预期生效时间, 当前单位编号."""
    return [
        panel.enum_select("status", "选择状态", Policy.status, PolicyStatus),
        product_select(),
        panel.id_number_text("id_number", "身份证号", lambda v: _member_ids(Member.id_number == v)),
        panel.member_no_text("member_no", "会员编号", lambda v: _member_ids(Member.member_no == v)),
        panel.name_text("name", "姓名", lambda v: _member_ids(Member.name.startswith(v, autoescape=True))),
        panel.date_from("effective_from", "预期生效时间（起）", Policy.expected_effective_date),
        panel.date_to("effective_to", "预期生效时间（止）", Policy.expected_effective_date),
        panel.unit_text("unit", "当前单位编号", Policy.org_id, roles=ABOVE_UNIT),
    ]


def _return_reason(view, context, model, name):
    status = model.status.label
    if model.status == PolicyStatus.RETURNED and model.return_reason:
        return Markup('{}<br><small class="text-danger">打回原因：{}</small>').format(status, model.return_reason)
    if model.status == PolicyStatus.REPORTED and model.return_reason:  # the office sent it back to the agency
        return Markup('{}<br><small class="text-danger">办事处打回原因：{}</small>').format(status, model.return_reason)
    return status


class PolicyView(ScopedModelView):
    """投保管理."""

    roles = access.BUSINESS
    create_roles = edit_roles = delete_roles = access.UNIT
    export_roles = access.BUSINESS
    column_list = [
        "member.member_no",
        "member.name",
        "member.id_number",
        "product",
        "shares",
        "amount",
        "expected_effective_date",
        "policy_no",
        "status",
        "org",
    ]
    column_labels = POLICY_LABELS
    column_formatters = {
        "member.member_no": record_link(lambda p: p.member.member_no),
        "amount": money_formatter("amount"),
        "status": _return_reason,
    }
    column_default_sort = ("id", True)
    # the member's columns come with the row (one query, not one per row); the CSV export is
    # streamed after the request's session is gone, where a lazy load of `member` fails
    column_select_related_list = [Policy.member, Policy.product, Policy.org]
    search_panel = policy_panel()
    column_details_list = [
        "member",
        "product",
        "org",
        "shares",
        "amount",
        "expected_effective_date",
        "effective_date",
        "expiry_date",
        "policy_no",
        "status",
        "return_reason",
        "renewed_from",
        "receipt",
        "terminated_on",
        "refund",
        "created_at",
        "updated_at",
    ]
    form = PolicyEntryForm
    create_template = "admin/policy_form.html"
    edit_template = "admin/policy_form.html"
    workflow = POLICY_WORKFLOW

    def record_title(self, model):
        m = model.member
        return f"会员编号 {m.member_no} {m.name} 的投保记录（{model.product.name}，{model.status.label}）"

    bulk_actions = [
        policy_actions.TOTALS,
        WORKFLOW,
        receipt_actions.ISSUE_RECEIPT,
        office_actions.PRINT_EFFECTIVE,
        policy_actions.CHANGE_DATE,
        enrol_actions.RENEW,
        policy_actions.DELETE_ALL,
    ]

    def export_rows(self):
        """The policy columns by plain SELECT (no ORM objects), read in batches."""
        return export_actions.policy_export(self.current_ids(), [name for name, _ in self._export_columns])

    def create_form(self, obj=None):
        form = super().create_form(obj)
        form.prepare()
        if request.method == "GET":
            self._keep_from_last(form)
        if form.expected_effective_date.data is None and request.method == "GET":
            today = date.today()
            form.expected_effective_date.data = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
        return form

    # 【保存并创建下一个】 keeps what the next member most likely shares with the last one
    KEEP = ("keep_product", "keep_shares", "keep_effective")

    def _keep_from_last(self, form):
        args = request.args
        if args.get("keep_product", "").isdigit() and int(args["keep_product"]) in {
            int(v) for v, _ in form.product_id.choices
        }:
            form.product_id.data = int(args["keep_product"])
            form.member_ref.render_kw = {"autofocus": True}  # the product is chosen: the member is next
        if args.get("keep_shares", "").isdigit():
            form.shares.data = int(args["keep_shares"])
        try:
            form.expected_effective_date.data = date.fromisoformat(args.get("keep_effective", ""))
        except ValueError:
            pass

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        response = super().create_view()
        if request.method == "POST" and "_add_another" in request.form and getattr(response, "status_code", 0) == 302:
            f = request.form
            keep = {
                "keep_product": f.get("product_id", ""),
                "keep_shares": f.get("shares", ""),
                "keep_effective": f.get("expected_effective_date", ""),
            }
            response = redirect(
                self.get_url(".create_view", url=request.args.get("url"), **{k: v for k, v in keep.items() if v})
            )
        return response

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        form.prepare(obj)
        return form

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)
        v = form.enrol_values
        with db.session.no_autoflush:  # the new row is not complete until the lines below
            product = db.session.get(Product, form.product_id.data)
        model.member_id = v["member_id"]
        model.org_id = v["org_id"]
        model.product_id = product.id
        model.shares = v["shares"]
        model.amount = v["amount"]
        model.expiry_date = policy_expiry(model.expected_effective_date, product.term_months)
        if is_created:
            model.status = PolicyStatus.NEW
            model.created_by_id = current_user().id

    @expose("/lookup/")
    def lookup_view(self):
        """The member for 逐一投保, through the org scope: another unit's member gives NOT_IN_UNIT."""
        term = (request.args.get("q") or "").strip()
        if not term:
            return jsonify(ok=False, message="请输入会员编号或身份证号", hint="")
        member_no = parse_member_no(term)
        if member_no is not None:
            cond = Member.member_no == member_no
        else:
            norm = parse_id(term)  # a malformed number says what is wrong, as the form does on saving
            if not norm.ok:
                return jsonify(
                    ok=False, code=str(norm.code), message=norm.message, hint=Code(norm.code).hint if norm.code else ""
                )
            cond = Member.id_number == norm.value.number
        row = db.session.execute(
            sa.select(Member, scope_filter(Member, current_user()).label("mine")).where(cond)
        ).first()
        if row is None:
            return jsonify(
                ok=False,
                code="MEMBER_MISSING",
                message=Code.MEMBER_MISSING.message,
                hint="该人员没有入过会，" + Code.MEMBER_MISSING.hint,
            )
        member, mine = row
        if not mine:
            return jsonify(
                ok=False,
                code="NOT_IN_UNIT",
                message=Code.NOT_IN_UNIT.message,
                hint="会员不在本单位，" + Code.NOT_IN_UNIT.hint,
            )
        ref = request.args.get("effective")
        try:
            when = date.fromisoformat(ref) if ref else date.today()
        except ValueError:
            when = date.today()
        return jsonify(
            ok=True,
            member_no=member.member_no,
            name=member.name,
            gender=member.gender.label,
            age=age_on(member.birth_date, when),
            unit=member.org.name,
            status=member.status.label,
            over_age_exception=member.over_age_exception,
        )


class ExpiringPolicyView(PolicyView):
    """即将到期订单 (manual 一(五)8): 打印生效 policies whose cover ends in the chosen month (by
    default next month); 【批量导出打印】 and 【批量续转】 act on the same query."""

    create_roles = edit_roles = delete_roles = frozenset()
    bulk_actions = [export_actions.EXPORT_EXPIRING, enrol_actions.RENEW]
    workflow = None  # a list of effective policies: no transitions here, no to-dos lead here
    column_list = list(export_actions.EXPIRING_EXPORT)  # the list shows what 【批量导出打印】 prints
    column_default_sort = "expiry_date"
    # manual 一(五)8: 选择相应月份，点击【搜索】; or 全部 (`?month=all`: a value the panel keeps, where an
    # empty one is left out of the address and would mean next month again)
    search_panel = [
        panel.month_select("month", "月份", Policy.expiry_date, blank=None, every="全部"),
        product_select(),
    ]

    def panel_state(self):
        """No month in the address: next month, shown selected in the panel and used by the list,
        the export and the bulk actions alike (全部 is a month value of its own, `all`)."""
        state = super().panel_state()
        if has_request_context() and "month" not in state.values and not state.errors:
            field = next(f for f in self.panel_fields() if f.name == "month")
            default = next_month(date.today())
            state.values["month"] = default
            state.conditions.append(field.where(field.parse(default)))
        return state

    def get_query(self):
        return super().get_query().filter(Policy.status == PolicyStatus.EFFECTIVE)

    def get_count_query(self):
        return super().get_count_query().filter(Policy.status == PolicyStatus.EFFECTIVE)

    def export_rows(self):
        return export_actions.policy_export(
            self.current_ids(), export_actions.EXPIRING_EXPORT, order=(Policy.expiry_date, Policy.id)
        )


def _receipt_status(view, context, model, name):
    if model.status == ReceiptStatus.VOID:
        return Markup('<span class="text-danger font-weight-bold">作废</span><br><small>{}</small>').format(
            model.void_reason or ""
        )
    return model.status.label


def _receipt_pdf_link(view, context, model, name):
    url = view.get_url(".pdf_view", id=model.id)
    return Markup('<a href="{}" target="_blank">{}</a>').format(url, model.receipt_no)


class VoidForm(FlaskForm):
    reason = StringField(
        "作废原因",
        [InputRequired("请填写作废原因"), Length(max=200, message="作废原因不超过200字")],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
    )


class ReceiptView(ScopedModelView):
    """收据管理: list, reprint (the stored PDF, same bytes), 【作废】 with a reason (代办处)."""

    roles = frozenset(access.AGENCY | access.OFFICE | access.MANAGERS | access.UNIT)
    export_roles = access.BUSINESS
    details_template = "admin/receipt_details.html"
    column_list = ["receipt_no", "org", "headcount", "total", "issued_by", "issued_at", "status"]
    column_labels = {
        "receipt_no": "收据号",
        "org": "缴费单位",
        "headcount": "人数",
        "total": "金额",
        "issued_by": "开具人",
        "issued_at": "开具时间",
        "status": "状态",
        "void_reason": "作废原因",
        "voided_by": "作废人",
        "voided_at": "作废时间",
        "policies": "投保记录",
    }
    column_formatters = {
        "total": money_formatter("total"),
        "status": _receipt_status,
        "receipt_no": _receipt_pdf_link,
    }
    column_default_sort = ("id", True)
    column_details_list = [
        "receipt_no",
        "org",
        "headcount",
        "total",
        "issued_by",
        "issued_at",
        "status",
        "void_reason",
        "voided_by",
        "voided_at",
    ]
    column_export_list = ["receipt_no", "org", "headcount", "total", "issued_by", "issued_at", "status", "void_reason"]
    search_panel = [
        panel.code_text("receipt_no", "收据号", lambda v: Receipt.receipt_no == v, max_len=30),
        panel.unit_text("unit", "单位编号", Receipt.org_id, roles=ABOVE_UNIT),
        panel.enum_select("status", "状态", Receipt.status, ReceiptStatus),
    ]

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None:
            kwargs["void_form"] = VoidForm()
            kwargs["can_void"] = has_role(*access.AGENCY) and kwargs["model"].status == ReceiptStatus.VALID
        return super().render(template, **kwargs)

    @expose("/pdf/<int:id>/")
    def pdf_view(self, id):
        """Reprint: the bytes stored when the receipt was issued (voided: the 作废 rendition)."""
        receipt = self.get_one(id)
        body = receipt.void_pdf if receipt.status == ReceiptStatus.VOID else receipt.pdf
        if not body:
            abort(404)
        from actions import Download

        from .bulk import download_response

        response = download_response(Download(f"收据_{receipt.receipt_no}.pdf", "application/pdf", bytes(body)))
        response.headers["Content-Disposition"] = response.headers["Content-Disposition"].replace(
            "attachment", "inline", 1
        )
        return response

    @expose("/verify/<no>")
    def verify_view(self, no):
        """Where the receipt's QR code leads: the record, if the scanner may see it (else 404)."""
        receipt = self.get_query().filter(Receipt.receipt_no == no).one_or_none()
        if receipt is None:
            abort(404)
        return redirect(self.get_url(".details_view", id=receipt.id))

    @expose("/void/<int:id>/", methods=("POST",))
    def void_view(self, id):
        if not has_role(*access.AGENCY):
            abort(403)
        receipt = self.get_one(id)
        form = VoidForm()
        if not form.validate_on_submit():
            flash("请填写作废原因（不超过200字）后再点【作废】。", "error")
        elif receipt.status != ReceiptStatus.VALID:
            flash(f"收据 {receipt.receipt_no} 已作废，无需再次作废。", "warning")
        elif receipt_actions.void_receipt(receipt, current_user(), form.reason.data):
            db.session.commit()
            flash(f"收据 {receipt.receipt_no} 已作废（收据号保留）。其投保记录可以重新开具收据。", "success")
        else:
            db.session.rollback()
            flash(f"收据 {receipt.receipt_no} 已被他人作废。", "warning")
        return redirect(self.get_url(".details_view", id=id))

"""保单提前终止 (manual 一(五)5–7): the applications' list and detail (one more kind of the
application screens, views/applications.py `ApplicationView`), and 【创建保单终止申请】: a search
over the unit's 打印生效 policies where the clerk ticks policies and presses 【终止保单】.

    /admin/termination_policies/                  the search (身份证号, 会员编号, 姓名, 产品名称, 保单号)
    /admin/termination_policies/terminate/?…&ids= 终止原因 + 申请终止日期, the refunds, 【确定】
    /admin/terminations/                          the applications: 【批量导出打印】, 【提交保单申请】,
                                                  the office's 【通过】/【驳回】 (the workflow's buttons)
    /admin/terminations/details/?id=N             one application with its policies; the form's QR code
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, validate_csrf
from markupsafe import Markup
from wtforms import SelectField, StringField
from wtforms.validators import ValidationError

from actions.terminations import (
    PRINT_FORMS,
    TerminationRefused,
    chosen_policies,
    count_chosen,
    create_application,
    pending_application_of,
    refunds,
    refusals,
)
from models import (
    TERMINATION_WORKFLOW,
    ApplicationStatus,
    Member,
    Policy,
    PolicyStatus,
    Product,
    TerminationApplication,
    db,
    termination_policy,
)
from rules import COMMON_REASONS, MAX_POLICIES, mask_id, parse_date

from . import access, panel
from .access import current_user
from .applications import DECISION_DETAILS, STATUS_LABELS, ApplicationView, _status, application_panel
from .base import ScopedModelView, format_date, money_formatter
from .bulk import WORKFLOW

T = TerminationApplication
TP = termination_policy
TICK_ALL = Markup('<input type="checkbox" id="tick-all" title="全选本页"> 选择')


def _of_policies(cond):
    """Applications holding a policy that meets `cond` (a condition on Policy)."""
    return T.id.in_(sa.select(TP.c.application_id).join(Policy, Policy.id == TP.c.policy_id).where(cond))


def _of_member(cond):
    return _of_policies(Policy.member_id.in_(sa.select(Member.id).where(cond)))


def _tick_and_link(view, context, model, name):
    return Markup(
        '<input type="checkbox" class="tick" value="{}" aria-label="勾选申请 {}"> <a href="{}">{}</a>'
    ).format(model.id, model.id, view.get_url(".details_view", id=model.id), model.id)


def _policy_count(view, context, model, name):
    return f"{view.policy_counts().get(model.id, 0)} 份"


class TerminationView(ApplicationView):
    """保单提前终止: the unit's applications (drafts included), the office's submitted ones."""

    roles = access.BUSINESS
    workflow = TERMINATION_WORKFLOW
    bulk_actions = [PRINT_FORMS, WORKFLOW]
    tickable = True
    list_template = "admin/application_list.html"
    details_template = "admin/termination_details.html"
    create_button = "创建保单终止申请"
    column_list = ["id", "org", "policies", "reason", "requested_end_date", "refund", "status", "created_at"]
    column_details_list = [
        "id",
        "org",
        "reason",
        "requested_end_date",
        "refund",
        *DECISION_DETAILS,
    ]
    column_labels = dict(
        STATUS_LABELS,
        id=TICK_ALL + " 申请编号",
        org="申请单位",
        policies="保单",
        reason="终止原因",
        requested_end_date="申请终止日期",
        refund="退费金额合计",
    )
    column_formatters = dict(
        ApplicationView.column_formatters, id=_tick_and_link, policies=_policy_count, refund=money_formatter("refund")
    )
    column_formatters_detail = dict(
        ApplicationView.column_formatters_detail, refund=money_formatter("refund"), status=_status
    )
    column_select_related_list = [T.org]
    column_sortable_list = ["requested_end_date", "refund", "created_at"]  # not "id": its label holds the tick-all box
    search_panel = [
        *application_panel(T, _of_member, T.org_id),
        panel.number_text("app_no", "申请编号", lambda v: T.id == v),
        panel.code_text(
            "policy_no",
            "保单号",
            lambda v: _of_policies(Policy.policy_no == v),
            max_len=30,
            placeholder="如 BD202600000001",
        ),
    ]

    def get_details_columns(self):
        """The detail page names the number plainly (the list's header carries the 全选 box)."""
        return [(name, "申请编号" if name == "id" else label) for name, label in super().get_details_columns()]

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        self._page_ids = [r.id for r in rows] if kwargs.get("execute", True) else []
        return count, rows

    def policy_counts(self) -> dict:
        """Policies per application of the page shown: one grouped query."""
        cache = getattr(self, "_counts_for", None)
        ids = getattr(self, "_page_ids", [])
        if cache is None or cache[0] != ids:
            counts = dict(
                db.session.execute(
                    sa.select(TP.c.application_id, sa.func.count())
                    .where(TP.c.application_id.in_(ids))
                    .group_by(TP.c.application_id)
                ).all()
            )
            self._counts_for = cache = (ids, counts)
        return cache[1]

    @expose("/new/")
    def create_view(self):
        """【创建保单终止申请】 is a search over the unit's 打印生效 policies."""
        if not self.can_create:
            abort(403)
        return redirect(url_for("termination_policies.index_view"))

    def policy_lines(self, app) -> list:
        """The application's policies with their refunds (one SELECT), for its page."""
        return db.session.execute(
            sa.select(
                Policy.id,
                Policy.policy_no,
                Policy.status,
                Policy.amount,
                Policy.effective_date,
                Policy.expiry_date,
                Policy.terminated_on,
                TP.c.refund,
                Member.member_no,
                Member.name,
                Member.id_number,
                Product.name.label("product"),
            )
            .join(TP, TP.c.policy_id == Policy.id)
            .join(Member, Member.id == Policy.member_id)
            .join(Product, Product.id == Policy.product_id)
            .where(TP.c.application_id == app.id)
            .order_by(Policy.id)
        ).all()

    def decision_context(self, app) -> dict:
        out = super().decision_context(app)
        out["policy_lines"] = self.policy_lines(app)
        out["mask_id"] = mask_id
        if app.status in PRINT_FORMS.from_states and current_user().role in PRINT_FORMS.roles:
            out["app_buttons"].insert(
                0, ("打印申请表", self.get_url(".bulk_view", action_name=PRINT_FORMS.name, rid=app.id), False)
            )
        return out


# ---- 【创建保单终止申请】: the unit's 打印生效 policies ------------------------------------------------
def _member_ids(cond):
    return Policy.member_id.in_(sa.select(Member.id).where(cond))


def _tick(view, context, model, name):
    return Markup('<input type="checkbox" class="tick" value="{}" aria-label="勾选保单 {}">').format(
        model.id, model.policy_no or model.id
    )


def _pending(view, context, model, name):
    app_id = view.pending_of_page().get(model.id)
    if app_id is None:
        return ""
    return Markup('<a href="{}">已在申请 {} 中</a>').format(url_for("terminations.details_view", id=app_id), app_id)


class TerminablePolicyView(ScopedModelView):
    """【创建保单终止申请】 (manual 一(五)5): 输入搜索条件 (保单状态为打印生效) → 【搜索】 → tick →
    【终止保单】.  Not in the menu: opened from 保单提前终止's button."""

    roles = access.UNIT
    tickable = True
    can_view_details = False
    max_policies = MAX_POLICIES
    list_template = "admin/termination_policies.html"
    column_list = [
        "id",
        "policy_no",
        "member.member_no",
        "member.name",
        "member.id_number",
        "product",
        "amount",
        "effective_date",
        "expiry_date",
        "pending",
    ]
    column_labels = {
        "id": TICK_ALL,
        "policy_no": "保单号",
        "member.member_no": "会员编号",
        "member.name": "姓名",
        "member.id_number": "身份证号",
        "product": "产品名称",
        "amount": "投保金额",
        "effective_date": "正式生效时间",
        "expiry_date": "到期日期",
        "pending": "提前终止申请",
    }
    column_formatters = {"id": _tick, "amount": money_formatter("amount"), "pending": _pending}
    column_sortable_list = ["policy_no", "expiry_date"]
    column_default_sort = ("id", True)
    column_select_related_list = [Policy.member, Policy.product]
    search_panel = [
        panel.id_number_text("id_number", "身份证号", lambda v: _member_ids(Member.id_number == v)),
        panel.member_no_text("member_no", "会员编号", lambda v: _member_ids(Member.member_no == v)),
        panel.name_text("name", "姓名", lambda v: _member_ids(Member.name.startswith(v, autoescape=True))),
        panel.code_select("product", "产品名称", Policy.product_id, Product, lambda p: p.name, width="15rem"),
        panel.code_text(
            "policy_no", "保单号", lambda v: Policy.policy_no == v, max_len=30, placeholder="如 BD202600000001"
        ),
    ]

    def is_visible(self):
        return False

    @expose("/details/")
    def details_view(self):
        """No page of its own: a policy's page is 投保管理's (a tampered id here finds nothing)."""
        abort(404)

    def get_query(self):
        return super().get_query().filter(Policy.status == PolicyStatus.EFFECTIVE)

    def get_count_query(self):
        return super().get_count_query().filter(Policy.status == PolicyStatus.EFFECTIVE)

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        self._page_ids = [r.id for r in rows] if kwargs.get("execute", True) else []
        return count, rows

    def pending_of_page(self) -> dict:
        """The pending application of each policy on the page shown: one query."""
        ids = getattr(self, "_page_ids", [])
        cache = getattr(self, "_pending_for", None)
        if cache is None or cache[0] != ids:
            rows = db.session.execute(
                sa.select(Policy.id, pending_application_of(Policy.id)).where(Policy.id.in_(ids))
            ).all()
            self._pending_for = cache = (ids, {pid: app for pid, app in rows if app is not None})
        return cache[1]

    @expose("/terminate/", methods=("GET", "POST"))
    def terminate_view(self):
        """【终止保单】: the ticked policies (or the whole query, if it is small), 终止原因 and
        申请终止日期, the refunds at that date, 【确定】 → one application (新建)."""
        if self.panel_state().errors:
            return redirect(self.list_url())
        user = current_user()
        ids = self.current_ids()
        today = date.today()
        form = TerminateForm(request.form if request.method == "POST" else None, meta={"csrf": False})
        if request.method == "GET":
            form.end_date.data = today.isoformat()
        n = count_chosen(ids)
        rows = chosen_policies(ids) if n <= MAX_POLICIES else []
        problems, amounts = [], None
        raw_end = (form.end_date.data or "").strip()
        end = parse_date(raw_end) if raw_end else None
        if request.method == "POST":
            try:
                validate_csrf(request.form.get("csrf_token"))
            except (ValidationError, CSRFError):
                abort(400)
            if raw_end and end is None:
                problems = [f"申请终止日期“{raw_end}”不是有效的日期，请按“年-月-日”输入（如 {today:%Y-%m-%d}）。"]
            elif request.form.get("do") == "create":
                try:
                    app = create_application(ids, user, form.reason.data, form.reason_text.data, end)
                    db.session.commit()
                except TerminationRefused as exc:
                    db.session.rollback()
                    problems = exc.messages
                else:
                    flash(
                        f"已创建保单提前终止申请 {app.id}（新建）：{n} 份保单，退费合计 {app.refund:.2f} 元。"
                        "请点【打印申请表】打印，签字盖章后点【提交保单申请】交办事处审批。",
                        "success",
                    )
                    return redirect(url_for("terminations.details_view", id=app.id))
        if not problems:
            problems = refusals(rows, n, end, today)
        if end is not None and end >= today and rows:
            amounts = refunds(rows, end)
        return self.render(
            "admin/termination_new.html",
            form=form,
            rows=rows,
            n=n,
            amounts=amounts,
            total=sum(amounts) if amounts else None,
            problems=problems,
            filters=self.active_filter_text(),
            list_url=self.list_url_for_terminate(),
            max_policies=MAX_POLICIES,
            mask_id=mask_id,
            format_date=format_date,
            application_status=ApplicationStatus,
        )

    def list_url_for_terminate(self) -> str:
        """Back to the search with its conditions (the ticks are the page's, not the address's)."""
        args = {k: v for k, v in request.args.items() if k != "ids"}
        return self.get_url(".index_view", **args)


class TerminateForm(FlaskForm):
    """终止原因 (a common one, plus words) and 申请终止日期; checked by rules/termination.py."""

    reason = SelectField("终止原因", choices=[("", "请选择")] + [(r, r) for r in COMMON_REASONS])
    reason_text = StringField("补充说明", description="选“其他”时必填；终止原因连同补充说明最多200字")
    end_date = StringField("申请终止日期", description="今天或以后、保单到期日期之前；终止日期当日仍在保障期内")

"""会员管理: 入会管理 (admission list and single entry) and 会员信息查询 (search and detail)."""

from __future__ import annotations

from datetime import date

from flask import flash, g, get_flashed_messages
from flask_admin import expose
from flask_admin.babel import gettext

from actions import enrol as enrol_actions
from actions import members as member_actions
from models import MEMBER_WORKFLOW, Member, MemberStatus, db, member_numbers
from models import MemberStatus as MS
from rules import normalize_id, parse_member_no

from . import access, panel
from .access import current_user
from .base import ScopedModelView, record_link
from .bulk import WORKFLOW
from .member_form import MemberEntryForm

MEMBER_LABELS = {
    "member_no": "会员编号",
    "id_number": "身份证号",
    "name": "姓名",
    "gender": "性别",
    "birth_date": "出生日期",
    "phone": "联系电话",
    "org": "单位",
    "status": "状态",
    "admitted_on": "入会日期",
    "return_reason": "打回原因",
    "over_age_exception": "未正式退休（超龄例外）",
    "over_age_note": "例外说明",
    "created_at": "录入时间",
    "updated_at": "修改时间",
    "version": "版本",
}

MEMBER_DETAILS = [
    "member_no",
    "name",
    "id_number",
    "gender",
    "birth_date",
    "phone",
    "org",
    "status",
    "admitted_on",
    "return_reason",
    "over_age_exception",
    "over_age_note",
    "created_at",
    "updated_at",
]
ADMISSION_ONLY_DETAILS = ("return_reason", "over_age_note", "created_at", "updated_at")  # not on 会员信息查询


def member_search(term: str):
    """会员号, 身份证号 exactly (indexed); otherwise the name from its start.  The one search
    of a member, used by 入会管理, 会员信息查询 and (through the member) 投保管理."""
    member_no = parse_member_no(term)
    if member_no is not None:
        return Member.member_no == member_no
    norm = normalize_id(term)
    if norm.ok and len(norm.value) == 18:
        return Member.id_number == norm.value
    return Member.name.startswith(term.replace(" ", ""), autoescape=True)


ABOVE_UNIT = access.BUSINESS - access.UNIT  # a clerk's list is one unit: no 单位编号 field for them


def member_panel(with_status: bool) -> list:
    """入会管理: 选择状态, 身份证号, 会员编号, 姓名, 单位编号; 会员信息查询 the same without 选择状态."""
    fields = [
        panel.id_number_text("id_number", "身份证号", lambda v: Member.id_number == v),
        panel.member_no_text("member_no", "会员编号", lambda v: Member.member_no == v),
        panel.name_text("name", "姓名", panel.starts_with(Member.name)),
        panel.unit_text("unit", "单位编号", Member.org_id, roles=ABOVE_UNIT),
    ]
    if with_status:
        fields.insert(0, panel.enum_select("status", "选择状态", Member.status, MemberStatus))
    return fields


class MemberAdmissionView(ScopedModelView):
    """入会管理: new members, reported up for 财务确认."""

    column_formatters = {"member_no": record_link(lambda m: m.member_no)}

    roles = access.BUSINESS
    create_roles = edit_roles = delete_roles = access.UNIT
    export_roles = access.BUSINESS
    column_list = ["member_no", "name", "id_number", "gender", "birth_date", "org", "status", "admitted_on"]
    column_labels = MEMBER_LABELS
    column_details_list = MEMBER_DETAILS
    column_default_sort = ("id", True)
    search_panel = member_panel(with_status=True)
    form = MemberEntryForm
    workflow = MEMBER_WORKFLOW

    def record_title(self, model):
        return f"会员编号 {model.member_no} {model.name}（{model.status.label}）"

    bulk_actions = [WORKFLOW, enrol_actions.ENROL_NEW, member_actions.DELETE_ALL]

    def on_form_prefill(self, form, id):
        form.confirm_over_age.data = False

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)
        model.gender = form.checked["gender"]
        model.birth_date = form.checked["birth_date"]
        approved = form.over_age_app  # the agency's decision on this ID number, if any (超龄例外申请)
        model.over_age_exception = approved is not None
        model.over_age_note = approved.reason if approved is not None else None
        model.over_age_approved_by_id = approved.decided_by_id if approved is not None else None
        if approved is not None and approved.member_id is None:
            approved.member = model  # the approved request now names its member (same transaction)
        if is_created:
            user = current_user()
            model.org_id = user.org_id
            model.member_no = member_numbers(1)[0]
            model.status = MS.NEW
            model.admitted_on = date.today()
            model.created_by_id = user.id

    create_template = "admin/member_form.html"
    edit_template = "admin/member_form.html"

    def after_model_change(self, form, model, is_created):
        if is_created:
            flash(f"已保存：{model.name}，会员编号 {model.member_no}", "success")
            g.member_saved = True
        for fix in form.fixes:  # the clerk sees what was saved, not only what was typed
            flash(fix, "info")

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        response = super().create_view()
        if getattr(g, "member_saved", False):  # one message, the one that names the member number
            generic = gettext("Record was successfully created.")
            kept = [(c, m) for c, m in get_flashed_messages(with_categories=True) if m != generic]
            for category, message in kept:  # Flask's public flash API: take them all, put back ours
                flash(message, category)
        return response


class MemberQueryView(ScopedModelView):
    """会员信息查询: find a member by 会员号, 姓名 or 身份证号 and see their policies and claims."""

    details_template = "admin/member_detail.html"
    column_formatters = {"member_no": record_link(lambda m: m.member_no)}
    column_details_list = [c for c in MEMBER_DETAILS if c not in ADMISSION_ONLY_DETAILS]

    def render(self, template, **kwargs):
        if template == self.details_template and "model" in kwargs:
            from models import Claim, Policy

            member = kwargs["model"]
            kwargs["policies"] = (
                db.session.query(Policy)
                .filter(Policy.member_id == member.id)
                .order_by(Policy.expected_effective_date.desc())
                .all()
            )
            kwargs["claims"] = (
                db.session.query(Claim).filter(Claim.member_id == member.id).order_by(Claim.event_date.desc()).all()
            )
            kwargs["today"] = date.today()
        return super().render(template, **kwargs)

    roles = access.BUSINESS
    export_roles = access.BUSINESS
    column_list = ["member_no", "name", "id_number", "gender", "org", "status"]
    column_labels = MEMBER_LABELS
    column_default_sort = ("id", True)
    search_panel = member_panel(with_status=False)

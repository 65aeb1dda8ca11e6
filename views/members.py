"""会员管理: 入会管理 (admission list and single entry) and 会员信息查询 (search and detail)."""
from __future__ import annotations

from flask_admin.contrib.sqla.filters import FilterEqual, FilterLike

import re

from actions import members as member_actions
from models import Member, MemberStatus, MEMBER_EDITABLE
from rules import normalize_id

from . import roles as access
from .base import ScopedModelView

MEMBER_LABELS = {
    "member_no": "会员编号", "id_number": "身份证号", "name": "姓名", "gender": "性别", "birth_date": "出生日期",
    "phone": "联系电话", "org": "单位", "status": "状态", "admitted_on": "入会日期", "return_reason": "打回原因",
    "over_age_exception": "未正式退休（超龄例外）", "over_age_note": "例外说明", "created_at": "录入时间",
    "updated_at": "修改时间", "version": "版本",
}


MEMBER_NO_RE = re.compile(r"^\d{10}$")


def member_search(term: str):
    """会员号, 身份证号 exactly (indexed); otherwise the name from its start."""
    if MEMBER_NO_RE.match(term):
        return Member.member_no == term
    norm = normalize_id(term)
    if norm.ok and len(norm.value) == 18:
        return Member.id_number == norm.value
    return Member.name.startswith(term.replace(" ", ""), autoescape=True)


class MemberAdmissionView(ScopedModelView):
    """入会管理: new members, reported up for 财务确认."""

    roles = access.BUSINESS
    create_roles = edit_roles = delete_roles = access.UNIT
    export_roles = access.BUSINESS
    column_list = ["member_no", "name", "id_number", "gender", "birth_date", "org", "status", "admitted_on"]
    column_labels = MEMBER_LABELS
    column_details_list = ["member_no", "name", "id_number", "gender", "birth_date", "phone", "org", "status",
                           "admitted_on", "return_reason", "over_age_exception", "over_age_note", "created_at", "updated_at"]
    column_default_sort = ("id", True)
    column_searchable_list = ["member_no", "id_number", "name"]
    column_filters = [
        FilterEqual(Member.status, "选择状态", options=MemberStatus.choices()),
        FilterEqual(Member.id_number, "身份证号"),
        FilterLike(Member.name, "姓名"),
        FilterEqual(Member.member_no, "会员编号"),
    ]
    form_columns = ["name", "id_number", "phone"]
    bulk_actions = [member_actions.REPORT, member_actions.DELETE_ALL]

    def search_condition(self, term):
        return member_search(term)

    def edit_refusal(self, model):
        if model.status not in MEMBER_EDITABLE:
            return f"该会员当前状态为“{model.status.label}”，只有新建或打回状态的会员可以修改或删除。"
        return None


class MemberQueryView(ScopedModelView):
    """会员信息查询: find a member by 会员号, 姓名 or 身份证号 and see their policies and claims."""

    roles = access.BUSINESS
    export_roles = access.BUSINESS
    column_list = ["member_no", "name", "id_number", "gender", "org", "status"]
    column_labels = MEMBER_LABELS
    column_searchable_list = ["member_no", "id_number", "name"]
    column_default_sort = ("id", True)

    def search_condition(self, term):
        return member_search(term)

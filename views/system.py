"""系统管理: 单位 (tree-aware), 用户 (reset password, unlock), 产品, 审计日志 (read-only)."""

from __future__ import annotations

import re
import secrets

import sqlalchemy as sa
from flask import abort, flash, redirect, request
from flask_admin import expose
from wtforms import PasswordField, SelectField, validators

from models import AuditLog, GenderRestriction, Org, OrgLevel, Role, User, db, write_audit
from models.audit import ACTION_LABELS
from rules.phone import MAINLAND_MOBILE

from . import panel
from .access import ADMIN as ADMIN_ONLY
from .access import MANAGERS, current_user
from .base import ScopedModelView, format_money

CODE_RE = re.compile(r"^[0-9A-Za-z]{1,20}$")


class EnumFieldsMixin:
    """Columns holding a LabeledEnum as Chinese drop-downs: `enum_fields` maps a form field (a
    SelectField in form_overrides) to (enum, label, the label of "none" or None when required)."""

    enum_fields: dict = {}

    def _enum_choices(self, form, obj=None):
        for name, (enum, label, blank) in self.enum_fields.items():
            field = form[name]
            field.choices = ([("", blank)] if blank else []) + enum.choices()
            field.label.text = label
            if obj is not None and request.method == "GET":
                value = getattr(obj, name)
                field.data = value.value if value is not None else ""
        return form

    def create_form(self, obj=None):
        return self._enum_choices(super().create_form(obj))

    def edit_form(self, obj=None):
        return self._enum_choices(super().edit_form(obj), obj)

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)
        for name, (enum, _label, _blank) in self.enum_fields.items():
            setattr(model, name, enum(form[name].data) if form[name].data else None)


class OrgView(ScopedModelView):
    roles = create_roles = edit_roles = MANAGERS
    delete_roles = ADMIN_ONLY
    export_roles = MANAGERS
    column_list = ["code", "name", "level", "parent", "active"]
    column_labels = {
        "code": "单位编号",
        "name": "单位名称",
        "level": "级别",
        "parent": "上级单位",
        "active": "启用",
        "path": "路径",
    }
    column_default_sort = "path"
    search_panel = [
        panel.enum_select("level", "级别", Org.level, OrgLevel),
        panel.code_text("code", "单位编号", panel.starts_with(Org.code)),
        panel.name_text("name", "单位名称", panel.starts_with(Org.name), width="12rem"),
    ]
    form_columns = ["code", "name", "level", "parent", "active"]
    form_args = {
        "code": {
            "label": "单位编号",
            "validators": [
                validators.InputRequired(message="请填写单位编号"),
                validators.Regexp(CODE_RE, message="单位编号只能由字母和数字组成，最多20位"),
            ],
        },
        "name": {"label": "单位名称", "validators": [validators.InputRequired(message="请填写单位名称")]},
        "parent": {"label": "上级单位"},
    }
    form_overrides = {"level": SelectField}
    column_details_exclude_list = []

    def create_form(self, obj=None):
        form = super().create_form(obj)
        form.level.choices = OrgLevel.choices()
        form.level.label.text = "级别"
        return form

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        form.level.choices = OrgLevel.choices()
        form.level.label.text = "级别"
        if obj is not None and request.method == "GET":
            form.level.data = obj.level.value
        return form

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)
        model.level = OrgLevel(form.level.data)
        if model.parent is None and current_user().org.parent_id is not None:
            raise_validation("只有总会用户可以创建顶级单位")
        old_path = model.path
        if model.parent is not None and not is_created and model.parent.path.startswith(old_path or "\0"):
            raise_validation("不能把单位移到它自己的下级单位之下")
        new_path = Org.path_for(model.parent, model.code)
        model.path = new_path
        if old_path and old_path != new_path:  # move the whole subtree with it, one statement
            db.session.flush()
            db.session.execute(
                sa.update(Org)
                .where(Org.path.like(old_path + "%"), Org.id != model.id)
                .values(path=sa.literal(new_path) + sa.func.substr(Org.path, len(old_path) + 1))
            )


def raise_validation(message: str):
    from wtforms.validators import ValidationError

    raise ValidationError(message)


class UserView(EnumFieldsMixin, ScopedModelView):
    roles = create_roles = edit_roles = MANAGERS
    delete_roles = ADMIN_ONLY
    export_roles = MANAGERS
    column_list = ["username", "display_name", "org", "role", "phone", "active", "locked_until", "last_login_at"]
    column_labels = {
        "username": "用户名",
        "display_name": "姓名",
        "org": "单位",
        "role": "角色",
        "phone": "手机号码",
        "active": "启用",
        "locked_until": "锁定至",
        "last_login_at": "最近登录",
        "failed_attempts": "连续失败次数",
        "created_at": "创建时间",
        "updated_at": "修改时间",
    }
    column_details_exclude_list = ["password_hash", "login_code_hash", "login_code_sent_at", "login_code_tries"]
    search_panel = [
        panel.enum_select("role", "角色", User.role, Role),
        panel.code_text("username", "用户名", panel.starts_with(User.username), max_len=50),
        panel.name_text("name", "姓名", panel.starts_with(User.display_name)),
        panel.unit_text("unit", "单位编号", User.org_id),
    ]
    form_columns = ["username", "display_name", "org", "role", "phone", "active", "new_password"]
    form_overrides = {"role": SelectField}
    form_extra_fields = {"new_password": PasswordField("新密码（不修改请留空）")}
    form_args = {
        "username": {"label": "用户名", "validators": [validators.InputRequired(message="请填写用户名")]},
        "display_name": {"label": "姓名"},
        "org": {"label": "单位", "validators": [validators.InputRequired(message="请选择单位")]},
        "phone": {
            "label": "手机号码",
            "description": "大陆手机号，格式 +8613800000000",
            "validators": [validators.Regexp(MAINLAND_MOBILE, message="手机号码须为大陆手机号，格式 +8613800000000")],
        },
    }

    enum_fields = {"role": (Role, "角色", None)}

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)
        if form.new_password.data:
            if len(form.new_password.data) < 8:
                raise_validation("密码至少8位")
            model.set_password(form.new_password.data)
        elif is_created:
            raise_validation("新用户必须设置密码")

    @expose("/reset-password/", methods=["POST"])
    def reset_password(self):
        if not self.can_edit:
            abort(403)
        user = self.get_one(request.form.get("id"))
        new = "Hz-" + secrets.token_urlsafe(6)
        user.set_password(new)
        user.failed_attempts = 0
        user.locked_until = None
        write_audit("reset_password", "user", [user.id], current_user().id)
        db.session.commit()
        flash(f"已重置 {user.username} 的密码，新密码：{new}（请当面告知本人并提醒其修改）", "success")
        return redirect(self.get_url(".details_view", id=user.id))

    @expose("/unlock/", methods=["POST"])
    def unlock(self):
        if not self.can_edit:
            abort(403)
        user = self.get_one(request.form.get("id"))
        user.failed_attempts = 0
        user.locked_until = None
        user.login_code_hash = None
        write_audit("unlock", "user", [user.id], current_user().id)
        db.session.commit()
        flash(f"已解锁用户 {user.username}", "success")
        return redirect(self.get_url(".details_view", id=user.id))

    details_template = "admin/user_details.html"


class ProductView(EnumFieldsMixin, ScopedModelView):
    roles = MANAGERS
    create_roles = edit_roles = MANAGERS
    delete_roles = ADMIN_ONLY
    export_roles = MANAGERS
    column_list = ["code", "name", "price", "max_shares", "term_months", "gender_restriction", "active"]
    column_labels = {
        "code": "产品编号",
        "name": "产品名称",
        "price": "每份金额",
        "max_shares": "最大份数",
        "term_months": "保障期限（月）",
        "gender_restriction": "性别限制",
        "active": "启用",
    }
    column_formatters = {
        "price": lambda v, c, m, n: format_money(m.price),
        "gender_restriction": lambda v, c, m, n: m.gender_restriction.label if m.gender_restriction else "不限",
    }
    form_columns = ["code", "name", "price", "max_shares", "term_months", "gender_restriction", "active"]
    form_overrides = {"gender_restriction": SelectField}
    form_args = {
        "code": {"label": "产品编号"},
        "name": {"label": "产品名称"},
        "price": {"label": "每份金额（元）"},
        "max_shares": {"label": "最大份数"},
        "term_months": {"label": "保障期限（月）"},
    }

    enum_fields = {"gender_restriction": (GenderRestriction, "性别限制", "不限")}


AUDIT_ENTITIES = [
    ("member", "会员"),
    ("policy", "投保记录"),
    ("org", "单位"),
    ("user", "用户"),
    ("product", "产品"),
    ("import_batch", "批量业务"),
    ("transfer_application", "会员调动"),
    ("change_application", "会员变更"),
    ("termination_application", "提前终止"),
]


def _known(raw, choices, label):
    if raw not in dict(choices):
        raise panel.PanelError(f"{label}没有“{raw}”这一项，请在【{label}】下拉表中重新选择，再点【搜索】。")
    return raw


class AuditLogView(ScopedModelView):
    roles = MANAGERS
    export_roles = MANAGERS
    column_list = ["created_at", "user", "action", "entity", "entity_id", "before", "after"]
    column_labels = {
        "created_at": "时间",
        "user": "操作人",
        "action": "操作",
        "entity": "对象",
        "entity_id": "对象编号",
        "before": "修改前",
        "after": "修改后",
    }
    column_default_sort = ("id", True)
    column_formatters = {"action": lambda v, c, m, n: ACTION_LABELS.get(m.action, m.action)}
    search_panel = [
        panel.PanelField(
            "entity",
            "对象",
            "select",
            lambda v: AuditLog.entity == v,
            lambda raw: _known(raw, AUDIT_ENTITIES, "对象"),
            options=AUDIT_ENTITIES,
        ),
        panel.code_text(
            "user",
            "操作人",
            lambda v: AuditLog.user_id.in_(sa.select(User.id).where(User.username == v)),
            max_len=50,
            placeholder="用户名",
        ),
        panel.number_text("entity_id", "对象编号", lambda v: AuditLog.entity_id == v),
        panel.date_from("date_from", "日期（起）", AuditLog.created_at),
        panel.date_to("date_to", "日期（止）", AuditLog.created_at, whole_day=True),
    ]

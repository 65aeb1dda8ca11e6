"""系统管理: 单位 (tree-aware), 用户 (reset password, unlock), 产品, 审计日志 (read-only)."""

from __future__ import annotations

import re
import secrets

import sqlalchemy as sa
from flask import abort, flash, jsonify, make_response, redirect, request, session, url_for
from flask_admin import expose
from markupsafe import Markup
from wtforms import PasswordField, SelectField, StringField, validators
from wtforms.widgets import TextInput

from actions.login import client_ip, send_stepup_code, use_stepup_code
from models import AuditLog, GenderRestriction, Org, OrgLevel, Role, User, db, end_sessions, write_audit
from models.audit import ENTITY_LABELS, names_record, record_ids
from rules.phone import MAINLAND_MOBILE

from . import panel
from .access import ADMIN as ADMIN_ONLY
from .access import MANAGERS, current_user
from .audit_text import (
    action_label,
    change_lines,
    entity_label,
    page_names,
    record_names,
    record_screen,
    records_text,
    referenced_names,
)
from .base import ScopedModelView, format_money

CODE_RE = re.compile(r"^[0-9A-Za-z]{1,20}$")


class EnumFieldsMixin:
    """Columns holding a LabeledEnum as Chinese drop-downs: `enum_fields` maps a form field (a
    SelectField in form_overrides) to (enum, label, the label of "none" or None when required)."""

    enum_fields: dict = {}

    def prepare_form(self, form, obj=None):
        form = super().prepare_form(form, obj)
        for name, (enum, label, blank) in self.enum_fields.items():
            field = form[name]
            field.choices = ([("", blank)] if blank else []) + enum.choices()
            field.label.text = label
            if obj is not None and request.method == "GET":
                value = getattr(obj, name)
                field.data = value.value if value is not None else ""
        return form

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)
        for name, (enum, _label, _blank) in self.enum_fields.items():
            setattr(model, name, enum(form[name].data) if form[name].data else None)


class OrgView(EnumFieldsMixin, ScopedModelView):
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
    enum_fields = {"level": (OrgLevel, "级别", None)}
    column_details_exclude_list = []

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)  # the 级别 chosen (EnumFieldsMixin)
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


class StepUpCodeInput(TextInput):
    """The acting manager's own SMS code, with its 【获取验证码】 button (static/js/stepup.js)."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("autocomplete", "one-time-code")
        kwargs.setdefault("inputmode", "numeric")
        kwargs.setdefault("maxlength", "6")
        return Markup(
            '<div class="input-group" style="max-width: 360px">{}<div class="input-group-append">'
            '<button type="button" class="btn btn-outline-secondary stepup-send" data-url="{}">获取验证码</button>'
            '</div></div><small class="form-text stepup-msg" aria-live="polite"></small>'
        ).format(super().__call__(field, **kwargs), url_for("users.stepup_code_view"))


STEPUP_LABEL = "本人手机验证码"
STEPUP_HELP = "修改手机号码或密码时必填：点【获取验证码】，验证码发送到您本人（当前登录用户）的手机"
STEPUP_REFUSED = (
    "修改手机号码或密码须填写您本人手机收到的验证码：请点【获取验证码】，输入收到的6位数字后再保存"
    "（验证码5分钟内有效，只能用一次）。"
)


def _old_value(model, key: str):
    """The value `key` had before the form changed it (or has, unchanged)."""
    h = sa.inspect(model).attrs[key].history
    if h.deleted:
        return h.deleted[0]
    return h.unchanged[0] if h.unchanged else getattr(model, key)


def _unlock(user) -> None:
    """The lock-out and the pending login code go: the next login starts afresh."""
    user.failed_attempts = 0
    user.locked_until = None
    user.login_code_hash = None


class UserView(ScopedModelView):
    """系统管理 → 用户.  Only 系统管理员 grants (or touches an account of) 系统管理员; nobody
    changes their own role or 停用s themselves; a change of phone or password is audited and needs
    the acting manager's own fresh SMS code; a new password, 重置密码 and 停用 end every session of
    that user."""

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
    form_columns = ["username", "display_name", "org", "role", "phone", "active", "new_password", "stepup_code"]
    form_overrides = {"role": SelectField}
    form_extra_fields = {
        "new_password": PasswordField("新密码（不修改请留空）"),
        "stepup_code": StringField(STEPUP_LABEL, description=STEPUP_HELP, widget=StepUpCodeInput()),
    }
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
    create_template = edit_template = "admin/user_form.html"
    details_template = "admin/user_details.html"

    @staticmethod
    def _actor_is_admin() -> bool:
        user = current_user()
        return user is not None and user.role == Role.ADMIN

    def edit_refusal(self, model) -> str | None:
        if model.role == Role.ADMIN and not self._actor_is_admin():
            return "只有系统管理员可以修改系统管理员的账户（包括重置密码、解锁和停用）。"
        return None

    def prepare_form(self, form, obj=None):
        form = super().prepare_form(form, obj)
        grantable = [c for c in Role.choices() if self._actor_is_admin() or c[0] != Role.ADMIN.value]
        form.role.choices = grantable
        form.role.validate_choice = False  # checked in on_model_change, with a Chinese message
        form.role.label.text = "角色"
        if obj is not None and request.method == "GET":
            form.role.data = obj.role.value
        if obj is not None and obj.id == current_user().id:
            form.role.render_kw = {"disabled": True}
            form.role.description = "不能修改自己的角色"
        if obj is None:
            del form.stepup_code  # a new account changes nobody's phone or password
        return form

    def on_model_change(self, form, model, is_created):
        actor = current_user()
        history = sa.inspect(model).attrs
        old_role = None if is_created else _old_value(model, "role")
        if not is_created and model.id == actor.id:
            wanted = form.role.data or old_role.value  # a disabled field is not posted
            if wanted != old_role.value:
                raise_validation("不能修改自己的角色。如需调整，请联系其他系统管理员")
            if not model.active:
                raise_validation("不能停用自己的账户")
            model.role = old_role
        else:
            try:
                model.role = Role(form.role.data)
            except ValueError:
                raise_validation("请选择角色")
        if model.role == Role.ADMIN and old_role != Role.ADMIN and not self._actor_is_admin():
            raise_validation("只有系统管理员可以授予系统管理员角色")
        password = form.new_password.data
        if password:
            if len(password) < 8:
                raise_validation("密码至少8位")
            model.set_password(password)
        elif is_created:
            raise_validation("新用户必须设置密码")
        if not is_created:
            phone_changed = bool(history.phone.history.deleted)
            if (phone_changed or password) and not use_stepup_code(form.stepup_code.data):
                raise_validation(STEPUP_REFUSED)
            deactivated = history.active.history.deleted == [True] and not model.active
            if password or deactivated:  # every session of that user ends with the change
                end_sessions(model.id, keep=session.token if model.id == actor.id else None)
        super().on_model_change(form, model, is_created)
        if password and not is_created:
            write_audit("set_password", "user", [model.id], actor.id, after={"password": "（已修改）"})

    @expose("/stepup-code/", methods=["POST"])
    def stepup_code_view(self):
        """【获取验证码】 of the user form and of 重置密码: a code to the acting user's own phone."""
        if not self.can_edit:
            abort(403)
        ok, message = send_stepup_code(current_user(), client_ip())
        return jsonify(ok=ok, message=message), (200 if ok else 400)

    def _posted_user(self):
        """(the user of the posted id, None), or (that user, the page saying this manager may not
        change that account); 403 for whoever may not edit users at all."""
        if not self.can_edit:
            abort(403)
        user = self.get_one(request.form.get("id"))
        return user, self._refuse_if_locked(user)

    @expose("/reset-password/", methods=["POST"])
    def reset_password(self):
        """重置密码: a new random password, shown once on the page that answers this POST (never
        kept in the session or a flash); every session of that user ends."""
        user, refused = self._posted_user()
        if refused:
            return refused
        if not use_stepup_code(request.form.get("stepup_code")):
            flash(STEPUP_REFUSED, "error")
            return redirect(self.get_url(".details_view", id=user.id))
        actor = current_user()
        new = "Hz-" + secrets.token_urlsafe(6)
        user.set_password(new)
        _unlock(user)
        end_sessions(user.id, keep=session.token if user.id == actor.id else None)
        write_audit("reset_password", "user", [user.id], actor.id, after={"password": "（已重置）"})
        db.session.commit()
        response = make_response(
            self.render(
                "admin/password_reset_done.html",
                target=user,
                password=new,
                back=self.get_url(".details_view", id=user.id),
            )
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @expose("/unlock/", methods=["POST"])
    def unlock(self):
        user, refused = self._posted_user()
        if refused:
            return refused
        _unlock(user)
        write_audit("unlock", "user", [user.id], current_user().id)
        db.session.commit()
        flash(f"已解锁用户 {user.username}", "success")
        return redirect(self.get_url(".details_view", id=user.id))


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


AUDIT_ENTITIES = list(ENTITY_LABELS.items())


def _known(raw, choices, label):
    if raw not in dict(choices):
        raise panel.PanelError(f"{label}没有“{raw}”这一项，请在【{label}】下拉表中重新选择，再点【搜索】。")
    return raw


def _audit_lines(which: int):
    """A list cell of 修改前 (0) or 修改后 (1): one "字段: 值" (or "字段: 旧值 → 新值") a line."""

    def formatter(view, context, model, name):
        rows = context.get("data") if context is not None else None
        names = page_names(rows) if rows else referenced_names([model])
        lines = change_lines(model, names)[which]
        return Markup("<br>").join(lines)

    return formatter


def _records_cell(view, context, model, name):
    """对象编号: the record's number, or for an action on several records (one grouped row) how many
    ("共 100,000 条"), a link to the page that lists them."""
    if model.entity_id is not None:
        return model.entity_id
    text = records_text(model.entity_count)
    if context is None:  # an export: the text alone
        return text
    return Markup('<a href="{}" class="audit-records">{}</a>').format(view.get_url(".records_view", id=model.id), text)


class AuditLogView(ScopedModelView):
    """审计日志: read-only; every action, entity and field in Chinese, changes as "字段: 旧值 → 新值".
    An action on several records is one row (models/audit.py): 对象编号 says how many and leads to
    the list of them (/records/?id=N); the search by 对象编号 finds it among a record's history."""

    RECORDS_PAGE = 500

    roles = MANAGERS
    export_roles = MANAGERS
    column_list = ["created_at", "user", "action", "entity", "entity_id", "before", "after"]
    column_details_list = column_list
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
    column_formatters = {
        "action": lambda v, c, m, n: action_label(m.action),
        "entity": lambda v, c, m, n: entity_label(m.entity),
        "before": _audit_lines(0),
        "after": _audit_lines(1),
        "entity_id": _records_cell,
    }

    @expose("/records/")
    def records_view(self):
        """The records one audit row names, RECORDS_PAGE a page: each number with its name and a
        link to its screen.  The row comes through the list's scope (another unit's: 404)."""
        row = self.get_one(request.args.get("id"))
        ids = record_ids(row)
        pages = max(1, -(-len(ids) // self.RECORDS_PAGE))
        try:
            page = min(max(1, int(request.args.get("page", 1))), pages)
        except ValueError:
            page = 1
        chunk = ids[(page - 1) * self.RECORDS_PAGE : page * self.RECORDS_PAGE]
        names = record_names(row.entity, chunk)
        screen = record_screen(row.entity)
        lines = [
            (i, names.get(i, ""), url_for(f"{screen.endpoint}.details_view", id=i) if screen is not None else None)
            for i in chunk
        ]
        before, after = change_lines(row, referenced_names([row]))
        return self.render(
            "admin/audit_records.html",
            row=row,
            action=action_label(row.action),
            entity=entity_label(row.entity),
            user=row.user,
            total=len(ids),
            lines=lines,
            page=page,
            pages=pages,
            first=(page - 1) * self.RECORDS_PAGE + 1,
            before=before,
            after=after,
        )

    def export_rows(self):
        """The export says what the screen says (no JSON): one SELECT of the columns (the list's
        query, scope and search panel included), rows as tuples; the names the changes refer to
        looked up a page of 500 rows at a time (views/audit_text.py `referenced_names`)."""
        from sqlalchemy.orm import aliased

        from actions.exports import stream_rows
        from batch.export import Export

        headers = [self.column_labels[c] for c in self.column_list]
        user = aliased(User)
        stmt = (
            sa.select(
                AuditLog.created_at,
                sa.func.coalesce(sa.func.nullif(user.display_name, ""), user.username).label("user"),
                AuditLog.action,
                AuditLog.entity,
                AuditLog.entity_id,
                AuditLog.entity_count,
                AuditLog.before,
                AuditLog.after,
            )
            .select_from(AuditLog)
            .outerjoin(user, user.id == AuditLog.user_id)
            .where(AuditLog.id.in_(self.current_ids()))
            .order_by(AuditLog.id.desc())
        )

        def rows():
            page = []
            for row in stream_rows(stmt, batch=500):
                page.append(row)
                if len(page) == 500:
                    yield from self._export_page(page)
                    page = []
            yield from self._export_page(page)

        return Export(headers, None, rows)

    @staticmethod
    def _export_page(rows):
        names = referenced_names(rows)
        for r in rows:
            before, after = change_lines(r, names)
            yield [
                r.created_at,
                r.user or "",
                action_label(r.action),
                entity_label(r.entity),
                r.entity_id if r.entity_id is not None else records_text(r.entity_count),
                "\n".join(before),
                "\n".join(after),
            ]

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
        panel.number_text("entity_id", "对象编号", names_record),  # its own rows and the grouped rows naming it
        panel.date_from("date_from", "日期（起）", AuditLog.created_at),
        panel.date_to("date_to", "日期（止）", AuditLog.created_at, whole_day=True),
    ]

"""会员调动管理, 会员变更管理, 超龄例外申请 (保单提前终止: views/terminations.py): applications decided above the unit.

One list/detail screen base for every kind (`ApplicationView`): the applicant's unit sees its own
applications, drafts included; an approver sees what was submitted within their scope; both filter
by 审批状态.  The buttons are the kind's declared transitions (models/applications.py), over the
current query on the list and over one application on its detail page (`?rid=`).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, request, send_file
from flask_admin import expose
from markupsafe import Markup
from werkzeug.datastructures import CombinedMultiDict

from actions.applications import KINDS, reasons_blocking
from actions.new_applications import create_transfer, own_member, transfer_lookup
from models import (
    CHANGE_WORKFLOW,
    OVER_AGE_WORKFLOW,
    TRANSFER_WORKFLOW,
    ApplicationStatus,
    ChangeApplication,
    DocumentKind,
    Member,
    OverAgeApplication,
    TransferApplication,
    db,
    write_audit,
)
from models.storage import attachment_path
from rules import mask_id

from . import access, panel
from .access import current_user
from .application_forms import ChangeForm, OverAgeForm
from .base import ScopedModelView, format_date
from .bulk import WORKFLOW

STATUS_LABELS = {
    "id": "申请编号",
    "status": "审批状态",
    "created_at": "创建时间",
    "submitted_at": "提交时间",
    "decided_at": "审批时间",
    "decided_by": "审批人",
    "created_by": "创建人",
    "decision_note": "驳回原因",
    "updated_at": "修改时间",
}
# the workflow's own columns (新建 → 提交 → 通过/驳回): the end of every application's details
DECISION_DETAILS = ["status", "decision_note", "created_by", "created_at", "submitted_at", "decided_by", "decided_at"]
AS = ApplicationStatus
MIME = {"pdf": "application/pdf", "jpg": "image/jpeg", "png": "image/png"}


def application_panel(model, member_cond, unit_column) -> list:
    """审批状态, 会员编号/身份证号, 单位 (manual 一(四)3: 审批状态选择新建，点击【搜索】)."""
    return [
        panel.enum_select("status", "审批状态", model.status, ApplicationStatus),
        panel.member_ref_text("member", "会员编号/身份证号", member_cond),
        panel.unit_text("unit", "单位编号", unit_column),
    ]


def _of_member(model):
    return lambda cond: model.member_id.in_(sa.select(Member.id).where(cond))


def _status(view, context, model, name):
    if model.status == AS.REJECTED and model.decision_note:
        return Markup('{}<br><small class="text-danger">驳回原因：{}</small>').format(
            model.status.label, model.decision_note
        )
    return model.status.label


def _id_link(view, context, model, name):
    return Markup('<a href="{}">{}</a>').format(view.get_url(".details_view", id=model.id), model.id)


def _posted(files: bool = False):
    """What a custom form reads: the posted fields (and files), or nothing on GET (AdminForm, like
    Flask-Admin's forms, takes its data only when given)."""
    if request.method != "POST":
        return None
    return CombinedMultiDict((request.files, request.form)) if files else request.form


def _button_words(label: str) -> str:
    return label.removeprefix("当前查询结果")


class ApplicationView(ScopedModelView):
    """The list and detail screens of one application kind."""

    create_roles = delete_roles = access.UNIT
    export_roles = frozenset()
    bulk_actions = [WORKFLOW]
    details_template = "admin/application_details.html"
    column_default_sort = ("id", True)
    column_labels = STATUS_LABELS
    column_formatters = {"status": _status, "id": _id_link}
    column_formatters_detail = {"status": _status}

    # ---- drafts are the applicant's business: an approver sees what was submitted to them
    def _sees_drafts(self) -> bool:
        return access.has_role(*access.UNIT)

    def get_query(self):
        query = super().get_query()
        return query if self._sees_drafts() else query.filter(self.model.status != AS.NEW)

    def get_count_query(self):
        query = super().get_count_query()
        return query if self._sees_drafts() else query.filter(self.model.status != AS.NEW)

    # ---- the detail page: what can be done with this application now, and what stands in the way
    def render(self, template, **kwargs):
        if template == self.details_template and "model" in kwargs:
            kwargs.update(self.decision_context(kwargs["model"]))
        return super().render(template, **kwargs)

    def decision_context(self, app) -> dict:
        user = current_user()
        buttons, blocking, warnings = [], [], []
        for t in self.workflow.transitions:
            if user.role not in t.roles or app.status not in t.from_states:
                continue
            buttons.append(
                (_button_words(t.label), self.get_url(".bulk_view", action_name=t.name, rid=app.id), t.danger)
            )
            blocking += [f"不能{t.action_label}：{why}" for why in reasons_blocking(self.workflow, t.name, app.id)]
            kind = KINDS.get(self.model)
            if t.name == "approve" and kind is not None and kind.approve_warnings is not None:
                warnings += kind.approve_warnings([app.id])
        if self.can_edit and self.edit_refusal(app) is None:
            buttons.insert(0, ("修改", self.get_url(".edit_view", id=app.id), False))
        return {"app_buttons": buttons, "app_blocking": blocking, "app_warnings": warnings}

    # ---- the create and edit forms of the kinds that have their own (会员变更, 超龄例外)
    def _to_edit(self):
        """(the application of ?id= to edit, None) or (None, the page saying why it cannot be)."""
        app = self.get_one(request.args.get("id"))
        refused = self._refuse_if_locked(app)
        if refused:
            return None, refused
        if not self.can_edit:
            abort(403)
        return app, None

    def _save(self, app, form) -> None:
        """The form's values into the application (a new one added), its files stored, and its
        audit row (修改前: the old values) in the same transaction; committed."""
        created = app.id is None
        before = None if created else self._snapshot(app)
        self._fill(app, form)
        if created:
            db.session.add(app)
        db.session.flush()  # a new application's id: its audit row, its file's name
        self._store(app, form)
        write_audit(
            "create" if created else "update",
            self._audit_entity(),
            [app.id],
            current_user().id,
            before=before,
            after=self._snapshot(app),
        )
        db.session.commit()

    @staticmethod
    def _fill(app, form):
        raise NotImplementedError

    @staticmethod
    def _store(app, form):
        """Files the form brought (none by default)."""


# ---- 会员调动管理 (manual 一(四)1) ----------------------------------------------------------------
def _masked_member(view, context, model, name):
    m = model.member
    return Markup("{}（{}）").format(m.name, mask_id(m.id_number))


class TransferView(ApplicationView):
    roles = frozenset(access.UNIT | access.INFO | access.ADMIN)
    workflow = TRANSFER_WORKFLOW
    list_template = "admin/application_list.html"
    column_list = ["id", "member", "from_org", "to_org", "reason", "status", "created_at", "decided_at"]
    column_details_list = [
        "id",
        "member",
        "from_org",
        "to_org",
        "reason",
        *DECISION_DETAILS,
    ]
    column_labels = dict(
        STATUS_LABELS, member="会员（证件号已隐去）", from_org="调出单位", to_org="调入单位", reason="调动原因"
    )
    column_formatters = dict(ApplicationView.column_formatters, member=_masked_member)
    column_formatters_detail = dict(ApplicationView.column_formatters_detail, member=_masked_member)
    column_select_related_list = [TransferApplication.member, TransferApplication.from_org, TransferApplication.to_org]
    search_panel = application_panel(
        TransferApplication,
        _of_member(TransferApplication),
        lambda orgs: sa.or_(TransferApplication.from_org_id.in_(orgs), TransferApplication.to_org_id.in_(orgs)),
    )
    create_button = "创建调入调出申请"

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """【创建调入调出申请】: 证件号 or 会员号 → 【查找】 (masked) → 【提交新建申请】."""
        if not self.can_create:
            abort(403)
        user = current_user()
        term = (request.form.get("q") or "").strip()
        reason = (request.form.get("reason") or "").strip()[:200]
        lookup, error = None, None
        if request.method == "POST":
            from .base import AdminForm

            if not AdminForm().validate_on_submit():
                abort(400)
            if request.form.get("do") == "submit":
                app_id, message = create_transfer(term, user, reason)
                if app_id is not None:
                    flash(message, "success")
                    return redirect(self.get_url(".details_view", id=app_id))
                error = message
            lookup = transfer_lookup(term, user, current_app.config["TRANSFER_LOOKUPS_PER_HOUR"])
        return self.render(
            "admin/transfer_new.html",
            term=term,
            reason=reason,
            lookup=lookup,
            error=error,
            return_url=self.get_url(".index_view"),
        )


# ---- 会员变更管理 (manual 一(四)3, 8) --------------------------------------------------------------
def _member_no_name(view, context, model, name):
    return f"{model.member.member_no} {model.member.name}"


class ChangeView(ApplicationView):
    roles = frozenset(access.UNIT | access.INFO | access.ADMIN)
    edit_roles = access.UNIT
    workflow = CHANGE_WORKFLOW
    list_template = "admin/application_list.html"
    column_list = [
        "id",
        "member",
        "old_name",
        "new_name",
        "old_id_number",
        "new_id_number",
        "reason",
        "status",
        "created_at",
    ]
    column_details_list = [
        "id",
        "member",
        "org",
        "old_name",
        "new_name",
        "old_id_number",
        "new_id_number",
        "new_gender",
        "new_birth_date",
        "reason",
        *DECISION_DETAILS,
    ]
    column_labels = dict(
        STATUS_LABELS,
        member="会员",
        org="单位",
        old_name="原姓名",
        new_name="新姓名",
        old_id_number="原身份证号",
        new_id_number="新身份证号",
        new_gender="新性别",
        new_birth_date="新出生日期",
        reason="变更理由",
    )
    column_formatters = dict(ApplicationView.column_formatters, member=_member_no_name)
    column_formatters_detail = dict(ApplicationView.column_formatters_detail, member=_member_no_name)
    column_select_related_list = [ChangeApplication.member]
    search_panel = application_panel(ChangeApplication, _of_member(ChangeApplication), ChangeApplication.org_id)
    create_button = "创建"

    def _form_page(self, form, member, app=None, error=None):
        return self.render(
            "admin/change_form.html",
            form=form,
            member=member,
            app=app,
            error=error,
            term=request.values.get("q", ""),
            return_url=self.get_url(".index_view"),
        )

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """【创建】 → 证件号 or 会员编号 → 【查询】 → new name / ID, 变更理由 → 【保存】 (新建)."""
        if not self.can_create:
            abort(403)
        user = current_user()
        member, error = None, None
        term = (request.values.get("q") or "").strip()
        if term:
            member, error = own_member(term, user)
        form = ChangeForm(_posted(), member=member)
        if member is not None and not form.member_ref.data:
            form.member_ref.data = term
        if request.method == "POST" and member is not None and form.validate_on_submit():
            app = ChangeApplication(member_id=form.member.id, org_id=form.member.org_id, created_by_id=user.id)
            self._save(app, form)
            flash(f"已保存变更申请（申请编号 {app.id}，新建）。核对无误后请在列表中【上报】。", "success")
            return redirect(self.get_url(".index_view", status=AS.NEW.value))
        return self._form_page(form, member, error=error)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        app, refused = self._to_edit()
        if refused:
            return refused
        form = ChangeForm(_posted(), obj=None if request.method == "POST" else app, app_id=app.id, member=app.member)
        if request.method == "POST" and form.validate_on_submit():
            self._save(app, form)
            flash(f"已修改变更申请（申请编号 {app.id}）。", "success")
            return redirect(self.get_url(".details_view", id=app.id))
        return self._form_page(form, app.member, app=app)

    @staticmethod
    def _fill(app, form):
        member = form.member
        app.old_name, app.old_id_number = member.name, member.id_number
        name, idn = form.new_name.data or None, form.new_id_number.data or None
        app.new_name = name if name and name != member.name else None
        if idn and idn != member.id_number:
            from models import Gender

            app.new_id_number = idn
            app.new_gender = Gender(form.id_info.gender)
            app.new_birth_date = form.id_info.birth_date
        else:
            app.new_id_number = app.new_gender = app.new_birth_date = None
        app.reason = form.reason.data


# ---- 超龄例外 (manual 一(三)1, 一(四)9) ----------------------------------------------------------------
def _document_link(view, context, model, name):
    if not model.document_sha256:
        return "（迁移前已有的例外，无附件）" if model.status == AS.APPROVED else "未上传"
    return Markup('<a href="{}" class="document-link">{}</a>').format(
        view.get_url(".document_view", app_id=model.id), model.document_name or "证明文件"
    )


def _age(view, context, model, name):
    from datetime import date

    from rules import age_on

    return f"{format_date(model.birth_date)}（{age_on(model.birth_date, date.today())}周岁）"


class OverAgeView(ApplicationView):
    roles = frozenset(access.UNIT | access.AGENCY | access.MANAGERS)
    edit_roles = access.UNIT
    workflow = OVER_AGE_WORKFLOW
    list_template = "admin/application_list.html"
    column_list = ["id", "name", "id_number", "gender", "birth_date", "reason", "document_name", "status", "created_at"]
    column_details_list = [
        "id",
        "org",
        "name",
        "id_number",
        "gender",
        "birth_date",
        "member",
        "reason",
        "document_name",
        *DECISION_DETAILS,
    ]
    column_labels = dict(
        STATUS_LABELS,
        org="申请单位",
        name="姓名",
        id_number="身份证号",
        gender="性别",
        birth_date="出生日期（年龄）",
        member="会员",
        reason="申请理由",
        document_name="证明文件",
    )
    column_formatters = dict(ApplicationView.column_formatters, document_name=_document_link, birth_date=_age)
    column_formatters_detail = dict(
        ApplicationView.column_formatters_detail, document_name=_document_link, birth_date=_age
    )
    search_panel = [
        panel.enum_select("status", "审批状态", OverAgeApplication.status, ApplicationStatus),
        panel.id_number_text("id_number", "身份证号", lambda v: OverAgeApplication.id_number == v),
        panel.unit_text("unit", "单位编号", OverAgeApplication.org_id),
    ]
    create_button = "创建超龄例外申请"

    def _form_page(self, form, app=None):
        return self.render("admin/over_age_form.html", form=form, app=app, return_url=self.get_url(".index_view"))

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        if not self.can_create:
            abort(403)
        user = current_user()
        form = OverAgeForm(_posted(files=True))
        if request.method == "GET":
            form.id_number.data = request.args.get("id_number", "")
        if request.method == "POST" and form.validate_on_submit():
            app = OverAgeApplication(org_id=user.org_id, created_by_id=user.id)
            self._save(app, form)
            flash(f"已保存超龄例外申请（申请编号 {app.id}，新建）。请核对后点【提交】，由代办处审批。", "success")
            return redirect(self.get_url(".details_view", id=app.id))
        return self._form_page(form)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        app, refused = self._to_edit()
        if refused:
            return refused
        form = OverAgeForm(
            _posted(files=True),
            obj=None if request.method == "POST" else app,
            app_id=app.id,
            has_document=bool(app.document_sha256),
        )
        if request.method == "POST" and form.validate_on_submit():
            self._save(app, form)
            flash(f"已修改超龄例外申请（申请编号 {app.id}）。", "success")
            return redirect(self.get_url(".details_view", id=app.id))
        return self._form_page(form, app)

    @staticmethod
    def _fill(app, form):
        from models import Gender

        info = form.id_info
        app.id_number, app.gender, app.birth_date = info.number, Gender(info.gender), info.birth_date
        app.member_id = form.member.id if form.member is not None else None
        app.name = form.member.name if form.member is not None else form.name.data
        app.reason = form.reason.data

    @staticmethod
    def _store(app, form):
        """The document under the instance folder (models/storage.py), named by the application."""
        if form.document_data is None:
            return
        import hashlib
        from pathlib import Path

        for old in DocumentKind:  # a replaced document of another type does not linger
            attachment_path(f"over_age_{app.id}.{old.value}").unlink(missing_ok=True)
        attachment_path(f"over_age_{app.id}.{form.document_kind}").write_bytes(form.document_data)
        upload = form.document.data
        app.document_name = Path(upload.filename or "证明文件").name[:255]
        app.document_kind = DocumentKind(form.document_kind)
        app.document_size = len(form.document_data)
        app.document_sha256 = hashlib.sha256(form.document_data).hexdigest()

    @expose("/document/<int:app_id>/")
    def document_view(self, app_id):
        """The attached document: only within scope (another unit's is a 404 like its application)."""
        app = self.get_one(app_id)
        if not app.document_sha256 or app.document_kind is None:
            abort(404)
        path = attachment_path(f"over_age_{app.id}.{app.document_kind.value}")
        if not path.exists():
            abort(404)
        return send_file(
            path,
            mimetype=MIME[app.document_kind.value],
            as_attachment=True,
            download_name=app.document_name or path.name,
        )

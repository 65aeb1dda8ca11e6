"""The base of every admin screen: org scope, role permissions, Chinese formats, audit, CSRF.

Every model view derives from `ScopedModelView`, so the list, count, detail, edit, delete,
export, ajax look-ups and relation drop-downs all pass through `models.scope`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from babel import support
from flask import abort, flash, g, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_admin.model import typefmt
from flask_babel import get_locale
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms.i18n import messages_path

from models import LabeledEnum, db, scoped, write_audit
from models.audit import ENTITY_LABELS
from rules import escape_formula, format_when, format_yuan

from . import access, list_page
from .access import current_user, has_role
from .bulk import BulkActionsMixin
from .list_page import row_url
from .panel import SearchPanelMixin

format_money = format_yuan  # "12.50 元" (rules/money.py)
format_date = format_when  # "2026-03-01", "2026-03-01 08:30" (rules/dates.py)


SECRET_COLUMNS = frozenset({"password_hash", "login_code_hash"})


def _json_value(value):
    """A column value as the audit log stores it."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, LabeledEnum):
        return value.value
    return value


def _bool(view, value, name=None):
    return "是" if value else "否"


# Flask-Admin takes the first formatter whose type matches: specific types come first
TYPE_FORMATTERS = {
    LabeledEnum: lambda view, value, name=None: value.label,
    bool: _bool,
    datetime: lambda view, value, name=None: format_date(value),
    date: lambda view, value, name=None: format_date(value),
    Decimal: lambda view, value, name=None: f"{value:.2f}",
}
TYPE_FORMATTERS.update({k: v for k, v in typefmt.BASE_FORMATTERS.items() if k not in TYPE_FORMATTERS})
EXPORT_FORMATTERS = dict(TYPE_FORMATTERS)
EXPORT_FORMATTERS[bool] = _bool


LIST_COUNT_CAP = 10000


def _deleted_along(model) -> set:
    """Tables whose rows naming a record go with it: the link tables of its many-to-many
    relationships (e.g. a 保单提前终止申请's policies) and the children it deletes by cascade."""
    owned = set()
    for rel in sa.inspect(model).relationships:
        if rel.secondary is not None:
            owned.add(rel.secondary)
        elif rel.cascade.delete and rel.direction is sa.orm.interfaces.ONETOMANY:
            owned.add(rel.mapper.local_table)
    return owned


# what delete_refusal calls the records that still name a record (besides models.audit.ENTITY_LABELS)
REFERENCE_LABELS = {"receipt_policy": "收据", "termination_policy": "保单提前终止申请", "sms_send": "短信发送记录"}
SELF_REFERENCE_LABELS = {"org": "下级单位", "policy": "由它续转的投保记录"}


class CappedCount(int):
    """A count that stopped at the cap: shown as "10000+", still a number for the pager."""

    def __str__(self):
        return f"{LIST_COUNT_CAP}+"


def capped(n: int) -> int:
    return CappedCount(LIST_COUNT_CAP + 1) if n > LIST_COUNT_CAP else n


class CappedCountQuery(sa.orm.Query):
    # set while ScopedModelView.get_list runs Flask-Admin's: the count is run after the page, if needed
    later = False

    def scalar(self):
        if self.later:
            return _LaterCount(self)
        inner = self.with_entities(sa.literal(1)).limit(LIST_COUNT_CAP + 1).subquery()
        return capped(self.session.connection().execute(sa.select(sa.func.count()).select_from(inner)).scalar())


class _LaterCount:
    """The list's count, not yet run: a page that is not full needs none (it is the last page)."""

    def __init__(self, query):
        self.query = query

    def run(self) -> int:
        self.query.later = False
        return self.query.scalar()


class _Translations:
    """WTForms' own Chinese messages, plus the one Flask-Admin's relation fields raise in English.
    The catalog is read once per process and locale (Flask-WTF's own Translations reads the .mo
    file again on every request: ~1 ms of each list page, for its delete form)."""

    EXTRA = {"Not a valid choice": "不是有效的选择，请重新选择。"}

    def __init__(self):
        self._catalogs = {}

    def _catalog(self):
        locale = str(get_locale())
        if locale not in self._catalogs:
            self._catalogs[locale] = support.Translations.load(messages_path(), [locale], domain="wtforms")
        return self._catalogs[locale]

    def gettext(self, string):
        return self.EXTRA.get(string) or self._catalog().ugettext(string)

    def ngettext(self, singular, plural, n):
        return self._catalog().ungettext(singular, plural, n)


_TRANSLATIONS = _Translations()


class AdminForm(FlaskForm):
    """Flask-WTF's CSRF token on every admin form (Flask-Admin's own SecureForm uses another token)."""

    class Meta:
        def get_translations(self, form):
            return _TRANSLATIONS

    def __init__(self, formdata=None, obj=None, prefix="", **kwargs):
        self._obj = obj  # Flask-Admin's Unique validator skips the record being edited
        super().__init__(formdata=formdata, obj=obj, prefix=prefix, **kwargs)


class ScopedAjaxLoader(QueryAjaxModelLoader):
    def get_query(self):
        return scoped(super().get_query(), self.model, current_user())

    def get_one(self, pk):
        return self.get_query().filter(self.model.id == _int_or_404(pk)).one_or_none()


def _int_or_404(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        abort(404)


class RoleGuard:
    """Who may open a screen, and who may create, edit, delete and export on it."""

    roles: frozenset = access.EVERYONE
    create_roles: frozenset = frozenset()
    edit_roles: frozenset = frozenset()
    delete_roles: frozenset = frozenset()
    export_roles: frozenset = frozenset()

    def is_accessible(self):
        user = current_user()
        return user is not None and user.role in self.roles

    def is_visible(self):
        return self.is_accessible()

    def inaccessible_callback(self, name, **kwargs):
        if current_user() is None:
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)


class ScopedModelView(BulkActionsMixin, SearchPanelMixin, RoleGuard, ModelView):
    form_base_class = AdminForm
    list_template = "admin/list_with_actions.html"
    edit_template = "admin/record_edit.html"  # 【删除】 beside 【保存并退出】 while the record may change
    action_disallowed_list = ["delete"]  # bulk work goes through the current-query mechanism only
    column_type_formatters = TYPE_FORMATTERS
    column_type_formatters_export = EXPORT_FORMATTERS
    column_type_formatters_detail = TYPE_FORMATTERS
    page_size = 20
    can_set_page_size = True
    page_size_options = (20, 50, 100)
    can_view_details = True
    export_types = ["xlsx"]  # streamed by BulkActionsMixin.export (/export/csv/ also works)
    export_max_rows = 0
    audit_entity: str | None = None  # defaults to the table name
    column_display_pk = False

    # ---- permissions: the class attributes Flask-Admin reads, decided per request by role
    @property
    def can_create(self):
        return has_role(*self.create_roles)

    @property
    def can_edit(self):
        return has_role(*self.edit_roles)

    @property
    def can_delete(self):
        return has_role(*self.delete_roles)

    @property
    def can_export(self):
        return has_role(*self.export_roles)

    # ---- list pages: the page's work, not the table's (DESIGN.md §11)
    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        """The page's ids first, then its rows: `… WHERE id IN (SELECT id … ORDER BY … LIMIT 20)`.
        The ids come from an index where one covers the filters (scope, 选择状态 as its phase, 产品名称
        and the id: ix_policy_org_phase_product), and only the page's 20 rows are read and joined
        to their member, product and unit — not every matching row before the sort.  Built on
        Flask-Admin's public `get_list(execute=False)`, which returns the sorted, paged query.

        The count comes after the page: a page with fewer rows than the page size is the last one,
        and its rows are the count (a search for one member runs no COUNT at all)."""
        g._list_count_later = True  # (per request: a view object serves every thread)
        try:
            count, paged = super().get_list(
                page, sort_column, sort_desc, search, filters, execute=False, page_size=page_size
            )
        finally:
            g._list_count_later = False
        size = page_size if page_size is not None else self.page_size
        pks = sa.inspect(self.model).primary_key
        if size and len(pks) == 1:
            ids = paged.with_entities(pks[0]).options(sa.orm.lazyload("*")).subquery()
            paged = paged.limit(None).offset(None).filter(pks[0].in_(sa.select(ids.c[0])))
        if not execute:
            return (count.run() if isinstance(count, _LaterCount) else count), paged
        rows = paged.all()
        if isinstance(count, _LaterCount):
            first = (page or 0) * size if size else 0
            if size and first >= 0 and len(rows) < size and (rows or first == 0):
                count = capped(first + len(rows))
            else:
                count = count.run()
        return count, rows

    # ---- the one scope
    def scope(self, query, model=None):
        return scoped(query, model or self.model, current_user())

    def get_query(self):
        """The list's query: the user's scope and the search panel (views/panel.py); the list,
        its export and every bulk action read this one query."""
        return self.narrow(self.scope(super().get_query()))

    def get_count_query(self):
        """The list's row count, capped: at a million rows an exact COUNT costs more than the
        whole page, so beyond LIST_COUNT_CAP the list says "10000+" (bulk actions count exactly)."""
        query = CappedCountQuery([sa.func.count("*")], self.session()).select_from(self.model)
        query = self.narrow(self.scope(query))
        query.later = g.get("_list_count_later", False)
        return query

    def get_one(self, id):
        """A row outside the user's scope does not exist for them: 404, never a redirect."""
        pk = _int_or_404(id)
        obj = self.get_query().filter(self.model.id == pk).one_or_none()
        if obj is None:
            abort(404)
        return obj

    def _create_ajax_loader(self, name, options):
        attr = getattr(self.model, name)
        remote = attr.property.mapper.class_
        return ScopedAjaxLoader(name, self.session, remote, **options)

    def _scope_form_choices(self, form):
        """Relation drop-downs list only rows in scope; a tampered choice fails validation."""
        for field in form:
            factory = getattr(field, "query_factory", None)
            if factory is None or getattr(factory, "_scoped", False):
                continue
            entity = factory().column_descriptions[0]["entity"]

            def scoped_factory(entity=entity):
                return self.scope(db.session.query(entity), entity).order_by(entity.id)

            scoped_factory._scoped = True
            field.query_factory = scoped_factory
            field.query = None
        return form

    def create_form(self, obj=None):
        return self.prepare_form(self._scope_form_choices(super().create_form(obj)))

    def edit_form(self, obj=None):
        return self.prepare_form(self._scope_form_choices(super().edit_form(obj)), obj)

    def prepare_form(self, form, obj=None):
        """The create (obj None) or edit form as this screen shows it: choices, labels, fields left out."""
        return form

    def handle_view_exception(self, exc):
        if isinstance(exc, sa.exc.IntegrityError):
            db.session.rollback()
            flash("保存失败：与已有记录重复（例如该身份证号已入会，或编号已被使用）。请核对后重试。", "error")
            return True
        return super().handle_view_exception(exc)

    # ---- Chinese export, with formula cells escaped
    def get_export_value(self, model, name):
        return escape_formula(super().get_export_value(model, name))

    @expose("/export/<export_type>/")
    def export(self, export_type):
        """A search panel value the list cannot use: the list with its message, not an export."""
        if self.panel_state().errors:
            return redirect(self.get_url(".index_view", **request.args))
        return super().export(export_type)

    def get_export_name(self, export_type="csv"):
        return f"{self.name}_{date.today():%Y%m%d}.{export_type}"

    def record_title(self, model) -> str:
        """What the edit page says it is changing, e.g. "会员编号 0000000091 张三"."""
        return str(model)

    # ---- editable only in some states
    EDITING_ROW_ACTIONS = frozenset({"EditRowAction", "EditPopupRowAction", "DeleteRowAction"})

    @expose("/")
    def index_view(self):
        """The list: Flask-Admin's routing, permissions and queries (get_list below), its page
        computed in Python once per request (views/list_page.py) and placed by a template that
        imports no macro library."""
        return self.render(self.list_template, **list_page.build(self))

    def edit_refusal(self, model) -> str | None:
        """Why `model` may not be edited or deleted now (None: it may): from its workflow's
        declaration of the editable states (models/workflow.py)."""
        return self.workflow.edit_refusal(model) if self.workflow is not None else None

    def _refuse_if_locked(self, model):
        reason = self.edit_refusal(model)
        if reason:
            flash(reason, "error")
            return redirect(self.get_url(".details_view", id=model.id, url=request.args.get("url")))
        return None

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        pk = request.args.get("id")
        if pk is not None:
            refused = self._refuse_if_locked(self.get_one(pk))
            if refused:
                return refused
        return super().edit_view()

    @expose("/delete/", methods=("POST",))
    def delete_view(self):
        pk = request.form.get("id")
        if pk is not None:
            model = self.get_one(pk)
            refused = self._refuse_if_locked(model)
            if refused:
                return refused
            reason = self.delete_refusal(model)
            if reason:
                flash(reason, "error")
                return redirect(self.get_url(".edit_view", id=model.id, url=request.args.get("url")))
        return super().delete_view()

    def delete_refusal(self, model) -> str | None:
        """Why this record may not be deleted: what still names it, found through every foreign key
        to its table that the models declare (one count each, a handful per table).  PostgreSQL
        would refuse the DELETE (and the message would not say why); SQLite, which does not enforce
        foreign keys, would leave the other records pointing at nothing."""
        table = self.model.__table__
        owned = _deleted_along(self.model)
        found: dict[str, int] = {}
        for other in db.metadata.sorted_tables:
            for fk in other.foreign_keys:
                if fk.column.table is not table or fk.ondelete == "CASCADE" or other in owned:
                    continue
                n = db.session.scalar(sa.select(sa.func.count()).select_from(other).where(fk.parent == model.id))
                if n:
                    label = SELF_REFERENCE_LABELS.get(table.name) if other is table else None
                    label = label or ENTITY_LABELS.get(other.name) or REFERENCE_LABELS.get(other.name, "其他记录")
                    found[label] = found.get(label, 0) + n
        if not found:
            return None
        uses = "、".join(f"{label} {n} 条" for label, n in found.items())
        advice = "如不再使用，请在修改页面取消勾选【启用】后保存" if "active" in table.c else "请先处理这些记录"
        return f"“{self.record_title(model)}”仍被以下记录使用：{uses}，不能删除。{advice}"

    # ---- one audit writer for create, edit and delete
    def _audit_entity(self):
        return self.audit_entity or self.model.__tablename__

    def _snapshot(self, model) -> dict:
        return {
            col.key: _json_value(getattr(model, col.key, None))
            for col in self.model.__table__.columns
            if col.key not in SECRET_COLUMNS
        }

    def _changed_before(self, model) -> dict:
        """The old values of what the form (and on_model_change) changed: the audit row's 修改前."""
        return {
            attr.key: _json_value(attr.history.deleted[0])
            for attr in sa.inspect(model).attrs
            if attr.key not in SECRET_COLUMNS
            and attr.history.deleted
            and not hasattr(attr.history.deleted[0], "__table__")
        }

    def _on_model_change(self, form, model, is_created):
        """Flask-Admin calls this between filling the record from the form and its commit: the
        change is flushed here and its audit row written in the same transaction, so both are
        committed together or neither (tests/test_audit.py makes the audit write fail)."""
        super()._on_model_change(form, model, is_created)
        before = None if is_created else self._changed_before(model)
        self.session.flush()  # the new record's id; the database's own checks, before the audit row
        write_audit(
            "create" if is_created else "update",
            self._audit_entity(),
            [model.id],
            current_user().id,
            before=before,
            after=self._snapshot(model),
        )

    def on_model_delete(self, model):
        """Before Flask-Admin deletes and commits: the audit row goes in the same transaction."""
        write_audit("delete", self._audit_entity(), [model.id], current_user().id, before=self._snapshot(model))


class ScopedBaseView(RoleGuard, BaseView):
    """A custom (non-model) screen with the same role guard."""


def money_formatter(attr):
    return lambda view, context, model, name: format_money(getattr(model, attr))


def record_link(text_of):
    """A list cell that leads into its record (manual: 点击查询结果中的会员编号进入修改、删除界面): the
    edit page while this user may still change the record, else its details; back to the same list."""

    def formatter(view, context, model, name):
        if context is None:  # the CSV export: the text alone
            return text_of(model)
        endpoint = ".edit_view" if view.can_edit and not view.edit_refusal(model) else ".details_view"
        url = row_url(view, endpoint, model.id, url=context.get("return_url"))
        return Markup('<a href="%s">%s</a>') % (url, text_of(model))  # (% escapes as .format does, faster)

    return formatter


def link(url, text) -> Markup:
    return Markup('<a href="%s">%s</a>') % (url, text)

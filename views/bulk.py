"""The one "act on the current query" mechanism of every list screen (DESIGN.md §8).

A button above the list opens `bulk/<name>/` with the list's own query string; the page shows
the count, the rows that will be skipped and why, 汇总金额 where it applies, and the action's
parameters.  Confirming re-counts: if the number of actionable rows changed, nothing is done
and the page asks again; otherwise the action runs in one transaction.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import date

import sqlalchemy as sa
from flask import Response, abort, flash, redirect, request, send_file, stream_with_context, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField

from actions import summarize
from actions.workflow import workflow_actions
from batch.result import write_failures
from models import db
from models.storage import failures_path

from . import remedies as remedy_views
from .access import current_user
from .downloads import background_action, background_export

# In a view's `bulk_actions`: where the buttons of its workflow's declared transitions go
# (models/workflow.py), read at each request, so a new declaration is a new button.
WORKFLOW = object()


class ConfirmForm(FlaskForm):
    expected = HiddenField()
    phrase = StringField("请输入确认文字")


CONFLICT = "部分记录刚刚被其他操作修改（例如同一身份证号已被使用），本次没有做任何操作。请刷新后核对，再重新确认。"
ATTEMPTS = 3


def run_with_retries(action, ids, user, expected, params):
    """Run the action in one transaction.  When the database's unique keys refuse its write
    (another writer got there first: the same members enrolled at the same moment), nothing of
    it stays and it runs again, now checking against what the other one wrote, so those rows are
    listed as failed with their reasons; None when it still cannot be done."""
    for _ in range(ATTEMPTS):
        try:
            result = action.run(ids, user, expected=expected, **params)
            db.session.commit()
            return result
        except sa.exc.IntegrityError:
            db.session.rollback()
        except Exception:
            db.session.rollback()
            raise
    return None


TICK_MAX = 500  # ids a ticked selection may carry in the address


class BulkActionsMixin:
    bulk_actions: list = []
    workflow = None  # the model's Workflow (models/workflow.py), if its rows have states
    # the list offers a tick box per row; ticked rows (`?ids=1,2,3`) narrow the current query
    # of its buttons — never widen it: a ticked id outside the query is simply not there
    tickable = False

    def all_bulk_actions(self) -> list:
        out = []
        for a in self.bulk_actions:
            if a is WORKFLOW:
                out += workflow_actions(self.workflow) if self.workflow is not None else []
            else:
                out.append(a)
        return out

    def visible_bulk_actions(self):
        user = current_user()
        return [a for a in self.all_bulk_actions() if user is not None and user.role in a.roles]

    def todo_conditions(self) -> tuple:
        """What else a row must meet to be a to-do on this screen (besides its state and scope)."""
        return ()

    def state_url(self, state) -> str:
        """The list filtered by one state: the search panel's `status` (选择状态)."""
        return url_for(f"{self.endpoint}.index_view", status=state.value)

    def current_query(self):
        """The list screen's query: its search panel, within the user's scope (views/base.py
        `get_query`) — the very query the list shows; on one record's page (`rid`), that record."""
        query = self.get_query()
        rid = self.single_record_id()
        if rid is not None:  # one record's page: its buttons act on it alone (narrows, never widens)
            query = query.filter(self.model.id == rid)
        ticked = self.ticked_ids()
        if ticked is not None:
            query = query.filter(self.model.id.in_(ticked))
        return query

    def ticked_ids(self) -> list[int] | None:
        """The rows ticked on the list (`ids=1,2,3`), or None when nothing was ticked.  Anything
        but a short list of numbers is a tampered address: 404."""
        raw = request.args.get("ids") if self.tickable else None
        if not raw:
            return None
        parts = raw.split(",")
        if len(parts) > TICK_MAX or not all(p.isdigit() and len(p) <= 12 for p in parts):
            abort(404)
        return sorted({int(p) for p in parts})

    def single_record_id(self) -> int | None:
        """`rid`: the record whose detail page's button opened the action."""
        rid = request.args.get("rid")
        if rid is None:
            return None
        try:
            return int(rid)
        except ValueError:
            abort(404)

    def current_ids(self):
        return self.current_query().with_entities(self.model.id).statement

    def active_filter_text(self) -> list[str]:
        """The search panel's conditions in Chinese, for the confirmation page."""
        out = self.panel_state().describe()
        if self.single_record_id() is not None:
            out = [*out, f"仅此一条（编号 {self.single_record_id()}）"]
        ticked = self.ticked_ids()
        if ticked is not None:
            out = [*out, f"仅勾选的 {len(ticked)} 条"]
        return out

    def list_url(self) -> str:
        rid = self.single_record_id()
        if rid is not None:  # back to the record's own page
            return self.get_url(".details_view", id=rid)
        qs = request.query_string.decode()
        return self.get_url(".index_view") + (f"?{qs}" if qs else "")

    @expose("/bulk/<action_name>/", methods=("GET", "POST"))
    def bulk_view(self, action_name):
        action = next((a for a in self.visible_bulk_actions() if a.name == action_name), None)
        if action is None:
            abort(404)
        if self.panel_state().errors:  # the list says what is wrong with its conditions
            return redirect(self.list_url())
        user = current_user()
        ids = self.current_ids()
        params_form = action.form(prefix="p") if action.form else None
        if params_form is not None and hasattr(params_form, "prepare"):
            params_form.prepare()
        if params_form is not None and action.params_scope is not None:
            params_form.prepare_for(action.params_scope(ids))
        confirm = ConfirmForm()
        summary = summarize(self.model, ids, action)
        lines, refusal = action.precheck(ids, user) if action.precheck else ([], None)
        warning, result = None, None
        if request.method == "POST" and action.run is not None and confirm.validate_on_submit():
            expected = int(confirm.expected.data or -1)
            if refusal:
                warning = refusal
            elif action.confirm_phrase and (confirm.phrase.data or "").strip() != action.confirm_phrase:
                warning = (
                    f"确认文字不正确：请输入“{action.confirm_phrase}”四个字后再点【{action.submit_label}】。"
                    "本次没有做任何操作。"
                )
            elif params_form is not None and not params_form.validate():
                warning = f"请按提示填写后再点【{action.submit_label}】。本次没有做任何操作。"
            elif expected != summary.actionable:
                warning = (
                    f"数据已变化：确认时为 {expected} 条，现在为 {summary.actionable} 条。"
                    "本次没有做任何操作，请核对后重新确认。"
                )
            else:
                params = {k: v for k, v in (params_form.data.items() if params_form else []) if k != "csrf_token"}
                if action.kind == "download":
                    from actions import Download

                    queued = background_action(self, action, ids, user, expected, params)
                    if queued is not None:  # a big file: a worker makes it, the clerk waits on its page
                        return queued
                    out = action.run(ids, user, expected=expected, **params)
                    if isinstance(out, Download):
                        return download_response(out)
                    warning = out.message  # refused (e.g. too many rows to print): say why, change nothing
                else:
                    result = run_with_retries(action, ids, user, expected, params)
                    if result is None:
                        warning = CONFLICT
                        summary = summarize(self.model, ids, action)
            if result is not None:
                flash(result.message, "success" if result.done else "warning")
                if result.link and result.done:
                    endpoint, kwargs = result.link
                    return redirect(url_for(endpoint, **kwargs))
                if result.failures:
                    token = f"{user.id}_{uuid.uuid4().hex}"
                    write_failures(failures_path(token), result.failures)
                    # the same list for the remedy buttons (【生成变更申请】 …) of the result page
                    failures_path(token).with_suffix(".json").write_text(
                        json.dumps(result.failures, ensure_ascii=False, default=str), encoding="utf-8"
                    )
                    return self.render(
                        "admin/bulk_result.html",
                        action=action,
                        result=result,
                        list_url=self.list_url(),
                        failures_url=self.get_url(".bulk_failures_view", token=token),
                        token=token,
                        remedies=remedy_views.buttons(Counter(f.get("code") or "" for f in result.failures)),
                    )
                return redirect(self.list_url())
        return self.render(
            "admin/bulk_confirm.html",
            action=action,
            summary=summary,
            params_form=params_form,
            confirm=confirm,
            warning=warning,
            lines=lines,
            refusal=refusal,
            filters=self.active_filter_text(),
            list_url=self.list_url(),
        )

    # ---- 导出: the current query streamed as .xlsx (or CSV), never loaded whole -----------------
    def export_rows(self):
        """The current query as an `Export` (batch/export.py): the list's export columns in one
        SELECT over the list's query — scope and search panel included — rows as tuples, never
        an ORM object per row (actions/exports.py `list_export`)."""
        from actions.exports import list_export

        return list_export(self.model, self.current_ids(), list(self._export_columns))

    @expose("/export/<export_type>/")
    def export(self, export_type):
        from batch.export import XLSX

        if not self.can_export or export_type not in ("xlsx", "csv"):
            abort(403 if export_type in ("xlsx", "csv") else 404)
        queued = background_export(self, export_type)
        if queued is not None:  # a big export: a worker makes it, the clerk waits on its page
            return queued
        export = self.export_rows()
        from actions import Download

        stem = f"{self.name}_{date.today():%Y%m%d}"
        if export_type == "csv":
            return download_response(Download(f"{stem}.csv", "text/csv", export.csv()))
        return download_response(Download(f"{stem}.xlsx", XLSX, export.xlsx(str(self.name)[:31])))

    @expose("/bulk-failures/<token>/remedy/<kind>/", methods=("POST",))
    def bulk_remedy_view(self, token, kind):
        """A remedy for the 批量投保失败人员名单 of an action: only for the user who ran it."""
        user = current_user()
        path = failures_path(token).with_suffix(".json")
        if not token.startswith(f"{user.id}_") or not path.exists():
            abort(404)
        from actions.remedies import failed_from_list

        rows = failed_from_list(json.loads(path.read_text(encoding="utf-8")))
        return remedy_views.apply(kind, rows)

    @expose("/bulk-failures/<token>/")
    def bulk_failures_view(self, token):
        """【批量投保失败人员名单】: only for the user who ran the action."""
        user = current_user()
        path = failures_path(token)
        if not token.startswith(f"{user.id}_") or not path.exists():
            abort(404)
        return send_file(
            path,
            as_attachment=True,
            download_name="批量投保失败人员名单.xlsx",
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )


def download_response(download) -> Response:
    """A download-kind action's file: bytes at once, or chunks streamed as they are made."""
    from urllib.parse import quote

    body = download.body
    if not isinstance(body, (bytes, bytearray)):
        body = stream_with_context(body)
    response = Response(body, mimetype=download.mimetype)
    ascii_name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in download.filename)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(download.filename)}"
    )
    response.headers["Cache-Control"] = "no-store"
    return response

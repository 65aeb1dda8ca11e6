"""Big files made in the background: a list's 导出 and the download-kind bulk actions (打印生效清单,
即将到期订单 【批量导出打印】, 保单提前终止申请表) over EXPORT_BACKGROUND_ROWS rows or
PDF_BACKGROUND_PAGES pages, when REDIS_URL is set (batch/jobs.py `submit_file`).

The request stores what the clerk confirmed — the screen, its search panel's values as read (a
default such as 即将到期订单's next month is pinned), ticked rows, the action and its parameters — and
the user. The worker opens the same screen as that user (`_as_user`: a request of its own with that
address, `g.user` that user) and asks it for `current_ids()`: the one org-scope filter and the one
search panel, as in the request, then runs the very action (or export) the request would have run.
The clerk waits on a small page with a progress bar; only that user may see it and download the
file (another user, of any unit: 404). Without Redis nothing of this is used: the file is made in the
request as before.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import date
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import abort, current_app, g, jsonify, redirect, request, send_file, url_for
from flask_admin import BaseView, expose
from flask_wtf import FlaskForm

from batch import jobs
from batch.errors import BatchFileError
from models import User, db

from .access import current_user, screens

MAKER = "views.downloads.job"
MSG_NO_LONGER = "您已没有权限做这个操作（角色或单位已变更），没有生成文件。"
MSG_CONDITIONS = "查询条件已不能使用，没有生成文件。请回到列表重新查询后再下载。"


# ---------------------------------------------------------------- in the request
def stable_args(view) -> list[tuple[str, str]]:
    """The list's arguments as this request read them: the address's, with the search panel's
    values as understood (a default the screen filled in, such as a month, written out)."""
    values = view.panel_state().values
    kept = [(k, v) for k, v in request.args.items(multi=True) if k not in values]
    return kept + list(values.items())


def _spec(view, **what) -> dict:
    return {
        "view": view.endpoint,
        "path": request.path,
        "base_url": request.host_url,  # links the document prints (QR codes) as in the request
        "args": stable_args(view),
        **what,
    }


def background_action(view, action, ids, user, expected: int, params: dict):
    """A download-kind bulk action: queued when it is big (see the module); else None."""
    if jobs.redis_connection() is None:
        return None  # no background files: nothing measured, made in the request as always
    unit, size = action.size(ids, user, expected, **params) if action.size else ("rows", expected)
    spec = _spec(view, what="action", action=action.name, expected=expected, params=params)
    if json.loads(json.dumps(params, default=str)) != params:
        return None  # parameters that do not keep as text (none so far): made in the request
    token = jobs.submit_file(MAKER, spec, user, size, unit, back=view.list_url())
    return redirect(url_for("downloads.page_view", token=token)) if token else None


def background_export(view, export_type: str):
    """A list's 导出 of more than EXPORT_BACKGROUND_ROWS rows: queued (see the module); else None."""
    if jobs.redis_connection() is None:
        return None
    cap = jobs.background_threshold("rows")
    inner = view.current_query().with_entities(sa.literal(1)).limit(cap + 1).subquery()
    size = db.session.scalar(sa.select(sa.func.count()).select_from(inner))
    spec = _spec(view, what="export", export_type=export_type)
    token = jobs.submit_file(MAKER, spec, current_user(), size, back=view.list_url())
    return redirect(url_for("downloads.page_view", token=token)) if token else None


# ---------------------------------------------------------------- in the worker
def job(token: str, run: str) -> str:
    """The RQ job (by name, MAKER)."""
    return jobs.run_file(token, run, make)


def _screen(endpoint: str):
    for view in screens():
        if view.endpoint == endpoint:
            return view
    raise BatchFileError(MSG_NO_LONGER)


@contextmanager
def _as_user(spec: dict, user_id: int):
    """A request of the worker's own, at the screen's address, with the user logged in."""
    app = current_app._get_current_object()
    with (
        app.app_context(),
        app.test_request_context(
            spec["path"], base_url=spec["base_url"], query_string=urlencode([tuple(a) for a in spec["args"]])
        ),
    ):
        user = db.session.get(User, user_id)
        if user is None or not user.active:
            raise BatchFileError(MSG_NO_LONGER)
        g.user = user
        yield user


@contextmanager
def make(spec: dict, user_id: int, progress):
    """What the request would have answered, made as that user (for batch/jobs.py `run_file`)."""
    from actions import Download

    with _as_user(spec, user_id) as user:
        view = _screen(spec["view"])
        if not view.is_accessible():
            raise BatchFileError(MSG_NO_LONGER)
        if view.panel_state().errors:
            raise BatchFileError(MSG_CONDITIONS)
        if spec["what"] == "export":
            if not view.can_export:
                raise BatchFileError(MSG_NO_LONGER)
            # the request only counted up to the threshold: the bar needs the whole count
            progress(0, db.session.scalar(sa.select(sa.func.count()).select_from(view.current_query().subquery())))
            export = jobs.counted(view.export_rows(), progress)
            stem = f"{view.name}_{date.today():%Y%m%d}"
            if spec["export_type"] == "csv":
                yield Download(f"{stem}.csv", "text/csv", export.csv())
            else:
                from batch.export import XLSX

                yield Download(f"{stem}.xlsx", XLSX, export.xlsx(str(view.name)[:31]))
            return
        action = next((a for a in view.visible_bulk_actions() if a.name == spec["action"]), None)
        if action is None or action.kind != "download":
            raise BatchFileError(MSG_NO_LONGER)
        out = action.run(view.current_ids(), user, expected=spec["expected"], **spec["params"])
        if not isinstance(out, Download):
            raise BatchFileError(out.message)  # refused (e.g. too many rows to print)
        if out.export is not None:  # an .xlsx: its rows counted as they are written
            out.body = jobs.counted(out.export, progress).xlsx(out.sheet)
        yield out


# ---------------------------------------------------------------- the clerk's page
class AgainForm(FlaskForm):
    pass


class DownloadView(BaseView):
    """/admin/downloads/<token>/: the waiting page, its progress, the file, 【重新生成】 — for the
    user who asked only; anyone else (or no such file) gets 404."""

    def is_accessible(self):
        return current_user() is not None

    def is_visible(self):
        return False

    def inaccessible_callback(self, name, **kwargs):
        return redirect(url_for("auth.login", next=request.full_path))

    def _own(self, token: str) -> dict:
        if jobs.file_owner(token) != current_user().id:
            abort(404)
        return jobs.file_state(token)

    @expose("/")
    def index(self):
        abort(404)  # no list of files: each clerk is sent to their own file's page

    @expose("/<token>/")
    def page_view(self, token):
        state = self._own(token)
        return self.render("admin/download_job.html", job=state, form=AgainForm())

    @expose("/<token>/progress/")
    def progress_view(self, token):
        return jsonify(self._own(token))

    @expose("/<token>/file/")
    def file_view(self, token):
        state = self._own(token)
        if state["phase"] != "done":
            return redirect(url_for(".page_view", token=token))
        response = send_file(
            jobs.file_path(token), mimetype=state["mimetype"], as_attachment=True, download_name=state["filename"]
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @expose("/<token>/again/", methods=("POST",))
    def again_view(self, token):
        self._own(token)
        if AgainForm().validate_on_submit():
            jobs.file_again(token)
        return redirect(url_for(".page_view", token=token))

"""批量业务管理 → 批量业务: upload → 【业务校验】 → 【业务办理】 → result download, with the
templates from 首页 and the list of past batches of the user's scope."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from flask import abort, flash, jsonify, redirect, request, send_file
from flask_admin import expose
from markupsafe import Markup

from batch import (
    KINDS,
    BatchFileError,
    create_batch,
    earlier_upload,
    get_kind,
    write_failed,
)
from batch.jobs import state as job_state
from batch.jobs import submit
from batch.pipeline import failed_rows
from batch.result import template_file
from models import BatchKind, BatchStatus, ImportBatch, ImportRow, Org, OrgLevel, RowStatus, db, products, scoped
from models.storage import result_path

from . import access, panel
from . import remedies as remedy_views
from .access import current_user
from .base import ScopedModelView

TABS = [("members", "入会"), ("policies", "投保")]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _file_link(view, context, model, name):
    return Markup('<a href="{}">{}</a>').format(view.get_url(".run_view", batch_id=model.id), model.file_name)


def _status(view, context, model, name):
    """校验中/办理中 as the worker sees it: 已中断 when its worker is gone (batch/jobs.py)."""
    return job_state(model)["label"]


class BatchView(ScopedModelView):
    roles = frozenset(access.UNIT | access.AGENCY | access.MANAGERS)
    upload_roles = frozenset(access.UNIT | access.AGENCY)
    export_roles = access.BUSINESS
    list_template = "admin/batch_list.html"
    column_list = [
        "created_at",
        "kind",
        "file_name",
        "user",
        "org",
        "status",
        "total_rows",
        "ok_rows",
        "error_rows",
        "created_rows",
    ]
    column_labels = {
        "created_at": "上传时间",
        "kind": "业务类型",
        "file_name": "文件名",
        "user": "上传人",
        "org": "单位",
        "status": "状态",
        "total_rows": "总行数",
        "ok_rows": "校验通过",
        "error_rows": "失败",
        "created_rows": "已办理",
        "sha256": "文件指纹",
        "size": "文件大小（字节）",
        "message": "说明",
        "checked_at": "校验时间",
        "processed_at": "办理时间",
        "params": "参数",
        "result_path": "结果文件",
    }
    column_formatters = {"file_name": _file_link, "status": _status}
    search_panel = [
        panel.enum_select("kind", "业务类型", ImportBatch.kind, BatchKind),
        panel.enum_select("status", "状态", ImportBatch.status, BatchStatus),
        panel.unit_text("unit", "单位编号", ImportBatch.org_id, roles=access.BUSINESS - access.UNIT),
    ]
    column_default_sort = ("id", True)

    def _may_upload(self) -> bool:
        user = current_user()
        return user is not None and user.role in self.upload_roles

    def _units(self):
        """Units an agency user may upload for (their own unit, for a clerk)."""
        user = current_user()
        return scoped(db.session.query(Org), Org, user).filter(Org.level == OrgLevel.UNIT).order_by(Org.code).all()

    @expose("/upload/<kind>/", methods=("GET", "POST"))
    def upload_view(self, kind):
        if kind not in dict(TABS):
            abort(404)
        if not self._may_upload():
            abort(403)
        user = current_user()
        error = None
        available = kind in KINDS
        if request.method == "POST" and available:
            upload = request.files.get("file")
            if upload is None or not upload.filename:
                error = "请先点【浏览】选择要上传的文件"
            else:
                params = {}
                if kind == "members" and user.org.level != OrgLevel.UNIT:
                    params["org_code"] = request.form.get("org_code", "")
                if kind == "policies":
                    params["product"] = request.form.get("product", "")
                    params["effective"] = request.form.get("effective", "")
                    if not request.form.get("use_template_amount"):
                        params["amount"] = request.form.get("amount", "")
                    if not params["product"]:
                        error = "请选择产品名称"
                    elif not params["effective"]:
                        error = "请填写预期生效时间"
                    elif "amount" in params and not params["amount"]:
                        error = "请输入投保金额，或勾选“以模板金额为准”"
                if error is None:
                    try:
                        batch = create_batch(kind, upload.read(), upload.filename, user, params)
                    except BatchFileError as exc:
                        error = str(exc)
                    else:
                        return redirect(self.get_url(".run_view", batch_id=batch.id))
        return self.render(
            "admin/batch_upload.html",
            tabs=TABS,
            kind=kind,
            available=available,
            error=error,
            units=self._units() if kind == "members" and user.org.level != OrgLevel.UNIT else None,
            products=products(),
            form=request.form,
        )

    def _batch(self, batch_id):
        return self.get_one(batch_id)

    @expose("/run/<int:batch_id>/", methods=("GET",))
    def run_view(self, batch_id):
        return self._run_page(self._batch(batch_id))

    def _run_page(self, batch, outcome=None, stage=None):
        """The batch's page: its state and buttons, and what a 业务校验/业务办理 just found."""
        return self.render(
            "admin/batch_run.html",
            batch=batch,
            outcome=outcome,
            stage=stage,
            earlier=earlier_upload(batch),
            may_run=self._may_run(batch),
            remedies=self._remedies(batch, outcome),
            job=job_state(batch),
        )

    @expose("/run/<int:batch_id>/progress/")
    def progress_view(self, batch_id):
        """How far a background run got (the page polls this while 校验中/办理中)."""
        return jsonify(job_state(self._batch(batch_id)))

    def _remedies(self, batch, outcome):
        """The remedy buttons for the failed rows (as just checked, or as recorded by the last 业务校验
        or 业务办理: a file whose every row failed is never processed, and its page opened again
        still offers them)."""
        if outcome is not None:
            codes = Counter(str(r.code) for r in outcome.failed)
        elif batch.status in (BatchStatus.CHECKED, BatchStatus.PROCESSED):
            codes = Counter(
                dict(
                    db.session.execute(
                        sa.select(ImportRow.code, sa.func.count())
                        .where(ImportRow.batch_id == batch.id, ImportRow.status == RowStatus.ERROR)
                        .group_by(ImportRow.code)
                    ).all()
                )
            )
        else:
            codes = Counter()
        return remedy_views.buttons(codes)

    @expose("/run/<int:batch_id>/remedy/<kind>/", methods=("GET", "POST"))
    def remedy_view(self, batch_id, kind):
        """【生成调动申请】【生成变更申请】【生成超龄例外申请】 (POST) and 【生成入会文件】 (a download)."""
        batch = self._batch(batch_id)
        try:
            rows = failed_rows(batch, current_user())
        except BatchFileError as exc:
            flash(str(exc), "error")
            return redirect(self.get_url(".run_view", batch_id=batch.id))
        if kind == "admission":
            return remedy_views.admission_file(rows)
        if request.method != "POST":
            abort(405)
        return remedy_views.apply(kind, rows)

    def _may_run(self, batch) -> bool:
        return self._may_upload() and batch.user_id == current_user().id

    @expose("/run/<int:batch_id>/<stage>/", methods=("POST",))
    def stage_view(self, batch_id, stage):
        batch = self._batch(batch_id)
        if stage not in ("check", "process"):
            abort(404)
        if not self._may_run(batch):
            abort(403)
        user = current_user()
        outcome, error = None, None
        try:
            outcome = submit(batch, stage, user)  # None: a worker does it (big file, Redis configured)
        except BatchFileError as exc:
            error = str(exc)
        if error:
            flash(error, "error")
        elif outcome is None:
            return redirect(self.get_url(".run_view", batch_id=batch.id))
        return self._run_page(batch, outcome, stage)

    @expose("/run/<int:batch_id>/result/")
    def result_view(self, batch_id):
        batch = self._batch(batch_id)
        path = result_path(batch)
        if batch.status != BatchStatus.PROCESSED or not path.exists():
            flash("该批次尚未办理，还没有处理结果文件。请先【业务校验】再【业务办理】。", "error")
            return redirect(self.get_url(".run_view", batch_id=batch.id))
        name = f"批量{batch.kind.label}处理结果_{batch.id}.xlsx"
        return send_file(path, mimetype=XLSX, as_attachment=True, download_name=name)

    @expose("/run/<int:batch_id>/failed/")
    def failed_view(self, batch_id):
        """Made from what the batch's own 业务校验/业务办理 stored: opening it (anyone in scope) checks
        nothing again and changes nothing."""
        batch = self._batch(batch_id)
        try:
            data = write_failed(batch)
        except BatchFileError as exc:
            flash(str(exc), "error")
            return redirect(self.get_url(".run_view", batch_id=batch.id))
        stem = Path(batch.file_name).stem
        return send_file(data, mimetype=XLSX, as_attachment=True, download_name=f"{stem}_失败行.xlsx")

    @expose("/template/<kind>/")
    def template_view(self, kind):
        try:
            k = get_kind(kind)
        except BatchFileError:
            abort(404)
        return send_file(
            template_file(k), mimetype=XLSX, as_attachment=True, download_name=f"{k.template_title}模板.xlsx"
        )

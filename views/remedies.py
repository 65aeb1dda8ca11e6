"""The remedy buttons of a failure list (actions/remedies.py): on a batch's result screen and on the
result page of 新会员投保 / 批量续转 (【批量投保失败人员名单】).  Only a unit's clerk gets them: the
applications are her unit's."""

from __future__ import annotations

from collections import Counter

from flask import abort, current_app, flash, redirect, send_file, url_for
from flask_wtf import FlaskForm

from actions import remedies
from batch.members import MEMBERS
from batch.result import template_file
from models import db

from . import access
from .access import current_user

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SUBMIT_WORDS = {"transfer": "当前查询结果提交", "change": "上报", "over_age": "当前查询结果提交"}
WHAT = {"transfer": "会员调动申请", "change": "会员变更申请", "over_age": "超龄例外申请"}


def buttons(codes: Counter) -> list[tuple[str, str, int]]:
    """(kind, button words, rows) for the current user: none unless she is a unit's clerk."""
    if not access.has_role(*access.UNIT):
        return []
    return remedies.remedies_for(codes)


def apply(kind: str, rows) -> object:
    """Run a remedy on failed rows (POST, CSRF-checked) and open the list of the new drafts."""
    if kind not in remedies.REMEDIES or kind == "admission" or not access.has_role(*access.UNIT):
        abort(404)
    if not FlaskForm().validate_on_submit():  # the CSRF token of the button's form
        abort(400)
    result = remedies.run(kind, rows, current_user(), current_app.config["TRANSFER_LOOKUPS_PER_HOUR"])
    db.session.commit()
    flash(result.message(WHAT[kind], SUBMIT_WORDS[kind]), "success" if result.created else "warning")
    endpoint = remedies.REMEDIES[kind][2]
    return redirect(url_for(f"{endpoint}.index_view", status="NEW"))


def admission_file(rows):
    """【生成入会文件】: the 批量入会模板 filled with the rows never admitted, to check and upload."""
    if not access.has_role(*access.UNIT):
        abort(404)
    filled = remedies.admission_rows(rows)
    return send_file(
        template_file(MEMBERS, rows=filled), mimetype=XLSX, as_attachment=True, download_name="批量入会模板_待核对.xlsx"
    )

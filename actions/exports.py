"""Exports of policy lists, and 即将到期订单's 【批量导出打印】 (manual 一(五)8).

The rows come from one plain SELECT read in batches (a server-side cursor on PostgreSQL) and go
straight into the streamed .xlsx writer (batch/export.py): 200,000 rows without holding them."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask_wtf import FlaskForm
from wtforms import RadioField

from batch.export import XLSX, stream_xlsx
from models import Member, Org, Policy, PolicyStatus, Product, db
from models.roles import EVERYONE

from .base import BulkAction, Download, Result
from .documents import PRINT_LIMIT, pdf_download, policy_list_pdf, policy_rows, too_many_to_print

# list column name -> (SQL expression, column width)
POLICY_COLUMNS = {
    "policy_no": (Policy.policy_no, 18),
    "member.member_no": (Member.member_no, 13),
    "member.name": (Member.name, 10),
    "member.id_number": (Member.id_number, 21),
    "member": (Member.name, 10),
    "product": (Product.name, 24),
    "org": (Org.name, 24),
    "shares": (Policy.shares, 6),
    "amount": (Policy.amount, 12),
    "expected_effective_date": (Policy.expected_effective_date, 12),
    "effective_date": (Policy.effective_date, 12),
    "expiry_date": (Policy.expiry_date, 12),
    "status": (Policy.status, 12),
    "return_reason": (Policy.return_reason, 30),
    "created_at": (Policy.created_at, 17),
    "updated_at": (Policy.updated_at, 17),
}
LABELS = {
    "policy_no": "保单号",
    "member.member_no": "会员编号",
    "member.name": "姓名",
    "member.id_number": "身份证号",
    "member": "会员",
    "product": "产品名称",
    "org": "单位",
    "shares": "份数",
    "amount": "投保金额",
    "expected_effective_date": "预期生效时间",
    "effective_date": "正式生效时间",
    "expiry_date": "到期日期",
    "status": "状态",
    "return_reason": "打回原因",
    "created_at": "录入时间",
    "updated_at": "修改时间",
}
EXPIRING_EXPORT = [
    "policy_no",
    "member.member_no",
    "member.name",
    "member.id_number",
    "product",
    "shares",
    "amount",
    "effective_date",
    "expiry_date",
    "org",
]


def stream_rows(stmt, batch: int = 2000):
    """Rows of `stmt` in batches: a server-side cursor on PostgreSQL, so memory stays flat."""
    result = db.session.execute(stmt.execution_options(stream_results=True, yield_per=batch))
    try:
        for part in result.partitions():
            yield from part
    finally:
        result.close()


def policy_export_rows(ids, names, order=(Policy.id,)):
    """(headers, widths, rows) of the listed columns for the policies of `ids`."""
    names = [n for n in names if n in POLICY_COLUMNS]
    cols = [POLICY_COLUMNS[n][0] for n in names]
    stmt = (
        sa.select(*cols)
        .select_from(Policy)
        .join(Member, Member.id == Policy.member_id)
        .join(Product, Product.id == Policy.product_id)
        .join(Org, Org.id == Policy.org_id)
        .where(Policy.id.in_(ids))
        .order_by(*order)
    )
    return [LABELS[n] for n in names], [POLICY_COLUMNS[n][1] for n in names], stream_rows(stmt)


def expiring_xlsx(ids) -> Download:
    headers, widths, rows = policy_export_rows(
        ids, EXPIRING_EXPORT, order=(Policy.expiry_date, Policy.org_id, Policy.id)
    )
    body = stream_xlsx(headers, rows, sheet_title="即将到期订单", widths=widths)
    return Download(f"即将到期订单_{date.today():%Y%m%d}.xlsx", XLSX, body)


class ExportForm(FlaskForm):
    format = RadioField(
        "导出格式",
        choices=[("xlsx", "Excel 表格（.xlsx）"), ("pdf", "打印清单（PDF，每个单位一页起）")],
        default="xlsx",
    )


def export_precheck(ids, user):
    n = db.session.scalar(sa.select(sa.func.count()).where(Policy.id.in_(ids)))
    lines = []
    if n > PRINT_LIMIT:
        lines.append(too_many_to_print(n).replace("后再打印", "后再打印 PDF；Excel 表格不受此限"))
    return lines, None


def export_expiring(ids, user, expected=None, format: str = "xlsx", title_month: str = ""):
    if format == "pdf":
        n = db.session.scalar(sa.select(sa.func.count()).where(Policy.id.in_(ids)))
        if n > PRINT_LIMIT:
            return Result(0, n, too_many_to_print(n))
        rows = policy_rows(ids, order=(Policy.expiry_date, Policy.id))
        pdf = policy_list_pdf("即将到期保单清单", "", rows, user)
        return pdf_download(f"即将到期订单_{date.today():%Y%m%d}.pdf", pdf)
    return expiring_xlsx(ids)


EXPORT_EXPIRING = BulkAction(
    name="export",
    label="批量导出打印",
    run=export_expiring,
    from_states=(PolicyStatus.EFFECTIVE,),
    roles=EVERYONE,
    form=ExportForm,
    with_amount=True,
    kind="download",
    precheck=export_precheck,
    submit_label="下载",
    note="把当前查询结果（所选月份到期的保单）导出为 Excel 表格保存，或下载 PDF 打印清单。",
)

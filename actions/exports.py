"""Exports of policy lists, and 即将到期订单's 【批量导出打印】 (manual 一(五)8).

The rows come from one plain SELECT read in batches (a server-side cursor on PostgreSQL) and go
straight into the streamed .xlsx writer (batch/export.py): 200,000 rows without holding them."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask_wtf import FlaskForm
from wtforms import RadioField

from batch.export import XLSX, Export, copy_lines, rows_from_copy, sql_value
from models import Member, Org, Policy, PolicyStatus, Product, db
from models.roles import EVERYONE

from .base import BulkAction, Download, Result
from .documents import PRINT_LIMIT, pdf_download, policy_list_pdf, policy_pages, policy_rows, too_many_to_print

# list column name -> (SQL expression, column width, cell kind for batch.export.row_writer)
POLICY_COLUMNS = {
    "policy_no": (Policy.policy_no, 18, "text"),
    "member.member_no": (Member.member_no, 13, "text"),
    "member.name": (Member.name, 10, "text"),
    "member.id_number": (Member.id_number, 21, "text"),
    "member": (Member.name, 10, "text"),
    "product": (Product.name, 24, "text"),
    "org": (Org.name, 24, "text"),
    "shares": (Policy.shares, 6, "int"),
    "amount": (Policy.amount, 12, "money"),
    "expected_effective_date": (Policy.expected_effective_date, 12, "date"),
    "effective_date": (Policy.effective_date, 12, "date"),
    "expiry_date": (Policy.expiry_date, 12, "date"),
    "status": (Policy.status, 12, "label"),
    "return_reason": (Policy.return_reason, 30, "text"),
    "created_at": (Policy.created_at, 17, None),
    "updated_at": (Policy.updated_at, 17, None),
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


# An export reads every row once: plan for all of them (not the first tenth, as for a cursor), sort
# in memory rather than on disk, skip JIT compiling (~0.6 s of a 3 s budget), and no Memoize node
# (PostgreSQL 14+) in front of the member look-up: an export meets each member about once, so the
# cache only misses (196,062 misses in 200,000 at 3M policies) and, costed as if it hit, keeps the
# plan serial; without it the rows of ix_policy_effective_expiry are joined by parallel workers
# (2.3 s instead of 6.1 s on a loaded machine, about the same CPU).  This transaction only.
EXPORT_SETTINGS = ("SET LOCAL cursor_tuple_fraction = 1.0", "SET LOCAL work_mem = '64MB'", "SET LOCAL jit = off")
EXPORT_SETTINGS_14 = ("SET LOCAL enable_memoize = off",)


def _export_settings() -> None:
    bind = db.session.get_bind()
    if bind.dialect.name == "postgresql":
        settings = EXPORT_SETTINGS
        if (bind.dialect.server_version_info or (0,)) >= (14,):
            settings += EXPORT_SETTINGS_14
        for setting in settings:
            db.session.execute(sa.text(setting))


def stream_rows(stmt, batch: int = 5000):
    """Rows of `stmt` in batches: a server-side cursor on PostgreSQL, so memory stays flat."""
    _export_settings()
    result = db.session.execute(stmt.execution_options(stream_results=True, yield_per=batch))
    try:
        for part in result.partitions():
            yield from part
    finally:
        result.close()


def _from_query(ids, cols):
    """SELECT `cols` over the rows of `ids`.  `ids` is the screen's `SELECT policy.id FROM policy
    WHERE …` (scope and search panel): its own WHERE is reused with the columns joined on, rather
    than `policy.id IN (ids)`, which makes PostgreSQL match 3M policies against the id list."""
    if isinstance(ids, sa.Select) and [f for f in ids.get_final_froms()] == [Policy.__table__]:
        return ids.with_only_columns(*cols, maintain_column_froms=False).select_from(Policy)
    return sa.select(*cols).select_from(Policy).where(Policy.id.in_(ids))


def policy_export(ids, names, order=(Policy.id,)) -> Export:
    """The listed columns of the policies of `ids`.  On PostgreSQL with every column of a known
    kind, the rows come as COPY text lines and become the sheet's rows a block at a time
    (batch/export.py `rows_from_copy`): no Python object per row or value."""
    names = [n for n in names if n in POLICY_COLUMNS]
    cols = [POLICY_COLUMNS[n][0] for n in names]
    kinds = [POLICY_COLUMNS[n][2] for n in names]
    if None in kinds:
        kinds = None

    def select(columns):
        stmt = (
            _from_query(ids, columns)
            .join(Member, Member.id == Policy.member_id)
            .join(Product, Product.id == Policy.product_id)
            .join(Org, Org.id == Policy.org_id)
        )
        return stmt if stmt._order_by_clauses else stmt.order_by(*order)

    def xml_rows():
        _export_settings()
        values = [sql_value(c, k, getattr(c.type, "enum_class", None)) for c, k in zip(cols, kinds)]
        yield from rows_from_copy(copy_lines(db.session, select(values)), kinds)

    postgres = db.session.get_bind().dialect.name == "postgresql"
    return Export(
        headers=[LABELS[n] for n in names],
        widths=[POLICY_COLUMNS[n][1] for n in names],
        rows=lambda: stream_rows(select(cols)),
        kinds=kinds,
        xml_rows=xml_rows if postgres and kinds else None,
    )


# ---- every other list's 导出: one SELECT of the listed columns, rows as tuples --------------------
def _label_sql(cls, a):
    """What a related row is called in a list (its `__str__`), as SQL over its alias `a`."""
    from models import ImportBatch, Receipt, User

    if cls is Org:
        return a.code + " " + a.name
    if cls is User:
        return sa.func.coalesce(sa.func.nullif(a.display_name, ""), a.username)
    if cls is Member:
        return sa.func.coalesce(a.member_no + " ", "") + a.name
    if cls is Product:
        return a.name
    if cls is Receipt:
        return a.receipt_no
    if cls is Policy:
        return sa.func.coalesce(a.policy_no, "投保记录 " + sa.cast(a.id, sa.String))
    if cls is ImportBatch:
        return a.file_name
    raise ValueError(f"no export label for {cls.__name__}")


def _kind(col_type) -> str | None:
    """The cell kind of a column type (batch/export.py row_writer), None for the general way."""
    if getattr(col_type, "enum_class", None) is not None:
        return "label"
    if isinstance(col_type, sa.DateTime | sa.Boolean | sa.JSON | sa.Float):
        return None
    if isinstance(col_type, sa.Numeric):
        return "money"
    if isinstance(col_type, sa.Integer):
        return "int"
    if isinstance(col_type, sa.Date):
        return "date"
    if isinstance(col_type, sa.String):
        return "text"
    return None


def _over(model, ids, cols):
    """SELECT `cols` FROM `model` over the rows of `ids` (a list's `SELECT model.id … WHERE …`):
    its own WHERE reused where it reads the model's table alone, else `model.id IN (ids)`."""
    if isinstance(ids, sa.Select) and list(ids.get_final_froms()) == [model.__table__]:
        return ids.with_only_columns(*cols, maintain_column_froms=False).select_from(model)
    return sa.select(*cols).select_from(model).where(model.id.in_(ids))


def list_export(model, ids, columns, order=None) -> Export:
    """A list's 导出 (views/bulk.py `export_rows`): its export columns (`[(name, label)]`: a column,
    a many-to-one relation shown by its name, or `relation.column`) of the rows of `ids` — the
    list's query, scope and search panel included — in one SELECT with the relations joined.  Rows
    come as tuples in batches (a server-side cursor), or on PostgreSQL, when every column has a
    kind, as COPY text lines turned into the sheet's rows a block at a time.  A column that is
    neither is a programming error (ValueError, found by tests/test_exports.py over every list)."""
    from sqlalchemy.orm import aliased

    mapper = sa.inspect(model)
    aliases: dict[str, object] = {}
    joins = []
    cols, kinds = [], []
    for name, _label in columns:
        *path, last = str(name).split(".")
        owner, owner_mapper, key = model, mapper, ""
        for part in path:  # relation.column: the related row joined once per relation path
            rel = owner_mapper.relationships.get(part)
            if rel is None or rel.uselist:
                raise ValueError(f"cannot export {name!r} of {model.__name__}")
            key = f"{key}.{part}"
            if key not in aliases:
                aliases[key] = aliased(rel.mapper.class_)
                joins.append(getattr(owner, part).of_type(aliases[key]))
            owner, owner_mapper = aliases[key], rel.mapper
        if last in owner_mapper.columns:
            col = getattr(owner, last)
            kind = _kind(owner_mapper.columns[last].type)
        elif last in owner_mapper.relationships and not owner_mapper.relationships[last].uselist:
            rel = owner_mapper.relationships[last]
            key = f"{key}.{last}"
            if key not in aliases:
                aliases[key] = aliased(rel.mapper.class_)
                joins.append(getattr(owner, last).of_type(aliases[key]))
            col, kind = _label_sql(rel.mapper.class_, aliases[key]), "text"
        else:
            raise ValueError(f"cannot export {name!r} of {model.__name__}")
        cols.append(col)
        kinds.append(kind)

    def select(values):
        stmt = _over(model, ids, values)
        for target in joins:
            stmt = stmt.outerjoin(target)
        return stmt.order_by(None).order_by(*(order or (model.id,)))

    known = None not in kinds

    def xml_rows():
        _export_settings()
        values = [sql_value(c, k, getattr(getattr(c, "type", None), "enum_class", None)) for c, k in zip(cols, kinds)]
        yield from rows_from_copy(copy_lines(db.session, select(values)), kinds)

    postgres = db.session.get_bind().dialect.name == "postgresql"
    return Export(
        headers=[str(label) for _, label in columns],
        widths=None,
        rows=lambda: stream_rows(select(cols)),
        kinds=kinds if known else None,
        xml_rows=xml_rows if postgres and known else None,
    )


def expiring_xlsx(ids) -> Download:
    export = policy_export(ids, EXPIRING_EXPORT, order=(Policy.expiry_date, Policy.id))
    body = export.xlsx("即将到期订单")
    return Download(f"即将到期订单_{date.today():%Y%m%d}.xlsx", XLSX, body, export=export, sheet="即将到期订单")


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


def export_size(ids, user, expected, format: str = "xlsx"):
    """The Excel table by its rows, the printed list by its pages (views/downloads.py)."""
    if format != "pdf":
        return ("rows", expected)
    n = db.session.scalar(sa.select(sa.func.count()).where(Policy.id.in_(ids)))
    return ("pages", 0 if n > PRINT_LIMIT else policy_pages(ids))  # too many: refused at once, in the request


def export_expiring(ids, user, expected=None, format: str = "xlsx"):
    if format == "pdf":
        n = db.session.scalar(sa.select(sa.func.count()).where(Policy.id.in_(ids)))
        if n > PRINT_LIMIT:
            return Result(0, n, too_many_to_print(n))
        rows = policy_rows(ids, order=(Policy.expiry_date, Policy.id))
        span = f"到期日期 {rows[0].expiry_date:%Y-%m-%d} 至 {rows[-1].expiry_date:%Y-%m-%d}" if rows else ""
        pdf = policy_list_pdf("即将到期保单清单", span, rows, user)
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
    size=export_size,
    submit_label="下载",
    note="把当前查询结果（所选月份到期的保单）导出为 Excel 表格保存，或下载 PDF 打印清单。",
)

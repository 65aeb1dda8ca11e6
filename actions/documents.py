"""Printable documents over the current query (download-kind bulk actions, DESIGN.md §6, §8).

Each printer reads the query's rows in one statement, groups them as the document needs and
hands them to the one renderer (`batch.pdf.render_pdf`).  Nothing here writes to the database."""

from __future__ import annotations

from collections import OrderedDict
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from batch.pdf import render_pdf
from models import Member, Org, Policy, Product, db

from .base import Download

PDF = "application/pdf"
PRINT_LIMIT = 5000  # rows one printed list may hold; a bigger query is narrowed first


def too_many_to_print(n: int) -> str | None:
    if n > PRINT_LIMIT:
        return (
            f"当前查询结果有 {n} 条，一份打印清单最多 {PRINT_LIMIT} 条。"
            "请用【当前单位编号】或【产品名称】缩小查询范围后再打印。"
        )
    return None


def policy_rows(ids, *where, order=None) -> list:
    """The rows of a policy list: one joined SELECT, ordered by unit then 保单号/id."""
    stmt = (
        sa.select(
            Org.id.label("org_id"),
            Org.code.label("org_code"),
            Org.name.label("org_name"),
            Policy.policy_no,
            Member.member_no,
            Member.name,
            Member.id_number,
            Product.name.label("product"),
            Policy.shares,
            Policy.amount,
            Policy.effective_date,
            Policy.expiry_date,
            Policy.member_id,
        )
        .join(Member, Member.id == Policy.member_id)
        .join(Product, Product.id == Policy.product_id)
        .join(Org, Org.id == Policy.org_id)
        .where(Policy.id.in_(ids), *where)
        .order_by(Org.code, *(order or (Policy.policy_no, Policy.id)))
    )
    return db.session.execute(stmt).all()


ROWS_PER_PAGE = 30  # of a policy list (A4 landscape), about; each unit starts a page


def policy_pages(ids, *where) -> int:
    """About how many pages the policy list of `ids` prints (decides whether a worker makes it)."""
    per_unit = (
        sa.select(sa.func.count().label("n")).where(Policy.id.in_(ids), *where).group_by(Policy.org_id).subquery()
    )
    pages = sa.func.sum((per_unit.c.n + 4 + ROWS_PER_PAGE - 1) // ROWS_PER_PAGE)  # + the totals and signatures
    return int(db.session.scalar(sa.select(sa.func.coalesce(pages, 0))) or 0)


def by_unit(rows) -> list[dict]:
    """Rows grouped per unit with the unit's headcount, shares and total."""
    units: OrderedDict = OrderedDict()
    for r in rows:
        u = units.get(r.org_id)
        if u is None:
            u = units[r.org_id] = {"code": r.org_code, "name": r.org_name, "rows": [], "members": set()}
        u["rows"].append(r)
        u["members"].add(r.member_id)
    out = []
    for u in units.values():
        u["headcount"] = len(u.pop("members"))
        u["shares"] = sum(r.shares for r in u["rows"])
        u["total"] = sum((Decimal(r.amount) for r in u["rows"]), Decimal("0")).quantize(Decimal("0.01"))
        out.append(u)
    return out


def policy_list_pdf(title: str, subtitle: str, rows, user) -> bytes:
    return render_pdf(
        "policy_list.html",
        title=title,
        subtitle=subtitle,
        units=by_unit(rows),
        printed_on=date.today(),
        printed_by=user.display_name or user.username,
    )


def pdf_download(filename: str, body: bytes) -> Download:
    return Download(filename=filename, mimetype=PDF, body=body)

"""办事处: 确认生效 (代办处已上报 → 打印生效 with 保单号), 打回 to the agency, 打印生效清单.

保单号 format: ``BD`` + the confirmation year + an 8-digit number from the counter
``policy_no:YYYY`` — e.g. BD202600000123.  The numbers of one year are gap-free and unique: the
counter row is locked first (two offices confirming at once take turns there), then the rows
that will move are locked and counted, exactly that many numbers are reserved, and one UPDATE
numbers them set-based (row_number() by unit, then id).  A rollback gives the numbers back with
everything else, so no number is ever skipped.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from models import POLICY_WORKFLOW, Policy, PolicyStatus, Product, db, utcnow
from models.member import reserve_numbers
from models.roles import AGENCY, OFFICE, UNIT
from rules import policy_expiry

from .base import BulkAction, Result, dml_with_audit
from .documents import PRINT_LIMIT, pdf_download, policy_list_pdf, policy_pages, policy_rows, too_many_to_print
from .workflow import special

WAITING = (PolicyStatus.AGENCY_REPORTED,)


def policy_no_prefix(year: int) -> str:
    return f"BD{year}"


def _number_text(n, dialect: str, width: int = 8):
    """SQL for the zero-padded text of the number expression `n`."""
    if dialect == "postgresql":
        return sa.func.lpad(sa.cast(n, sa.String), width, "0")
    return sa.func.printf(f"%0{width}d", n)


def _lock_and_count(ids, states) -> int:
    """Lock the rows of `ids` still in `states` until the transaction ends, and count them."""
    locked = sa.select(Policy.id).where(Policy.id.in_(ids), Policy.status.in_(list(states))).with_for_update()
    return db.session.scalar(sa.select(sa.func.count()).select_from(locked.subquery()))


def effective_dates(ids, today: date) -> list[tuple[date, int]]:
    """(正式生效时间, rows) of the query's 代办处已上报 rows: the expected date, or today when that
    has passed.  One grouped query; what the confirmation page shows."""
    when = sa.case(
        (Policy.expected_effective_date < today, sa.literal(today, sa.Date)), else_=Policy.expected_effective_date
    )
    rows = db.session.execute(
        sa.select(when.label("d"), sa.func.count())
        .where(Policy.id.in_(ids), Policy.status.in_(list(WAITING)))
        .group_by(when)
        .order_by(when)
    ).all()
    return [(d if isinstance(d, date) else date.fromisoformat(str(d)), n) for d, n in rows]


def confirm_precheck(ids, user):
    today = date.today()
    groups = effective_dates(ids, today)
    lines = []
    late = sum(n for d, n in groups if d == today)
    if late:
        lines.append(f"{late} 条的预期生效时间已过，正式生效时间为今天 {today:%Y-%m-%d}")
    on_time = [(d, n) for d, n in groups if d != today]
    for d, n in on_time[:6]:
        lines.append(f"{n} 条按预期生效时间 {d:%Y-%m-%d} 生效")
    if len(on_time) > 6:
        lines.append(f"另有 {sum(n for _, n in on_time[6:])} 条在其后的 {len(on_time) - 6} 个日期生效")
    if groups:
        lines.append(
            "到期日期 = 正式生效时间 + 保障期限 − 1 天；保单号按年度连续编号（如 "
            + policy_no_prefix(today.year)
            + "00000001）"
        )
    return lines, None


def confirm_effective(ids, user, expected=None, today: date | None = None) -> Result:
    """代办处已上报 → 打印生效 in one UPDATE: 保单号, 正式生效时间, 到期日期."""
    today = today or date.today()
    session = db.session
    dialect = session.get_bind().dialect.name
    counter = f"policy_no:{today.year}"
    reserve_numbers(counter, 0)  # locks the year's counter row: confirmations take turns from here
    n = _lock_and_count(ids, WAITING)
    if n == 0:
        skipped = expected or 0
        return Result(0, skipped, f"已确认生效 0 条，跳过 {skipped} 条（状态已变化）")
    numbers = reserve_numbers(counter, n)
    base = numbers.start - 1
    terms = session.scalars(
        sa.select(sa.distinct(Product.term_months)).where(
            Product.id.in_(sa.select(Policy.product_id).where(Policy.id.in_(ids), Policy.status.in_(list(WAITING))))
        )
    ).all()
    late = Policy.expected_effective_date < today
    term = sa.select(Product.term_months).where(Product.id == Policy.product_id).scalar_subquery()
    late_expiry = sa.case({m: sa.literal(policy_expiry(today, m), sa.Date) for m in terms}, value=term)
    numbered = (
        sa.select(Policy.id.label("id"), sa.func.row_number().over(order_by=(Policy.org_id, Policy.id)).label("rn"))
        .where(Policy.id.in_(ids), Policy.status.in_(list(WAITING)))
        .subquery("numbered")
    )
    stmt = (
        sa.update(Policy)
        .where(Policy.id == numbered.c.id, Policy.status.in_(list(WAITING)))
        .values(
            status=PolicyStatus.EFFECTIVE,
            policy_no=sa.literal(policy_no_prefix(today.year)) + _number_text(numbered.c.rn + base, dialect),
            effective_date=sa.case((late, sa.literal(today, sa.Date)), else_=Policy.expected_effective_date),
            expiry_date=sa.case((late, late_expiry), else_=Policy.expiry_date),
            return_reason=None,
            updated_at=utcnow(),
            version=Policy.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    done = dml_with_audit(
        stmt,
        Policy,
        "confirm",
        user.id,
        after={"status": PolicyStatus.EFFECTIVE.value, "confirmed_on": today.isoformat()},
    )
    if done != n:  # the rows were locked: this cannot happen; never leave a gap if it does
        raise RuntimeError(f"确认生效 numbered {done} rows of {n} locked")
    first, last = (
        policy_no_prefix(today.year) + f"{numbers.start:08d}",
        policy_no_prefix(today.year) + f"{numbers.stop - 1:08d}",
    )
    skipped = max((expected or done) - done, 0)
    return Result(done, skipped, f"已确认生效 {done} 条（保单号 {first} 至 {last}），跳过 {skipped} 条（状态已变化）")


# ---- 打回 to the agency: a plain declared transition (models/policy.py "office-return") ---------


# ---- 打印生效清单 ---------------------------------------------------------------------------------
def print_precheck(ids, user):
    n = db.session.scalar(sa.select(sa.func.count()).where(Policy.id.in_(ids), Policy.status == PolicyStatus.EFFECTIVE))
    units = db.session.scalar(
        sa.select(sa.func.count(sa.distinct(Policy.org_id))).where(
            Policy.id.in_(ids), Policy.status == PolicyStatus.EFFECTIVE
        )
    )
    lines = [f"共 {units} 个单位，每个单位单独成页（一份 PDF）"] if units else []
    return lines, too_many_to_print(n)


def print_effective_list(ids, user, expected=None):
    n = db.session.scalar(sa.select(sa.func.count()).where(Policy.id.in_(ids), Policy.status == PolicyStatus.EFFECTIVE))
    if n > PRINT_LIMIT:
        return Result(0, n, too_many_to_print(n))
    rows = policy_rows(ids, Policy.status == PolicyStatus.EFFECTIVE)
    pdf = policy_list_pdf("打印生效清单", "", rows, user)
    return pdf_download(f"打印生效清单_{date.today():%Y%m%d}.pdf", pdf)


# 确认生效 is declared in models/policy.py; this is what it does besides changing the state
special(POLICY_WORKFLOW, "confirm", run=confirm_effective, precheck=confirm_precheck)

PRINT_EFFECTIVE = BulkAction(
    name="print-effective",
    label="打印生效清单",
    run=print_effective_list,
    from_states=(PolicyStatus.EFFECTIVE,),
    roles=OFFICE | AGENCY | UNIT,
    with_amount=True,
    kind="download",
    precheck=print_precheck,
    size=lambda ids, user, expected: ("pages", policy_pages(ids, Policy.status == PolicyStatus.EFFECTIVE)),
    submit_label="下载打印",
    note="把当前查询结果中“打印生效”的保单打印成清单（PDF，每个单位一页起，含保单号、份数、金额及大写合计）。",
)

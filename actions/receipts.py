"""代办处: 开具收据 (manual 二、1) for the policies of ONE unit, 作废, and the stored PDF.

Receipt number: ``YYYY-NNNNNN`` from the counter ``receipt_no:YYYY`` — gap-free and unique per
year under concurrent issuers (the counter row is locked first, then the rows, then one number
is taken; a rollback gives it back).  A policy is on at most one valid receipt: the UPDATE that
points the policies to the new receipt only takes rows whose `receipt_id` is empty, and voiding
a receipt empties it again.  The PDF is rendered once, inside the same transaction, and stored
with its parameters: a reprint sends the same bytes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app, has_request_context, url_for

from batch.pdf import qr_svg, render_pdf
from models import (
    Org,
    Policy,
    PolicyStatus,
    Product,
    Receipt,
    ReceiptPolicy,
    ReceiptStatus,
    db,
    utcnow,
    write_audit,
)
from models.audit import ACTION_LABELS
from models.member import reserve_numbers
from models.roles import AGENCY

from .base import BulkAction, Result, dml_with_audit

RECEIPTABLE = (PolicyStatus.REPORTED, PolicyStatus.AGENCY_REPORTED)


# what the audit log calls these (receipt rows: 作废; policy rows: 开具收据 / 收据作废)
ACTION_LABELS.update({"receipt": "开具收据", "receipt_void": "收据作废", "void": "作废"})


class ReceiptRefused(Exception):
    pass


def _open(ids, states):
    return sa.and_(Policy.id.in_(ids), Policy.status.in_(list(states)), Policy.receipt_id.is_(None))


def units_of(ids, states=RECEIPTABLE) -> list[tuple[int, str, str, int]]:
    """(org id, code, name, rows) of the units whose un-receipted rows the query holds."""
    return db.session.execute(
        sa.select(Org.id, Org.code, Org.name, sa.func.count())
        .join(Policy, Policy.org_id == Org.id)
        .where(_open(ids, states))
        .group_by(Org.id, Org.code, Org.name)
        .order_by(Org.code)
    ).all()


def one_unit_refusal(units) -> str | None:
    if len(units) > 1:
        names = "、".join(f"{code} {name}" for _, code, name, _ in units[:5])
        return (
            f"当前查询结果包含 {len(units)} 个基层单位（{names}{'等' if len(units) > 5 else ''}）。"
            "一张收据只能开给一个缴费单位：请在【当前单位编号】中输入一个基层单位编号，点击【搜索】后再开具收据。"
        )
    return None


def receipt_precheck(ids, user):
    units = units_of(ids)
    refusal = one_unit_refusal(units)
    lines = []
    if len(units) == 1:
        lines.append(f"缴费单位：{units[0][2]}（单位编号 {units[0][1]}）")
    already = db.session.scalar(
        sa.select(sa.func.count()).where(
            Policy.id.in_(ids), Policy.status.in_(list(RECEIPTABLE)), Policy.receipt_id.is_not(None)
        )
    )
    if already:
        lines.append(f"{already} 条已在有效收据上，不会重复开具")
    return lines, refusal


def verify_url(receipt_no: str) -> str:
    """The address the receipt's QR code opens (the record, in the scanner's scope)."""
    if has_request_context():
        return url_for("receipts.verify_view", no=receipt_no, _external=True)
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    return f"{base}/admin/receipts/verify/{receipt_no}"


def create_receipt(ids, user, states=RECEIPTABLE, today: date | None = None) -> Receipt:
    """One receipt for the un-receipted rows of `ids` in `states`, which must be of one unit.
    Raises ReceiptRefused (nothing written) when they span units or there are none."""
    today = today or date.today()
    session = db.session
    counter = f"receipt_no:{today.year}"
    reserve_numbers(counter, 0)  # issuers take turns from here
    locked = sa.select(Policy.id, Policy.org_id).where(_open(ids, states)).with_for_update().subquery()
    n, n_units = session.execute(
        sa.select(sa.func.count(), sa.func.count(sa.distinct(locked.c.org_id))).select_from(locked)
    ).one()
    if n == 0:
        raise ReceiptRefused("当前查询结果中没有可以开具收据的投保记录（可能已开过收据或状态已变化）。")
    if n_units > 1:
        raise ReceiptRefused(one_unit_refusal(units_of(ids, states)) or "一张收据只能开给一个缴费单位。")
    seq = reserve_numbers(counter, 1).start
    receipt_no = f"{today.year}-{seq:06d}"
    org = session.get(Org, session.scalar(sa.select(locked.c.org_id).limit(1)))
    receipt = Receipt(
        receipt_no=receipt_no, org_id=org.id, headcount=0, total=0, issued_by_id=user.id, issued_at=utcnow()
    )
    session.add(receipt)
    session.flush()
    stmt = (
        sa.update(Policy)
        .where(_open(ids, states))
        .values(receipt_id=receipt.id, updated_at=utcnow(), version=Policy.version + 1)
        .execution_options(synchronize_session=False)
    )
    done = dml_with_audit(stmt, Policy, "receipt", user.id, after={"receipt_no": receipt_no})
    if done != n:
        raise RuntimeError(f"开具收据 took {done} rows of {n} locked")
    session.execute(
        sa.insert(ReceiptPolicy).from_select(
            ["receipt_id", "policy_id"],
            sa.select(sa.literal(receipt.id), Policy.id).where(Policy.receipt_id == receipt.id),
        )
    )
    lines = session.execute(
        sa.select(
            Product.name,
            sa.func.count(sa.distinct(Policy.member_id)),
            sa.func.sum(Policy.shares),
            sa.func.sum(Policy.amount),
        )
        .join(Product, Product.id == Policy.product_id)
        .where(Policy.receipt_id == receipt.id)
        .group_by(Product.code, Product.name)
        .order_by(Product.code)
    ).all()
    headcount = session.scalar(
        sa.select(sa.func.count(sa.distinct(Policy.member_id))).where(Policy.receipt_id == receipt.id)
    )
    total = sum((Decimal(a) for *_, a in lines), Decimal("0")).quantize(Decimal("0.01"))
    receipt.headcount, receipt.total = headcount, total
    issuer_org = user.org
    receipt.params = {
        "receipt_no": receipt_no,
        "payer_name": org.name,
        "payer_code": org.code,
        "issued_on": today.isoformat(),
        "headcount": headcount,
        "policy_count": n,
        "shares": int(sum(s for _, _, s, _ in lines)),
        "total": f"{total:.2f}",
        "lines": [
            {"product": p, "headcount": h, "shares": int(s), "amount": f"{Decimal(a):.2f}"} for p, h, s, a in lines
        ],
        "issuer_org": issuer_org.name,
        "issuer": user.display_name or user.username,
        "verify_url": verify_url(receipt_no),
    }
    receipt.pdf = render_receipt(receipt.params)
    write_audit("create", "receipt", [receipt.id], user.id, after={"receipt_no": receipt_no, "total": f"{total:.2f}"})
    return receipt


def render_receipt(params: dict, void: dict | None = None) -> bytes:
    return render_pdf("receipt.html", r=params, qr=qr_svg(params["verify_url"]), void=void)


def issue_receipt(ids, user, expected=None) -> Result:
    try:
        receipt = create_receipt(ids, user)
    except ReceiptRefused as exc:
        return Result(0, expected or 0, str(exc))
    n = db.session.scalar(
        sa.select(sa.func.count()).select_from(ReceiptPolicy).where(ReceiptPolicy.receipt_id == receipt.id)
    )
    skipped = max((expected or n) - n, 0)
    return Result(
        n,
        skipped,
        f"已开具收据 {receipt.receipt_no}：{receipt.org.name}，{receipt.headcount} 人，"
        f"{receipt.total:.2f} 元。跳过 {skipped} 条（状态已变化或已开过收据）",
        link=("receipts.details_view", {"id": receipt.id}),
    )


def void_receipt(receipt: Receipt, user, reason: str) -> bool:
    """作废: the receipt keeps its number and gets 作废 across the page; its policies are free to
    be receipted again.  False when it was voided meanwhile."""
    reason = reason.strip()
    now = utcnow()
    done = db.session.execute(
        sa.update(Receipt)
        .where(Receipt.id == receipt.id, Receipt.status == ReceiptStatus.VALID)
        .values(status=ReceiptStatus.VOID, void_reason=reason, voided_by_id=user.id, voided_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        return False
    dml_with_audit(
        sa.update(Policy)
        .where(Policy.receipt_id == receipt.id)
        .values(receipt_id=None, updated_at=now, version=Policy.version + 1)
        .execution_options(synchronize_session=False),
        Policy,
        "receipt_void",
        user.id,
        after={"receipt_no": receipt.receipt_no},
    )
    void = {"at": now.strftime("%Y-%m-%d %H:%M"), "by": user.display_name or user.username, "reason": reason}
    db.session.execute(
        sa.update(Receipt)
        .where(Receipt.id == receipt.id)
        .values(void_pdf=render_receipt(receipt.params, void=void))
        .execution_options(synchronize_session=False)
    )
    write_audit(
        "void", "receipt", [receipt.id], user.id, before={"status": "VALID"}, after={"status": "VOID", "reason": reason}
    )
    return True


ISSUE_RECEIPT = BulkAction(
    name="receipt",
    label="开具收据",
    run=issue_receipt,
    from_states=RECEIPTABLE,
    roles=AGENCY,
    with_amount=True,
    condition=lambda: Policy.receipt_id.is_(None),
    condition_label="已在有效收据上",
    precheck=receipt_precheck,
    note="为一个基层单位当前查询结果中“上报”或“代办处已上报”、尚未开过收据的投保记录开具一张收据"
    "（收据号按年度连续编号，金额含大写，按产品分项）。",
)

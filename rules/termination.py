"""保单提前终止 (manual 一(五)5–7): the requested end date and the refund.

A policy covers every day from its 正式生效时间 to its 到期日期, both included (DESIGN.md §3:
``expiry = effective + term − 1 day``).  Terminated on its 申请终止日期 (the end date), it still
covers the end date itself; the refund is for the whole days after it up to the expiry date:

    remaining days = expiry − end date           (never more than the whole term: an end date before
                                                 the policy took effect gives the whole amount back)
    refund         = amount × remaining days / days of the term

computed exactly on Decimal and rounded to the fen with ROUND_HALF_UP (0.005 元 → 0.01 元), as
money is rounded elsewhere (rules/money.py).  Zero when the end date is on or after the expiry
date: nothing of the cover is left.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext

from .codes import Code
from .result import Check

CENT = Decimal("0.01")
# 终止原因: the common ones to choose from, and free text to add (or to say it all, with 其他)
OTHER = "其他"
COMMON_REASONS = ("会员离职（调离本单位）", "会员退休", "会员身故", "重复投保", "单位撤销或合并", OTHER)
REASON_MAX = 200
MAX_POLICIES = 20  # one application holds at most this many: its printed form stays one page


def term_days(effective: date, expiry: date) -> int:
    """Days the policy covers, both ends included (2026-03-01 … 2027-02-28: 365)."""
    days = (expiry - effective).days + 1
    if days < 1:
        raise ValueError(f"到期日期 {expiry} 早于生效日期 {effective}")
    return days


def remaining_days(effective: date, expiry: date, end: date) -> int:
    """Whole days of cover after the end date (0 when the end date is on or after the expiry)."""
    whole = term_days(effective, expiry)
    if end >= expiry:
        return 0
    return min((expiry - end).days, whole)


def refund(amount: Decimal | int, effective: date, expiry: date, end: date) -> Decimal:
    """The refund of a policy of `amount` (元) ended on `end`, to the fen (ROUND_HALF_UP)."""
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        raise TypeError("投保金额必须为Decimal或整数（不接受浮点数）")
    value = Decimal(amount)
    if not value.is_finite() or value < 0:
        raise ValueError("投保金额必须为非负数")
    days = remaining_days(effective, expiry, end)
    if days == 0:
        return Decimal("0.00")
    with localcontext() as ctx:
        ctx.prec = 60  # exact: amount < 1 万亿 with 2 places, days < 10^5 — far inside 60 digits
        share = value * days / term_days(effective, expiry)
        return share.quantize(CENT, rounding=ROUND_HALF_UP)


def check_end_date(end: date | None, today: date, expiry: date | None = None) -> Check:
    """申请终止日期: given, today or later, and (for a policy) before its 到期日期.  ``value`` is
    the date."""
    if end is None:
        return Check.fail(Code.END_DATE_EMPTY, "end_date")
    if end < today:
        return Check.fail(Code.END_DATE_PAST, "end_date", value=end)
    if expiry is not None and end >= expiry:
        return Check.fail(Code.END_DATE_AFTER_EXPIRY, "end_date", value=end, expiry=expiry.isoformat())
    return Check.success(end, field="end_date")


def check_reason(choice: str | None, text: str | None) -> Check:
    """终止原因 from the list (``choice``) and the clerk's words (``text``, stripped): ``value`` is
    the reason as kept and printed — the choice, ``choice：text`` with words added, or the words
    alone with 其他."""
    choice = (choice or "").strip()
    text = (text or "").strip()
    if choice not in COMMON_REASONS:
        return Check.fail(Code.REASON_EMPTY, "reason")
    if choice == OTHER and not text:
        return Check.fail(Code.REASON_OTHER, "reason_text")
    reason = text if choice == OTHER else (f"{choice}：{text}" if text else choice)
    if len(reason) > REASON_MAX:
        return Check.fail(Code.REASON_LENGTH, "reason_text", max=REASON_MAX)
    return Check.success(reason, field="reason")

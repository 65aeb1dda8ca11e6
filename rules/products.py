"""Product terms: gender restriction, shares, amounts, policy periods."""

from __future__ import annotations

import math
import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from ._chars import BLANKS, FULLWIDTH
from .codes import Code
from .result import Check

CENT = Decimal("0.01")
_AMOUNT_MAX = Decimal(10) ** 12  # 1 万亿: beyond any real amount and beyond amount_in_words
_AMOUNT_TEXT = re.compile(r"\+?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_INT_TEXT = re.compile(r"\+?[0-9]+(?:\.0*)?")


@dataclass(frozen=True)
class ProductTerms:
    """What the rules need of a product.  ``gender_restriction``: None, or 'F' (women only)."""

    code: str
    name: str
    price: Decimal
    max_shares: int
    term_months: int = 12
    gender_restriction: str | None = None


_GENDER_OK = {g: Check(True, None, "", None, (), g) for g in ("M", "F")}
_GENDER_FAIL = {g: Check(False, Code.GENDER, Code.GENDER.message, None, (), g) for g in ("M", "F")}


def check_product_gender(terms: ProductTerms, gender: str) -> Check:
    """GENDER when the product is restricted to the other gender; ``value`` is ``gender``
    ('M' or 'F')."""
    if terms.gender_restriction is not None and gender != terms.gender_restriction:
        return _GENDER_FAIL[gender]
    return _GENDER_OK[gender]


def _as_int(value: object) -> int | None:
    """A whole-valued float, Decimal or text as int, else None (bool is no number here;
    int itself never gets here)."""
    t = type(value)
    if t is str:
        if value.isdigit() and value.isascii():  # type: ignore[union-attr]
            return int(value)  # type: ignore[arg-type]
        text = value.translate(FULLWIDTH).strip(BLANKS)  # type: ignore[union-attr]
        if _INT_TEXT.fullmatch(text):
            return int(text.split(".")[0])
        return None
    if t is float:
        whole = math.isfinite(value) and value == int(value)  # type: ignore[arg-type]
    elif t is Decimal:
        whole = value.is_finite() and value == value.to_integral_value()  # type: ignore[union-attr]
    else:
        return None
    return int(value) if whole else None  # type: ignore[call-overload]


def check_shares(terms: ProductTerms, shares: object) -> Check:
    """份数 between 1 and ``terms.max_shares``; ``value`` is the int.  Accepts int, integral
    float/Decimal (``2.0``) and text (``"2"``, ``"2.0"``, full-width); otherwise SHARES_RANGE."""
    n = shares if type(shares) is int else _as_int(shares)
    if n is None or not 1 <= n <= terms.max_shares:
        return Check.fail(Code.SHARES_RANGE, "shares", value=n, max=terms.max_shares)
    if n < len(_SHARES_OK):
        return _SHARES_OK[n]
    return Check(True, None, "", "shares", (), n)


_SHARES_OK = tuple(Check(True, None, "", "shares", (), n) for n in range(100))


def parse_amount(value: object) -> Check:
    """投保金额: > 0, at most 2 decimals, below 1 万亿; ``value`` is a Decimal with 2 places.

    Accepts Decimal, int, str (blanks and full-width digits allowed) and float (through
    ``str()``, never float arithmetic: 0.1 + 0.2 is rejected, 50.0 is 50.00); AMOUNT_INVALID
    otherwise (bool, None, 0, negative, 3 decimals, NaN ...).
    """
    if type(value) is bool:  # True == 1 would hit the memo entry of 1
        return _AMOUNT_INVALID
    try:
        memo = _AMOUNT_MEMO.get(value)
    except TypeError:  # unhashable: no amount either
        return _AMOUNT_INVALID
    if memo is None:
        if len(_AMOUNT_MEMO) >= _AMOUNT_MEMO_SIZE:
            _AMOUNT_MEMO.clear()
        memo = _AMOUNT_MEMO[value] = _parse_amount(value)
    return memo


# A file has a handful of distinct amounts; parsing each once saves most of the work.
_AMOUNT_MEMO: dict[object, Check] = {}
_AMOUNT_MEMO_SIZE = 4096


def _parse_amount(value: object) -> Check:
    t = type(value)
    if t is Decimal:
        amount = value
    elif t is int:
        amount = Decimal(value)  # type: ignore[arg-type]
    elif t is float or t is str:
        text = str(value).translate(FULLWIDTH).strip(BLANKS)
        if not _AMOUNT_TEXT.fullmatch(text):  # also rejects nan, inf, 1e-05
            return _AMOUNT_INVALID
        amount = Decimal(text)
    else:
        return _AMOUNT_INVALID
    if not (amount.is_finite() and 0 < amount < _AMOUNT_MAX):  # type: ignore[union-attr]
        return _AMOUNT_INVALID
    cents = amount.quantize(CENT)  # type: ignore[union-attr]
    if cents != amount:
        return _AMOUNT_INVALID
    return Check(True, None, "", "amount", (), cents)


_AMOUNT_INVALID = Check(False, Code.AMOUNT_INVALID, Code.AMOUNT_INVALID.message, "amount")


def check_amount(terms: ProductTerms, shares: int, amount: object) -> Check:
    """AMOUNT_MISMATCH unless amount == shares × price.  ``amount`` is parsed as by
    ``parse_amount`` (its AMOUNT_INVALID is returned as is).  ``value``: the amount (Decimal,
    2 places) on success; the amount due (shares × price) on AMOUNT_MISMATCH."""
    parsed = parse_amount(amount)
    if not parsed.ok:
        return parsed
    if parsed.value != terms.price * shares:
        due = (terms.price * shares).quantize(CENT)
        return Check(False, Code.AMOUNT_MISMATCH, Code.AMOUNT_MISMATCH.message, "amount", (), due)
    return parsed


def shares_for_amount(terms: ProductTerms, amount: object) -> Check:
    """One 金额 for everyone (批量续转, 新会员投保): 份数 = 金额 ÷ 每份金额, a whole number from 1 to
    the product's maximum; ``value`` is that share count.  Otherwise one message that says which
    amounts the product allows, e.g. "金额 30.00 元不是每份金额 20.00 元的整数倍，职工意外伤害互助保障
    可填：20.00、40.00、60.00、80.00、100.00 元"."""
    parsed = parse_amount(amount)
    if not parsed.ok:
        return parsed
    allowed = "、".join(f"{terms.price * n:.2f}" for n in range(1, terms.max_shares + 1))
    shares, rest = divmod(parsed.value, terms.price)
    if rest:
        message = f"金额 {parsed.value:.2f} 元不是每份金额 {terms.price:.2f} 元的整数倍"
    elif not 1 <= shares <= terms.max_shares:
        message = f"金额 {parsed.value:.2f} 元为 {shares} 份，超过每人最多 {terms.max_shares} 份"
    else:
        return Check(True, None, "", "amount", (), int(shares))
    return Check(False, Code.AMOUNT_MISMATCH, f"{message}，{terms.name}可填：{allowed} 元", "amount", (), None)


def check_over_shares(terms: ProductTerms, existing_shares: int, new_shares: int) -> Check:
    """OVER_SHARES when the shares of overlapping policies plus the new ones exceed the max;
    ``value`` is that total."""
    total = existing_shares + new_shares
    if total > terms.max_shares:
        return Check(False, Code.OVER_SHARES, Code.OVER_SHARES.message, "shares", (), total)
    return Check(True, None, "", "shares", (), total)


def add_months(d: date, n: int) -> date:
    """``d`` plus ``n`` months (n may be negative), the day clamped to the month's end."""
    months = d.year * 12 + d.month - 1 + n
    year, month = divmod(months, 12)
    month += 1
    return date(year, month, min(d.day, monthrange(year, month)[1]))


def policy_expiry(effective: date, term_months: int) -> date:
    """Last day of cover: effective + term months − 1 day (2026-03-01, 12 → 2027-02-28)."""
    return add_months(effective, term_months) - timedelta(days=1)


def periods_overlap(a_start: date, a_end: date | None, b_start: date, b_end: date | None) -> bool:
    """Do two periods share a day?  Ends are inclusive; an end of None is open."""
    return (a_end is None or b_start <= a_end) and (b_end is None or a_start <= b_end)

"""Money for receipts: 大写金额 and yuan figures."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
_LIMIT = Decimal(10) ** 12  # 1 万亿
_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")
_GROUP_UNITS = ("", "万", "亿")


def _to_decimal(amount: object) -> Decimal:
    if isinstance(amount, Decimal):
        return amount
    if type(amount) is int:  # not bool
        return Decimal(amount)
    if isinstance(amount, str):
        try:
            return Decimal(amount.strip())
        except InvalidOperation:
            raise ValueError(f"金额格式不正确：{amount}") from None
    raise TypeError("金额必须为Decimal、整数或字符串（不接受浮点数）")


def amount_in_words(amount: Decimal | int | str) -> str:
    """Chinese capitals for a receipt: 1005.50 → 壹仟零伍元伍角, 100 → 壹佰元整, 0 → 零元整.

    One 零 stands for a run of zeros inside the figure; a zero 元 place before 角 is not spoken
    (10.50 → 壹拾元伍角); 整 only when there are neither 角 nor 分.  Raises ValueError for a
    negative amount, more than 2 decimals or 1 万亿 and more; TypeError for float.
    """
    value = _to_decimal(amount)
    if not value.is_finite():
        raise ValueError("金额必须为有限数值")
    if value < 0:
        raise ValueError("金额不能为负数")
    if value >= _LIMIT:
        raise ValueError("金额必须小于1万亿元")
    cents = value.quantize(CENT)
    if cents != value:
        raise ValueError("金额最多保留两位小数（分）")
    total = int(cents * 100)
    yuan, rest = divmod(total, 100)
    jiao, fen = divmod(rest, 10)

    out: list[str] = []
    if yuan:
        digits = str(yuan)
        top = len(digits) - 1
        zero = False  # a run of zeros waits to be written as one 零
        for i, ch in enumerate(digits):
            pos = top - i
            d = ord(ch) - 48
            if d:
                if zero:
                    out.append("零")
                    zero = False
                out.append(_DIGITS[d])
                out.append(_SMALL_UNITS[pos % 4])
            else:
                zero = True
            if pos % 4 == 0 and pos:
                group = digits[max(0, i - 3) : i + 1]
                if group.strip("0"):
                    out.append(_GROUP_UNITS[pos // 4])
                    zero = False  # 壹佰贰拾万, not 壹佰贰拾零万
        out.append("元")
    if jiao:
        out.append(_DIGITS[jiao])
        out.append("角")
    if fen:
        if yuan and not jiao:
            out.append("零")
        out.append(_DIGITS[fen])
        out.append("分")
    if not out:
        return "零元整"
    if not jiao and not fen:
        out.append("整")
    return "".join(out)


def format_amount(amount: Decimal | int | str | None) -> str:
    """``Decimal("1005.5")`` → ``"1005.50"`` (2 places, half up, no thousands separator); ``""`` for None."""
    return "" if amount is None else str(_to_decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP))


def format_yuan(amount: Decimal | int | str | None) -> str:
    """``Decimal("1005.5")`` → ``"1005.50 元"``; ``""`` for None."""
    return "" if amount is None else f"{format_amount(amount)} 元"

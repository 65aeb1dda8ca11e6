"""Dates as clerks type them."""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import date, datetime

from .codes import Code
from .result import Check

_DATE_TEXT = re.compile(
    r"(\d{4})(?:([-/.])(\d{1,2})\2(\d{1,2})|年(\d{1,2})月(\d{1,2})日?|(\d{2})(\d{2}))"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?",
    re.ASCII,
)


def parse_date(value: object) -> date | None:
    """A date from a date, a datetime (its date), or text: ``2026-03-01``, ``2026/3/1``,
    ``2026.3.1``, ``2026年3月1日``, ``20260301`` (a time after a space is ignored).
    None for anything else — numbers included (Excel serial days are not accepted)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    m = _DATE_TEXT.fullmatch(value.strip())
    if m is None:
        return None
    y, _, m1, d1, m2, d2, m3, d3 = m.groups()
    year, month, day = int(y), int(m1 or m2 or m3), int(d1 or d2 or d3)
    if year < 1 or not 1 <= month <= 12 or not 1 <= day <= monthrange(year, month)[1]:
        return None
    return date(year, month, day)


def format_date(d: date | None) -> str:
    """``YYYY-MM-DD``; ``""`` for None."""
    return "" if d is None else f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def format_when(value) -> str:
    """A date ``YYYY-MM-DD``, a date and time ``YYYY-MM-DD HH:MM`` (screens, exports, documents);
    ``""`` for None; text as it is."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return f"{format_date(value)} {value.hour:02d}:{value.minute:02d}"
    return format_date(value)


def check_effective_date(effective: date, today: date) -> Check:
    """预期生效时间: today or later (EFFECTIVE_PAST otherwise)."""
    if effective < today:
        return Check.fail(Code.EFFECTIVE_PAST, value=effective)
    return Check.success(effective)


_MONTH_TEXT = re.compile(r"(\d{4})(?:[-/.年])(\d{1,2})月?", re.ASCII)


def parse_month(value: object) -> tuple[date, date] | None:
    """The first and last day of a month typed as ``2026-08``, ``2026/8`` or ``2026年8月``;
    None for anything else."""
    if not isinstance(value, str):
        return None
    m = _MONTH_TEXT.fullmatch(value.strip())
    if m is None:
        return None
    year, month = int(m.group(1)), int(m.group(2))
    if year < 1 or not 1 <= month <= 12:
        return None
    return date(year, month, 1), date(year, month, monthrange(year, month)[1])


def next_month(today: date) -> str:
    """``YYYY-MM`` of the month after `today`'s."""
    return f"{today.year + (today.month == 12):04d}-{today.month % 12 + 1:02d}"

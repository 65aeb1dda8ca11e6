"""身份证号 (GB 11643-1999): clean, check, mask.

``parse_id`` is the entry point for forms and batches: ``normalize_id`` then ``check_id``.
"""

from __future__ import annotations

import math
import re
from calendar import isleap, monthrange
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from ._chars import ID_TABLE
from .codes import Code
from .result import Check

FIELD = "id_number"

# ISO 7064 MOD 11-2: the weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 are 2**17 .. 2**1 mod 11,
# and 13 ≡ 2 (mod 11), so sum(digit × weight) ≡ 2 × int(first17, base=13): one C call.
_CHECK_MAP = "10X98765432"
_VALID_MMDD = frozenset(m * 100 + d for m in range(1, 13) for d in range(1, monthrange(2000, m)[1] + 1))
_MIN_BIRTH = 1900_01_01
# "1.10105E+17", "1.10105e17", "110105194912310000.0": a number cell turned into text
_NUMERIC_TEXT = re.compile(r"[0-9]+(?:\.[0-9]*)?[eE][+-]?[0-9]+|[0-9]+\.0*")


class IdInfo(NamedTuple):
    """What a valid ID number tells: gender 'M'/'F', birth date, and the number itself."""

    gender: str
    birth_date: date
    number: str


_new_info = tuple.__new__  # IdInfo(…) without the namedtuple's Python-level __new__

_EMPTY = Check(False, Code.ID_EMPTY, Code.ID_EMPTY.message, FIELD)
_NUMERIC = Check(False, Code.ID_NUMERIC_CELL, Code.ID_NUMERIC_CELL.message, FIELD)
_NORMALIZED = (Code.ID_NORMALIZED,)


def _is_clean(text: str) -> bool:
    """The common case: 18 ASCII letters/digits, no lowercase x at the end — nothing to clean."""
    return len(text) == 18 and text.isascii() and text.isalnum() and text[17] != "x"


def normalize_id(value: object) -> Check:
    """Clean a cell into ID text; ``value`` of the result is the cleaned text.

    Removes every blank (ends and inside, full-width too), turns full-width characters
    half-width and a final ``x`` into ``X``; warns ``ID_NORMALIZED`` when that changed anything.
    Fails ``ID_EMPTY`` (None, blank, NaN) or ``ID_NUMERIC_CELL`` (an Excel number: int, float,
    Decimal, or text such as ``1.10105E+17``).  Does not validate — see ``check_id``.
    """
    if type(value) is str:
        text = value
    elif value is None:
        return _EMPTY
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        if isinstance(value, float) and math.isnan(value):
            return _EMPTY  # a blank cell as pandas reads it
        return _NUMERIC
    else:
        text = str(value)
    if _is_clean(text):
        return Check(True, None, "", FIELD, (), text)
    cleaned = text.translate(ID_TABLE)
    if not cleaned:
        return _EMPTY
    if cleaned[-1] == "x":
        cleaned = cleaned[:-1] + "X"
    if ("." in cleaned or "e" in cleaned or "E" in cleaned) and _NUMERIC_TEXT.fullmatch(cleaned):
        return _NUMERIC
    if cleaned == text:
        return Check(True, None, "", FIELD, (), text)
    return Check(True, None, "", FIELD, _NORMALIZED, cleaned)


def _check_digit(first17: str) -> str:
    return _CHECK_MAP[2 * int(first17, 13) % 11]


def id_check_digit(first17: str) -> str:
    """The check digit ('0'-'9' or 'X') for 17 ASCII digits (ISO 7064 MOD 11-2)."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError("身份证号前17位必须为数字")
    return _check_digit(first17)


def check_id(text: str, today: date | None = None) -> Check:
    """Check normalized ID text.  ok → ``value`` is ``IdInfo(gender, birth_date, number)``.

    Failures, first that applies: ID_LENGTH (≠ 18 characters), ID_CHARS (not 17 digits + digit
    or X), ID_BIRTHDATE (no real date, after ``today``, before 1900), ID_CHECKSUM (message
    names the right digit).  On failure ``value`` is the text that was checked.
    """
    if len(text) != 18:
        return Check(False, Code.ID_LENGTH, Code.ID_LENGTH.message, FIELD, (), text)
    # 18 ASCII digits, or 17 and a final X (isdigit alone would take other scripts' digits)
    if not (text.isascii() and (text.isdigit() or (text[17] == "X" and text[:17].isdigit()))):
        return Check(False, Code.ID_CHARS, Code.ID_CHARS.message, FIELD, (), text)
    ymd = int(text[6:14])
    if today is None:
        today = date.today()  # pass `today` in loops: this call costs as much as the rest
    mmdd = ymd % 10000
    if (
        ymd < _MIN_BIRTH
        or ymd > today.year * 10000 + today.month * 100 + today.day
        or mmdd not in _VALID_MMDD
        or (mmdd == 229 and not isleap(ymd // 10000))
    ):
        return Check(False, Code.ID_BIRTHDATE, Code.ID_BIRTHDATE.message, FIELD, (), text)
    right = _CHECK_MAP[2 * int(text[:17], 13) % 11]  # _check_digit, inlined: this runs per batch row
    if text[17] != right:
        return Check.fail(Code.ID_CHECKSUM, FIELD, value=text, c=right)
    gender = "M" if text[16] in "13579" else "F"
    birth = date(ymd // 10000, ymd // 100 % 100, ymd % 100)
    return Check(True, None, "", FIELD, (), _new_info(IdInfo, (gender, birth, text)))


def parse_id(value: object, today: date | None = None) -> Check:
    """``normalize_id`` then ``check_id``, warnings kept (on success and on failure)."""
    # _is_clean, inlined (the common case of a batch row)
    if type(value) is str and len(value) == 18 and value.isascii() and value.isalnum() and value[17] != "x":
        return check_id(value, today)
    norm = normalize_id(value)
    if not norm.ok:
        return norm
    return check_id(norm.value, today).with_warnings(norm.warnings)


def mask_id(text: str | None) -> str:
    """``110101********123X``: first 6 and last 4 kept.  Other lengths keep less (never more
    than a third of the text), so a wrong-length number is not shown in the clear either."""
    if not text:
        return ""
    n = len(text)
    if n == 18:
        return text[:6] + "********" + text[14:]
    keep = n // 6  # shown at each end
    return text[:keep] + "*" * (n - 2 * keep) + text[n - keep :]

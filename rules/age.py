"""年龄 (周岁) and the age limits for 入会 and 投保."""

from __future__ import annotations

from datetime import date

from .codes import Code
from .result import Check

AGE_MIN = 16  # eligible only when older than this
AGE_LIMIT = {"F": 55, "M": 60}  # eligible only when younger than this
AGE_HARD_LIMIT = 65  # never at this age or older, exception or not


def age_on(birth: date, ref: date) -> int:
    """Full years (周岁) on ``ref``.  Born 29 February: a year older on 1 March in common years."""
    return ref.year - birth.year - ((ref.month, ref.day) < (birth.month, birth.day))


def _verdict(gender: str, age: int, exception: bool) -> Check:
    limit = AGE_LIMIT[gender]
    if age <= AGE_MIN:
        return Check(False, Code.UNDER_AGE, Code.UNDER_AGE.message, None, (), age)
    if age < limit:
        return Check(True, None, "", None, (), age)
    if exception and age < AGE_HARD_LIMIT:
        return Check(True, Code.NEEDS_CONFIRMATION, Code.NEEDS_CONFIRMATION.message, None, (), age, True)
    return Check(False, Code.OVER_AGE, Code.OVER_AGE.message, None, (), age)


# Every answer for ages 0..120, built once (results are immutable); others computed on demand.
_VERDICTS = {(g, a, e): _verdict(g, a, e) for g in AGE_LIMIT for a in range(121) for e in (False, True)}


def check_age(gender: str, birth_date: date, ref_date: date, exception: bool = False) -> Check:
    """Age rule on the reference date (入会: admission date; 投保: expected effective date).

    ``value`` is the age.  ok when 16 < age < 55 (F) / 60 (M).  UNDER_AGE at 16 or younger.
    Over the limit: with ``exception`` (not formally retired, agency approved) and under 65 →
    ``ok=True, needs_confirmation=True, code=NEEDS_CONFIRMATION`` (ask the question, then go
    on); otherwise, and always from 65 on, OVER_AGE.  ``gender`` must be 'M' or 'F' (KeyError).
    """
    age = age_on(birth_date, ref_date)
    verdict = _VERDICTS.get((gender, age, bool(exception)))
    return verdict if verdict is not None else _verdict(gender, age, exception)

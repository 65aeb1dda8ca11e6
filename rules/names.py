"""姓名: trim the ends, no space inside, letters and the middle dot only."""

from __future__ import annotations

import math

from ._chars import BLANK_SET, BLANKS
from .codes import Code
from .result import Check

FIELD = "name"
NAME_MAX_LENGTH = 50  # member.name is VARCHAR(50)

MIDDLE_DOT = "\u00b7"  # ·, as on ID cards of e.g. Uyghur citizens
# Look-alikes typed for it; all become "·" in the cleaned value (warning NAME_DOT_NORMALIZED).
_DOT_VARIANTS = "\u2022\u30fb\uff65\u2027\u2219\u22c5"  # • ・ ･ ‧ ∙ ⋅
_DOT_TABLE = {ord(c): MIDDLE_DOT for c in _DOT_VARIANTS}

_EMPTY = Check(False, Code.NAME_EMPTY, Code.NAME_EMPTY.message, FIELD, (), "")


def _allowed(ch: str) -> bool:
    # letters of any script (CJK included), and the private-use area where some systems
    # keep rare characters (生僻字) that have no standard code point
    return ch.isalpha() or "\ue000" <= ch <= "\uf8ff"


def check_name(value: object) -> Check:
    """Check a name cell; ``value`` of the result is the cleaned name (also on failure).

    Ends trimmed of any blank (warning NAME_TRIMMED); middle-dot look-alikes such as ``•``
    become ``·`` (warning NAME_DOT_NORMALIZED).  Failures: NAME_EMPTY; NAME_SPACE (a blank of
    any width inside); NAME_CHARS (digits, symbols, a dot at either end or two in a row);
    NAME_LENGTH (over 50).  A non-str value (a number cell) is checked as ``str(value)``.
    """
    if type(value) is not str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return _EMPTY
        value = str(value)
    if value.isalpha() and len(value) <= NAME_MAX_LENGTH:
        return Check(True, None, "", FIELD, (), value)  # common case
    name = value.strip(BLANKS)
    if not name:
        return _EMPTY
    warnings: tuple[Code, ...] = (Code.NAME_TRIMMED,) if name != value else ()
    dotted = name.translate(_DOT_TABLE)
    if dotted != name:
        name = dotted
        warnings += (Code.NAME_DOT_NORMALIZED,)
    if not name.isalpha():
        if not BLANK_SET.isdisjoint(name):
            return Check(False, Code.NAME_SPACE, Code.NAME_SPACE.message, FIELD, warnings, name)
        if (
            name[0] == MIDDLE_DOT
            or name[-1] == MIDDLE_DOT
            or MIDDLE_DOT * 2 in name
            or not all(ch == MIDDLE_DOT or _allowed(ch) for ch in name)
        ):
            return Check(False, Code.NAME_CHARS, Code.NAME_CHARS.message, FIELD, warnings, name)
    if len(name) > NAME_MAX_LENGTH:
        return Check.fail(Code.NAME_LENGTH, FIELD, warnings, name, max=NAME_MAX_LENGTH)
    return Check(True, None, "", FIELD, warnings, name)

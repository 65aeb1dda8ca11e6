"""会员编号 as a clerk types it or a file holds it: the one parser."""

from __future__ import annotations

from ._chars import BLANKS

MEMBER_NO_DIGITS = 10  # stored with leading zeros: 0000012345


def parse_member_no(value: object) -> str | None:
    """The stored 10-digit 会员编号 of ``value`` (1 to 10 digits, leading zeros optional, blanks at
    the ends ignored; a number cell counts as its digits), or None when ``value`` is no member
    number (letters, more than 10 digits, an ID number, a fraction, empty)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if not value.is_integer():
            return None
        text = str(int(value))
    elif isinstance(value, str):
        text = value.strip(BLANKS)
    else:
        return None
    if 0 < len(text) <= MEMBER_NO_DIGITS and text.isascii() and text.isdigit():
        return text.zfill(MEMBER_NO_DIGITS)
    return None

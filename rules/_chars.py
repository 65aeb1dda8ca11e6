"""Character tables shared by the rules (built once, at import)."""

from __future__ import annotations

# Every character str.isspace() accepts, plus the invisible ones that come with pasted text.
WHITESPACE = (
    "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
BLANKS = WHITESPACE + INVISIBLE
BLANK_SET = frozenset(BLANKS)

# Full-width ASCII (U+FF01..U+FF5E) -> ASCII, and the ideographic space -> " ".
FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
FULLWIDTH[0x3000] = 0x20

# For ID numbers: full-width -> half-width, every blank deleted.
ID_TABLE = dict(FULLWIDTH)
ID_TABLE.update({ord(c): None for c in BLANKS})

DIGITS = "0123456789"

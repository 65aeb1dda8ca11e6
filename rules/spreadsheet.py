"""Values going into a spreadsheet (exports, result files): the one formula guard."""

from __future__ import annotations

# what a spreadsheet would start a formula with (OWASP "CSV injection")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value):
    """Text a spreadsheet would run as a formula gets a leading apostrophe; anything else as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value

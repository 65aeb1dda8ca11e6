"""Values going into a spreadsheet (exports, result files): the one formula guard, and the
characters a worksheet cannot hold."""

from __future__ import annotations

import re

# what a spreadsheet would start a formula with (OWASP "CSV injection")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value):
    """Text a spreadsheet would run as a formula gets a leading apostrophe; anything else as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


# The C0 control characters other than tab, line feed and carriage return: XML 1.0 forbids them in
# a worksheet and openpyxl refuses them (IllegalCharacterError); a CSV or old .xls may carry them.
ILLEGAL_CHARACTERS = re.compile(r"[\000-\010\013\014\016-\037]")
REPLACEMENT_CHARACTER = "\ufffd"


def worksheet_text(value):
    """Text with each character a worksheet cannot hold shown as �, so the clerk sees where it
    was; anything else as it is."""
    if isinstance(value, str) and ILLEGAL_CHARACTERS.search(value):
        return ILLEGAL_CHARACTERS.sub(REPLACEMENT_CHARACTER, value)
    return value

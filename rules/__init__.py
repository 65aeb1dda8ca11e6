"""Business rules of the mutual-aid insurance back office (DESIGN.md §3–§4).

Pure functions: no Flask, no database, no I/O.  Every rule returns a ``Check``; its ``code``
is a ``Code`` from the one registry in ``rules.codes``.
"""

from .age import AGE_HARD_LIMIT, AGE_LIMIT, AGE_MIN, age_on, check_age
from .codes import WARNINGS, Code
from .dates import check_effective_date, format_date, format_when, next_month, parse_date, parse_month
from .idnumber import IdInfo, check_id, id_check_digit, mask_id, normalize_id, parse_id
from .member_no import MEMBER_NO_DIGITS, parse_member_no
from .money import amount_in_words, format_amount, format_yuan
from .names import MIDDLE_DOT, NAME_MAX_LENGTH, check_name
from .products import (
    ProductTerms,
    add_months,
    check_amount,
    check_over_shares,
    check_product_gender,
    check_shares,
    parse_amount,
    periods_overlap,
    policy_expiry,
)
from .result import Check
from .spreadsheet import FORMULA_PREFIXES, ILLEGAL_CHARACTERS, escape_formula, worksheet_text
from .termination import (
    COMMON_REASONS,
    MAX_POLICIES,
    check_end_date,
    check_reason,
    refund,
    remaining_days,
    term_days,
)

__all__ = [
    "AGE_HARD_LIMIT",
    "AGE_LIMIT",
    "AGE_MIN",
    "age_on",
    "check_age",
    "WARNINGS",
    "Code",
    "check_effective_date",
    "format_date",
    "format_when",
    "parse_date",
    "parse_month",
    "next_month",
    "IdInfo",
    "check_id",
    "id_check_digit",
    "mask_id",
    "normalize_id",
    "parse_id",
    "MEMBER_NO_DIGITS",
    "parse_member_no",
    "amount_in_words",
    "format_amount",
    "format_yuan",
    "MIDDLE_DOT",
    "NAME_MAX_LENGTH",
    "check_name",
    "ProductTerms",
    "add_months",
    "check_amount",
    "check_over_shares",
    "check_product_gender",
    "check_shares",
    "parse_amount",
    "periods_overlap",
    "policy_expiry",
    "Check",
    "FORMULA_PREFIXES",
    "escape_formula",
    "ILLEGAL_CHARACTERS",
    "worksheet_text",
    "COMMON_REASONS",
    "MAX_POLICIES",
    "check_end_date",
    "check_reason",
    "refund",
    "remaining_days",
    "term_days",
]

"""One parser per input: 会员编号, 预期生效时间 not before today, and the spreadsheet formula guard."""

from datetime import date

import pytest

from rules import Code, check_effective_date, escape_formula, parse_member_no, worksheet_text


@pytest.fixture(autouse=True)
def _rollback_after_test():
    """Overrides conftest's per-test database transaction: these rules touch no database."""
    yield


@pytest.mark.parametrize(
    "typed,stored",
    [
        ("0000012345", "0000012345"),
        ("12345", "0000012345"),  # leading zeros optional
        (" 12345\u3000", "0000012345"),  # blanks at the ends, full-width too
        ("1", "0000000001"),
        (12345, "0000012345"),  # a number cell
        (12345.0, "0000012345"),  # a number cell read as a float
        ("9999999999", "9999999999"),
    ],
)
def test_a_member_number_is_found_with_or_without_its_leading_zeros(typed, stored):
    assert parse_member_no(typed) == stored


@pytest.mark.parametrize(
    "typed",
    ["", "   ", "12345678901", "110105199003074510", "12a45", "１２３", "-12", 12.5, -3, True, None, date(2026, 1, 1)],
)
def test_what_is_no_member_number_is_none(typed):
    assert parse_member_no(typed) is None


def test_an_effective_date_before_today_is_refused_today_and_later_pass():
    today = date(2026, 3, 1)
    past = check_effective_date(date(2026, 2, 28), today)
    assert not past.ok and past.code == Code.EFFECTIVE_PAST and past.message == "预期生效时间不能早于今天"
    assert check_effective_date(today, today).ok and check_effective_date(date(2027, 1, 1), today).value == date(
        2027, 1, 1
    )


@pytest.mark.parametrize("text", ["=1+1", "+86", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_a_cell_a_spreadsheet_would_run_gets_an_apostrophe(text):
    assert escape_formula(text) == "'" + text


@pytest.mark.parametrize("value", ["张伟", "", "1=1", 12, None, date(2026, 1, 1)])
def test_other_values_are_left_as_they_are(value):
    assert escape_formula(value) == value


def test_a_character_a_worksheet_cannot_hold_is_shown_as_a_replacement_mark():
    assert worksheet_text("张\x01伟\x1f") == "张\ufffd伟\ufffd"
    assert worksheet_text("a\tb\nc\r") == "a\tb\nc\r"  # tab and line ends are fine
    assert worksheet_text(12) == 12


def test_dates_times_and_amounts_read_the_same_on_every_screen_and_document():
    from datetime import datetime
    from decimal import Decimal

    from rules import format_amount, format_when, format_yuan

    assert format_when(date(2026, 3, 1)) == "2026-03-01"
    assert format_when(datetime(2026, 3, 1, 8, 5, 59)) == "2026-03-01 08:05"
    assert format_when(None) == "" and format_when("2026-03-01") == "2026-03-01"
    assert format_amount(Decimal("1005.5")) == "1005.50" and format_amount(None) == ""
    assert format_yuan(20) == "20.00 元" and format_yuan(None) == ""

"""Dates as clerks type them."""

from datetime import date, datetime

import pytest

from rules import format_date, next_month, parse_date, parse_month


@pytest.fixture(autouse=True)
def _rollback_after_test():
    """Overrides conftest's per-test database transaction: these rules touch no database."""
    yield


@pytest.mark.parametrize(
    "value",
    [
        "2026-03-01",
        "2026/03/01",
        "2026/3/1",
        "2026.3.1",
        "20260301",
        " 2026-03-01 ",
        "2026年3月1日",
        "2026年03月01",
        "2026-03-01 00:00:00",
        "2026-03-01T08:30",
        date(2026, 3, 1),
        datetime(2026, 3, 1, 8, 30),
    ],
)
def test_a_date_is_read_from_the_usual_ways_of_writing_it(value):
    assert parse_date(value) == date(2026, 3, 1)


@pytest.mark.parametrize(
    "value",
    [
        "2026-02-29",
        "2026-13-01",
        "2026-00-10",
        "2026-04-31",
        "0000-01-01",
        "2026-03/01",
        "26-3-1",
        "2026030",
        "",
        "tomorrow",
        46082,
        46082.0,
        None,
    ],
    ids=[
        "29 February of a common year",
        "month 13",
        "month 0",
        "31 April",
        "year 0",
        "mixed separators",
        "two-digit year",
        "seven digits",
        "empty",
        "a word",
        "Excel serial day",
        "Excel serial float",
        "None",
    ],
)
def test_anything_else_is_no_date(value):
    assert parse_date(value) is None


def test_29_february_of_a_leap_year_is_a_date():
    assert parse_date("2028-02-29") == date(2028, 2, 29)


def test_a_date_is_written_year_month_day():
    assert format_date(date(2026, 3, 1)) == "2026-03-01"
    assert format_date(datetime(2026, 3, 1, 8, 30)) == "2026-03-01"
    assert format_date(date(999, 1, 2)) == "0999-01-02"
    assert format_date(None) == ""


@pytest.mark.parametrize(
    "value, first, last",
    [
        ("2026-08", date(2026, 8, 1), date(2026, 8, 31)),
        ("2026/2", date(2026, 2, 1), date(2026, 2, 28)),
        ("2028.02", date(2028, 2, 1), date(2028, 2, 29)),
        (" 2026年12月 ", date(2026, 12, 1), date(2026, 12, 31)),
    ],
)
def test_a_month_as_clerks_type_it_gives_its_first_and_last_day(value, first, last):
    assert parse_month(value) == (first, last)


@pytest.mark.parametrize("value", ["2026-13", "2026-00", "0000-01", "2026", "八月", "", None, 202608])
def test_anything_else_is_no_month(value):
    assert parse_month(value) is None


def test_the_default_month_is_the_next_one_across_the_year_end():
    assert next_month(date(2026, 7, 15)) == "2026-08"
    assert next_month(date(2026, 12, 31)) == "2027-01"

"""Product terms: women-only products, shares, amount = shares × price, policy periods."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rules.products as products
from rules import (
    Code,
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


@pytest.fixture(autouse=True)
def _rollback_after_test():
    """Overrides conftest's per-test database transaction: these rules touch no database."""
    yield


P01 = ProductTerms("P01", "在职职工住院医疗互助保障", Decimal("50"), 2)
P02 = ProductTerms("P02", "女职工特殊疾病互助保障", Decimal("30"), 1, gender_restriction="F")
P03 = ProductTerms("P03", "职工意外伤害互助保障", Decimal("20"), 5)


def test_a_product_runs_twelve_months_for_everyone_unless_said_otherwise():
    assert (P01.term_months, P01.gender_restriction) == (12, None)


# --- gender -----------------------------------------------------------------------------------


def test_a_man_cannot_be_enrolled_in_a_product_for_women():
    check = check_product_gender(P02, "M")
    assert (check.ok, check.code, check.message) == (False, Code.GENDER, "性别错误")


def test_a_woman_can_be_enrolled_in_a_product_for_women_and_anyone_in_the_others():
    assert check_product_gender(P02, "F").ok
    assert check_product_gender(P01, "M").ok and check_product_gender(P01, "F").value == "F"


# --- shares -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,shares",
    [(1, 1), (2, 2), ("2", 2), (" 2 ", 2), ("２", 2), ("2.0", 2), ("+1", 1), (2.0, 2), (Decimal("2.00"), 2)],
)
def test_shares_are_a_whole_number_however_the_cell_holds_it(raw, shares):
    check = check_shares(P01, raw)
    assert (check.ok, check.value, check.field) == (True, shares, "shares")


@pytest.mark.parametrize(
    "raw",
    [0, 3, -1, "3", "1.5", 1.5, float("inf"), float("nan"), Decimal("1.5"), Decimal("NaN"), "", "两份", None, True],
)
def test_shares_must_lie_between_one_and_the_products_maximum(raw):
    check = check_shares(P01, raw)
    assert (check.ok, check.code, check.message) == (False, Code.SHARES_RANGE, "份数应在1至2之间")


def test_a_product_with_many_shares_allows_them_all():
    big = ProductTerms("PX", "x", Decimal("1"), 500)
    assert check_shares(big, 500).value == 500 and check_shares(big, 99).value == 99


# --- amounts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,amount",
    [
        ("100", "100.00"),
        (" 100.5 ", "100.50"),
        ("１００", "100.00"),
        (".5", "0.50"),
        ("100.000", "100.00"),
        (100, "100.00"),
        (50.0, "50.00"),
        (0.1, "0.10"),
        (Decimal("1E+2"), "100.00"),
        (Decimal("30.0"), "30.00"),
    ],
)
def test_an_amount_is_a_positive_figure_with_at_most_two_decimals(raw, amount):
    check = parse_amount(raw)
    assert check.ok and check.value == Decimal(amount) and str(check.value) == amount


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        "100.001",
        "1e2",
        "-5",
        "0",
        "0.00",
        "nan",
        "inf",
        "5_000",
        "1,000",
        0.1 + 0.2,
        1e-05,
        float("nan"),
        Decimal("-1"),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("0.001"),
        10**12,
        Decimal(10) ** 30,
        None,
        True,
        [100],
        object(),
    ],
)
def test_anything_else_is_an_invalid_amount(raw):
    check = parse_amount(raw)
    assert (check.ok, check.code, check.message) == (False, Code.AMOUNT_INVALID, "投保金额格式不正确")


def test_the_amount_memo_forgets_when_it_is_full(monkeypatch):
    monkeypatch.setattr(products, "_AMOUNT_MEMO", {})
    monkeypatch.setattr(products, "_AMOUNT_MEMO_SIZE", 2)
    for raw in ("1", "2", "3", "1"):
        assert parse_amount(raw).value == Decimal(raw)
    assert len(products._AMOUNT_MEMO) <= 2


@pytest.mark.parametrize("shares,amount", [(1, "50"), (2, "100.00"), (2, Decimal("100")), (2, 100)])
def test_the_amount_is_the_shares_times_the_price(shares, amount):
    check = check_amount(P01, shares, amount)
    assert check.ok and check.value == Decimal(shares * 50)


def test_an_amount_that_does_not_match_the_shares_is_refused_with_the_amount_due():
    check = check_amount(P01, 2, "50")
    assert (check.ok, check.code, check.message) == (False, Code.AMOUNT_MISMATCH, "投保金额与份数不符")
    assert check.value == Decimal("100.00")


def test_an_amount_that_is_no_amount_is_invalid_before_it_can_mismatch():
    assert check_amount(P01, 2, "一百").code == Code.AMOUNT_INVALID


def test_shares_of_overlapping_policies_may_not_exceed_the_maximum():
    assert check_over_shares(P01, 1, 1).ok and check_over_shares(P01, 1, 1).value == 2
    check = check_over_shares(P01, 1, 2)
    assert (check.ok, check.code, check.message, check.value) == (False, Code.OVER_SHARES, "超份数", 3)


# --- periods ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start,months,end",
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 11, 15), 3, date(2027, 2, 15)),
        (date(2026, 3, 1), 12, date(2027, 3, 1)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2026, 1, 15), -13, date(2024, 12, 15)),
    ],
)
def test_adding_months_keeps_the_day_or_clamps_it_to_the_months_end(start, months, end):
    assert add_months(start, months) == end


@pytest.mark.parametrize(
    "effective,months,expiry",
    [
        (date(2026, 1, 1), 12, date(2026, 12, 31)),
        (date(2026, 3, 1), 12, date(2027, 2, 28)),
        (date(2027, 3, 1), 12, date(2028, 2, 29)),
        (date(2026, 1, 31), 1, date(2026, 2, 27)),
        (date(2026, 2, 28), 12, date(2027, 2, 27)),
    ],
)
def test_a_policy_expires_the_day_before_its_term_is_over(effective, months, expiry):
    assert policy_expiry(effective, months) == expiry


D = date


@pytest.mark.parametrize(
    "a,b,overlap",
    [
        ((D(2026, 1, 1), D(2026, 12, 31)), (D(2026, 12, 31), D(2027, 12, 30)), True),
        ((D(2026, 1, 1), D(2026, 12, 31)), (D(2027, 1, 1), D(2027, 12, 31)), False),
        ((D(2026, 6, 1), D(2026, 6, 30)), (D(2026, 1, 1), D(2026, 12, 31)), True),
        ((D(2027, 1, 1), D(2027, 12, 31)), (D(2026, 1, 1), D(2026, 12, 31)), False),
        ((D(2026, 1, 1), None), (D(2030, 1, 1), D(2030, 2, 1)), True),
        ((D(2026, 1, 1), D(2026, 2, 1)), (D(2025, 1, 1), None), True),
        ((D(2026, 1, 1), D(2026, 2, 1)), (D(2026, 3, 1), None), False),
    ],
    ids=[
        "sharing the last day",
        "one after the other",
        "one inside the other",
        "reversed order",
        "open end reaching the other",
        "the other open since before",
        "the other open but later",
    ],
)
def test_periods_overlap_when_they_share_a_day(a, b, overlap):
    assert periods_overlap(*a, *b) == overlap
    assert periods_overlap(*b, *a) == overlap


@settings(max_examples=60, deadline=None)
@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2100, 12, 31)), st.integers(1, 120))
def test_a_term_covers_exactly_its_months(effective, months):
    expiry = policy_expiry(effective, months)
    assert effective <= expiry
    assert not periods_overlap(effective, expiry, add_months(effective, months), None)


def test_one_amount_for_everyone_is_whole_shares_within_the_products_limits():
    from rules.products import shares_for_amount

    p03 = ProductTerms("P03", "职工意外伤害互助保障", Decimal("20.00"), 5)
    assert shares_for_amount(p03, Decimal("40")).value == 2
    assert shares_for_amount(p03, "100.00").value == 5
    for amount, words in (
        ("30", "不是每份金额 20.00 元的整数倍"),
        ("120", "为 6 份，超过每人最多 5 份"),
        ("10", "不是"),
    ):
        check = shares_for_amount(p03, amount)
        assert not check.ok and check.code == Code.AMOUNT_MISMATCH and words in check.message
        assert check.message.endswith("职工意外伤害互助保障可填：20.00、40.00、60.00、80.00、100.00 元")
    assert shares_for_amount(p03, "abc").code == Code.AMOUNT_INVALID

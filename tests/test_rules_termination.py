"""保单提前终止: the refund of the remaining whole days, and the requested end date.

Refund = amount × (expiry − end date) / (days of the term), to the fen with ROUND_HALF_UP; the
policy still covers its end date; nothing back when the end date is on or after the expiry."""

from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import COMMON_REASONS, Code, check_end_date, check_reason, policy_expiry, refund, remaining_days, term_days


@pytest.fixture(autouse=True)
def _rollback_after_test():
    """Overrides conftest's per-test database transaction: these rules touch no database."""
    yield


D = date.fromisoformat


@pytest.mark.parametrize(
    "effective,expiry,days",
    [
        ("2026-03-01", "2027-02-28", 365),  # a common year
        ("2027-03-01", "2028-02-29", 366),  # the term holds 29 February 2028
        ("2028-02-29", "2029-02-27", 365),  # starts on a leap day: 12 months later is 28 February, minus one
        ("2026-01-31", "2027-01-30", 365),
        ("2026-01-01", "2026-01-01", 1),
    ],
)
def test_a_term_counts_both_its_first_and_its_last_day(effective, expiry, days):
    assert term_days(D(effective), D(expiry)) == days


def test_the_terms_of_twelve_month_products_are_what_policy_expiry_gives():
    assert policy_expiry(D("2028-02-29"), 12) == D("2029-02-27")
    assert policy_expiry(D("2027-03-01"), 12) == D("2028-02-29")


@pytest.mark.parametrize(
    "amount,effective,expiry,end,expected,why",
    [
        # 181 days after 31 Aug up to 28 Feb (Sep 30, Oct 31, Nov 30, Dec 31, Jan 31, Feb 28): 50 × 181/365 = 24.794…
        ("50.00", "2026-03-01", "2027-02-28", "2026-08-31", "24.79", "common year, month end"),
        # the day before expiry: one day left, 100 × 1/366 = 0.2732…
        ("100.00", "2027-03-01", "2028-02-29", "2028-02-28", "0.27", "leap year, last day but one"),
        # ended on 29 Feb 2028 itself: 0 days left of a term ending that day
        ("100.00", "2027-03-01", "2028-02-29", "2028-02-29", "0.00", "ends on its expiry (a leap day)"),
        # ended on 29 Feb 2028 inside a term: 2028-03-01 … 2028-03-31 is 31 days left of 366: 366 × 31/366
        ("366.00", "2027-04-01", "2028-03-31", "2028-02-29", "31.00", "ended on a leap day"),
        # a policy from 31 Jan: ended 28 Feb (the month's end), 336 days left of 365: 20 × 336/365 = 18.410…
        ("20.00", "2026-01-31", "2027-01-30", "2026-02-28", "18.41", "month end after a 31st"),
        # the first day only is covered: 364 of 365 days back, 100 × 364/365 = 99.726…
        ("100.00", "2026-03-01", "2027-02-28", "2026-03-01", "99.73", "ended on its first day"),
        # ended before it took effect (effective in the future): the whole amount back, never more
        ("100.00", "2026-03-01", "2027-02-28", "2026-02-28", "100.00", "the day before it took effect"),
        ("100.00", "2026-03-01", "2027-02-28", "2025-12-31", "100.00", "long before it took effect"),
        ("100.00", "2026-03-01", "2027-02-28", "2027-02-28", "0.00", "on the expiry date"),
        ("100.00", "2026-03-01", "2027-02-28", "2027-03-31", "0.00", "after the expiry date"),
        ("0.00", "2026-03-01", "2027-02-28", "2026-08-31", "0.00", "nothing paid, nothing back"),
        # ROUND_HALF_UP: 1.83 × 1/366 = 0.005 exactly → 0.01 (half-even would give 0.00)
        ("1.83", "2027-03-01", "2028-02-29", "2028-02-28", "0.01", "an exact half fen rounds up"),
        # an 8-day term: 1.00 × 1/8 = 0.125 → 0.13 (half-even: 0.12); 3 days: 0.375 → 0.38
        ("1.00", "2026-01-01", "2026-01-08", "2026-01-07", "0.13", "half up, not to even"),
        ("1.00", "2026-01-01", "2026-01-08", "2026-01-05", "0.38", "half up, 3 of 8 days"),
        # 0.10 × 1/4 = 0.025 → 0.03
        ("0.10", "2026-01-01", "2026-01-04", "2026-01-03", "0.03", "half a fen on a small amount"),
        # 999999999999.99 × 181/365 = 495890410958.8991…: no float anywhere, all digits kept
        ("999999999999.99", "2026-03-01", "2027-02-28", "2026-08-31", "495890410958.90", "the largest amount"),
    ],
)
def test_the_refund_is_the_remaining_whole_days_pro_rata_rounded_half_up_to_the_fen(
    amount, effective, expiry, end, expected, why
):
    got = refund(Decimal(amount), D(effective), D(expiry), D(end))
    assert got == Decimal(expected), why
    assert got.as_tuple().exponent == -2, "always two places (元.角分)"


def test_the_exact_half_fen_case_is_where_half_up_and_half_even_differ():
    exact = Decimal("1.83") / 366
    assert exact == Decimal("0.005")
    assert exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN) == Decimal("0.00")
    assert refund(Decimal("1.83"), D("2027-03-01"), D("2028-02-29"), D("2028-02-28")) == Decimal("0.01")


def test_an_int_amount_is_whole_yuan():
    assert refund(365, D("2026-03-01"), D("2027-02-28"), D("2027-02-27")) == Decimal("1.00")


@pytest.mark.parametrize(
    "amount,error", [(50.0, TypeError), (True, TypeError), ("50", TypeError), (Decimal("-1"), ValueError)]
)
def test_a_float_text_or_negative_amount_is_a_programming_error(amount, error):
    with pytest.raises(error):
        refund(amount, D("2026-03-01"), D("2027-02-28"), D("2026-08-31"))


def test_nan_is_no_amount():
    with pytest.raises(ValueError):
        refund(Decimal("NaN"), D("2026-03-01"), D("2027-02-28"), D("2026-08-31"))


def test_an_expiry_before_the_effective_date_is_a_programming_error():
    with pytest.raises(ValueError, match="早于"):
        term_days(D("2026-03-01"), D("2026-02-27"))


def test_remaining_days_never_exceed_the_term():
    assert remaining_days(D("2026-03-01"), D("2027-02-28"), D("2020-01-01")) == 365
    assert remaining_days(D("2026-03-01"), D("2027-02-28"), D("2027-02-27")) == 1
    assert remaining_days(D("2026-03-01"), D("2027-02-28"), D("2027-02-28")) == 0


dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
amounts = st.integers(min_value=0, max_value=10**8).map(lambda c: Decimal(c) / 100)


@given(amounts, dates, st.integers(min_value=1, max_value=60), st.integers(min_value=-400, max_value=800))
def test_the_refund_lies_between_nothing_and_the_amount_and_falls_as_the_end_date_moves_on(
    amount, effective, months, offset
):
    expiry = policy_expiry(effective, months)
    end = effective + timedelta(days=offset)
    got = refund(amount, effective, expiry, end)
    assert Decimal("0") <= got <= amount
    assert refund(amount, effective, expiry, end + timedelta(days=1)) <= got
    if end >= expiry:
        assert got == 0
    if end < effective:
        assert got == amount


@pytest.mark.parametrize(
    "end,expiry,code,message",
    [
        (None, None, Code.END_DATE_EMPTY, "请填写申请终止日期"),
        ("2026-05-31", None, Code.END_DATE_PAST, "申请终止日期不能早于今天"),
        ("2027-02-28", "2027-02-28", Code.END_DATE_AFTER_EXPIRY, "申请终止日期必须早于保单到期日期（2027-02-28）"),
        ("2027-03-01", "2027-02-28", Code.END_DATE_AFTER_EXPIRY, "申请终止日期必须早于保单到期日期（2027-02-28）"),
    ],
)
def test_an_end_date_in_the_past_or_not_before_expiry_is_refused_with_its_message(end, expiry, code, message):
    check = check_end_date(D(end) if end else None, D("2026-06-01"), D(expiry) if expiry else None)
    assert (check.ok, check.code, check.message, check.field) == (False, code, message, "end_date")


@pytest.mark.parametrize(
    "end,expiry", [("2026-06-01", "2027-02-28"), ("2027-02-27", "2027-02-28"), ("2030-01-01", None)]
)
def test_today_or_a_later_day_before_expiry_is_accepted(end, expiry):
    check = check_end_date(D(end), D("2026-06-01"), D(expiry) if expiry else None)
    assert check.ok and check.value == D(end)


@pytest.mark.parametrize(
    "choice,text,reason",
    [
        ("会员退休", "", "会员退休"),
        ("会员退休", "  2026年5月办理退休  ", "会员退休：2026年5月办理退休"),
        ("其他", "单位改制，保障由新单位承接", "单位改制，保障由新单位承接"),
    ],
)
def test_the_reason_is_a_common_one_with_the_clerks_words_added(choice, text, reason):
    check = check_reason(choice, text)
    assert check.ok and check.value == reason


@pytest.mark.parametrize(
    "choice,text,code,message",
    [
        ("", "", Code.REASON_EMPTY, "请选择终止原因"),
        ("随便写的", "", Code.REASON_EMPTY, "请选择终止原因"),
        ("其他", "   ", Code.REASON_OTHER, "选择“其他”时，请在补充说明中写明终止原因"),
        ("会员退休", "很" * 200, Code.REASON_LENGTH, "终止原因不超过200字"),
    ],
)
def test_a_missing_unknown_or_too_long_reason_is_refused_with_its_message(choice, text, code, message):
    check = check_reason(choice, text)
    assert (check.ok, check.code, check.message) == (False, code, message)


def test_the_common_reasons_end_with_other():
    assert COMMON_REASONS[-1] == "其他" and len(set(COMMON_REASONS)) == len(COMMON_REASONS)

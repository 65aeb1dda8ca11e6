"""Receipts: the amount in Chinese capitals (大写金额) and in figures."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import amount_in_words, format_yuan


@pytest.fixture(autouse=True)
def _rollback_after_test():
    """Overrides conftest's per-test database transaction: these rules touch no database."""
    yield


@pytest.mark.parametrize(
    "amount,words",
    [
        ("1005.50", "壹仟零伍元伍角"),
        ("0.05", "伍分"),
        ("100", "壹佰元整"),
        ("10010.01", "壹万零壹拾元零壹分"),
        ("0", "零元整"),
        ("0.00", "零元整"),
        ("123456789.12", "壹亿贰仟叁佰肆拾伍万陆仟柒佰捌拾玖元壹角贰分"),
        ("100000000", "壹亿元整"),
        ("100010000", "壹亿零壹万元整"),
        ("1.5", "壹元伍角"),
        ("1.05", "壹元零伍分"),
        ("0.50", "伍角"),
        ("0.55", "伍角伍分"),
        ("10", "壹拾元整"),
        ("10.50", "壹拾元伍角"),
        ("100.05", "壹佰元零伍分"),
        ("1200000", "壹佰贰拾万元整"),
        ("105000", "壹拾万伍仟元整"),
        ("100000001", "壹亿零壹元整"),
        ("1000000100", "壹拾亿零壹佰元整"),
        ("999999999999.99", "玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
    ],
)
def test_the_amount_in_capitals(amount, words):
    assert amount_in_words(Decimal(amount)) == words
    assert amount_in_words(amount) == words


def test_an_int_is_whole_yuan():
    assert amount_in_words(1005) == "壹仟零伍元整"


@pytest.mark.parametrize(
    "amount,message",
    [
        (Decimal("-1"), "负数"),
        (Decimal("0.001"), "两位小数"),
        (Decimal(10) ** 12, "1万亿"),
        ("1000000000000", "1万亿"),
        ("abc", "格式"),
        ("NaN", "有限"),
        (Decimal("Infinity"), "有限"),
    ],
    ids=["negative", "three decimals", "one 万亿", "one 万亿 as text", "no number", "NaN", "infinity"],
)
def test_an_amount_that_cannot_be_written_raises_a_value_error_in_chinese(amount, message):
    with pytest.raises(ValueError, match=message):
        amount_in_words(amount)


@pytest.mark.parametrize("amount", [1.5, True, None, [1]])
def test_a_float_or_other_non_amount_is_a_type_error(amount):
    with pytest.raises(TypeError):
        amount_in_words(amount)


@pytest.mark.parametrize(
    "amount,text",
    [(Decimal("1005.5"), "1005.50 元"), (Decimal("0"), "0.00 元"), (100, "100.00 元"), ("12345.675", "12345.68 元")],
)
def test_an_amount_in_figures_has_two_decimals_and_no_separator(amount, text):
    assert format_yuan(amount) == text


# --- properties: read the words back --------------------------------------------------------

DIGIT = {c: i for i, c in enumerate("零壹贰叁肆伍陆柒捌玖")}
UNIT = {"拾": 10, "佰": 100, "仟": 1000}


def words_to_amount(words):
    """An independent reader of 大写金额, to check the writer against."""
    if "元" in words:
        integer, fraction = words.split("元")
    else:
        integer, fraction = "", words
    total = section = digit = 0
    for ch in integer:
        if ch in DIGIT:
            digit = DIGIT[ch]
        elif ch in UNIT:
            section += digit * UNIT[ch]
            digit = 0
        elif ch == "万":
            total += (section + digit) * 10**4
            section = digit = 0
        else:
            assert ch == "亿"
            total = (total + section + digit) * 10**8
            section = digit = 0
    cents = (total + section + digit) * 100
    fraction = fraction.removesuffix("整")
    for i, ch in enumerate(fraction):
        if ch == "角":
            cents += DIGIT[fraction[i - 1]] * 10
        elif ch == "分":
            cents += DIGIT[fraction[i - 1]]
    return Decimal(cents).scaleb(-2)


amounts = st.integers(0, 10**14 - 1).map(lambda cents: Decimal(cents).scaleb(-2))


@settings(max_examples=200, deadline=None)
@given(amounts)
def test_the_words_read_back_to_the_amount(amount):
    assert words_to_amount(amount_in_words(amount)) == amount


@settings(max_examples=200, deadline=None)
@given(amounts.filter(lambda a: a != 0))
def test_the_words_never_hold_two_zeros_in_a_row_nor_end_in_zero(amount):
    words = amount_in_words(amount)
    assert "零零" not in words and not words.endswith("零") and not words.startswith("零")


@settings(max_examples=100, deadline=None)
@given(amounts, amounts)
def test_different_amounts_have_different_words(a, b):
    assert (amount_in_words(a) == amount_in_words(b)) == (a == b)

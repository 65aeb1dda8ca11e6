"""身份证号: 18 characters, a real birth date, the right check digit; cleaned before checking."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import Code, IdInfo, check_id, id_check_digit, mask_id, normalize_id, parse_id


@pytest.fixture(autouse=True)
def _rollback_after_test():
    """Overrides conftest's per-test database transaction: these rules touch no database."""
    yield


TODAY = date(2026, 3, 1)
WORKED_EXAMPLE = "11010519491231002X"  # GB 11643-1999's own example


def make_id(region="110105", birth=date(1990, 3, 7), seq="123"):
    first17 = f"{region}{birth:%Y%m%d}{seq}"
    return first17 + id_check_digit(first17)


# --- check_id --------------------------------------------------------------------------------


def test_the_standards_worked_example_is_a_woman_born_31_december_1949():
    check = check_id(WORKED_EXAMPLE, TODAY)
    assert check.ok and check.code is None and check.field == "id_number"
    assert check.value == IdInfo("F", date(1949, 12, 31), WORKED_EXAMPLE)
    assert check.value.gender == "F" and check.value.birth_date == date(1949, 12, 31)


def test_an_odd_seventeenth_digit_means_a_man():
    assert check_id(make_id(seq="123"), TODAY).value.gender == "M"
    assert check_id(make_id(seq="124"), TODAY).value.gender == "F"


def _first17_with_check_digit(digit):
    candidates = (f"11010519900307{seq:03d}" for seq in range(1000))
    return next(first17 for first17 in candidates if id_check_digit(first17) == digit)


@pytest.mark.parametrize("digit", list("0123456789X"))
def test_each_check_digit_is_accepted_exactly_where_it_is_right(digit):
    first17 = _first17_with_check_digit(digit)
    for candidate in "0123456789X":
        check = check_id(first17 + candidate, TODAY)
        if candidate == digit:
            assert check.ok
        else:
            assert check.code == Code.ID_CHECKSUM
            assert check.message == f"投保人身份证不合法,错误原因:检验位应为{digit}"


def test_a_wrong_check_digit_says_which_one_is_right():
    check = check_id("110105194912310021", TODAY)
    assert (check.ok, check.code) == (False, Code.ID_CHECKSUM)
    assert check.message == "投保人身份证不合法,错误原因:检验位应为X"
    assert check.value == "110105194912310021"
    assert check.hint == "请通过【会员变更管理】修改身份证号"


@pytest.mark.parametrize(
    "text",
    ["110105491231002", "11010519491231002", "11010519491231002X1", "", "X"],
    ids=["15-digit legacy number", "17 digits", "19 characters", "empty", "one character"],
)
def test_an_id_number_must_have_18_characters(text):
    check = check_id(text, TODAY)
    assert (check.code, check.message, check.value) == (Code.ID_LENGTH, "身份证号必须为18位", text)


@pytest.mark.parametrize(
    "text",
    [
        "11010519491231002x",
        "1101051949123100X2",
        "11010519491231002A",
        "ABCDEFGHIJKLMNOPQR",
        "１１０１０５１９４９１２３１００２X",
        "11010519491231002-",
    ],
    ids=["lower-case x unnormalized", "X not last", "letter last", "letters", "full-width", "dash"],
)
def test_an_id_number_holds_digits_and_a_final_X_only(text):
    assert check_id(text, TODAY).code == Code.ID_CHARS


@pytest.mark.parametrize(
    "birth",
    ["19990230", "19991301", "19990001", "19990100", "19000229", "18991231", "20260302", "21000101"],
    ids=[
        "30 February",
        "month 13",
        "month 0",
        "day 0",
        "29 February 1900 (no leap year)",
        "before 1900",
        "the day after today",
        "future century",
    ],
)
def test_the_birth_date_must_be_a_real_day_between_1900_and_today(birth):
    first17 = f"110105{birth}123"
    check = check_id(first17 + id_check_digit(first17), TODAY)
    assert (check.code, check.message) == (Code.ID_BIRTHDATE, "身份证号出生日期不合法")


@pytest.mark.parametrize("birth", [date(1900, 1, 1), date(2000, 2, 29), TODAY])
def test_the_first_day_of_1900_a_leap_day_and_today_are_real_birth_dates(birth):
    assert check_id(make_id(birth=birth), TODAY).value.birth_date == birth


def test_the_length_is_checked_before_the_characters_the_date_and_the_check_digit():
    assert check_id("1101051949123X", TODAY).code == Code.ID_LENGTH
    assert check_id("11010519991330002A", TODAY).code == Code.ID_CHARS
    assert check_id("110105199902300021", TODAY).code == Code.ID_BIRTHDATE


def test_without_a_reference_date_a_birth_date_is_checked_against_today():
    assert check_id(WORKED_EXAMPLE).ok
    assert check_id(make_id(birth=date(date.today().year + 1, 1, 1))).code == Code.ID_BIRTHDATE


def test_the_check_digit_follows_iso_7064_mod_11_2():
    assert id_check_digit("11010519491231002") == "X"
    first17 = "34052419800101001"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    expected = "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights)) % 11]
    assert id_check_digit(first17) == expected


@pytest.mark.parametrize("bad", ["1101051949123100", "1101051949123100X", "１１０１０５１９４９１２３１００２"])
def test_a_check_digit_needs_17_ascii_digits(bad):
    with pytest.raises(ValueError):
        id_check_digit(bad)


# --- normalize_id and parse_id ------------------------------------------------------------------


def test_a_clean_number_is_taken_as_it_is_without_a_warning():
    check = normalize_id(WORKED_EXAMPLE)
    assert (check.ok, check.value, check.warnings) == (True, WORKED_EXAMPLE, ())


@pytest.mark.parametrize(
    "raw",
    [
        " 11010519491231002X ",
        "11010519491231002x",
        "１１０１０５１９４９１２３１００２Ｘ",
        "１１０１０５１９４９１２３１００２ｘ",
        "\u300011010519491231002X\u3000",
        "110105 19491231 002X",
        "110105\u300019491231\t002X\n",
        "\ufeff11010519491231002X",
    ],
    ids=[
        "outer spaces",
        "lower-case x",
        "full-width",
        "full-width lower-case x",
        "full-width spaces",
        "inner spaces",
        "mixed blanks",
        "byte-order mark",
    ],
)
def test_spaces_full_width_digits_and_a_lower_case_x_are_fixed_with_a_warning(raw):
    check = parse_id(raw, TODAY)
    assert check.ok and check.value.number == WORKED_EXAMPLE
    assert check.warnings == (Code.ID_NORMALIZED,)
    assert normalize_id(raw).value == WORKED_EXAMPLE


@pytest.mark.parametrize(
    "cell",
    [
        1.10105e17,
        110105194912310000,
        Decimal("110105194912310000"),
        "1.10105E+17",
        "1.10105e17",
        "1.10105E17",
        " 1.10105E+17 ",
        "110105194912310000.0",
    ],
    ids=[
        "float",
        "int",
        "Decimal",
        "text 1.10105E+17",
        "text 1.10105e17",
        "text 1.10105E17",
        "text with spaces",
        "text with .0",
    ],
)
def test_a_cell_excel_stored_as_a_number_has_lost_digits_and_says_so(cell):
    check = parse_id(cell, TODAY)
    assert (check.ok, check.code) == (False, Code.ID_NUMERIC_CELL)
    assert check.message == "身份证号单元格为数字格式，已丢失精度，请设为文本后重填"


@pytest.mark.parametrize(
    "cell",
    [None, "", "   ", "\u3000", float("nan")],
    ids=["None", "empty", "spaces", "full-width space", "NaN blank cell"],
)
def test_an_empty_cell_is_an_empty_id_number(cell):
    check = parse_id(cell, TODAY)
    assert (check.code, check.message) == (Code.ID_EMPTY, "身份证号不能为空")


def test_a_warning_is_kept_when_the_cleaned_number_still_fails():
    check = parse_id(" 110105194912310021 ", TODAY)
    assert check.code == Code.ID_CHECKSUM and check.warnings == (Code.ID_NORMALIZED,)


def test_a_short_number_needs_no_cleaning_and_still_fails_on_its_length():
    check = parse_id("110105491231002", TODAY)
    assert check.code == Code.ID_LENGTH and check.warnings == ()


def test_text_with_a_dot_that_is_no_number_is_checked_as_text():
    assert parse_id("110105.19491231002", TODAY).code == Code.ID_CHARS


def test_a_value_of_another_type_is_checked_as_its_text():
    assert parse_id(True, TODAY).code == Code.ID_LENGTH


# --- mask_id -----------------------------------------------------------------------------------


def test_a_masked_number_shows_the_first_6_and_the_last_4_characters():
    assert mask_id(WORKED_EXAMPLE) == "110105********002X"


@pytest.mark.parametrize(
    "text,masked", [("110105491231002", "11***********02"), ("", ""), (None, ""), ("12345", "*****")]
)
def test_a_number_of_another_length_shows_no_more_than_a_third(text, masked):
    assert mask_id(text) == masked


# --- properties ------------------------------------------------------------------------------

regions = st.text(alphabet="0123456789", min_size=6, max_size=6)
births = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
seqs = st.integers(0, 999).map(lambda n: f"{n:03d}")


@settings(max_examples=150, deadline=None)
@given(regions, births, seqs)
def test_every_correctly_built_number_passes(region, birth, seq):
    number = make_id(region, birth, seq)
    check = parse_id(number, TODAY)
    assert check.ok and check.warnings == ()
    assert check.value == IdInfo("M" if int(seq[-1]) % 2 else "F", birth, number)


@settings(max_examples=150, deadline=None)
@given(regions, births, seqs, st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_change_in_the_first_17_is_caught(region, birth, seq, pos, delta):
    number = make_id(region, birth, seq)
    changed = number[:pos] + str((int(number[pos]) + delta) % 10) + number[pos + 1 :]
    assert check_id(changed, TODAY).code in (Code.ID_CHECKSUM, Code.ID_BIRTHDATE)


messy = st.text(alphabet=st.sampled_from(list("0123456789xXeE.+- \t\u3000\u00a0０１２３４５６７８９ｘＸ\ufeffa中")))


@settings(max_examples=150, deadline=None)
@given(st.one_of(messy, st.text()))
def test_normalizing_twice_changes_nothing_more(text):
    first = normalize_id(text)
    if first.ok:
        second = normalize_id(first.value)
        assert second.ok and second.value == first.value and second.warnings == ()
    else:
        assert first.code in (Code.ID_EMPTY, Code.ID_NUMERIC_CELL)

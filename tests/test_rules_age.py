"""Age (周岁) on the reference date: older than 16, younger than 55 (women) / 60 (men);
over the limit and under 65 only with an approved exception and a confirmation."""

from datetime import date

import pytest

from rules import AGE_HARD_LIMIT, AGE_LIMIT, AGE_MIN, Code, age_on, check_age


@pytest.fixture(autouse=True)
def _rollback_after_test():
    """Overrides conftest's per-test database transaction: these rules touch no database."""
    yield


REF = date(2026, 3, 1)


def born_years_before(years, ref=REF, days_later=0):
    """The birthday that makes someone exactly `years` old on `ref` (later by `days_later` days)."""
    birth = ref.replace(year=ref.year - years)
    return birth.fromordinal(birth.toordinal() + days_later)


def test_the_limits_are_the_manuals():
    assert (AGE_MIN, AGE_LIMIT, AGE_HARD_LIMIT) == (16, {"F": 55, "M": 60}, 65)


@pytest.mark.parametrize(
    "gender,birth,exception,ok,code,age",
    [
        ("F", born_years_before(55), False, False, Code.OVER_AGE, 55),
        ("F", born_years_before(55, days_later=1), False, True, None, 54),
        ("F", born_years_before(16), False, False, Code.UNDER_AGE, 16),
        ("F", born_years_before(17), False, True, None, 17),
        ("M", born_years_before(16), False, False, Code.UNDER_AGE, 16),
        ("M", born_years_before(17, days_later=1), False, False, Code.UNDER_AGE, 16),
        ("M", born_years_before(17), False, True, None, 17),
        ("M", born_years_before(59), False, True, None, 59),
        ("M", born_years_before(60), False, False, Code.OVER_AGE, 60),
        ("M", born_years_before(60), True, True, Code.NEEDS_CONFIRMATION, 60),
        ("M", born_years_before(64), True, True, Code.NEEDS_CONFIRMATION, 64),
        ("F", born_years_before(64), True, True, Code.NEEDS_CONFIRMATION, 64),
        ("M", born_years_before(65), True, False, Code.OVER_AGE, 65),
        ("F", born_years_before(65, days_later=1), True, True, Code.NEEDS_CONFIRMATION, 64),
        ("F", born_years_before(130), True, False, Code.OVER_AGE, 130),
        ("M", date(2030, 1, 1), False, False, Code.UNDER_AGE, -4),
    ],
    ids=[
        "a woman exactly 55 on the reference date is over age",
        "a woman the day before her 55th birthday is eligible",
        "a woman of 16 is under age",
        "a woman of 17 is eligible",
        "a man of 16 is under age",
        "a man the day before his 17th birthday is under age",
        "a man of 17 is eligible",
        "a man of 59 is eligible",
        "a man of 60 is over age",
        "a man of 60 with an exception needs confirmation",
        "a man of 64 with an exception needs confirmation",
        "a woman of 64 with an exception needs confirmation",
        "a man of 65 with an exception is over age",
        "a woman the day before her 65th birthday with an exception needs confirmation",
        "an implausible age is over age",
        "someone not yet born is under age",
    ],
)
def test_age_limits_on_the_reference_date(gender, birth, exception, ok, code, age):
    check = check_age(gender, birth, REF, exception=exception)
    assert (check.ok, check.code, check.value) == (ok, code, age)
    assert check.needs_confirmation == (code == Code.NEEDS_CONFIRMATION)


def test_the_confirmation_asks_the_manuals_question():
    check = check_age("F", born_years_before(58), REF, exception=True)
    assert check.message == "此会员超出投保年龄，是否继续投保"


def test_over_age_tells_what_can_be_done():
    check = check_age("F", born_years_before(56), REF)
    assert check.message == "超龄"
    assert check.hint == "未办理正式退休手续且未满65岁的，请通过【超龄例外申请】经代办处同意后投保"


def test_an_unknown_gender_is_a_programming_error():
    with pytest.raises(KeyError):
        check_age("X", born_years_before(30), REF)


@pytest.mark.parametrize(
    "birth,ref,age",
    [
        (date(2000, 2, 29), date(2017, 2, 28), 16),
        (date(2000, 2, 29), date(2017, 3, 1), 17),
        (date(2000, 2, 29), date(2016, 2, 28), 15),
        (date(2000, 2, 29), date(2016, 2, 29), 16),
        (date(1990, 3, 7), date(2026, 3, 6), 35),
        (date(1990, 3, 7), date(2026, 3, 7), 36),
    ],
    ids=[
        "born 29 February: still 16 on 28 February of a common year",
        "born 29 February: 17 on 1 March of a common year",
        "born 29 February: still 15 on 28 February of a leap year",
        "born 29 February: 16 on 29 February of a leap year",
        "the day before the birthday",
        "on the birthday",
    ],
)
def test_full_years_count_from_birthday_to_birthday(birth, ref, age):
    assert age_on(birth, ref) == age


def test_a_man_born_29_february_turns_17_and_eligible_on_1_march_of_a_common_year():
    birth = date(2008, 2, 29)
    assert check_age("M", birth, date(2025, 2, 28)).code == Code.UNDER_AGE
    assert check_age("M", birth, date(2025, 3, 1)).ok

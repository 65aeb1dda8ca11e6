"""姓名: ends trimmed, no space inside, letters and the middle dot only."""

import pytest

from rules import NAME_MAX_LENGTH, Code, check_name


@pytest.fixture(autouse=True)
def _rollback_after_test():
    """Overrides conftest's per-test database transaction: these rules touch no database."""
    yield


@pytest.mark.parametrize("name", ["张三", "阿依古丽·买买提", "欧阳娜娜", "Mary", "爱新觉罗·溥仪·某"])
def test_a_plain_name_or_one_with_a_middle_dot_is_accepted_as_it_is(name):
    check = check_name(name)
    assert (check.ok, check.value, check.warnings, check.field) == (True, name, (), "name")


@pytest.mark.parametrize(
    "raw",
    [" 张三 ", "\u3000张三", "张三\t", "\u00a0张三\n"],
    ids=["ASCII spaces", "full-width space", "tab", "NBSP and newline"],
)
def test_spaces_at_the_ends_are_trimmed_with_a_warning(raw):
    check = check_name(raw)
    assert (check.ok, check.value, check.warnings) == (True, "张三", (Code.NAME_TRIMMED,))


@pytest.mark.parametrize(
    "raw",
    ["张 三", "张\u3000三", "张\u00a0三", "张\t三", "张\u200b三", " 张 三 "],
    ids=["ASCII space", "full-width space", "NBSP", "tab", "zero-width space", "inside and at the ends"],
)
def test_a_space_of_any_width_inside_the_name_is_an_error(raw):
    check = check_name(raw)
    assert (check.ok, check.code, check.message) == (False, Code.NAME_SPACE, "姓名中间不得有空格")


def test_trimming_is_reported_also_when_the_name_then_fails():
    assert check_name(" 张 三 ").warnings == (Code.NAME_TRIMMED,)


@pytest.mark.parametrize("raw", ["阿依古丽•买买提", "阿依古丽・买买提", "阿依古丽･买买提", "阿依古丽‧买买提"])
def test_a_look_alike_of_the_middle_dot_becomes_the_middle_dot(raw):
    check = check_name(raw)
    assert (check.ok, check.value, check.warnings) == (True, "阿依古丽·买买提", (Code.NAME_DOT_NORMALIZED,))


@pytest.mark.parametrize(
    "raw",
    ["张3", "张三1", "张三!", "张三（临时）", "·张三", "张三·", "阿依古丽··买买提", "张.三", "张_三", "张三😀"],
    ids=[
        "digit",
        "trailing digit",
        "exclamation",
        "brackets",
        "leading dot",
        "trailing dot",
        "two dots",
        "full stop",
        "underscore",
        "emoji",
    ],
)
def test_digits_symbols_and_a_misplaced_dot_are_illegal_characters(raw):
    check = check_name(raw)
    assert (check.code, check.message, check.value) == (Code.NAME_CHARS, "姓名含有非法字符", raw)


@pytest.mark.parametrize("raw", [None, "", "   ", "\u3000", float("nan")])
def test_an_empty_name_is_an_error(raw):
    check = check_name(raw)
    assert (check.code, check.message, check.value) == (Code.NAME_EMPTY, "姓名不能为空", "")


def test_a_number_cell_is_checked_as_its_text():
    check = check_name(123)
    assert (check.code, check.value) == (Code.NAME_CHARS, "123")


def test_a_rare_character_in_the_private_use_area_is_a_letter():
    assert check_name("王\ue000").ok


def test_a_name_longer_than_the_column_is_an_error():
    assert check_name("张" * NAME_MAX_LENGTH).ok
    check = check_name("张" * (NAME_MAX_LENGTH + 1))
    assert (check.code, check.message) == (Code.NAME_LENGTH, f"姓名不能超过{NAME_MAX_LENGTH}个字")

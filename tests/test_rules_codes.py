"""The code registry and the Check result: every failure has one code and the manual's words."""

import json

import pytest

from rules import WARNINGS, Check, Code


@pytest.fixture(autouse=True)
def _rollback_after_test():
    """Overrides conftest's per-test database transaction: these rules touch no database."""
    yield


MANUAL_MESSAGES = {
    "ID_LENGTH": "身份证号必须为18位",
    "ID_CHECKSUM": "投保人身份证不合法,错误原因:检验位应为{c}",
    "ID_BIRTHDATE": "身份证号出生日期不合法",
    "ID_NUMERIC_CELL": "身份证号单元格为数字格式，已丢失精度，请设为文本后重填",
    "NAME_SPACE": "姓名中间不得有空格",
    "NOT_IN_UNIT": "查无此会员信息",
    "MEMBER_MISSING": "会员信息不存在，请检查会员信息",
    "NOT_CONFIRMED": "会员未上报财务确认，不能投保",
    "NAME_MISMATCH": "投保人姓名与会员姓名不一致，请检查投保人姓名",
    "IN_FLIGHT": "有在途业务",
    "OVER_SHARES": "超份数",
    "DUPLICATE": "投保记录重复",
    "GENDER": "性别错误",
    "OVER_AGE": "超龄",
    "UNDER_AGE": "未满投保年龄",
    "ALREADY_MEMBER": "该会员已入会",
    "AMOUNT_MISMATCH": "投保金额与份数不符",
    "DUP_IN_FILE": "文件中身份证号重复",
    "ID_EMPTY": "身份证号不能为空",
    "ID_CHARS": "身份证号只能包含数字和末位X",
    "NAME_EMPTY": "姓名不能为空",
    "NAME_CHARS": "姓名含有非法字符",
    "SHARES_RANGE": "份数应在1至{max}之间",
    "AMOUNT_INVALID": "投保金额格式不正确",
    "NEEDS_CONFIRMATION": "此会员超出投保年龄，是否继续投保",
    "ID_NORMALIZED": "身份证号已自动修正（去除空格、全角转半角、末位x改为大写）",
    "NAME_TRIMMED": "姓名前后空格已去除",
}


@pytest.mark.parametrize("name,message", sorted(MANUAL_MESSAGES.items()))
def test_each_code_carries_the_manuals_wording(name, message):
    assert Code[name].message == message


def test_every_code_has_a_message_and_its_value_is_its_name():
    for code in Code:
        assert code.value == code.name
        assert code.message


def test_a_code_prints_and_serialises_as_its_name():
    assert str(Code.ID_LENGTH) == "ID_LENGTH"
    assert f"{Code.ID_LENGTH}" == "ID_LENGTH"
    assert json.dumps({"code": Code.ID_LENGTH}) == '{"code": "ID_LENGTH"}'
    assert Code.ID_LENGTH == "ID_LENGTH"


def test_the_checksum_message_names_the_right_check_digit():
    assert Code.ID_CHECKSUM.format(c="X") == "投保人身份证不合法,错误原因:检验位应为X"
    assert Code.ID_CHECKSUM.fields == {"c"}


def test_a_message_without_placeholders_formats_to_itself():
    assert Code.OVER_AGE.format() == "超龄"
    assert Code.OVER_AGE.fields == frozenset()


def test_formatting_a_message_without_its_placeholder_is_a_programming_error():
    with pytest.raises(KeyError):
        Code.SHARES_RANGE.format()


@pytest.mark.parametrize(
    "code,hint",
    [
        (Code.NOT_IN_UNIT, "请通过【会员调动管理】办理调入"),
        (Code.MEMBER_MISSING, "请先办理【入会】"),
        (Code.ID_CHECKSUM, "请通过【会员变更管理】修改身份证号"),
        (Code.GENDER, "请通过【会员变更管理】修改身份证号"),
        (Code.IN_FLIGHT, "请先将新建状态的保单上报"),
        (Code.OVER_AGE, "未办理正式退休手续且未满65岁的，请通过【超龄例外申请】经代办处同意后投保"),
        (Code.NAME_MISMATCH, "请核对是否有空格和错别字"),
        (Code.DUPLICATE, ""),
    ],
)
def test_the_manual_says_what_to_do_next(code, hint):
    assert code.hint == hint


def test_only_the_fixes_and_the_agreed_over_age_are_warnings():
    assert Code.ID_NORMALIZED.is_warning and Code.NAME_TRIMMED.is_warning
    assert not Code.ID_LENGTH.is_warning and not Code.NEEDS_CONFIRMATION.is_warning
    assert {Code.ID_NORMALIZED, Code.NAME_TRIMMED, Code.NAME_DOT_NORMALIZED, Code.OVER_AGE_AGREED} == WARNINGS


def test_a_success_has_no_code_and_no_message():
    check = Check.success(42, [Code.NAME_TRIMMED], field="name")
    assert (check.ok, check.code, check.message, check.field) == (True, None, "", "name")
    assert check.warnings == (Code.NAME_TRIMMED,) and check.value == 42
    assert check.hint == "" and not check.needs_confirmation


def test_a_failure_takes_its_message_from_the_registry():
    check = Check.fail(Code.SHARES_RANGE, "shares", [Code.NAME_TRIMMED], 7, max=2)
    assert (check.ok, check.code, check.message) == (False, Code.SHARES_RANGE, "份数应在1至2之间")
    assert (check.field, check.warnings, check.value) == ("shares", (Code.NAME_TRIMMED,), 7)


def test_a_failure_offers_the_manuals_hint():
    assert Check.fail(Code.IN_FLIGHT).hint == "请先将新建状态的保单上报"


def test_a_check_is_immutable_and_compares_by_value():
    check = Check.fail(Code.OVER_AGE)
    with pytest.raises(AttributeError):
        check.ok = True  # type: ignore[misc]
    assert check == Check(False, Code.OVER_AGE, "超龄")
    assert hash(check) == hash(Check(False, Code.OVER_AGE, "超龄"))


def test_warnings_are_put_in_front_and_none_leaves_the_check_alone():
    check = Check.success(1, (Code.NAME_TRIMMED,))
    assert check.with_warnings(()) is check
    assert check.with_warnings((Code.ID_NORMALIZED,)).warnings == (Code.ID_NORMALIZED, Code.NAME_TRIMMED)

"""The one registry of failure and warning codes, with the manual's wording.

Tests assert codes; screens and result files show ``code.message`` (and ``code.hint`` where the
manual says what to do next).  A ``Code`` is a ``str``: it compares equal to, serialises to and
prints as its name (``"ID_LENGTH"``), so it can go straight into JSON.
"""

from __future__ import annotations

from enum import Enum
from string import Formatter


class Code(str, Enum):
    # --- failures from DESIGN.md §4 (the manual's wording) -------------------------------
    ID_LENGTH = "ID_LENGTH"
    ID_CHECKSUM = "ID_CHECKSUM"
    ID_BIRTHDATE = "ID_BIRTHDATE"
    ID_NUMERIC_CELL = "ID_NUMERIC_CELL"
    NAME_SPACE = "NAME_SPACE"
    NOT_IN_UNIT = "NOT_IN_UNIT"
    MEMBER_MISSING = "MEMBER_MISSING"
    NOT_CONFIRMED = "NOT_CONFIRMED"
    NAME_MISMATCH = "NAME_MISMATCH"
    IN_FLIGHT = "IN_FLIGHT"
    OVER_SHARES = "OVER_SHARES"
    DUPLICATE = "DUPLICATE"
    GENDER = "GENDER"
    OVER_AGE = "OVER_AGE"
    UNDER_AGE = "UNDER_AGE"
    ALREADY_MEMBER = "ALREADY_MEMBER"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    DUP_IN_FILE = "DUP_IN_FILE"
    # --- further failures -----------------------------------------------------------------
    ID_EMPTY = "ID_EMPTY"
    ID_CHARS = "ID_CHARS"
    NAME_EMPTY = "NAME_EMPTY"
    NAME_CHARS = "NAME_CHARS"
    NAME_LENGTH = "NAME_LENGTH"
    SHARES_RANGE = "SHARES_RANGE"
    AMOUNT_INVALID = "AMOUNT_INVALID"
    EFFECTIVE_PAST = "EFFECTIVE_PAST"
    END_DATE_EMPTY = "END_DATE_EMPTY"
    END_DATE_PAST = "END_DATE_PAST"
    END_DATE_AFTER_EXPIRY = "END_DATE_AFTER_EXPIRY"
    REASON_EMPTY = "REASON_EMPTY"
    REASON_OTHER = "REASON_OTHER"
    REASON_LENGTH = "REASON_LENGTH"
    # --- a question, not a failure: over the limit, under 65, exception approved -----------
    NEEDS_CONFIRMATION = "NEEDS_CONFIRMATION"
    # --- warnings: the value was fixed, the row goes on -----------------------------------
    ID_NORMALIZED = "ID_NORMALIZED"
    NAME_TRIMMED = "NAME_TRIMMED"
    NAME_DOT_NORMALIZED = "NAME_DOT_NORMALIZED"
    # over the limit, under 65, the agency agreed (超龄例外): the row goes on, the clerk is told
    OVER_AGE_AGREED = "OVER_AGE_AGREED"

    def __str__(self) -> str:  # f"{code}" -> "ID_LENGTH", not "Code.ID_LENGTH"
        return self.value

    @property
    def message(self) -> str:
        """The message as the manual words it (placeholders such as ``{c}`` left in)."""
        return _MESSAGES[self]

    @property
    def hint(self) -> str:
        """What the clerk does next, from the manual; ``""`` where it says nothing."""
        return _HINTS.get(self, "")

    @property
    def is_warning(self) -> bool:
        return self in WARNINGS

    @property
    def fields(self) -> frozenset[str]:
        """Names of the placeholders ``format`` needs (empty for most codes)."""
        return _FIELDS[self]

    def format(self, **kw: object) -> str:  # type: ignore[override]
        """The message with its placeholders filled; a missing placeholder raises KeyError."""
        msg = _MESSAGES[self]
        return msg.format(**kw) if _FIELDS[self] else msg


_MESSAGES: dict[Code, str] = {
    Code.ID_LENGTH: "身份证号必须为18位",
    Code.ID_CHECKSUM: "投保人身份证不合法,错误原因:检验位应为{c}",
    Code.ID_BIRTHDATE: "身份证号出生日期不合法",
    Code.ID_NUMERIC_CELL: "身份证号单元格为数字格式，已丢失精度，请设为文本后重填",
    Code.NAME_SPACE: "姓名中间不得有空格",
    Code.NOT_IN_UNIT: "查无此会员信息",
    Code.MEMBER_MISSING: "会员信息不存在，请检查会员信息",
    Code.NOT_CONFIRMED: "会员未上报财务确认，不能投保",
    Code.NAME_MISMATCH: "投保人姓名与会员姓名不一致，请检查投保人姓名",
    Code.IN_FLIGHT: "有在途业务",
    Code.OVER_SHARES: "超份数",
    Code.DUPLICATE: "投保记录重复",
    Code.GENDER: "性别错误",
    Code.OVER_AGE: "超龄",
    Code.UNDER_AGE: "未满投保年龄",
    Code.ALREADY_MEMBER: "该会员已入会",
    Code.AMOUNT_MISMATCH: "投保金额与份数不符",
    Code.DUP_IN_FILE: "文件中身份证号重复",
    Code.ID_EMPTY: "身份证号不能为空",
    Code.ID_CHARS: "身份证号只能包含数字和末位X",
    Code.NAME_EMPTY: "姓名不能为空",
    Code.NAME_CHARS: "姓名含有非法字符",
    Code.NAME_LENGTH: "姓名不能超过{max}个字",
    Code.SHARES_RANGE: "份数应在1至{max}之间",
    Code.AMOUNT_INVALID: "投保金额格式不正确",
    Code.EFFECTIVE_PAST: "预期生效时间不能早于今天",
    Code.END_DATE_EMPTY: "请填写申请终止日期",
    Code.END_DATE_PAST: "申请终止日期不能早于今天",
    Code.END_DATE_AFTER_EXPIRY: "申请终止日期必须早于保单到期日期（{expiry}）",
    Code.REASON_EMPTY: "请选择终止原因",
    Code.REASON_OTHER: "选择“其他”时，请在补充说明中写明终止原因",
    Code.REASON_LENGTH: "终止原因不超过{max}字",
    Code.NEEDS_CONFIRMATION: "此会员超出投保年龄，是否继续投保",
    Code.ID_NORMALIZED: "身份证号已自动修正（去除空格、全角转半角、末位x改为大写）",
    Code.NAME_TRIMMED: "姓名前后空格已去除",
    Code.NAME_DOT_NORMALIZED: "姓名中的间隔号已统一为“·”",
    Code.OVER_AGE_AGREED: "此会员超出投保年龄，代办处已同意超龄例外",
}

_HINTS: dict[Code, str] = {
    Code.NOT_IN_UNIT: "请通过【会员调动管理】办理调入",
    Code.MEMBER_MISSING: "请先办理【入会】",
    Code.ID_CHECKSUM: "请通过【会员变更管理】修改身份证号",
    Code.GENDER: "请通过【会员变更管理】修改身份证号",
    Code.IN_FLIGHT: "请先将新建状态的保单上报",
    Code.OVER_AGE: "未办理正式退休手续且未满65岁的，请通过【超龄例外申请】经代办处同意后投保",
    Code.NAME_MISMATCH: "请核对是否有空格和错别字",
}

WARNINGS: frozenset[Code] = frozenset(
    {Code.ID_NORMALIZED, Code.NAME_TRIMMED, Code.NAME_DOT_NORMALIZED, Code.OVER_AGE_AGREED}
)

_FIELDS: dict[Code, frozenset[str]] = {
    code: frozenset(f for _, f, _, _ in Formatter().parse(msg) if f) for code, msg in _MESSAGES.items()
}

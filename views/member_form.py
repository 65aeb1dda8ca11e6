"""The single-entry 入会 form: checked by the one admission check of the batch files (batch/admission.py)."""

from __future__ import annotations

from wtforms import BooleanField, StringField
from wtforms.validators import InputRequired, Optional, Regexp

from actions.new_applications import approved_over_age
from batch.admission import AdmissionContext, AdmissionRequest, check_admissions
from rules import Code, check_name, normalize_id

from .access import current_user
from .base import AdminForm

OVER_AGE_QUESTION = "此会员超出投保年龄，是否继续投保？如确定，请勾选下方“确定继续办理”后再保存。"


class MemberEntryForm(AdminForm):
    name = StringField(
        "姓名", [InputRequired("请填写姓名")], description="姓名中间不得有空格；少数民族姓名的间隔号用“·”"
    )
    id_number = StringField(
        "身份证号",
        [InputRequired("请填写身份证号")],
        description="18位，末尾X须大写。性别和出生日期由身份证号自动得出，无需填写",
    )
    phone = StringField("联系电话", [Optional(), Regexp(r"^[0-9+\- ]{7,20}$", message="联系电话只能填写数字，7至20位")])
    confirm_over_age = BooleanField("确定继续办理（此会员超出投保年龄，代办处已同意超龄例外）")

    checked = None  # the admission check's values (id_number, name, gender, birth_date) once it passes
    over_age_app = None  # the agency-approved exception of this ID number (超龄例外申请), if there is one
    fixes: list = []  # what the check corrected in what the clerk typed, said after saving

    def _fixes(self, raw_name: str, raw_id: str, values: dict) -> list[str]:
        out = []
        if raw_id != values["id_number"]:
            parts = []
            if any(ch.isspace() for ch in raw_id):
                parts.append("去除了空格")
            if any("\uff01" <= ch <= "\uff5e" for ch in raw_id):
                parts.append("全角字符改为半角")
            if raw_id.rstrip().endswith(("x", "ｘ")):
                parts.append("末位小写x改为大写X")
            out.append(
                f"身份证号已自动修正（{'、'.join(parts) or '格式已统一'}）：“{raw_id}”保存为 {values['id_number']}"
            )
        if raw_name != values["name"]:
            what = "去除了前后的空格" if raw_name.strip() == values["name"] else "间隔号已统一为“·”"
            out.append(f"姓名已自动修正（{what}）：保存为“{values['name']}”")
        return out

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        result = None
        if self.id_number.data and not self.id_number.errors:
            obj_id = getattr(self._obj, "id", None) if self._obj is not None else None
            # the exception is the agency's decision on this ID number, never the clerk's tick
            norm = normalize_id(self.id_number.data)
            self.over_age_app = approved_over_age(norm.value, current_user()) if norm.ok else None
            (result,) = check_admissions(
                [AdmissionRequest(0, self.name.data, self.id_number.data, self.over_age_app is not None)],
                AdmissionContext(
                    current_user(), confirmed_over_age=bool(self.confirm_over_age.data), exclude_member_id=obj_id
                ),
            )
            if result.ok:
                self.checked = result.values
                self.fixes = self._fixes(self.name.data or "", self.id_number.data, result.values)
                self.name.data, self.id_number.data = result.values["name"], result.values["id_number"]
                return ok
            if result.code == Code.NEEDS_CONFIRMATION:
                self.confirm_over_age.errors = [OVER_AGE_QUESTION]
            elif not result.code.name.startswith("NAME_"):
                self.id_number.errors = list(self.id_number.errors) + [result.message]
        if self.name.data is not None and not self.name.errors:
            # said at once beside a wrong 身份证号 too, not only after the next save
            name = result if result is not None and result.code.name.startswith("NAME_") else check_name(self.name.data)
            if not name.ok:
                self.name.errors = list(self.name.errors) + [name.message]
        return False

"""The single-entry 入会 form: every field checked by the same rules as the batch files."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from wtforms import BooleanField, StringField
from wtforms.validators import InputRequired, Optional, Regexp

from actions.new_applications import approved_over_age
from models import Member, Org, db
from models.scope import scope_filter
from rules import Code, check_age, check_name, parse_id

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

    id_info = None  # IdInfo of the checked number, for the view to store gender and birth date
    over_age_app = None  # the agency-approved exception of this ID number, if one was needed

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        today = date.today()
        if self.name.data is not None and not self.name.errors:
            name = check_name(self.name.data)
            if name.ok:
                self.name.data = name.value
            else:
                self.name.errors = list(self.name.errors) + [name.message]
                ok = False
        if self.id_number.data and not self.id_number.errors:
            idc = parse_id(self.id_number.data, today)
            if not idc.ok:
                self.id_number.errors = list(self.id_number.errors) + [idc.message]
                return False
            info = idc.value
            self.id_number.data = info.number
            self.id_info = info
            # the exception is the agency's decision (超龄例外申请), never the clerk's tick
            approved = approved_over_age(info.number, current_user())
            age = check_age(info.gender, info.birth_date, today, exception=approved is not None)
            self.over_age_app = approved
            if not age.ok:
                msg = f"{age.message}（{age.value}周岁）"
                if age.code == Code.OVER_AGE and age.value < 65:
                    msg += "。如未办理正式退休手续，请先通过【超龄例外申请】上传相关文件，经代办处同意后再办理入会"
                self.id_number.errors = list(self.id_number.errors) + [msg]
                ok = False
            elif age.needs_confirmation and not self.confirm_over_age.data:
                self.confirm_over_age.errors = [OVER_AGE_QUESTION]
                ok = False
            if not self._check_not_admitted(info.number):
                ok = False
        return ok

    def _check_not_admitted(self, number: str) -> bool:
        user = current_user()
        stmt = (
            sa.select(Member.id, Member.member_no, Org.name, scope_filter(Org, user).label("mine"))
            .join(Org, Org.id == Member.org_id)
            .where(Member.id_number == number)
        )
        if self._obj is not None and getattr(self._obj, "id", None):
            stmt = stmt.where(Member.id != self._obj.id)
        row = db.session.execute(stmt).first()
        if row is None:
            return True
        if row.mine:
            msg = f"{Code.ALREADY_MEMBER.message}（{row.name}，会员编号 {row.member_no}）"
        else:
            msg = f"{Code.ALREADY_MEMBER.message}（在其他单位）。如需转入本单位，请办理【会员调动】"
        self.id_number.errors = list(self.id_number.errors) + [msg]
        return False

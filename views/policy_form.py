"""逐一投保 (manual 一(二)1): product, member by 会员编号 or 身份证号 (looked up on leaving the field),
份数, 投保金额 (follows 份数 × price), 预期生效时间; checked by the one enrolment checker."""

from __future__ import annotations

from wtforms import BooleanField, DateField, DecimalField, IntegerField, SelectField, StringField
from wtforms.validators import InputRequired, NumberRange

from actions.forms import not_before_today
from batch.enrolment import EnrolContext, EnrolRequest, check_enrolments
from models import Product, db, product_choices, products
from rules import Code, parse_member_no

from .access import current_user
from .base import AdminForm

OVER_AGE_QUESTION = "此会员超出投保年龄，是否继续投保？如确定，请勾选下方“确定继续投保”后再保存。"


class PolicyEntryForm(AdminForm):
    product_id = SelectField("产品名称", [InputRequired("请选择产品名称")], coerce=int)
    member_ref = StringField(
        "会员编号或身份证号",
        [InputRequired("请输入会员编号或身份证号")],
        description="输入后点击空白处，会员的姓名、性别、年龄和单位会自动显示",
    )
    shares = IntegerField("份数", [InputRequired("请填写份数"), NumberRange(min=1, message="份数至少为1")], default=1)
    amount = DecimalField(
        "投保金额（元）", [InputRequired("请填写投保金额")], places=2, description="投保金额 = 份数 × 每份金额"
    )
    expected_effective_date = DateField("预期生效时间", [InputRequired("请填写预期生效时间")], format="%Y-%m-%d")
    confirm_over_age = BooleanField("确定继续投保（此会员超出投保年龄）")

    enrol_values = None  # the checker's values (member, org, shares, amount) for the view

    def prepare(self, obj=None):
        items = products()
        self.product_id.choices = product_choices(items)
        self.prices = {str(p.id): f"{p.price:.2f}" for p in items}
        if obj is not None and not self.member_ref.data and getattr(obj, "member", None) is not None:
            self.member_ref.data = obj.member.member_no

    def validate_expected_effective_date(self, field):
        if self._obj is None or field.data != self._obj.expected_effective_date:  # an unchanged date may stay
            not_before_today(self, field)

    def validate(self, extra_validators=None):
        if not super().validate(extra_validators):
            return False
        product = db.session.get(Product, self.product_id.data)
        ref = (self.member_ref.data or "").strip()
        req = EnrolRequest(row=1, shares=self.shares.data, amount=self.amount.data)
        if parse_member_no(ref) is not None:
            req.member_no = ref
        else:
            req.id_number = ref
        ctx = EnrolContext(
            user=current_user(),
            product=product,
            effective=self.expected_effective_date.data,
            confirmed_over_age=bool(self.confirm_over_age.data),
            exclude_policy_id=getattr(self._obj, "id", None),
        )
        result = check_enrolments([req], ctx)[0]
        if result.ok:
            self.enrol_values = result.values
            return True
        field = {
            Code.AMOUNT_MISMATCH: self.amount,
            Code.SHARES_RANGE: self.shares,
            Code.OVER_SHARES: self.shares,
            Code.AMOUNT_INVALID: self.amount,
            Code.NEEDS_CONFIRMATION: self.confirm_over_age,
            Code.GENDER: self.product_id,
            Code.DUPLICATE: self.product_id,
            Code.IN_FLIGHT: self.product_id,
        }.get(result.code, self.member_ref)
        message = OVER_AGE_QUESTION if result.code == Code.NEEDS_CONFIRMATION else result.message
        field.errors = list(field.errors) + [message]
        return False

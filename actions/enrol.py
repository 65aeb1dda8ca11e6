"""Actions that create policies through the one enrolment checker: 新会员投保 (on 入会管理,
manual 一(二)2) and 批量续转 (on 投保管理, manual 一(二)3)."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, DecimalField, SelectField
from wtforms.validators import InputRequired, NumberRange, Optional, ValidationError

from batch.enrolment import EnrolContext, EnrolRequest, check_enrolments, create_policies, terms_of
from models import Member, MemberStatus, Policy, PolicyStatus, Product, db, product_choices, products
from models.roles import UNIT
from rules.products import shares_for_amount

from .base import BulkAction, Result
from .forms import not_before_today


def _effective_field():
    return DateField("预期生效时间", [InputRequired("请填写预期生效时间")], format="%Y-%m-%d")


OVER_AGE_CONFIRM = "确定继续投保（此会员超出投保年龄，代办处已同意超龄例外）"
OVER_AGE_SHOWN = 10


def _over_age_members(member_ids) -> sa.Select:
    """The members of `member_ids` (a SELECT) with the agency's 超龄例外, still under 65 (older ones
    fail 超龄 whatever the answer, so no question is asked about them)."""
    from .applications import hard_limit_birth

    return sa.select(Member.id).where(
        Member.id.in_(member_ids), Member.over_age_exception.is_(True), Member.birth_date > hard_limit_birth()
    )


def over_age_question(member_ids) -> list[str]:
    """The manual's question (一(四)9 "此会员超出投保年龄，是否继续投保") for the members of a query, on
    the confirmation page of 投保 and 批量续转: two queries whatever the row count."""
    which = _over_age_members(member_ids)
    n = db.session.scalar(sa.select(sa.func.count()).select_from(which.subquery()))
    if not n:
        return []
    rows = db.session.execute(
        sa.select(Member.member_no, Member.name).where(Member.id.in_(which)).order_by(Member.id).limit(OVER_AGE_SHOWN)
    ).all()
    names = "、".join(f"{name}（会员编号 {no}）" for no, name in rows) + (" 等" if n > OVER_AGE_SHOWN else "")
    return [
        f"此会员超出投保年龄，是否继续投保？当前查询结果中有 {n} 名会员超出投保年龄，代办处已同意超龄例外：{names}。"
        f"继续投保请勾选下方“{OVER_AGE_CONFIRM}”；不勾选则这些会员不投保，列入投保失败人员名单。"
    ]


class _ProductForm(FlaskForm):
    """产品名称, 金额, 预期生效时间 — in the manual's order (选择【产品名称】，输入金额，输入预期生效时间)."""

    product = SelectField("产品名称", [InputRequired("请选择产品名称")], coerce=str)

    def prepare(self):
        self.product.choices = [("", "请选择产品")] + product_choices(products(), detailed=True)

    def prepare_for(self, member_ids) -> None:
        """The question is asked only when the query holds someone it concerns."""
        which = _over_age_members(member_ids)
        if not db.session.scalar(sa.select(sa.exists(which))):
            del self.confirm_over_age

    validate_effective = not_before_today

    def validate_amount(self, field):
        """One 金额 for everyone must be whole shares of the chosen product: told here, before
        anything is done, rather than as the same failure on every row."""
        if field.data is None or not self.product.data or not str(self.product.data).isdigit():
            return
        product = db.session.get(Product, int(self.product.data))
        if product is None:
            raise ValidationError("请选择产品名称")
        check = shares_for_amount(terms_of(product), field.data)
        if not check.ok:
            raise ValidationError(check.message)


class EnrolForm(_ProductForm):
    amount = DecimalField(
        "投保金额（每人，元）",
        [InputRequired("请填写投保金额"), NumberRange(min=Decimal("0.01"), message="投保金额须大于0")],
        places=2,
    )
    effective = _effective_field()
    confirm_over_age = BooleanField(OVER_AGE_CONFIRM)  # last: the answer to the question above the form


class RenewForm(_ProductForm):
    amount = DecimalField(
        "金额（每人，元）",
        [Optional(), NumberRange(min=Decimal("0.01"), message="金额须大于0")],
        places=2,
        description="填写后，每人按此金额续转：份数 = 金额 ÷ 每份金额。不填则每人保持原保单的份数。",
    )
    effective = _effective_field()
    confirm_over_age = BooleanField(OVER_AGE_CONFIRM)


def _failures(results, requests, who: dict) -> list[dict]:
    out = []
    for req, r in zip(requests, results):
        if r.ok:
            continue
        m = who.get(req.member_id, {})
        out.append(
            {
                "member_no": m.get("member_no", ""),
                "name": m.get("name", ""),
                "id_number": m.get("id_number", ""),
                "reason": r.message,
                "code": str(r.code),
            }
        )
    return out


def _who(member_ids) -> dict:
    if not member_ids:
        return {}
    rows = db.session.execute(
        sa.select(Member.id, Member.member_no, Member.name, Member.id_number).where(Member.id.in_(list(member_ids)))
    ).all()
    return {r.id: {"member_no": r.member_no, "name": r.name, "id_number": r.id_number} for r in rows}


def _run(requests, user, product_id, effective, amount, action: str, confirm_over_age: bool = False):
    product = db.session.get(Product, int(product_id))
    ctx = EnrolContext(
        user=user,
        product=product,
        effective=effective,
        amount_override=amount,
        confirmed_over_age=bool(confirm_over_age),
    )
    results = check_enrolments(requests, ctx)
    created = create_policies(results, ctx, action=action)
    failed_ids = {req.member_id for req, r in zip(requests, results) if not r.ok}
    return product, created, _failures(results, requests, _who(failed_ids))


def enrol_new_members(
    ids, user, expected=None, product=None, amount=None, effective=None, confirm_over_age=False
) -> Result:
    """Every 财务确认 member of the query gets a 新建 policy of the product, if the rules allow."""
    member_ids = db.session.scalars(
        sa.select(Member.id).where(Member.id.in_(ids), Member.status == MemberStatus.CONFIRMED).order_by(Member.id)
    ).all()
    shares = _shares_of(product, amount)
    if shares is None:  # not whole shares of the product: nothing is done (the form says so first)
        return Result(0, 0, shares_for_amount(terms_of(db.session.get(Product, int(product))), amount).message)
    requests = [EnrolRequest(row=i, member_id=m, shares=shares) for i, m in enumerate(member_ids, start=1)]
    product_obj, created, failures = _run(requests, user, product, effective, amount, "enrol", confirm_over_age)
    return Result(
        created,
        len(failures),
        f"已投保 {created} 人（{product_obj.name}），投保失败 {len(failures)} 人",
        failures=failures,
    )


def _shares_of(product_id, amount) -> int | None:
    product = db.session.get(Product, int(product_id))
    check = shares_for_amount(terms_of(product), amount)
    return check.value if check.ok else None


def renew(ids, user, expected=None, product=None, amount=None, effective=None, confirm_over_age=False) -> Result:
    """批量续转 (manual 一(二)3: 选择【产品名称】，输入金额，输入预期生效时间): a new 新建 policy per
    member of the query's effective policies that still passes every rule (renewed_from set); the
    rest are listed with their reasons.  The typed 金额 is everyone's new cover: 份数 = 金额 ÷ 每份金额
    for all; without a 金额 each member keeps the shares of the policy renewed."""
    shares = None
    if amount is not None:
        shares = _shares_of(product, amount)
        if shares is None:  # not whole shares of the product: nothing is done (the form says so first)
            return Result(0, 0, shares_for_amount(terms_of(db.session.get(Product, int(product))), amount).message)
    rows = db.session.execute(
        sa.select(Policy.id, Policy.member_id, Policy.shares)
        .where(Policy.id.in_(ids), Policy.status == PolicyStatus.EFFECTIVE)
        .order_by(Policy.id)
    ).all()
    requests = [
        EnrolRequest(row=i, member_id=m, shares=shares if shares is not None else s, renewed_from_id=pid)
        for i, (pid, m, s) in enumerate(rows, start=1)
    ]
    product_obj, created, failures = _run(requests, user, product, effective, amount, "renew", confirm_over_age)
    return Result(
        created,
        len(failures),
        f"已续转 {created} 人（{product_obj.name}），续转失败 {len(failures)} 人",
        failures=failures,
    )


def _members_of_policies(ids) -> sa.Select:
    return sa.select(Policy.member_id).where(Policy.id.in_(ids), Policy.status == PolicyStatus.EFFECTIVE)


ENROL_NEW = BulkAction(
    name="enrol",
    label="投保",
    run=enrol_new_members,
    from_states=(MemberStatus.CONFIRMED,),
    roles=UNIT,
    form=EnrolForm,
    submit_label="确认保存",
    precheck=lambda ids, user: (over_age_question(ids), None),
    params_scope=lambda ids: ids,
    note="为当前查询结果中“财务确认”状态的会员投保：选择产品名称，输入投保金额和预期生效时间。"
    "不符合投保条件的会员会列出原因，可下载【批量投保失败人员名单】。",
)
RENEW = BulkAction(
    name="renew",
    label="批量续转",
    run=renew,
    from_states=(PolicyStatus.EFFECTIVE,),
    roles=UNIT,
    form=RenewForm,
    with_amount=True,
    submit_label="确认保存",
    precheck=lambda ids, user: (over_age_question(_members_of_policies(ids)), None),
    params_scope=lambda ids: _members_of_policies(ids),
    note="为当前查询结果中“打印生效”的保单续转投保（即将到期或已到期的保单）：每位会员生成一条新建的投保记录。"
    "不再符合投保条件的会员（如已超龄）会列出原因。",
)

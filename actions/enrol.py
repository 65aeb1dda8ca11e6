"""Actions that create policies through the one enrolment checker: 新会员投保 (on 入会管理,
manual 一(二)2) and 批量续转 (on 投保管理, manual 一(二)3)."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, SelectField
from wtforms.validators import InputRequired, NumberRange, Optional

from batch.enrolment import EnrolContext, EnrolRequest, check_enrolments, create_policies
from models import Member, MemberStatus, Policy, PolicyStatus, Product, db, product_choices, products
from models.roles import UNIT

from .base import BulkAction, Result
from .forms import not_before_today


class _ProductForm(FlaskForm):
    product = SelectField("产品名称", [InputRequired("请选择产品名称")], coerce=str)
    effective = DateField("预期生效时间", [InputRequired("请填写预期生效时间")], format="%Y-%m-%d")

    def prepare(self):
        self.product.choices = [("", "请选择产品")] + product_choices(products(), detailed=True)

    validate_effective = not_before_today


class EnrolForm(_ProductForm):
    amount = DecimalField(
        "投保金额（每人，元）",
        [InputRequired("请填写投保金额"), NumberRange(min=Decimal("0.01"), message="投保金额须大于0")],
        places=2,
    )


class RenewForm(_ProductForm):
    amount = DecimalField(
        "投保金额（每人，元；不填则按原份数 × 每份金额）",
        [Optional(), NumberRange(min=Decimal("0.01"), message="投保金额须大于0")],
        places=2,
    )


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


def _run(requests, user, product_id, effective, amount, action: str):
    product = db.session.get(Product, int(product_id))
    ctx = EnrolContext(user=user, product=product, effective=effective, amount_override=amount)
    results = check_enrolments(requests, ctx)
    created = create_policies(results, ctx, action=action)
    failed_ids = {req.member_id for req, r in zip(requests, results) if not r.ok}
    return product, created, _failures(results, requests, _who(failed_ids))


def enrol_new_members(ids, user, expected=None, product=None, amount=None, effective=None) -> Result:
    """Every 财务确认 member of the query gets a 新建 policy of the product, if the rules allow."""
    member_ids = db.session.scalars(
        sa.select(Member.id).where(Member.id.in_(ids), Member.status == MemberStatus.CONFIRMED).order_by(Member.id)
    ).all()
    prod = db.session.get(Product, int(product))
    price = Decimal(prod.price)
    shares = (amount / price) if price else 0
    shares = int(shares) if shares == int(shares) else amount  # a non-whole share count fails AMOUNT_MISMATCH
    requests = [
        EnrolRequest(row=i, member_id=m, shares=shares if isinstance(shares, int) else 1)
        for i, m in enumerate(member_ids, start=1)
    ]
    product_obj, created, failures = _run(requests, user, product, effective, amount, "enrol")
    return Result(
        created,
        len(failures),
        f"已投保 {created} 人（{product_obj.name}），投保失败 {len(failures)} 人",
        failures=failures,
    )


def renew(ids, user, expected=None, product=None, amount=None, effective=None) -> Result:
    """批量续转: a new 新建 policy per member of the query's effective policies that still passes
    every rule (renewed_from set); the rest are listed with their reasons."""
    rows = db.session.execute(
        sa.select(Policy.id, Policy.member_id, Policy.shares)
        .where(Policy.id.in_(ids), Policy.status == PolicyStatus.EFFECTIVE)
        .order_by(Policy.id)
    ).all()
    requests = [
        EnrolRequest(row=i, member_id=m, shares=s, renewed_from_id=pid) for i, (pid, m, s) in enumerate(rows, start=1)
    ]
    product_obj, created, failures = _run(requests, user, product, effective, amount, "renew")
    return Result(
        created,
        len(failures),
        f"已续转 {created} 人（{product_obj.name}），续转失败 {len(failures)} 人",
        failures=failures,
    )


ENROL_NEW = BulkAction(
    name="enrol",
    label="投保",
    run=enrol_new_members,
    from_states=(MemberStatus.CONFIRMED,),
    roles=UNIT,
    form=EnrolForm,
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
    note="为当前查询结果中“打印生效”的保单续转投保（即将到期或已到期的保单）：每位会员生成一条新建的投保记录。"
    "不再符合投保条件的会员（如已超龄）会列出原因。",
)

"""Bulk actions of 投保管理 (manual 一(二), 一(五)4, 二、1), each a plain function over the query."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask_wtf import FlaskForm
from wtforms import DateField
from wtforms.validators import InputRequired

from models import POLICY_EDITABLE, POLICY_WORKFLOW, Policy, PolicyStatus, Product, db, utcnow
from models.roles import EVERYONE, UNIT
from rules import policy_expiry

from .base import BulkAction, Result, delete_rows, dml_with_audit
from .forms import not_before_today
from .workflow import run_transition


def _skipped(expected, done) -> int:
    return max((expected or done) - done, 0)


# ---- 当前查询结果上报 (unit, agency) and 当前查询结果打回: declared in models/policy.py ---------------
def unit_report(ids, user, expected=None) -> Result:
    """Unit: 新建/打回 → 上报."""
    return run_transition(POLICY_WORKFLOW, POLICY_WORKFLOW.get("report"), ids, user, expected=expected)


def agency_report(ids, user, expected=None) -> Result:
    """Agency: 上报 → 代办处已上报."""
    return run_transition(POLICY_WORKFLOW, POLICY_WORKFLOW.get("agency-report"), ids, user, expected=expected)


def agency_return(ids, user, expected=None, reason: str = "") -> Result:
    """Agency: 上报 → 打回, with the reason the unit sees."""
    return run_transition(POLICY_WORKFLOW, POLICY_WORKFLOW.get("return"), ids, user, expected=expected, reason=reason)


# ---- 批量删除 ----------------------------------------------------------------------------------
def delete_all(ids, user, expected=None) -> Result:
    done = delete_rows(Policy, ids, POLICY_EDITABLE, user)
    return Result(done, _skipped(expected, done), f"已删除 {done} 条，跳过 {_skipped(expected, done)} 条（状态已变化）")


# ---- 修改预期生效时间 ---------------------------------------------------------------------------
class DateForm(FlaskForm):
    effective = DateField("新的预期生效时间", [InputRequired("请选择预期生效时间")], format="%Y-%m-%d")

    validate_effective = not_before_today


def change_effective_date(ids, user, expected=None, effective: date | None = None) -> Result:
    """新建/打回 only; each audit row keeps that row's old date and the new one.  The expiry date
    follows (effective + term − 1 day): one UPDATE per distinct product term in the query."""
    if db.session.get_bind().dialect.name != "postgresql":
        return _change_effective_date_sqlite(ids, user, expected, effective)
    old = sa.orm.aliased(Policy, name="old")
    terms = db.session.scalars(
        sa.select(sa.distinct(Product.term_months)).where(
            Product.id.in_(sa.select(Policy.product_id).where(Policy.id.in_(ids)))
        )
    ).all()
    done = 0
    for months in terms:
        done += dml_with_audit(
            _date_update(ids, months, effective, Policy.id == old.id),
            Policy,
            "change_date",
            user.id,
            before_columns={"expected_effective_date": old.expected_effective_date},
            after={"expected_effective_date": effective.isoformat()},
        )
    return _date_changed(expected, done, effective)


def _change_effective_date_sqlite(ids, user, expected, effective: date) -> Result:
    """SQLite (single writer, development only): its RETURNING cannot read the FROM table of an
    UPDATE … FROM (it gave the new date as the "before"), so one UPDATE per (term, old date)
    pair of the query, each with its old date as the audit row's constant "before"."""
    groups = db.session.execute(
        sa.select(Product.term_months, Policy.expected_effective_date)
        .distinct()
        .join(Product, Product.id == Policy.product_id)
        .where(Policy.id.in_(ids), Policy.status.in_(list(POLICY_EDITABLE)))
    ).all()
    done = 0
    for months, old_date in groups:
        done += dml_with_audit(
            _date_update(ids, months, effective, Policy.expected_effective_date == old_date),
            Policy,
            "change_date",
            user.id,
            before={"expected_effective_date": old_date.isoformat()},
            after={"expected_effective_date": effective.isoformat()},
        )
    return _date_changed(expected, done, effective)


def _date_update(ids, months: int, effective: date, *conds):
    """The editable policies of `ids` whose product runs `months`: the new date and its expiry."""
    return (
        sa.update(Policy)
        .where(
            Policy.id.in_(ids),
            Policy.status.in_(list(POLICY_EDITABLE)),
            *conds,
            Policy.product_id.in_(sa.select(Product.id).where(Product.term_months == months)),
        )
        .values(
            expected_effective_date=effective,
            expiry_date=policy_expiry(effective, months),
            updated_at=utcnow(),
            version=Policy.version + 1,
        )
        .execution_options(synchronize_session=False)
    )


def _date_changed(expected, done, effective: date) -> Result:
    skipped = _skipped(expected, done)
    return Result(
        done, skipped, f"已将 {done} 条的预期生效时间改为 {effective:%Y-%m-%d}，跳过 {skipped} 条（状态已变化）"
    )


# ---- 汇总金额 ----------------------------------------------------------------------------------
ALL_STATES = tuple(PolicyStatus)

DELETE_ALL = BulkAction(
    name="delete",
    label="批量删除",
    run=delete_all,
    from_states=POLICY_EDITABLE,
    roles=UNIT,
    confirm_phrase="全部删除",
    danger=True,
    with_amount=True,
    note="删除当前查询结果中“新建”和“打回”状态的投保记录。删除后不能恢复。",
)
CHANGE_DATE = BulkAction(
    name="change-date",
    label="修改预期生效时间",
    run=change_effective_date,
    from_states=POLICY_EDITABLE,
    roles=UNIT,
    form=DateForm,
    with_amount=True,
    note="修改当前查询结果中“新建”和“打回”状态投保记录的预期生效时间（到期日期随之调整）。",
)
TOTALS = BulkAction(
    name="totals",
    label="汇总金额",
    run=None,
    from_states=ALL_STATES,
    roles=EVERYONE,
    with_amount=True,
    note="当前查询结果的人数和金额合计，上报前请核对。",
)

"""The `policies` kind (模板批量投保, manual 一(二)4): 姓名, 身份证号 or 会员编号, 份数, 投保金额 →
新建 policies of one product, checked by the one enrolment checker."""

from __future__ import annotations

import sqlalchemy as sa

from models import BatchKind, BatchStage, Product, db
from rules import check_effective_date, parse_amount, parse_date

from .enrolment import (
    EnrolContext,
    EnrolRequest,
    check_enrolments,
    create_policies,
    policy_facts_changed,
    write_staged_policies,
)
from .pipeline import Context, Kind, RowResult, register
from .reader import BatchFileError, Column

NAME = Column("name", "姓名", ("姓名", "会员姓名", "投保人姓名", "职工姓名"), required=False)
ID_NUMBER = Column(
    "id_number",
    "身份证号",
    ("身份证号", "身份证号码", "证件号码", "证件号", "公民身份号码", "身份证", "投保人身份证号"),
    required=False,
)
MEMBER_NO = Column("member_no", "会员编号", ("会员编号", "会员号"), required=False)
SHARES = Column("shares", "份数", ("份数", "投保份数"), required=False)
AMOUNT = Column("amount", "投保金额", ("投保金额", "金额", "投保金额（元）", "投保金额(元)"), required=False)

POLICY_NOTES = [
    "1. 每行填写一名会员：“姓名”“身份证号”（或“会员编号”）“份数”“投保金额”。不要改动第一行表头；列的顺序可以调整。",
    "2. 会员须已入会并上报为“财务确认”状态；不在本单位的会员请先办理【会员调动】，没有入会的请先办理【入会】。",
    "3. 身份证号必须为18位，末尾X必须为大写；身份证号列为文本格式，请勿改为数字格式。姓名须与系统中的会员姓名一致。",
    "4. 投保金额 = 份数 × 产品每份金额；上传时可选择统一的投保金额，或“以模板金额为准”。份数不能超过产品的最大份数。",
    "5. 年龄按预期生效时间的周岁计算：女性须大于16周岁、小于55周岁；男性须大于16周岁、小于60周岁。",
    "6. 会员有新建、打回或上报状态的同一产品保单时（在途业务），须先处理该保单；已投保同一期间的不能重复投保。",
    "7. 上传后先点【业务校验】查看结果，再点【业务办理】；失败的行可点【失败行下载】，改正后直接上传该文件。",
]


class PoliciesKind(Kind):
    kind = BatchKind.POLICIES
    columns = [NAME, ID_NUMBER, MEMBER_NO, SHARES, AMOUNT]
    template_columns = [NAME, ID_NUMBER, SHARES, AMOUNT]
    template_title = "批量投保"
    template_notes = POLICY_NOTES

    def prepare(self, ctx: Context) -> None:
        code = (ctx.params.get("product") or "").strip()
        if not code:
            raise BatchFileError("请选择产品名称")
        product = db.session.scalar(
            sa.select(Product).where(
                sa.or_(Product.code == code, sa.cast(Product.id, sa.String) == code), Product.active.is_(True)
            )
        )
        if product is None:
            raise BatchFileError(f"产品“{code}”不存在或已停用，请重新选择产品名称")
        effective = parse_date(ctx.params.get("effective"))
        if effective is None:
            raise BatchFileError("请填写预期生效时间（格式 2027-01-01）")
        when = check_effective_date(effective, ctx.today)
        if not when.ok:
            raise BatchFileError(f"{when.message}（所填为 {effective:%Y-%m-%d}），请重新填写")
        override = None
        if ctx.params.get("amount") not in (None, ""):
            amount = parse_amount(ctx.params["amount"])
            if not amount.ok:
                raise BatchFileError(
                    f"统一投保金额“{ctx.params['amount']}”格式不正确，请填写金额（元），如 50 或 50.00"
                )
            override = amount.value
        ctx.extra["enrol"] = EnrolContext(
            user=ctx.user, product=product, effective=effective, amount_override=override, today=ctx.today
        )

    def check(self, table, ctx: Context) -> list[RowResult]:
        if "id_number" not in table.columns and "member_no" not in table.columns:
            raise BatchFileError(f"第{table.header_row}行表头中缺少“身份证号”或“会员编号”列，请使用模板的表头")
        requests = [
            EnrolRequest(
                row=row_no,
                id_number=table.cell(cells, "id_number"),
                member_no=table.cell(cells, "member_no"),
                name=table.cell(cells, "name"),
                shares=table.cell(cells, "shares") if "shares" in table.columns else 1,
                amount=table.cell(cells, "amount"),
            )
            for row_no, cells in table.rows
        ]
        return check_enrolments(requests, ctx.extra["enrol"])

    def write(self, rows: list[RowResult], ctx: Context) -> int:
        return create_policies(rows, ctx.extra["enrol"], batch_id=ctx.batch.id)

    # --- one pass per file (batch/stage.py) ----------------------------------------------------
    stage_columns = (
        "member_id",
        "org_id",
        "shares",
        "amount",
        "key_kind",
        "key_value",
        "member_version",
        "in_flight",
        "same_period",
        "live_shares",
    )
    _NO_FACTS = (None, None, None, None, None, None, None)

    def stage_row(self, r: RowResult) -> tuple:
        """A passing row's policy values; for every row the database decided, what it decided on."""
        key_kind, key_value, member_id, version, in_flight, same_period, live = r.facts or self._NO_FACTS
        if r.code is None:
            v = r.values
            return (v["member_id"], v["org_id"], v["shares"], v["amount"], key_kind, key_value, version, in_flight,
                    same_period, live)  # fmt: skip
        return (member_id, None, None, None, key_kind, key_value, version, in_flight, same_period, live)

    def stage_fingerprint(self, ctx: Context) -> list:
        e = ctx.extra["enrol"]
        p = e.product
        return [
            p.id,
            p.code,
            str(p.price),
            p.max_shares,
            p.term_months,
            p.gender_restriction.value if p.gender_restriction else None,
            bool(p.active),
            e.effective.isoformat(),
            None if e.amount_override is None else str(e.amount_override),
            e.confirmed_over_age,
        ]

    def stage_changed(self, ctx: Context) -> bool:
        return policy_facts_changed(ctx.extra["enrol"], BatchStage.__table__, ctx.batch.id)

    def write_staged(self, rows: list[RowResult], ctx: Context) -> int:
        return write_staged_policies(ctx.extra["enrol"], BatchStage.__table__, ctx.batch.id)


POLICIES = register(PoliciesKind())

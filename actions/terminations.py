"""保单提前终止 (manual 一(五)5–7; DESIGN.md §3): one more kind of the one application workflow,
registered when this module is imported (views/terminations.py does, so every app has it).

    unit    【创建保单终止申请】 search 打印生效 policies → tick → 【终止保单】 → 终止原因 + 申请终止日期
            → 【确定】: `create_application`, one application (新建) holding those policies, each
            with its refund (rules/termination.py), worked out once, here;
            【批量导出打印】: `print_forms`, ONE PDF of 保单提前终止申请表 over the current query;
            【提交保单申请】: the workflow's submit (models/applications.py TERMINATION_WORKFLOW).
    office  【通过】: the workflow's approve, whose `on_approve` ends every policy of the approved
            applications — 提前终止, its end date and its refund — in one UPDATE with its audit rows;
            【驳回】 with a reason the unit sees.

A policy is in at most one pending (新建 or 已提交) application: creation locks the ticked
policies (id order) before it looks, so two clerks ticking the same policy at once make one
application and the other is told which.  Approval locks the policies of the applications it is
about to approve, then moves only those still 已提交 whose policies are all still 打印生效: two
office users approving at once make one effect; the second finds the application decided.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from datetime import date
from decimal import Decimal
from functools import cache

import sqlalchemy as sa
from flask import current_app, has_request_context, url_for

from batch.pdf import pad, qr_png, render_pdf, text_table, text_width
from batch.sql import in_values
from models import (
    TERMINATION_WORKFLOW,
    ApplicationStatus,
    Member,
    Org,
    Policy,
    PolicyStatus,
    Product,
    TerminationApplication,
    db,
    scope_filter,
    termination_policy,
    utcnow,
    write_audit,
)
from models.applications import PENDING
from models.audit import ACTION_LABELS
from models.roles import OFFICE, UNIT
from rules import MAX_POLICIES, check_end_date, check_reason, mask_id, refund

from .applications import ApplicationKind, register
from .base import BulkAction, Download, Result, dml_with_audit

ACTION_LABELS.update({"terminate": "提前终止"})

T = TerminationApplication
TP = termination_policy
PRINTABLE = (ApplicationStatus.NEW, ApplicationStatus.SUBMITTED)
PRINT_LIMIT = 2000  # applications (pages) in one printed PDF


class TerminationRefused(Exception):
    """Nothing was created; `messages` say why, one line per reason (naming the policies)."""

    def __init__(self, messages: list[str]):
        super().__init__("；".join(messages))
        self.messages = messages


def pending_application_of(policy_id):
    """The pending (新建 or 已提交) application holding the policy, or NULL (correlated)."""
    return (
        sa.select(sa.func.min(T.id))
        .join(TP, TP.c.application_id == T.id)
        .where(TP.c.policy_id == policy_id, T.status.in_(list(PENDING)))
        .scalar_subquery()
    )


def chosen_policies(policy_ids) -> list:
    """The policies of `policy_ids` as the 终止保单 page and the checks need them: one SELECT."""
    return db.session.execute(
        sa.select(
            Policy.id,
            Policy.org_id,
            Policy.policy_no,
            Policy.status,
            Policy.amount,
            Policy.effective_date,
            Policy.expiry_date,
            Member.member_no,
            Member.name,
            Member.id_number,
            Product.name.label("product"),
            pending_application_of(Policy.id).label("pending_id"),
        )
        .join(Member, Member.id == Policy.member_id)
        .join(Product, Product.id == Policy.product_id)
        .where(Policy.id.in_(policy_ids))
        .order_by(Policy.id)
        .limit(MAX_POLICIES + 1)
    ).all()


def count_chosen(policy_ids) -> int:
    return db.session.scalar(sa.select(sa.func.count()).where(Policy.id.in_(policy_ids)))


def _who(row) -> str:
    return f"{row.policy_no or '投保记录 ' + str(row.id)}（{row.name}）"


def refusals(rows, n: int, end_date: date | None, today: date) -> list[str]:
    """Why these policies cannot be one application ending on `end_date` (empty: they can)."""
    if n == 0:
        return ["没有选中保单：请在查询结果中勾选要终止的保单，再点【终止保单】。"]
    if n > MAX_POLICIES:
        return [
            f"选中了 {n} 份保单，一份申请最多 {MAX_POLICIES} 份（申请表为一页）。请勾选不超过 {MAX_POLICIES} 份保单，"
            "或用查询条件缩小范围后分次申请。"
        ]
    out = []
    not_effective = [r for r in rows if r.status != PolicyStatus.EFFECTIVE]
    if not_effective:
        out.append(
            "以下保单不是“打印生效”状态，不能申请提前终止："
            + "、".join(f"{_who(r)}为“{r.status.label}”" for r in not_effective)
            + "。请取消勾选这些保单。"
        )
    pending = [r for r in rows if r.pending_id is not None]
    if pending:
        out.append(
            "以下保单已在待处理的提前终止申请中，不能重复申请："
            + "、".join(f"{_who(r)}在申请 {r.pending_id} 中" for r in pending)
            + "。请在【保单提前终止】中查看该申请。"
        )
    if len({r.org_id for r in rows}) > 1:
        out.append("选中的保单属于不同的基层单位，一份申请只能是一个单位的保单。")
    date_check = check_end_date(end_date, today)
    if not date_check.ok:
        out.append(date_check.message + "。")
    else:
        late = [r for r in rows if r.status == PolicyStatus.EFFECTIVE and end_date >= r.expiry_date]
        if late:
            out.append(
                "申请终止日期必须早于保单到期日期："
                + "、".join(f"{_who(r)}到期日期为 {r.expiry_date:%Y-%m-%d}" for r in late)
                + "。请改选更早的终止日期，或取消勾选这些保单。"
            )
    return out


def refunds(rows, end_date: date) -> list[Decimal]:
    return [refund(Decimal(r.amount), r.effective_date, r.expiry_date, end_date) for r in rows]


def create_application(
    policy_ids, user, reason_choice: str, reason_text: str, end_date: date | None, today: date | None = None
) -> TerminationApplication:
    """One application (新建) holding the policies of `policy_ids` in the user's scope, or
    TerminationRefused with every reason (nothing written).  The policies are locked first."""
    today = today or date.today()
    session = db.session
    mine = sa.and_(Policy.id.in_(policy_ids), scope_filter(Policy, user))
    locked = session.scalars(sa.select(Policy.id).where(mine).order_by(Policy.id).with_for_update()).all()
    rows = chosen_policies(sa.select(Policy.id).where(Policy.id.in_(locked))) if locked else []
    reason = check_reason(reason_choice, reason_text)
    problems = ([] if reason.ok else [reason.message + "。"]) + refusals(rows, len(locked), end_date, today)
    if problems:
        raise TerminationRefused(problems)
    amounts = refunds(rows, end_date)
    total = sum(amounts, Decimal("0.00"))
    app = T(
        org_id=rows[0].org_id,
        reason=reason.value,
        requested_end_date=end_date,
        refund=total,
        status=ApplicationStatus.NEW,
        created_by_id=user.id,
    )
    session.add(app)
    session.flush()
    session.execute(
        sa.insert(TP),
        [{"application_id": app.id, "policy_id": r.id, "refund": a} for r, a in zip(rows, amounts)],
    )
    write_audit(
        "create",
        "termination_application",
        [app.id],
        user.id,
        after={
            "reason": app.reason,
            "requested_end_date": end_date.isoformat(),
            "refund": f"{total:.2f}",
            "policies": [r.policy_no for r in rows],
        },
    )
    return app


# ---- the workflow kind ----------------------------------------------------------------------------
def _has_policy(cond):
    """The application holds a policy meeting `cond` (a condition on Policy)."""
    return sa.exists().where(TP.c.application_id == T.id, TP.c.policy_id == Policy.id, cond)


def _other_submitted_shares_a_policy():
    other, link, mine = sa.orm.aliased(T), TP.alias("other_link"), TP.alias("my_link")
    return sa.exists().where(
        mine.c.application_id == T.id,
        link.c.policy_id == mine.c.policy_id,
        link.c.application_id == other.id,
        other.id != T.id,
        other.status == ApplicationStatus.SUBMITTED,
    )


def _blockers(at_submit: bool):
    out = [
        ("有保单已不是“打印生效”状态（可能已终止）", ~_has_policy(Policy.status != PolicyStatus.EFFECTIVE)),
        ("没有保单", sa.exists().where(TP.c.application_id == T.id)),
    ]
    if at_submit:  # a rejected application reopened while its policy went into another one
        out.append(("有保单已在另一份已提交的提前终止申请中", ~_other_submitted_shares_a_policy()))
    return out


def lock_policies(model, ids, from_states) -> None:
    """Row locks on the policies of the applications about to move, in id order: a second
    approver waits here, then finds the application decided; no policy changes under the check."""
    apps = sa.select(T.id).where(T.id.in_(ids), T.status.in_(list(from_states)))
    policies = sa.select(TP.c.policy_id).where(TP.c.application_id.in_(apps))
    db.session.execute(sa.select(Policy.id).where(Policy.id.in_(policies)).order_by(Policy.id).with_for_update()).all()


def on_approve(ids: list[int], user) -> None:
    """Every policy of the applications this transaction approved: 提前终止, its end date and its
    refund, in one UPDATE with its audit row (one, naming every policy)."""
    approved = in_values(db.session, T.id, ids, sa.Integer)  # exactly the applications this transaction approved
    link = sa.select(TP.c.policy_id).join(T, T.id == TP.c.application_id).where(approved)

    def of_policy(col):
        return (
            sa.select(col)
            .select_from(TP)
            .join(T, T.id == TP.c.application_id)
            .where(TP.c.policy_id == Policy.id, approved)
            .scalar_subquery()
        )

    stmt = (
        sa.update(Policy)
        .where(Policy.id.in_(link), Policy.status == PolicyStatus.EFFECTIVE)
        .values(
            status=PolicyStatus.TERMINATED,
            terminated_on=of_policy(T.requested_end_date),
            refund=of_policy(TP.c.refund),
            updated_at=utcnow(),
            version=Policy.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    dml_with_audit(
        stmt,
        Policy,
        "terminate",
        user.id,
        before={"status": PolicyStatus.EFFECTIVE.value},
        after={"status": PolicyStatus.TERMINATED.value, "applications": sorted(ids)},
    )


def approve_summary(ids) -> list[str]:
    """The refund the approval pays out, shown before approving."""
    n_apps, n_policies, total = db.session.execute(
        sa.select(sa.func.count(sa.distinct(T.id)), sa.func.count(TP.c.policy_id), sa.func.sum(TP.c.refund))
        .join(TP, TP.c.application_id == T.id)
        .where(T.id.in_(ids), T.status == ApplicationStatus.SUBMITTED)
    ).one()
    if not n_apps:
        return []
    return [f"通过后 {n_policies} 份保单提前终止（{n_apps} 份申请），退费合计 {Decimal(total or 0):.2f} 元"]


TERMINATION = register(
    ApplicationKind(
        TERMINATION_WORKFLOW,
        lambda: _blockers(True),
        lambda: _blockers(False),
        on_approve,
        approve_warnings=approve_summary,
        lock=lock_policies,
    )
)


# ---- 保单提前终止申请表: 【批量导出打印】 ---------------------------------------------------------------
HEADER = ["序号", "会员姓名", "身份证号", "保单号", "产品名称", "生效日期", "到期日期", "投保金额(元)", "退费金额(元)"]
RIGHT = frozenset({0, 7, 8})
LIMITS = {1: 12, 4: 24}  # columns: names and product names longer than that end in …
SIGN_COLUMNS = 25  # the width of each of the four signature boxes, in monospaced columns


def application_url(app_id: int) -> str:
    """Where the form's QR code leads: the application's page (the scanner logs in if need be,
    and sees it only within their scope)."""
    if has_request_context():
        return url_for("terminations.details_view", id=app_id, _external=True)
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    return f"{base}/admin/terminations/details/?id={app_id}"


def sign_box() -> tuple[str, str]:
    """经办人、单位负责人、单位盖章、日期: the labels of the four boxes (one line; the lines between
    the boxes are the `sign_grid` image under it), and the date's 年 月 日 for the last box's foot."""
    cells = ["经办人（签字）：", "单位负责人（签字）：", "单位盖章：", "日期："]
    text, pos = "", 0
    for k, words in enumerate(cells):
        text += pad(pos, k * SIGN_COLUMNS) + words
        pos = k * SIGN_COLUMNS + text_width(words)
    return text, pad(0, 3 * SIGN_COLUMNS + 3) + "年　　月　　日"


@cache
def sign_grid(width: int = 800) -> bytes:
    """A 1-pixel-high PNG with a dark pixel at each quarter: stretched over the signature area it
    draws the three lines between the four boxes (one image for the whole document, where three
    bordered boxes per page would cost WeasyPrint several milliseconds each)."""
    from PIL import Image

    img = Image.new("1", (width, 1), 1)
    for k in (1, 2, 3):
        img.putpixel((k * width // 4 - 1, 0), 0)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def form_rows(ids) -> list:
    """Everything the forms print, for the printable applications of `ids`: one SELECT."""
    return db.session.execute(
        sa.select(
            T.id.label("app_id"),
            T.status,
            T.reason,
            T.requested_end_date,
            Org.code.label("org_code"),
            Org.name.label("org_name"),
            Policy.policy_no,
            Policy.amount,
            Policy.effective_date,
            Policy.expiry_date,
            TP.c.refund,
            Member.name,
            Member.id_number,
            Product.name.label("product"),
        )
        .join(Org, Org.id == T.org_id)
        .join(TP, TP.c.application_id == T.id)
        .join(Policy, Policy.id == TP.c.policy_id)
        .join(Member, Member.id == Policy.member_id)
        .join(Product, Product.id == Policy.product_id)
        .where(T.id.in_(ids), T.status.in_(list(PRINTABLE)))
        .order_by(T.id, Policy.id)
    ).all()


def forms(rows) -> tuple[list[dict], dict]:
    """The pages (one per application) and their QR images."""
    apps: OrderedDict = OrderedDict()
    for r in rows:
        apps.setdefault(r.app_id, []).append(r)
    pages, images = [], {}
    for app_id, items in apps.items():
        first = items[0]
        amount = sum((Decimal(r.amount) for r in items), Decimal("0.00"))
        total = sum((Decimal(r.refund or 0) for r in items), Decimal("0.00"))
        body = [
            [
                str(k),
                r.name,
                mask_id(r.id_number),
                r.policy_no or "",
                r.product,
                f"{r.effective_date:%Y-%m-%d}" if r.effective_date else "",
                f"{r.expiry_date:%Y-%m-%d}",
                f"{Decimal(r.amount):.2f}",
                f"{Decimal(r.refund or 0):.2f}",
            ]
            for k, r in enumerate(items, start=1)
        ]
        foot = ["合计", f"{len(items)} 份保单", "", "", "", "", "", f"{amount:.2f}", f"{total:.2f}"]
        header, lines = text_table(HEADER, [*body, foot], right=RIGHT, limits=LIMITS)
        name = f"qr-{app_id}.png"
        images[name] = qr_png(application_url(app_id))
        pages.append(
            {
                "number": app_id,
                "status": first.status.label,
                "org_name": first.org_name,
                "org_code": first.org_code,
                "end_date": first.requested_end_date,
                "reason": first.reason,
                "header": header,
                "lines": lines[:-1],
                "total_line": lines[-1],
                "refund": total,
                "qr": name,
            }
        )
    return pages, images


def forms_pdf(ids, today: date | None = None) -> tuple[bytes, int]:
    """The 保单提前终止申请表 of the printable applications of `ids` as one PDF, and its pages."""
    pages, images = forms(form_rows(ids))
    images["sign-grid.png"] = sign_grid()
    pdf = render_pdf(
        "termination_form.html", images=images, apps=pages, printed_on=today or date.today(), sign=sign_box()
    )
    return pdf, len(pages)


def _printable_count(ids) -> int:
    return db.session.scalar(sa.select(sa.func.count()).where(T.id.in_(ids), T.status.in_(list(PRINTABLE))))


def _too_many(n: int) -> str | None:
    if n > PRINT_LIMIT:
        return (
            f"当前查询结果有 {n} 份可打印的申请，一次最多打印 {PRINT_LIMIT} 份。"
            "请用【审批状态】或【申请编号】等条件缩小查询范围后再打印。"
        )
    return None


def print_precheck(ids, user):
    n = _printable_count(ids)
    lines = [f"共 {n} 份申请，每份申请一页（一个 PDF 文件）"] if n else []
    return lines, _too_many(n)


def print_forms(ids, user, expected=None):
    n = _printable_count(ids)
    refusal = _too_many(n) or (None if n else "当前查询结果中没有“新建”或“已提交”的申请，没有可打印的申请表。")
    if refusal:
        return Result(0, expected or 0, refusal)
    pdf, _ = forms_pdf(ids)
    return Download(f"保单提前终止申请表_{date.today():%Y%m%d}.pdf", "application/pdf", pdf)


PRINT_FORMS = BulkAction(
    name="print",
    label="批量导出打印",
    run=print_forms,
    from_states=PRINTABLE,
    roles=UNIT | OFFICE,
    kind="download",
    precheck=print_precheck,
    size=lambda ids, user, expected: ("pages", _printable_count(ids)),  # one page per application
    submit_label="下载打印",
    note="把当前查询结果中“新建”和“已提交”的保单提前终止申请打印成保单提前终止申请表（一个 PDF，每份申请一页，"
    "含保单、退费金额、签字盖章栏和二维码）。打印后签字盖章，连同电子申请一并交办事处审批。",
)

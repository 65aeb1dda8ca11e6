"""Enrolment (投保) checks, set-based: the one checker behind 逐一投保, 新会员投保, 模板批量投保 and
批量续转.  Two queries whatever the number of requests (the members, then their policies of the
product), then the pure rules per request, in the order of manual 一(四)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from models import (
    POLICY_IN_FLIGHT,
    POLICY_LIVE,
    Member,
    MemberStatus,
    Policy,
    PolicyStatus,
    Product,
    db,
    utcnow,
    write_audit,
)
from models.audit import insert_with_audit
from models.scope import scope_filter
from rules import (
    AGE_HARD_LIMIT,
    Code,
    ProductTerms,
    check_age,
    check_amount,
    check_id,
    check_name,
    check_over_shares,
    check_product_gender,
    check_shares,
    normalize_id,
    parse_amount,
    parse_member_no,
    policy_expiry,
)

from .pipeline import RowResult
from .sql import bulk_insert, driver_errors, in_select, in_values

LIVE = POLICY_LIVE


def terms_of(product: Product) -> ProductTerms:
    return ProductTerms(
        product.code,
        product.name,
        Decimal(product.price),
        product.max_shares,
        product.term_months,
        product.gender_restriction.value if product.gender_restriction else None,
    )


@dataclass
class EnrolRequest:
    row: int
    id_number: object = None  # the cell as read (normalised here)
    member_no: object = None
    name: object = None  # when given, must match the member's name
    shares: object = 1
    amount: object = None  # None: shares × price
    member_id: int | None = None  # when the caller already knows the member (new-member and renewal)
    renewed_from_id: int | None = None


@dataclass
class EnrolContext:
    user: object
    product: Product
    effective: date
    amount_override: Decimal | None = None
    # the answer to "此会员超出投保年龄，是否继续投保" for members with the agency's exception: the
    # forms ask it (a tick), 模板批量投保 asks it on 业务校验 and 【业务办理】 is its 确定
    confirmed_over_age: bool = True
    exclude_policy_id: int | None = None  # the policy being edited does not count against itself
    today: date = field(default_factory=date.today)

    @property
    def terms(self) -> ProductTerms:
        return terms_of(self.product)

    @property
    def expiry(self) -> date:
        return policy_expiry(self.effective, self.product.term_months)


def _member_key(req: EnrolRequest) -> tuple[str, str] | None:
    if req.member_id is not None:
        return ("id", req.member_id)
    if req.member_no not in (None, ""):
        # a value that is no member number looks up nothing: 会员信息不存在
        return ("no", parse_member_no(req.member_no) or str(req.member_no).strip())
    return None


def check_enrolments(requests: list[EnrolRequest], ctx: EnrolContext) -> list[RowResult]:
    terms, product = ctx.terms, ctx.product
    results: list[RowResult] = []
    keys: list = []
    for req in requests:
        r = RowResult(req.row)
        results.append(r)
        key = _member_key(req)
        if key is None:
            norm = normalize_id(req.id_number)
            if not norm.ok:
                r.fail(norm.code, norm.message)
            else:
                r.warnings = norm.warnings
                # a malformed number (15 digits, wrong check digit, no real birth date) says so
                # (manual 一(四)3), rather than "会员信息不存在"
                valid = check_id(norm.value, ctx.today)
                if not valid.ok:
                    r.fail(valid.code, valid.message)
                else:
                    key = ("idn", norm.value)
        keys.append(key)

    members = _load_members([k for k in keys if k], ctx)
    found = [members.get(k) for k in keys]
    member_ids = {m["id"] for m in found if m is not None}
    existing = _load_policies(member_ids, ctx)
    seen: dict[int, int] = {}

    for req, r, m, key in zip(requests, results, found, keys):
        if key is not None:  # what the database said about the row, for a staged check (batch/stage.py)
            if m is None:
                r.facts = (key[0], str(key[1]), None, None, None, None, None)
            else:
                mine = existing.get(m["id"], {})
                r.facts = (
                    key[0],
                    str(key[1]),
                    m["id"],
                    m["version"],
                    bool(mine.get("in_flight")),
                    bool(mine.get("same_period")),
                    mine.get("shares", 0),
                )
        if not r.ok:
            continue
        if m is None:
            r.fail(Code.MEMBER_MISSING, f"{Code.MEMBER_MISSING.message}（{Code.MEMBER_MISSING.hint}）")
            continue
        if not m["mine"]:
            r.fail(Code.NOT_IN_UNIT, f"{Code.NOT_IN_UNIT.message}（会员不在本单位，{Code.NOT_IN_UNIT.hint}）")
            continue
        if req.name not in (None, ""):
            name = check_name(req.name)
            r.warnings = tuple(r.warnings) + tuple(name.warnings)
            if not name.ok:
                r.fail(name.code, name.message)
                continue
            if name.value != m["name"]:
                r.fail(Code.NAME_MISMATCH, f"{Code.NAME_MISMATCH.message}（系统中为“{m['name']}”）")
                continue
        if m["status"] != MemberStatus.CONFIRMED:
            r.fail(Code.NOT_CONFIRMED)
            continue
        if m["id"] in seen:
            r.fail(Code.DUP_IN_FILE, f"{Code.DUP_IN_FILE.message}（与第{seen[m['id']]}行为同一会员）")
            continue
        seen[m["id"]] = req.row
        gender = check_product_gender(terms, m["gender"])
        if not gender.ok or (m["id_gender"] is not None and m["id_gender"] != m["gender"]):
            r.fail(
                Code.GENDER,
                f"{Code.GENDER.message}（{'该产品仅限女性' if not gender.ok else '登记性别与身份证号不符'}）",
            )
            continue
        age = check_age(m["gender"], m["birth_date"], ctx.effective, exception=m["over_age_exception"])
        if not age.ok:
            hint = f"；{age.code.hint}" if age.code == Code.OVER_AGE and age.value < AGE_HARD_LIMIT else ""
            r.fail(age.code, f"{age.message}（按预期生效时间计 {age.value} 周岁{hint}）")
            continue
        if age.needs_confirmation:
            if not ctx.confirmed_over_age:
                r.fail(
                    Code.NEEDS_CONFIRMATION,
                    f"{Code.NEEDS_CONFIRMATION.message}？（按预期生效时间计 {age.value} 周岁，代办处已同意超龄例外；"
                    "未确认继续投保，未办理）",
                )
                continue
            r.warnings = (*r.warnings, Code.OVER_AGE_AGREED)
        shares = check_shares(terms, req.shares)
        if not shares.ok:
            r.fail(shares.code, shares.message)
            continue
        if ctx.amount_override is not None:  # one 投保金额 for every row
            amount_value = ctx.amount_override
        else:  # 以模板金额为准; an empty cell means 份数 × 每份金额
            amount_value = req.amount if req.amount not in (None, "") else terms.price * shares.value
        amount = parse_amount(amount_value)
        if not amount.ok:
            r.fail(amount.code, amount.message)
            continue
        if not check_amount(terms, shares.value, amount.value).ok:
            r.fail(
                Code.AMOUNT_MISMATCH,
                f"{Code.AMOUNT_MISMATCH.message}（{shares.value} 份应为 {terms.price * shares.value:.2f} 元）",
            )
            continue
        mine = existing.get(m["id"], {})
        if mine.get("in_flight"):
            r.fail(
                Code.IN_FLIGHT,
                f"{Code.IN_FLIGHT.message}（该会员有一份{product.name}保单在"
                f"“{mine['in_flight']}”状态，{Code.IN_FLIGHT.hint}）",
            )
            continue
        if mine.get("same_period"):
            r.fail(Code.DUPLICATE, f"{Code.DUPLICATE.message}（已投保同一期间的{product.name}）")
            continue
        over = check_over_shares(terms, mine.get("shares", 0), shares.value)
        if not over.ok:
            r.fail(
                Code.OVER_SHARES,
                f"{Code.OVER_SHARES.message}（未到期保单已有 {mine.get('shares', 0)} 份，最多 {terms.max_shares} 份）",
            )
            continue
        r.values = {
            "member_id": m["id"],
            "org_id": m["org_id"],
            "shares": shares.value,
            "amount": amount.value,
            "renewed_from_id": req.renewed_from_id,
            "needs_confirmation": age.needs_confirmation,
            "name": m["name"],
            "member_no": m["member_no"],
            "age": age.value,
        }
    return results


def members_named(id_numbers, member_nos, ids=()) -> sa.ColumnElement | None:
    """WHERE a member has one of these ID numbers, member numbers or ids (None: no key given)."""
    conds = []
    if id_numbers:
        conds.append(in_values(db.session, Member.id_number, id_numbers))
    if member_nos:
        conds.append(in_values(db.session, Member.member_no, member_nos))
    if ids:
        conds.append(in_values(db.session, Member.id, ids, sa.Integer))
    return sa.or_(*conds) if conds else None


def _load_members(keys: list, ctx: EnrolContext) -> dict:
    """The members the requests name, by ID number, member number or id: one query."""
    by_idn = [k[1] for k in keys if k[0] == "idn"]
    by_no = [k[1] for k in keys if k[0] == "no"]
    by_id = [k[1] for k in keys if k[0] == "id"]
    named = members_named(by_idn, by_no, by_id)
    if named is None:
        return {}
    mine = scope_filter(Member, ctx.user)
    # Core rows as plain tuples, the enum columns as their stored text: 50,000 rows through the ORM
    # result, Row._mapping and the Enum result processors cost more than the query
    rows = (
        db.session.connection()
        .execute(
            sa.select(
                Member.id,
                Member.member_no,
                Member.id_number,
                Member.name,
                sa.type_coerce(Member.gender, sa.String),
                Member.birth_date,
                sa.type_coerce(Member.status, sa.String),
                Member.org_id,
                Member.over_age_exception,
                mine.label("mine"),
                Member.version,
            ).where(named)
        )
        .all()  # one fetchall: iterating fetches row by row
    )
    out = {}
    statuses = _MEMBER_STATUS
    for mid, member_no, idn, name, gender, birth_date, status, org_id, over_age, is_mine, version in rows:
        rec = {
            "id": mid,
            "member_no": member_no,
            "id_number": idn,
            "name": name,
            "gender": gender,
            "birth_date": birth_date,
            "status": statuses[status],
            "org_id": org_id,
            "over_age_exception": over_age,
            "mine": is_mine,
            "version": version,
            "id_gender": ("M" if int(idn[16]) % 2 else "F") if len(idn) == 18 and idn[16].isdigit() else None,
        }
        out[("idn", idn)] = rec
        out[("no", member_no)] = rec
        out[("id", mid)] = rec
    return out


_MEMBER_STATUS = {m.value: m for m in MemberStatus}
_POLICY_STATUS = {p.value: p for p in PolicyStatus}


def _load_policies(member_ids: set[int], ctx: EnrolContext) -> dict:
    """Per member, for this product: an in-flight policy, a live one of the same period, and the
    shares of live ones overlapping the new period: one query."""
    if not member_ids:
        return {}
    start = sa.func.coalesce(Policy.effective_date, Policy.expected_effective_date)
    rows = (
        db.session.connection()
        .execute(
            sa.select(
                Policy.member_id,
                sa.type_coerce(Policy.status, sa.String),
                Policy.shares,
                start.label("start"),
                Policy.expiry_date,
                Policy.expected_effective_date,
            ).where(
                in_values(db.session, Policy.member_id, list(member_ids), sa.Integer),
                Policy.product_id == ctx.product.id,
                Policy.status.in_(list(POLICY_IN_FLIGHT) + list(LIVE)),
                # 有在途业务 whatever its period (DESIGN §4); live ones only if they reach the new period
                sa.or_(Policy.status.in_(list(POLICY_IN_FLIGHT)), Policy.expiry_date >= ctx.effective),
                Policy.id != (ctx.exclude_policy_id or 0),
            )
        )
        .all()  # one fetchall: iterating fetches row by row
    )
    out: dict[int, dict] = {}
    new_start, new_end = ctx.effective, ctx.expiry
    statuses = _POLICY_STATUS
    for member_id, status, shares, p_start, p_end, p_expected in rows:
        status = statuses[status]
        rec = out.setdefault(member_id, {"shares": 0})
        if status in POLICY_IN_FLIGHT:
            rec["in_flight"] = status.label
        elif p_start <= new_end and p_end >= new_start:
            # the same period: the same start, or the same 预期生效时间 (the database's
            # uq_policy_live_period: once reported, a second one could never become live)
            if p_start == new_start or p_expected == new_start:
                rec["same_period"] = True
            rec["shares"] += shares
    return out


# what a new policy row is written with, in this order (create_policies, the staged write)
POLICY_COLUMNS = [
    "member_id",
    "product_id",
    "org_id",
    "shares",
    "amount",
    "expected_effective_date",
    "expiry_date",
    "status",
    "renewed_from_id",
    "import_batch_id",
    "created_by_id",
    "created_at",
    "updated_at",
    "version",
]


def create_policies(
    results: list[RowResult], ctx: EnrolContext, batch_id: int | None = None, action: str = "create"
) -> int:
    """Write the passing rows as 新建 policies: one COPY/executemany and one audit INSERT … SELECT."""
    ok = [r for r in results if r.ok]
    if not ok:
        return 0
    now, uid = utcnow(), ctx.user.id
    marker = now  # created_at identifies this write's rows for the audit INSERT … SELECT
    columns = POLICY_COLUMNS
    if db.session.get_bind().dialect.name == "postgresql":
        _copy_policies(ok, ctx, columns, batch_id, uid, marker, now)
    else:
        # bulk_insert goes past SQLAlchemy's types to the driver: sqlite3 cannot bind a Decimal, so
        # the amount goes through the column type's own bind processor
        to_db = Policy.__table__.c.amount.type.bind_processor(db.session.get_bind().dialect) or (lambda v: v)
        bulk_insert(
            db.session,
            Policy.__table__,
            columns,
            [
                (
                    r.values["member_id"],
                    ctx.product.id,
                    r.values["org_id"],
                    r.values["shares"],
                    to_db(r.values["amount"]),
                    ctx.effective,
                    ctx.expiry,
                    PolicyStatus.NEW.value,
                    r.values.get("renewed_from_id"),
                    batch_id,
                    uid,
                    marker,
                    now,
                    1,
                )
                for r in ok
            ],
        )
    audit_created(ctx, batch_id, uid, marker, action)
    return len(ok)


def audit_created(ctx: EnrolContext, batch_id, uid, marker, action: str = "create") -> None:
    """The audit of the policies just written (created by `uid` at `marker`): one INSERT … SELECT
    (one audit row naming them all, models/audit.py)."""
    written = sa.select(Policy.id).where(Policy.created_by_id == uid, Policy.created_at == marker)
    if batch_id is not None:  # the same rows, found through the batch's index rather than a scan of every policy
        written = written.where(Policy.import_batch_id == batch_id)
    write_audit(
        action,
        "policy",
        written,
        uid,
        after=created_after(ctx, batch_id),
    )


def created_after(ctx: EnrolContext, batch_id) -> dict:
    """What the audit row of a new policy says."""
    return {
        "status": PolicyStatus.NEW.value,
        "product": ctx.product.code,
        "expected_effective_date": ctx.effective.isoformat(),
        "batch_id": batch_id,
    }


def _null(type_):
    return sa.cast(sa.null(), type_)


def policy_facts_changed(ctx: EnrolContext, stage, batch_id: int) -> bool:
    """Set-based, for a staged check: has any member the rows named changed (version, key), has a
    member appeared for a key that found none, or have the members' policies of the product —
    in flight, of the same period, live shares overlapping the new period — changed since?"""
    s = stage
    m = Member.__table__
    named = sa.select(s.c.member_id).where(s.c.batch_id == batch_id, s.c.member_id.isnot(None))
    # What the rows were checked on and what the database says now, side by side in one
    # aggregate per member (no join the planner could turn into a loop over the stage): the
    # members found by probing the primary key with the staged ids.
    text, num = sa.String, sa.Integer
    staged = sa.select(
        s.c.member_id.label("id"),
        s.c.member_version.label("s_version"),
        sa.case((s.c.key_kind == "idn", s.c.key_value)).label("s_idn"),
        sa.case((s.c.key_kind == "no", s.c.key_value)).label("s_no"),
        _null(num).label("m_version"),
        _null(text).label("m_idn"),
        _null(text).label("m_no"),
    ).where(s.c.batch_id == batch_id, s.c.member_id.isnot(None))
    now = sa.select(m.c.id, _null(num), _null(text), _null(text), m.c.version, m.c.id_number, m.c.member_no).where(
        in_select(db.session, m.c.id, named)
    )
    u = sa.union_all(staged, now).subquery("u")
    max_, min_ = sa.func.max, sa.func.min
    member_changed = db.session.scalar(
        sa.select(sa.func.count()).select_from(
            sa.select(u.c.id)
            .group_by(u.c.id)
            .having(
                sa.or_(
                    max_(u.c.m_version).is_(None),  # the member is gone
                    min_(u.c.s_version) != max_(u.c.m_version),
                    max_(u.c.s_version) != max_(u.c.m_version),
                    min_(u.c.s_idn) != max_(u.c.m_idn),  # found by a number it no longer has
                    max_(u.c.s_idn) != max_(u.c.m_idn),
                    min_(u.c.s_no) != max_(u.c.m_no),
                    max_(u.c.s_no) != max_(u.c.m_no),
                )
            )
            .subquery()
        )
    )
    if member_changed:
        return True
    appeared = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(s)
        .where(
            s.c.batch_id == batch_id,
            s.c.key_kind.isnot(None),
            s.c.member_id.is_(None),
            sa.or_(
                sa.and_(
                    s.c.key_kind == "idn",
                    sa.exists().where(m.c.id_number == s.c.key_value),
                ),
                sa.and_(
                    s.c.key_kind == "no",
                    sa.exists().where(m.c.member_no == s.c.key_value),
                ),
            ),
        )
    )
    if appeared:
        return True
    p = Policy.__table__
    in_flight = [st.value for st in POLICY_IN_FLIGHT]
    live = [st.value for st in LIVE]
    start = sa.func.coalesce(p.c.effective_date, p.c.expected_effective_date)
    new_start, new_end = ctx.effective, ctx.expiry
    is_live = p.c.status.in_(live)

    def flag(cond):
        return sa.case((cond, 1), else_=0)

    # per member: the facts each staged row was checked on (e_*), beside the policies as they
    # are now (c_*: in flight, live of the same period, live shares overlapping the new period)
    zero = sa.literal(0, num)
    expected = sa.select(
        s.c.member_id.label("member_id"),
        sa.literal(1, num).label("staged"),
        flag(s.c.in_flight).label("e_in_flight"),
        flag(s.c.same_period).label("e_same_period"),
        s.c.live_shares.label("e_shares"),
        zero.label("c_in_flight"),
        zero.label("c_same_period"),
        zero.label("c_shares"),
    ).where(s.c.batch_id == batch_id, s.c.member_id.isnot(None), s.c.in_flight.isnot(None))
    current = sa.select(
        p.c.member_id,
        zero,
        _null(num),
        _null(num),
        _null(num),
        flag(p.c.status.in_(in_flight)),
        # as _load_policies says it: the same start or the same 预期生效时间
        flag(sa.and_(is_live, sa.or_(start == new_start, p.c.expected_effective_date == new_start))),
        sa.case((sa.and_(is_live, start <= new_end, p.c.expiry_date >= new_start), p.c.shares), else_=0),
    ).where(
        in_select(db.session, p.c.member_id, named),
        p.c.product_id == ctx.product.id,
        p.c.status.in_(in_flight + live),
        sa.or_(p.c.status.in_(in_flight), p.c.expiry_date >= new_start),
    )
    u = sa.union_all(expected, current).subquery("facts")
    now_in_flight, now_same, now_shares = max_(u.c.c_in_flight), max_(u.c.c_same_period), sa.func.sum(u.c.c_shares)
    changed = db.session.scalar(
        sa.select(sa.func.count()).select_from(
            sa.select(u.c.member_id)
            .group_by(u.c.member_id)
            .having(
                max_(u.c.staged) == 1,
                sa.or_(
                    min_(u.c.e_in_flight) != now_in_flight,
                    max_(u.c.e_in_flight) != now_in_flight,
                    min_(u.c.e_same_period) != now_same,
                    max_(u.c.e_same_period) != now_same,
                    min_(u.c.e_shares) != now_shares,
                    max_(u.c.e_shares) != now_shares,
                ),
            )
            .subquery()
        )
    )
    return bool(changed)


def write_staged_policies(ctx: EnrolContext, stage, batch_id: int) -> int:
    """The passing rows of a staged check as 新建 policies: one INSERT … SELECT, then the audit rows."""
    s = stage
    now, uid = utcnow(), ctx.user.id
    select = sa.select(
        s.c.member_id,
        sa.literal(ctx.product.id, sa.Integer),
        s.c.org_id,
        s.c.shares,
        s.c.amount,
        sa.literal(ctx.effective, sa.Date),
        sa.literal(ctx.expiry, sa.Date),
        sa.literal(PolicyStatus.NEW.value, sa.String),
        sa.null(),
        sa.literal(batch_id, sa.Integer),
        sa.literal(uid, sa.Integer),
        sa.literal(now, sa.DateTime),
        sa.literal(now, sa.DateTime),
        sa.literal(1, sa.Integer),
    ).where(s.c.batch_id == batch_id, s.c.code.is_(None))
    return insert_with_audit(
        Policy.__table__,
        POLICY_COLUMNS,
        select,
        "create",
        "policy",
        uid,
        after=created_after(ctx, batch_id),
    )


def _copy_policies(ok: list[RowResult], ctx: EnrolContext, columns: list[str], batch_id, uid, marker, now) -> None:
    """PostgreSQL: one text COPY whose lines are formatted here, the values the same for every row
    formatted once (psycopg's write_row formats each value of each row: 17 µs a row).  Every value
    is an int, a Decimal, a date, a datetime, a code or NULL: nothing to escape."""
    null = "\\N"
    tail = (
        f"\t{PolicyStatus.NEW.value}\t{{renewed}}\t{null if batch_id is None else batch_id}\t"
        f"{null if uid is None else uid}\t{marker.isoformat(' ')}\t{now.isoformat(' ')}\t1\n"
    )
    middle = f"\t{ctx.effective.isoformat()}\t{ctx.expiry.isoformat()}"
    pid = ctx.product.id
    plain = tail.replace("{renewed}", null)
    lines = []
    append = lines.append
    for r in ok:
        v = r.values
        renewed = v.get("renewed_from_id")
        append(
            f"{v['member_id']}\t{pid}\t{v['org_id']}\t{v['shares']}\t{v['amount']}{middle}"
            + (plain if renewed is None else tail.replace("{renewed}", str(renewed)))
        )
    raw = db.session.connection().connection.driver_connection
    cols = ", ".join(f'"{c}"' for c in columns)
    sql = f'COPY "{Policy.__table__.name}" ({cols}) FROM STDIN'
    with driver_errors(sql), raw.cursor() as cur, cur.copy(sql) as copy:
        copy.write("".join(lines))

"""Products, policies (投保记录/保单), receipts and claims."""

from __future__ import annotations

import sqlalchemy as sa

from .base import LabeledEnum, Timestamps, Versioned, db, enum_type
from .roles import AGENCY, OFFICE, UNIT
from .workflow import Transition, Workflow


class GenderRestriction(LabeledEnum):
    FEMALE = ("F", "仅限女性")


class Product(db.Model):
    __tablename__ = "product"

    id = sa.Column(sa.Integer, primary_key=True)
    code = sa.Column(sa.String(20), nullable=False, unique=True)
    name = sa.Column(sa.String(100), nullable=False)
    price = sa.Column(sa.Numeric(12, 2), nullable=False)
    max_shares = sa.Column(sa.Integer, nullable=False, default=1)
    term_months = sa.Column(sa.Integer, nullable=False, default=12)
    gender_restriction = sa.Column(enum_type(GenderRestriction))
    active = sa.Column(sa.Boolean, nullable=False, default=True, server_default=sa.true())

    def __str__(self) -> str:
        return self.name

    @property
    def choice_label(self) -> str:
        """The product as a drop-down of new policies names it: price and most shares too."""
        return f"{self.name}（{self.price:.2f} 元/份，最多 {self.max_shares} 份）"


def products(active_only: bool = True) -> list[Product]:
    """The products of a drop-down, by code: only the active ones where a new policy is made,
    every one where existing policies are searched."""
    stmt = sa.select(Product).order_by(Product.code)
    if active_only:
        stmt = stmt.where(Product.active.is_(True))
    return list(db.session.scalars(stmt))


def product_choices(items: list[Product], detailed: bool = False) -> list[tuple[str, str]]:
    """(id as text, name) per product — with price and most shares when `detailed`."""
    return [(str(p.id), p.choice_label if detailed else p.name) for p in items]


class PolicyStatus(LabeledEnum):
    NEW = ("NEW", "新建")
    REPORTED = ("REPORTED", "上报")
    AGENCY_REPORTED = ("AGENCY_REPORTED", "代办处已上报")
    EFFECTIVE = ("EFFECTIVE", "打印生效")
    RETURNED = ("RETURNED", "打回")
    TERMINATED = ("TERMINATED", "提前终止")


POLICY_EDITABLE = (PolicyStatus.NEW, PolicyStatus.RETURNED)
POLICY_IN_FLIGHT = (PolicyStatus.NEW, PolicyStatus.RETURNED, PolicyStatus.REPORTED)
POLICY_LIVE = (PolicyStatus.AGENCY_REPORTED, PolicyStatus.EFFECTIVE)
LIVE_KEY = ("member_id", "product_id", "expected_effective_date")

# The phase (阶段) of a policy: its status, except that the three states of a policy still with its
# unit or agency (新建, 打回, 上报) are one phase, IN_FLIGHT.  The database computes it from the
# status (a stored generated column), and the indexes use it instead of the status: 上报 (新建 →
# 上报), 打回 (上报 → 打回) and 重新上报 (打回 → 上报) then change no indexed column, so PostgreSQL
# writes the new row version on the same page without an entry in any index (a HOT update; a column
# named in any index, including a partial index's WHERE, forbids it), issue 13.
IN_FLIGHT_PHASE = "IN_FLIGHT"


def phase_of(status: PolicyStatus) -> str:
    return IN_FLIGHT_PHASE if status in POLICY_IN_FLIGHT else status.value


PHASE_SQL = "CASE WHEN status IN ({}) THEN '{}' ELSE status END".format(
    ", ".join(f"'{s.value}'" for s in POLICY_IN_FLIGHT), IN_FLIGHT_PHASE
)
IN_FLIGHT_SQL = f"phase = '{IN_FLIGHT_PHASE}'"
LIVE_SQL = "phase IN ({})".format(", ".join(f"'{phase_of(s)}'" for s in POLICY_LIVE))
EFFECTIVE_SQL = f"phase = '{phase_of(PolicyStatus.EFFECTIVE)}'"


class _StatusComparator(sa.orm.ColumnProperty.Comparator):
    """`Policy.status == s` and `Policy.status.in_(states)` also say the phase the states are in, so
    that every query by status — a list's 选择状态, a to-do count, 即将到期's 打印生效, a transition's
    `AND status IN (:expected)` — can use the phase indexes and the partial indexes whose WHERE names
    the phase (PostgreSQL cannot derive the phase from the status by itself); states that make up
    whole phases are said by the phase alone.  The same rows: the phase is a function of the status."""

    def operate(self, op, *other, **kw):
        expr = super().operate(op, *other, **kw)
        if op is sa.sql.operators.eq:
            values = [other[0]]
        elif op is sa.sql.operators.in_op and isinstance(other[0], list | tuple | set | frozenset):
            values = list(other[0])
        else:
            return expr
        try:
            phases = sorted({phase_of(PolicyStatus(v)) for v in values})
        except ValueError:
            return expr
        if not phases:
            return expr
        # written into the SQL as constants (the enum's values, never user input), so that even a
        # prepared statement's generic plan can prove a partial index's WHERE from them
        consts = [sa.literal_column(f"'{p}'", sa.String) for p in phases]
        phase = self._parententity.entity.phase
        by_phase = phase == consts[0] if len(consts) == 1 else phase.in_(consts)
        if {s for s in PolicyStatus if phase_of(s) in phases} == {PolicyStatus(v) for v in values}:
            return by_phase  # whole phases (打印生效; 新建+打回+上报): the status adds nothing, and
            # without it a count is read from the index alone
        return sa.and_(by_phase, expr)


class Policy(Timestamps, Versioned, db.Model):
    __tablename__ = "policy"

    id = sa.Column(sa.Integer, primary_key=True)
    member_id = sa.Column(sa.Integer, sa.ForeignKey("member.id"), nullable=False)
    product_id = sa.Column(sa.Integer, sa.ForeignKey("product.id"), nullable=False)
    org_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), nullable=False)
    shares = sa.Column(sa.Integer, nullable=False, default=1)
    amount = sa.Column(sa.Numeric(12, 2), nullable=False)
    expected_effective_date = sa.Column(sa.Date, nullable=False)
    effective_date = sa.Column(sa.Date)
    # for a policy not yet effective: the period it would cover from the expected date
    expiry_date = sa.Column(sa.Date, nullable=False)
    policy_no = sa.Column(sa.String(30))  # unique once assigned: uq_policy_no below
    status = sa.orm.column_property(
        sa.Column(enum_type(PolicyStatus), nullable=False, default=PolicyStatus.NEW),
        comparator_factory=_StatusComparator,
    )
    phase = sa.Column(sa.String(20), sa.Computed(PHASE_SQL, persisted=True))  # see PHASE_SQL
    return_reason = sa.Column(sa.String(200))
    renewed_from_id = sa.Column(sa.Integer, sa.ForeignKey("policy.id"))
    receipt_id = sa.Column(sa.Integer, sa.ForeignKey("receipt.id"))
    import_batch_id = sa.Column(sa.Integer)  # provenance: no FK (see Member)
    created_by_id = sa.Column(sa.Integer)
    # 提前终止 (an approved 保单提前终止申请): the last day covered and the refund (rules/termination.py)
    terminated_on = sa.Column(sa.Date)
    refund = sa.Column(sa.Numeric(12, 2))

    member = db.relationship("Member", backref=db.backref("policies", lazy="dynamic"))
    product = db.relationship("Product")
    org = db.relationship("Org")
    renewed_from = db.relationship("Policy", remote_side=[id])
    receipt = db.relationship("Receipt", back_populates="policies")
    created_by = db.relationship("User", primaryjoin="foreign(Policy.created_by_id) == User.id", viewonly=True)

    # Every index here is read by a screen, a rule or a foreign-key check (EXPLAIN ANALYZE at 1M
    # members / 3M policies, README "Indexes"); none names the status, updated_at or version, the
    # columns 上报/打回 change (see PHASE_SQL).
    __table_args__ = (
        # the lists (投保管理, 打印生效清单, 即将到期订单 …) of a unit or an agency read org-first: the
        # scope, 选择状态 (as its phase), 产品名称 and the page's newest ids, from the index alone; the
        # foreign-key check of a deleted org reads it too
        sa.Index("ix_policy_org_phase_product", "org_id", "phase", "product_id", "id"),
        # the admin's unscoped list and an agency holding a 100,000-policy unit read phase-first:
        # a rare state's page and capped count (without it a parallel seq scan of 3M rows, 4.5 s),
        # and 打印生效's capped count from the index alone (without it 40,000 rows read, ~60 ms)
        sa.Index("ix_policy_phase_product", "phase", "product_id", "id"),
        # a member's policies: the batch checks' look-ups (in flight, same period, shares), a member's
        # page and the foreign-key check of a deleted member (of any state, TERMINATED too)
        sa.Index("ix_policy_member_product", "member_id", "product_id"),
        # the enrolment rules, kept by the database too (a race between two writers cannot beat
        # them): IN_FLIGHT, one 新建/打回/上报 policy per member and product, and DUPLICATE, one live
        # (代办处已上报/打印生效) policy per member, product and 预期生效时间.  Overlapping live policies
        # of other dates stay allowed (OVER_SHARES counts their shares).  By phase: the same rows
        # as by status, and 上报/打回 stay inside the in-flight phase, so they leave these alone.
        sa.Index(
            "uq_policy_in_flight",
            "member_id",
            "product_id",
            unique=True,
            postgresql_where=sa.text(IN_FLIGHT_SQL),
            sqlite_where=sa.text(IN_FLIGHT_SQL),
        ),
        sa.Index(
            "uq_policy_live_period",
            "member_id",
            "product_id",
            "expected_effective_date",
            unique=True,
            postgresql_where=sa.text(LIVE_SQL),
            sqlite_where=sa.text(LIVE_SQL),
        ),
        # 即将到期订单 and its export read 打印生效 policies in (到期日期, id) order (issue 11).  At 3M
        # policies, 200,000 of them: with an index on expiry_date alone PostgreSQL reads 444,394 rows
        # in parallel and sorts them (Incremental Sort, 3.4 s); here the rows come in order, the
        # LIMIT stops the scan at 200,000 and workers join them (1.9 s, EXPLAIN ANALYZE).  A month:
        # the same order without a sort.  Only effective rows are in it.  (The plain expiry_date
        # index it replaced was read by no query: every one by 到期日期 is of 打印生效 policies.)
        sa.Index(
            "ix_policy_effective_expiry",
            "expiry_date",
            "id",
            postgresql_where=sa.text(EFFECTIVE_SQL),
            sqlite_where=sa.text(EFFECTIVE_SQL),
        ),
        # Columns that most rows leave empty are indexed only where they are set (issue 13): a new
        # policy, and every state change of one not yet effective, then writes no entry into them
        # (a non-HOT UPDATE adds an entry to every index whose predicate the new row meets).
        # 保单号 is unique once assigned (NULLs never collide, so this is the same guarantee).
        sa.Index(
            "uq_policy_no",
            "policy_no",
            unique=True,
            postgresql_where=sa.text("policy_no IS NOT NULL"),
            sqlite_where=sa.text("policy_no IS NOT NULL"),
        ),
        sa.Index(
            "ix_policy_receipt",
            "receipt_id",
            postgresql_where=sa.text("receipt_id IS NOT NULL"),
            sqlite_where=sa.text("receipt_id IS NOT NULL"),
        ),
        sa.Index(
            "ix_policy_import_batch",
            "import_batch_id",
            postgresql_where=sa.text("import_batch_id IS NOT NULL"),
            sqlite_where=sa.text("import_batch_id IS NOT NULL"),
        ),
        # the FK check of every deleted policy looks here; without it 批量删除 scans 3M rows per row
        sa.Index(
            "ix_policy_renewed_from_id",
            "renewed_from_id",
            postgresql_where=sa.text("renewed_from_id IS NOT NULL"),
            sqlite_where=sa.text("renewed_from_id IS NOT NULL"),
        ),
    )

    def __str__(self) -> str:
        return self.policy_no or f"投保记录 {self.id}"

    @classmethod
    def transition_guard(cls, ids, from_states, to_state) -> list:
        """Conditions a row must meet to move to `to_state` in a bulk transition without breaking
        uq_policy_in_flight or uq_policy_live_period (e.g. the office sends a policy back to
        上报 while the member has another one in flight): the rest stay as they are and are
        counted as skipped, rather than failing the whole statement."""
        for states, key in ((POLICY_IN_FLIGHT, ("member_id", "product_id")), (POLICY_LIVE, LIVE_KEY)):
            if to_state in states and not all(s in states for s in from_states):
                other = sa.orm.aliased(cls)
                same = [getattr(other, c) == getattr(cls, c) for c in key]
                return [
                    ~sa.exists().where(*same, other.status.in_(list(states)), other.id != cls.id),
                    # two rows of the statement with the same key: the first one moves
                    ~sa.exists().where(
                        *same, other.id < cls.id, other.id.in_(ids), other.status.in_(list(from_states))
                    ),
                ]
        return []


POLICY_WORKFLOW = Workflow(
    Policy,
    "投保记录",
    editable=POLICY_EDITABLE,
    transitions=[
        Transition(
            name="report",
            label="当前查询结果上报",
            from_states=POLICY_EDITABLE,
            to_state=PolicyStatus.REPORTED,
            roles=UNIT,
            action="report",
            action_label="上报",
            clears=("return_reason",),
            todo={PolicyStatus.RETURNED: "被打回的投保记录", PolicyStatus.NEW: "新建未上报的投保记录"},
            with_amount=True,
            note="将当前查询结果中“新建”和“打回”状态的投保记录上报到代办处。请先核对下面的人数和金额。",
        ),
        Transition(
            name="agency-report",
            label="当前查询结果上报",
            from_states=(PolicyStatus.REPORTED,),
            to_state=PolicyStatus.AGENCY_REPORTED,
            roles=AGENCY,
            action="report",
            action_label="上报",
            clears=("return_reason",),  # an office's 打回原因 is dealt with once reported again
            todo={PolicyStatus.REPORTED: "基层单位已上报、待核实的投保记录"},
            with_amount=True,
            note="将当前查询结果中基层单位已“上报”的投保记录核实后上报（状态变为“代办处已上报”）。",
        ),
        Transition(
            name="return",
            label="当前查询结果打回",
            from_states=(PolicyStatus.REPORTED,),
            to_state=PolicyStatus.RETURNED,
            roles=AGENCY,
            action="return",
            action_label="打回",
            reason="打回原因（基层单位会在打回的记录上看到）",
            reason_column="return_reason",
            with_amount=True,
            danger=True,
            note="将当前查询结果中“上报”状态的投保记录打回基层单位修改；基层单位会看到打回原因。",
        ),
        # 办事处: its run (保单号, 正式生效时间, 到期日期) is actions/effective.py `confirm_effective`
        Transition(
            name="confirm",
            label="确认生效",
            from_states=(PolicyStatus.AGENCY_REPORTED,),
            to_state=PolicyStatus.EFFECTIVE,
            roles=OFFICE,
            action="confirm",
            action_label="确认生效",
            clears=("return_reason",),
            todo={PolicyStatus.AGENCY_REPORTED: "代办处已上报、待确认生效的投保记录"},
            with_amount=True,
            note="确认当前查询结果中“代办处已上报”的投保记录已缴费：状态变为“打印生效”，分配保单号，"
            "正式生效时间为预期生效时间（已过的为今天）。请先核对人数和金额。",
        ),
        Transition(
            name="office-return",
            label="当前查询结果打回",
            from_states=(PolicyStatus.AGENCY_REPORTED,),
            to_state=PolicyStatus.REPORTED,
            roles=OFFICE,
            action="office_return",
            action_label="打回代办处",
            reason="打回原因（代办处会在打回的记录上看到）",
            reason_column="return_reason",
            with_amount=True,
            danger=True,
            note="将当前查询结果中“代办处已上报”的投保记录打回代办处（状态变回“上报”）；代办处会看到打回原因。",
        ),
    ],
)


# PostgreSQL: 10 % free space on each policy page, so that the new version of a row that a state
# change writes stays on its own page (db.create_all; migration 0007 does the same)
sa.event.listen(
    Policy.__table__,
    "after_create",
    sa.DDL("ALTER TABLE policy SET (fillfactor = 90)").execute_if(dialect="postgresql"),
)
# PostgreSQL: VACUUM after 1 % of the rows changed (30,000 of 3M) rather than 20 %: a 上报 clears the
# visibility-map bit of each page it touches, and until VACUUM sets it again the lists' counts read
# those pages instead of the index alone (8,190 row reads for 10,001 counted; migration 0019)
POLICY_AUTOVACUUM = (
    "ALTER TABLE policy SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.01)"
)
sa.event.listen(Policy.__table__, "after_create", sa.DDL(POLICY_AUTOVACUUM).execute_if(dialect="postgresql"))
# PostgreSQL: what the list filters select together (scope, phase, status, product), counted by
# ANALYZE as combinations.  Column by column the planner multiplies the fractions and, for a unit
# holding 100,000 新建 policies, expects 6,000 rows where 100,000 match: it then builds a bitmap of
# all 100,000 before the capped count's LIMIT (50–75 ms) instead of reading the index until the
# 10,001st row (15–29 ms, EXPLAIN ANALYZE at 3M policies, README "Indexes"); status is no longer in
# the indexes (see PHASE_SQL), so it is checked on the row and its share must be known (migration 0019)
POLICY_LIST_STATISTICS = "CREATE STATISTICS st_policy_list (mcv) ON org_id, phase, status, product_id FROM policy"
sa.event.listen(
    Policy.__table__,
    "after_create",
    sa.DDL(POLICY_LIST_STATISTICS).execute_if(dialect="postgresql"),
)


class ReceiptStatus(LabeledEnum):
    VALID = ("VALID", "有效")
    VOID = ("VOID", "作废")


class Receipt(db.Model):
    """收据 (manual 二、1): issued by an agency for what one unit paid.

    A document with legal weight: the parameters it was printed from (`params`) and the PDF bytes
    themselves are kept, so a reprint is the same file; a voided receipt keeps its number and
    gets a second rendition with 作废 across the page.  `receipt_no` is ``YYYY-NNNNNN`` from the
    counter ``receipt_no:YYYY`` (gap-free per year, see actions/receipts.py).  The policies it
    covers are listed in `receipt_policy`; `Policy.receipt_id` points to a policy's one valid
    receipt (cleared when the receipt is voided, so the policy can be receipted again)."""

    __tablename__ = "receipt"

    id = sa.Column(sa.Integer, primary_key=True)
    receipt_no = sa.Column(sa.String(30), nullable=False, unique=True)
    org_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), nullable=False, index=True)  # the payer unit
    headcount = sa.Column(sa.Integer, nullable=False, default=0)
    total = sa.Column(sa.Numeric(14, 2), nullable=False, default=0)
    issued_by_id = sa.Column(sa.Integer, sa.ForeignKey("user.id"))
    issued_at = sa.Column(sa.DateTime, nullable=False)
    status = sa.Column(
        enum_type(ReceiptStatus), nullable=False, default=ReceiptStatus.VALID, server_default=ReceiptStatus.VALID.value
    )
    params = sa.Column(sa.JSON)  # what the PDF was rendered from
    pdf = sa.Column(sa.LargeBinary)  # the bytes as first printed
    void_pdf = sa.Column(sa.LargeBinary)  # the same receipt with 作废 across the page
    void_reason = sa.Column(sa.String(200))
    voided_by_id = sa.Column(sa.Integer, sa.ForeignKey("user.id"))
    voided_at = sa.Column(sa.DateTime)

    org = db.relationship("Org")
    issued_by = db.relationship("User", foreign_keys=[issued_by_id])
    voided_by = db.relationship("User", foreign_keys=[voided_by_id])
    policies = db.relationship("Policy", back_populates="receipt")

    def __str__(self) -> str:
        return self.receipt_no


class ReceiptPolicy(db.Model):
    """Which policies a receipt covered, kept after the receipt is voided."""

    __tablename__ = "receipt_policy"

    receipt_id = sa.Column(sa.Integer, sa.ForeignKey("receipt.id"), primary_key=True)
    policy_id = sa.Column(sa.Integer, sa.ForeignKey("policy.id"), primary_key=True, index=True)


class ClaimStatus(LabeledEnum):
    PENDING = ("PENDING", "受理中")
    PAID = ("PAID", "已赔付")
    REJECTED = ("REJECTED", "拒赔")


class Claim(Timestamps, db.Model):
    __tablename__ = "claim"

    id = sa.Column(sa.Integer, primary_key=True)
    claim_no = sa.Column(sa.String(30), nullable=False, unique=True)
    member_id = sa.Column(sa.Integer, sa.ForeignKey("member.id"), nullable=False, index=True)
    policy_id = sa.Column(sa.Integer, sa.ForeignKey("policy.id"), index=True)
    org_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), nullable=False, index=True)
    event_date = sa.Column(sa.Date, nullable=False)
    amount_paid = sa.Column(sa.Numeric(12, 2), nullable=False, default=0)
    status = sa.Column(enum_type(ClaimStatus), nullable=False, default=ClaimStatus.PENDING)

    member = db.relationship("Member", backref=db.backref("claims", lazy="dynamic"))
    policy = db.relationship("Policy")
    org = db.relationship("Org")

    def __str__(self) -> str:
        return self.claim_no

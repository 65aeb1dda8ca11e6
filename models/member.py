"""Members (会员) and the counter that hands out member numbers."""

from __future__ import annotations

import sqlalchemy as sa

from .base import LabeledEnum, Timestamps, Versioned, db, enum_type
from .roles import UNIT
from .workflow import Transition, Workflow


class Gender(LabeledEnum):
    MALE = ("M", "男")
    FEMALE = ("F", "女")


class MemberStatus(LabeledEnum):
    NEW = ("NEW", "新建")
    CONFIRMED = ("CONFIRMED", "财务确认")
    RETURNED = ("RETURNED", "打回")


MEMBER_EDITABLE = (MemberStatus.NEW, MemberStatus.RETURNED)


class Member(Timestamps, Versioned, db.Model):
    __tablename__ = "member"

    id = sa.Column(sa.Integer, primary_key=True)
    member_no = sa.Column(sa.String(20), nullable=False, unique=True)
    id_number = sa.Column(sa.String(18), nullable=False, unique=True)
    name = sa.Column(sa.String(50), nullable=False)
    gender = sa.Column(enum_type(Gender), nullable=False)
    birth_date = sa.Column(sa.Date, nullable=False)
    phone = sa.Column(sa.String(20))
    org_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), nullable=False)
    status = sa.Column(enum_type(MemberStatus), nullable=False, default=MemberStatus.NEW)
    admitted_on = sa.Column(sa.Date)
    return_reason = sa.Column(sa.String(200))
    # not formally retired (e.g. 局级干部): agency-approved exception to the age limit, never past 65
    over_age_exception = sa.Column(sa.Boolean, nullable=False, default=False, server_default=sa.false())
    over_age_note = sa.Column(sa.String(200))
    over_age_approved_by_id = sa.Column(sa.Integer, sa.ForeignKey("user.id"))
    # provenance columns carry ids without FK constraints: a 50,000-row COPY would otherwise pay a
    # per-row trigger check for each (users are deactivated, batches kept, never deleted)
    created_by_id = sa.Column(sa.Integer)
    import_batch_id = sa.Column(sa.Integer)

    org = db.relationship("Org")
    over_age_approved_by = db.relationship("User", foreign_keys=[over_age_approved_by_id])
    created_by = db.relationship("User", primaryjoin="foreign(Member.created_by_id) == User.id", viewonly=True)

    # each read by a screen or a batch step (README "Indexes"); member_no and id_number are unique
    # above (会员编号 and 身份证号 searches, the batch look-ups)
    __table_args__ = (
        # the lists of a unit or an agency: scope, 选择状态 and the page's newest ids from the index
        sa.Index("ix_member_org_status", "org_id", "status", "id"),
        # 姓名 search, a prefix (LIKE '王伟%', views/members.py): the pattern operator class serves
        # it in any collation (the default one only in C; without it a seq scan of 1M rows, 300 ms)
        sa.Index("ix_member_name", "name", postgresql_ops={"name": "varchar_pattern_ops"}),
        # 批量入会's own members (batch/members.py: written, agreed); members entered on the form
        # have no batch and no entry
        sa.Index(
            "ix_member_import_batch",
            "import_batch_id",
            postgresql_where=sa.text("import_batch_id IS NOT NULL"),
            sqlite_where=sa.text("import_batch_id IS NOT NULL"),
        ),
    )

    def __str__(self) -> str:
        return f"{self.member_no} {self.name}"


MEMBER_WORKFLOW = Workflow(
    Member,
    "会员",
    editable=MEMBER_EDITABLE,
    transitions=[
        Transition(
            name="report",
            label="当前查询结果上报",
            from_states=MEMBER_EDITABLE,
            to_state=MemberStatus.CONFIRMED,
            roles=UNIT,
            action="report",
            action_label="上报",
            clears=("return_reason",),
            todo={MemberStatus.RETURNED: "被打回的会员", MemberStatus.NEW: "新建未上报的会员"},
            note="将当前查询结果中“新建”和“打回”状态的会员上报，上报后状态为“财务确认”，即可投保。",
        ),
    ],
)


class Counter(db.Model):
    """Named counters; `reserve` hands out a block atomically (row lock), safe for two clerks at once."""

    __tablename__ = "counter"

    name = sa.Column(sa.String(30), primary_key=True)
    value = sa.Column(sa.BigInteger, nullable=False, default=0)


def reserve_numbers(name: str, count: int, session=None) -> range:
    """Reserve `count` consecutive numbers of counter `name` in the caller's transaction.

    One upsert: the counter row is locked until the transaction ends, so two clerks saving at
    the same moment get different numbers (the second waits for the first)."""
    session = session or db.session
    table = Counter.__table__
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(name=name, value=count)
    stmt = stmt.on_conflict_do_update(index_elements=[table.c.name], set_={"value": table.c.value + count})
    end = session.execute(stmt.returning(table.c.value)).scalar_one()
    return range(end - count + 1, end + 1)


def member_numbers(count: int, session=None) -> list[str]:
    return [f"{n:010d}" for n in reserve_numbers("member_no", count, session)]

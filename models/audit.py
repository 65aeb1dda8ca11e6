"""The audit log and its one writer.

Two forms of row, one rule: an action that touched ONE record names it in `entity_id` (as every
row always did); an action that touched SEVERAL records with the same before/after (a bulk action
on the current query, a batch's inserts) is ONE row naming them all in `entity_ids`, with their
number in `entity_count` — one INSERT … SELECT … array_agg(id) per action, whatever the row count,
instead of a row per record.  Changes whose before/after differ per record (`audit_select`,
dml_with_audit's `before_columns`) keep a row per record.

"Which audit rows concern record X" is `entity_id = X OR entity_ids contains X` (`names_record`):
PostgreSQL keeps `entity_ids` as an integer[] with a GIN index (`entity_ids @> ARRAY[X]`); SQLite,
the embedded default, as a JSON array read with json_each (no index: a development database).
`audit_entries()` gives the log one row per (audit row, record) for whoever needs today's shape."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import deferred

from .base import db, utcnow

# the ids of a grouped row: integer[] on PostgreSQL, a JSON array elsewhere (SQL NULL when unused)
ID_LIST = sa.JSON(none_as_null=True).with_variant(postgresql.ARRAY(sa.Integer), "postgresql")
ONE_OR_MANY = "(entity_id IS NULL) <> (entity_ids IS NULL)"
GROUPED_SQL = "entity_ids IS NOT NULL"


class AuditLog(db.Model):
    __tablename__ = "audit_log"

    id = sa.Column(sa.Integer, primary_key=True)
    created_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)
    # no FK: an audit row must outlive anything, and bulk actions write 100,000 of them at once
    user_id = sa.Column(sa.Integer, index=True)
    action = sa.Column(sa.String(50), nullable=False)
    entity = sa.Column(sa.String(50), nullable=False)
    entity_id = sa.Column(sa.Integer)  # the one record of a single-record row (else NULL)
    # the records of a grouped row (else NULL): deferred, a list page never loads 100,000 ids
    entity_ids = deferred(sa.Column(ID_LIST))
    entity_count = sa.Column(sa.Integer, nullable=False, server_default="1")  # how many records
    before = sa.Column(sa.JSON)
    after = sa.Column(sa.JSON)

    user = db.relationship("User", primaryjoin="foreign(AuditLog.user_id) == User.id", viewonly=True)

    __table_args__ = (
        sa.Index("ix_audit_log_entity", "entity", "entity_id"),
        sa.Index("ix_audit_log_created_at", "created_at"),
        # "history of record X" among the grouped rows: entity_ids @> ARRAY[X].  fastupdate off: each
        # action pays for its own ids when it writes them (measured on bench_large, 100,000 ids: a
        # steady ~0.5 s under load 10 vs 0.1 s and, every third action, a 2.5 s pending-list merge),
        # and a history search reads no pending list
        sa.Index(
            "ix_audit_log_entity_ids",
            "entity_ids",
            postgresql_using="gin",
            postgresql_with={"fastupdate": "off"},
            postgresql_where=sa.text(GROUPED_SQL),
            sqlite_where=sa.text(GROUPED_SQL),
        ),
        sa.CheckConstraint(ONE_OR_MANY, name="one_or_many"),
    )

    @property
    def grouped(self) -> bool:
        return self.entity_id is None


# the actions that are no state transition; each transition's label is added where it is declared
# (models/workflow.py), so the audit log names every action a workflow can write
ACTION_LABELS = {
    "create": "新增",
    "update": "修改",
    "delete": "删除",
    "reset_password": "重置密码",
    "set_password": "修改密码",
    "unlock": "解锁",
    "login": "登录",
    "change_date": "修改预期生效时间",
    "receipt": "开具收据",
    "void": "作废",
    "receipt_void": "收据作废",
}

# every table an audit row can name (views/audit_text.py shows these)
ENTITY_LABELS = {
    "member": "会员",
    "policy": "投保记录",
    "org": "单位",
    "user": "用户",
    "product": "产品",
    "import_batch": "批量业务",
    "transfer_application": "会员调动申请",
    "change_application": "会员变更申请",
    "termination_application": "保单提前终止申请",
    "over_age_application": "超龄例外申请",
    "receipt": "收据",
    "claim": "理赔",
}

# labels of fields no screen lists (provenance, bookkeeping) and of what bulk actions record
FIELD_LABELS = {
    "id": "编号",
    "status": "状态",
    "phase": "阶段",  # policy: computed from the status (models/policy.py PHASE_SQL)
    "created_at": "创建时间",
    "updated_at": "修改时间",
    "version": "版本",
    "created_by_id": "创建人",
    "import_batch_id": "批量业务批次",
    "batch_id": "批量业务批次",
    "org_id": "单位",
    "member_id": "会员",
    "product_id": "产品",
    "product": "产品",
    "user_id": "用户",
    "renewed_from_id": "续转自",
    "receipt_id": "收据",
    "receipt_no": "收据编号",
    "total": "合计金额",
    "return_reason": "打回原因",
    "reason": "原因",
    "decision_note": "审批意见",
    "confirmed_on": "确认生效日期",
    "expected_effective_date": "预期生效时间",
    "effective_date": "正式生效时间",
    "expiry_date": "到期日期",
    "password": "密码",
    "over_age_exception": "超龄例外",
    "over_age_note": "超龄说明",
    "over_age_approved_by_id": "超龄例外批准人",
    "admitted_on": "入会日期",
    "id_number": "身份证号",
    "name": "姓名",
    "gender": "性别",
    "birth_date": "出生日期",
    "phone": "手机号码",
    "path": "路径",
    "parent_id": "上级单位",
    "failed_attempts": "连续失败次数",
    "locked_until": "锁定至",
    "last_login_at": "最近登录",
    "login_code_sent_at": "验证码发送时间",
    "login_code_tries": "验证码尝试次数",
    "decided_at": "审批时间",
    "decided_by_id": "审批人",
    "submitted_at": "上报时间",
    "voided_by_id": "作废人",
    "voided_at": "作废时间",
    "void_reason": "作废原因",
    "issued_by_id": "开具人",
    "issued_at": "开具时间",
    "params": "参数",
    "pdf": "PDF 文件",
    "void_pdf": "作废 PDF 文件",
    "job_id": "后台任务编号",
    "stage_key": "校验结果标识",
    "document_kind": "证明文件类型",
    "document_size": "证明文件大小（字节）",
    "document_sha256": "证明文件指纹",
    "claim_no": "理赔编号",
    "policy_id": "保单",
    "event_date": "出险日期",
    "amount_paid": "赔付金额",
    # what the applications' approvals and the transfer look-up record
    "application_id": "申请编号",
    "applications": "保单提前终止申请编号",
    "term": "查找内容（证件号或会员号）",
    "found": "是否找到",
}

# fields an audit row keeps but a clerk need not read (they change with every save)
NOISE_FIELDS = frozenset({"id", "version", "updated_at", "pdf", "void_pdf", "stage_key", "job_id", "phase"})


AUDIT_COLUMNS = ["created_at", "user_id", "action", "entity", "entity_id", "before", "after"]
GROUPED_COLUMNS = [
    "created_at",
    "user_id",
    "action",
    "entity",
    "entity_id",
    "entity_ids",
    "entity_count",
    "before",
    "after",
]


def _postgresql(session=None) -> bool:
    return (session or db.session).get_bind().dialect.name == "postgresql"


def json_or_null(value) -> sa.ColumnElement:
    """A `before`/`after` that is the same for every row of an INSERT … SELECT."""
    return sa.literal(value, sa.JSON) if value is not None else sa.null()


def insert_audit_select(action: str, entity: str, user_id: int | None, entity_id, before, after, now=None):
    """`INSERT INTO audit_log … SELECT`, a row per record: who, what and when as constants;
    `entity_id`, `before` and `after` as SQL expressions (a column of the rows written, or a
    constant for all of them).  For changes whose before/after differ per record (audit_select,
    dml_with_audit's `before_columns`)."""
    select = sa.select(
        sa.literal(now or utcnow(), sa.DateTime),
        sa.literal(user_id, sa.Integer),
        sa.literal(action, sa.String),
        sa.literal(entity, sa.String),
        entity_id,
        before,
        after,
    )
    return sa.insert(AuditLog).from_select(AUDIT_COLUMNS, select)


def insert_grouped_select(
    action: str, entity: str, user_id: int | None, id_col, before, after, now=None, postgresql: bool = True
):
    """`INSERT INTO audit_log … SELECT` of ONE row naming every id of `id_col` (a column of a
    subquery or CTE: the rows an action wrote), and none when there are none:

        INSERT INTO audit_log (…, entity_id, entity_ids, entity_count, …)
        SELECT …, CASE WHEN n = 1 THEN first END, CASE WHEN n > 1 THEN ids END, n, …
        FROM (SELECT array_agg(id) AS ids, count(*) AS n, min(id) AS first FROM …) WHERE n > 0

    One record: the row names it in `entity_id`, exactly like a single edit's row.  `before` and
    `after` are SQL expressions constant for all (json_or_null).  The one builder of grouped rows."""
    agg = sa.func.array_agg(id_col) if postgresql else sa.func.json_group_array(id_col)
    ids = sa.select(agg.label("ids"), sa.func.count().label("n"), sa.func.min(id_col).label("first")).subquery(
        "touched"
    )
    n = ids.c.n
    select = sa.select(
        sa.literal(now or utcnow(), sa.DateTime),
        sa.literal(user_id, sa.Integer),
        sa.literal(action, sa.String),
        sa.literal(entity, sa.String),
        sa.case((n == 1, ids.c.first), else_=sa.null()),
        sa.case((n > 1, ids.c.ids), else_=sa.null()),
        n,
        before,
        after,
    ).where(n > 0)
    return sa.insert(AuditLog).from_select(GROUPED_COLUMNS, select)


def grouped_row(action: str, entity: str, ids: list[int], user_id, before=None, after=None, now=None) -> dict | None:
    """The audit row (a dict for INSERT) of an action on the records `ids`, known to Python: None
    for none, a single-record row for one, a grouped row for several."""
    if not ids:
        return None
    row = dict(created_at=now or utcnow(), user_id=user_id, action=action, entity=entity, before=before, after=after)
    if len(ids) == 1:
        return dict(row, entity_id=ids[0], entity_ids=None, entity_count=1)
    return dict(row, entity_id=None, entity_ids=list(ids), entity_count=len(ids))


def audit_select(action: str, entity: str, user_id: int | None, rows: sa.Select) -> None:
    """Audit rows from a SELECT of (entity_id, before, after), one INSERT … SELECT: for a change
    whose old and new values differ per row and are known to the query (e.g. the application
    that asked for them).  A row per record."""
    entity_id, before, after = list(rows.subquery().c)
    db.session.execute(insert_audit_select(action, entity, user_id, entity_id, before, after))


def write_audit(
    action: str,
    entity: str,
    ids: sa.Select | Iterable[int],
    user_id: int | None,
    before: Mapping | None = None,
    after: Mapping | None = None,
    session=None,
) -> int | None:
    """Audit an action on the records `ids`, whose `before`/`after` are the same for all of them:
    ONE row (a single-record row for one record, a grouped row naming all of them for several,
    none for none).

    `ids` is either a SELECT of one id column (bulk actions: one INSERT … SELECT, whatever the
    row count) or a small iterable of ids (single-record edits).
    """
    session = session or db.session
    now = utcnow()
    if isinstance(ids, sa.sql.Selectable):
        id_col = list(ids.subquery().c)[0]
        session.execute(
            insert_grouped_select(
                action,
                entity,
                user_id,
                id_col,
                json_or_null(before),
                json_or_null(after),
                now,
                postgresql=_postgresql(session),
            )
        )
        return None  # the driver does not report INSERT … SELECT counts reliably; callers know theirs
    ids = list(ids)
    row = grouped_row(action, entity, ids, user_id, before, after, now)
    if row is not None:
        session.execute(sa.insert(AuditLog.__table__), [row])
    return len(ids)


def insert_with_audit(
    table: sa.Table,
    columns: list[str],
    select: sa.Select,
    action: str,
    entity: str,
    user_id: int | None,
    after: Mapping | None = None,
    session=None,
) -> int:
    """`INSERT INTO table (columns) SELECT …` and its audit row (one, naming every row inserted);
    returns how many rows it inserted.  PostgreSQL: one statement (`WITH ins AS (INSERT …
    RETURNING id) INSERT INTO audit_log … SELECT … array_agg(id) FROM ins`).  SQLite: the INSERT,
    then the audit row by INSERT … SELECT of the ids it gave (a row-id range: SQLite hands out
    increasing ids to one statement's rows)."""
    session = session or db.session
    conn = session.connection()
    now = utcnow()
    audit_after = json_or_null(after)

    if conn.dialect.name == "postgresql":
        ins = sa.insert(table).from_select(columns, select).returning(table.c.id).cte("ins")
        logged = (
            insert_grouped_select(action, entity, user_id, ins.c.id, sa.null(), audit_after, now)
            .returning(AuditLog.__table__.c.entity_count)
            .cte("logged")
        )
        return conn.execute(sa.select(sa.func.coalesce(sa.func.sum(logged.c.entity_count), 0))).scalar_one()
    before = conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one()
    created = conn.execute(sa.insert(table).from_select(columns, select)).rowcount
    ids = sa.select(table.c.id).where(table.c.id > before).subquery()
    conn.execute(
        insert_grouped_select(action, entity, user_id, ids.c.id, sa.null(), audit_after, now, postgresql=False)
    )
    return created


# --- reading: which audit rows concern a record -------------------------------------------------


def names_record(entity_id: int, session=None) -> sa.ColumnElement:
    """The audit rows that name record `entity_id` (with `AuditLog.entity == …` for its table):
    its single-record rows (ix_audit_log_entity) and the grouped rows listing it
    (PostgreSQL: `entity_ids @> ARRAY[id]`, the GIN index ix_audit_log_entity_ids)."""
    if not -(2**31) <= entity_id < 2**31:
        return sa.false()  # no record has such an id (and PostgreSQL would refuse it as an integer)
    single = AuditLog.entity_id == entity_id
    if _postgresql(session):
        listed = AuditLog.entity_ids.op("@>")(postgresql.array([sa.cast(sa.literal(entity_id), sa.Integer)]))
    else:
        each = sa.func.json_each(AuditLog.entity_ids).table_valued("value")
        listed = sa.and_(
            AuditLog.entity_ids.isnot(None), sa.exists(sa.select(1).select_from(each).where(each.c.value == entity_id))
        )
    return sa.or_(single, listed)


def each_id(session=None):
    """A table-valued function over `AuditLog.entity_ids`: one row (column `value`) per id."""
    if _postgresql(session):  # unnest(entity_ids) AS anon(value)
        return sa.func.unnest(AuditLog.entity_ids).table_valued("value").render_derived()
    return sa.func.json_each(AuditLog.entity_ids).table_valued("value")  # its own column "value"


def audit_entries(session=None) -> sa.Subquery:
    """The audit log one row per (audit row, record) — the shape the log had when every record got
    its own row: columns id (of the audit row), created_at, user_id, action, entity, entity_id,
    before, after.  A grouped row gives one entry per record it names."""
    cols = [
        AuditLog.id,
        AuditLog.created_at,
        AuditLog.user_id,
        AuditLog.action,
        AuditLog.entity,
        AuditLog.before,
        AuditLog.after,
    ]
    single = sa.select(*cols, AuditLog.entity_id.label("entity_id")).where(AuditLog.entity_id.isnot(None))
    each = each_id(session)
    grouped = sa.select(*cols, each.c.value.label("entity_id")).select_from(AuditLog).join(each, sa.true())
    return sa.union_all(single, grouped).subquery("audit_entries")


def record_ids(row: AuditLog) -> list[int]:
    """The records an audit row names, in id order."""
    return [row.entity_id] if row.entity_id is not None else sorted(row.entity_ids or [])


def audit_rows_naming(entity: str, ids) -> sa.Select:
    """SELECT of the ids of the audit rows about `entity` that name any of the records `ids`."""
    e = audit_entries()
    return sa.select(e.c.id).where(e.c.entity == entity, e.c.entity_id.in_(ids))

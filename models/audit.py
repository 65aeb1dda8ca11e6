"""The audit log and its one writer, set-based for bulk actions and row-wise for single edits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sqlalchemy as sa

from .base import db, utcnow


class AuditLog(db.Model):
    __tablename__ = "audit_log"

    id = sa.Column(sa.Integer, primary_key=True)
    created_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)
    # no FK: an audit row must outlive anything, and bulk actions write 100,000 of them at once
    user_id = sa.Column(sa.Integer, index=True)
    action = sa.Column(sa.String(50), nullable=False)
    entity = sa.Column(sa.String(50), nullable=False)
    entity_id = sa.Column(sa.Integer, nullable=False)
    before = sa.Column(sa.JSON)
    after = sa.Column(sa.JSON)

    user = db.relationship("User", primaryjoin="foreign(AuditLog.user_id) == User.id", viewonly=True)

    __table_args__ = (
        sa.Index("ix_audit_log_entity", "entity", "entity_id"),
        sa.Index("ix_audit_log_created_at", "created_at"),
    )


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
NOISE_FIELDS = frozenset({"id", "version", "updated_at", "pdf", "void_pdf", "stage_key", "job_id"})


AUDIT_COLUMNS = ["created_at", "user_id", "action", "entity", "entity_id", "before", "after"]


def json_or_null(value) -> sa.ColumnElement:
    """A `before`/`after` that is the same for every row of an INSERT … SELECT."""
    return sa.literal(value, sa.JSON) if value is not None else sa.null()


def insert_audit_select(action: str, entity: str, user_id: int | None, entity_id, before, after, now=None):
    """`INSERT INTO audit_log … SELECT`: who, what and when as constants; `entity_id`, `before` and
    `after` as SQL expressions (a column of the rows written, or a constant for all of them).  The
    one builder of set-based audit rows (write_audit, actions/base.py dml_with_audit, audit_select)."""
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


def audit_select(action: str, entity: str, user_id: int | None, rows: sa.Select) -> None:
    """Audit rows from a SELECT of (entity_id, before, after), one INSERT … SELECT: for a change
    whose old and new values differ per row and are known to the query (e.g. the application
    that asked for them)."""
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
    """Write one audit row per id.

    `ids` is either a SELECT of one id column (bulk actions: one INSERT … SELECT, whatever the
    row count) or a small iterable of ids (single-record edits).  `before`/`after` are the same
    for every row; per-row detail belongs in the entity's own history.
    """
    session = session or db.session
    table = AuditLog.__table__
    now = utcnow()
    if isinstance(ids, sa.sql.Selectable):
        id_col = list(ids.subquery().c)[0]
        session.execute(
            insert_audit_select(action, entity, user_id, id_col, json_or_null(before), json_or_null(after), now)
        )
        return None  # the driver does not report INSERT … SELECT counts reliably; callers know theirs
    rows = [
        dict(created_at=now, user_id=user_id, action=action, entity=entity, entity_id=i, before=before, after=after)
        for i in ids
    ]
    if rows:
        session.execute(sa.insert(table), rows)
    return len(rows)


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
    """`INSERT INTO table (columns) SELECT …` and one audit row per row it inserted; returns that
    count.  PostgreSQL: one statement (`WITH ins AS (INSERT … RETURNING id) INSERT INTO audit_log
    … SELECT … FROM ins`).  SQLite: the INSERT, then the audit rows by INSERT … SELECT of the ids
    it gave (a row-id range: SQLite hands out increasing ids to one statement's rows)."""
    session = session or db.session
    conn = session.connection()
    now = utcnow()
    audit_cols = ["created_at", "user_id", "action", "entity", "entity_id", "before", "after"]

    def audit_select(id_col):
        return sa.select(
            sa.literal(now, sa.DateTime),
            sa.literal(user_id, sa.Integer),
            sa.literal(action, sa.String),
            sa.literal(entity, sa.String),
            id_col,
            sa.null(),
            sa.literal(after, sa.JSON) if after is not None else sa.null(),
        )

    if conn.dialect.name == "postgresql":
        ins = sa.insert(table).from_select(columns, select).returning(table.c.id).cte("ins")
        logged = (
            sa.insert(AuditLog.__table__)
            .from_select(audit_cols, audit_select(ins.c.id))
            .returning(AuditLog.__table__.c.id)
            .cte("logged")
        )
        return conn.execute(sa.select(sa.func.count()).select_from(logged)).scalar_one()
    before = conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one()
    created = conn.execute(sa.insert(table).from_select(columns, select)).rowcount
    ids = sa.select(table.c.id).where(table.c.id > before).subquery()
    conn.execute(sa.insert(AuditLog.__table__).from_select(audit_cols, audit_select(ids.c.id)))
    return created

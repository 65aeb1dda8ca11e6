"""Uploaded batch files (批量业务) and the outcome of each of their rows."""

from __future__ import annotations

import sqlalchemy as sa

from .base import LabeledEnum, db, enum_type, utcnow


class BatchKind(LabeledEnum):
    MEMBERS = ("members", "入会")
    POLICIES = ("policies", "投保")


class BatchStatus(LabeledEnum):
    UPLOADED = ("uploaded", "已上传")
    CHECKED = ("checked", "已校验")
    PROCESSED = ("processed", "已办理")
    FAILED = ("failed", "无法读取")
    # a big file is checked/processed by a background worker (batch/jobs.py)
    CHECKING = ("checking", "校验中")
    PROCESSING = ("processing", "办理中")
    INTERRUPTED = ("interrupted", "已中断")  # the worker stopped mid-way: nothing written, run it again


class RowStatus(LabeledEnum):
    OK = ("ok", "成功")
    ERROR = ("error", "失败")


class ImportBatch(db.Model):
    __tablename__ = "import_batch"

    id = sa.Column(sa.Integer, primary_key=True)
    kind = sa.Column(enum_type(BatchKind), nullable=False)
    file_name = sa.Column(sa.String(255), nullable=False)
    sha256 = sa.Column(sa.String(64), nullable=False, index=True)
    size = sa.Column(sa.Integer, nullable=False, default=0)
    user_id = sa.Column(sa.Integer, sa.ForeignKey("user.id"), nullable=False)
    org_id = sa.Column(sa.Integer, sa.ForeignKey("org.id"), nullable=False, index=True)
    status = sa.Column(enum_type(BatchStatus), nullable=False, default=BatchStatus.UPLOADED)
    params = sa.Column(sa.JSON, nullable=False, default=dict)
    message = sa.Column(sa.String(500))
    total_rows = sa.Column(sa.Integer, nullable=False, default=0)
    ok_rows = sa.Column(sa.Integer, nullable=False, default=0)
    error_rows = sa.Column(sa.Integer, nullable=False, default=0)
    created_rows = sa.Column(sa.Integer, nullable=False, default=0)
    created_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)
    checked_at = sa.Column(sa.DateTime)
    processed_at = sa.Column(sa.DateTime)
    result_path = sa.Column(sa.String(255))
    job_id = sa.Column(sa.String(36))  # the background run under way (batch/jobs.py), else None
    # what the staged check (BatchStage) was made for: user, scope, date, parameters, product terms;
    # 业务办理 uses the stage only while it is the same
    stage_key = sa.Column(sa.String(64))

    user = db.relationship("User")
    org = db.relationship("Org")

    def __str__(self) -> str:
        return f"{self.kind.label if self.kind else ''} {self.file_name}"


class ImportRow(db.Model):
    __tablename__ = "import_row"

    batch_id = sa.Column(sa.Integer, primary_key=True)  # no FK: one COPY of 50,000 outcomes; batches are kept
    row_no = sa.Column(sa.Integer, primary_key=True)  # the row number Excel shows
    status = sa.Column(enum_type(RowStatus), nullable=False)
    code = sa.Column(sa.String(30))
    message = sa.Column(sa.String(300), nullable=False, default="")
    warnings = sa.Column(sa.String(200), nullable=False, default="")
    entity_id = sa.Column(sa.Integer)  # the member or policy this row created


class BatchStage(db.Model):
    """What 业务校验 checked, one row per data row of the file, so that 业务办理 writes from it with
    INSERT … SELECT instead of reading and checking the file again (batch/stage.py).

    The outcome of the check (code, message, warnings); for a row that passes, the normalised
    values the kind writes (members: id_number, name, gender, birth_date; policies: member_id,
    org_id, shares, amount); and for every row that the database decided, the facts it was decided
    on, so that 业务办理 can tell set-based whether any of them changed since: the member found by
    the row's key (`key_kind`, `key_value`) and its `member_version`, and the member's policies of
    the product (`in_flight`, `same_period`, `live_shares`).

    A work table, not a record: rows live from a check to the processing of the same batch (or
    the next check of it) and are gone after; on PostgreSQL it is UNLOGGED (no WAL; emptied by a
    crash, after which 业务办理 simply checks the file again).  No foreign keys (a batch's rows
    are written by one COPY)."""

    __tablename__ = "batch_stage"

    batch_id = sa.Column(sa.Integer, primary_key=True)
    row_no = sa.Column(sa.Integer, primary_key=True)
    code = sa.Column(sa.String(30))
    message = sa.Column(sa.String(300), nullable=False, default="")
    warnings = sa.Column(sa.String(200), nullable=False, default="")
    id_number = sa.Column(sa.String(18))
    name = sa.Column(sa.String(50))
    gender = sa.Column(sa.String(1))
    birth_date = sa.Column(sa.Date)
    member_id = sa.Column(sa.Integer)
    org_id = sa.Column(sa.Integer)
    shares = sa.Column(sa.Integer)
    amount = sa.Column(sa.Numeric(12, 2))
    key_kind = sa.Column(sa.String(3))
    key_value = sa.Column(sa.String(30))
    member_version = sa.Column(sa.Integer)
    in_flight = sa.Column(sa.Boolean)
    same_period = sa.Column(sa.Boolean)
    live_shares = sa.Column(sa.Integer)


# PostgreSQL: no WAL for the work table (db.create_all; migration 0007 does the same)
sa.event.listen(
    BatchStage.__table__,
    "after_create",
    sa.DDL("ALTER TABLE batch_stage SET UNLOGGED").execute_if(dialect="postgresql"),
)

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

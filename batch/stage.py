"""One pass per file: 业务校验 keeps what it checked, 业务办理 writes from it (issue 13).

业务校验 (check_batch) reads the file and checks every row once; then it keeps

  * in the database, one `batch_stage` row per data row (models/batch.py BatchStage): the outcome,
    the normalised values a passing row is written from, and the facts the database decided the
    row on (the member found by the row's key and its version; the member's policies of the
    product);
  * next to the upload, the rows as read and their outcomes (`checked_path`, a marshal file), for
    the result file;
  * on the batch, `stage_key`: a digest of everything else the check depended on (who, their
    scope, the day, the parameters, the product's terms, the file).

业务办理 (process_batch) then, inside its one write transaction:

  1. takes the stage only if `stage_key` is still the same and the stage is complete;
  2. re-verifies set-based what can have changed since (the kind's `stage_changed`: the members
     the rows named — each member UPDATE bumps its version —, their policies of the product:
     in flight, same period, shares; for 入会 the members that the ALREADY_MEMBER rows found);
     the uniqueness of what it writes is the database's unique indexes' (member.id_number,
     policy uq_policy_in_flight/uq_policy_live_period), checked by the INSERT itself;
  3. writes the passing rows with INSERT … SELECT from the stage, the per-row outcomes with
     INSERT … SELECT into import_row, and removes the stage.

Whenever any of that does not hold (something changed, a unique index refused a row, the stage or
the file of the check is gone), nothing of it is kept and 业务办理 reads and checks the file again
exactly as before: the fast path is never less strict than the full one.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os

import sqlalchemy as sa
from flask import current_app

from models import BatchStage, ImportRow, RowStatus, db
from models.storage import checked_path
from rules import Code

from .reader import Table
from .sql import CopyRows, bulk_insert, dialect

STAGE_FORMAT = 1  # bump when what is staged changes meaning
BASE_COLUMNS = ["batch_id", "row_no", "code", "message", "warnings"]


class StageStale(Exception):
    """The stage no longer holds (changed facts, rows missing): check the file again."""


# --- the key ------------------------------------------------------------------------------------


def stage_key(kind, ctx) -> str:
    """What the check depended on besides the database rows it re-verifies."""
    user, batch = ctx.user, ctx.batch
    parts = {
        "format": STAGE_FORMAT,
        "kind": batch.kind.value,
        "file": batch.sha256,
        "user": [user.id, user.org_id, user.org.path, str(user.role), bool(user.active)],
        "today": ctx.today.isoformat(),
        "params": sorted((str(k), str(v)) for k, v in (batch.params or {}).items()),
        "max_rows": current_app.config["UPLOAD_MAX_ROWS"],
        "kind_parts": kind.stage_fingerprint(ctx),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


# --- writing the stage (业务校验) ------------------------------------------------------------------


def _stage_rows(kind, batch_id: int, results):
    """(batch_id, row_no, code, message, warnings, *the kind's values) per row."""
    stage_row = kind.stage_row
    for r in results:
        if r.code is None:
            yield (batch_id, r.row, None, "", ",".join(map(str, r.warnings))[:200] if r.warnings else "", *stage_row(r))
        else:
            yield (
                batch_id,
                r.row,
                str(r.code),
                r.message[:300],
                ",".join(map(str, r.warnings))[:200] if r.warnings else "",
                *stage_row(r),
            )


def clear_stage(batch_id: int) -> None:
    db.session.execute(sa.delete(BatchStage).where(BatchStage.batch_id == batch_id))


def write_stage(kind, ctx, table: Table, results) -> None:
    """Keep what the check read and concluded; in the caller's transaction."""
    batch = ctx.batch
    clear_stage(batch.id)
    columns = BASE_COLUMNS + list(kind.stage_columns)
    rows = _stage_rows(kind, batch.id, results)
    if dialect(db.session) == "postgresql":
        # binary COPY: every staged value is of its column's type (str, int, bool, date, Decimal)
        bulk_insert(db.session, BatchStage.__table__, columns, CopyRows(rows))
    else:
        conn = db.session.connection()
        to_db = BatchStage.__table__.c.amount.type.bind_processor(conn.dialect)
        amount_at = columns.index("amount") if "amount" in columns else None
        data = [list(row) for row in rows]
        if amount_at is not None and to_db is not None:
            for row in data:
                row[amount_at] = to_db(row[amount_at])
        marks = ", ".join("?" for _ in columns)
        if data:
            conn.exec_driver_sql(
                f"INSERT INTO batch_stage ({', '.join(columns)}) VALUES ({marks})", [tuple(row) for row in data]
            )
    _write_checked(batch, table, results)
    batch.stage_key = stage_key(kind, ctx)


def _write_checked(batch, table: Table, results) -> None:
    """The rows as read and the outcomes, for 业务办理's result file (marshal: fast, and it refuses
    anything but plain values — a date cell leaves no file, and 业务办理 reads the upload again)."""
    path = checked_path(batch)
    outcomes = [
        (r.row, None if r.code is None else str(r.code), r.message, [str(w) for w in r.warnings]) for r in results
    ]
    try:
        blob = marshal.dumps((STAGE_FORMAT, table.header, table.header_row, table.columns, table.rows, outcomes))
    except ValueError:
        drop_checked(batch)
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)


def drop_checked(batch) -> None:
    try:
        os.unlink(checked_path(batch))
    except OSError:
        pass


# --- reading it back (业务办理) -------------------------------------------------------------------


def load_checked(batch, row_result):
    """(table, results) as the check left them, or None."""
    try:
        with open(checked_path(batch), "rb") as f:
            fmt, header, header_row, columns, rows, outcomes = marshal.loads(f.read())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if fmt != STAGE_FORMAT or len(outcomes) != len(rows):
        return None
    table = Table(header=header, header_row=header_row, columns=columns, rows=rows)
    codes = {c.value: c for c in Code}
    results = [
        row_result(row, None if code is None else codes[code], message, tuple(codes.get(w, w) for w in warnings))
        for row, code, message, warnings in outcomes
    ]
    return table, results


def staged_rows(batch_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(BatchStage).where(BatchStage.batch_id == batch_id))


def outcomes_from_stage(batch_id: int) -> None:
    """import_row: one per data row, INSERT … SELECT from the stage."""
    s = BatchStage.__table__
    status = sa.case((s.c.code.is_(None), RowStatus.OK.value), else_=RowStatus.ERROR.value)
    db.session.execute(
        sa.insert(ImportRow.__table__).from_select(
            ["batch_id", "row_no", "status", "code", "message", "warnings"],
            sa.select(s.c.batch_id, s.c.row_no, status, s.c.code, s.c.message, s.c.warnings).where(
                s.c.batch_id == batch_id
            ),
        )
    )

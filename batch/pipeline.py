"""The one batch pipeline for every upload kind (DESIGN.md §6, §9).

    create_batch  -> the ImportBatch record and the stored file (size limit, sha256)
    check_batch   -> read, check every row against the rules and the database; writes nothing
                     but the batch record, its stage and its failed rows' outcomes
    process_batch -> re-check and write every valid row in one transaction, with per-row
                     outcomes, audit rows and the result file

A kind (members, policies) supplies its columns, `check(table, ctx)` and `write(rows, ctx)`;
everything else is shared.  The statement count does not grow with the row count.
"""

from __future__ import annotations

import gc
import hashlib
import io
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from models import BatchKind, BatchStatus, ImportBatch, ImportRow, Org, RowStatus, db, utcnow
from models.base import begin_write
from models.storage import result_path, upload_path
from rules import Code

from . import stage
from .reader import BatchFileError, Column, Table, read_table
from .result import ResultInBackground, write_failed_rows
from .sql import CopyRows, bulk_insert

WARNING_TEXT = {
    Code.ID_NORMALIZED: "身份证号已自动修正（去除空格、全角转半角、末位x改为大写）",
    Code.NAME_TRIMMED: "姓名前后空格已去除",
    Code.NAME_DOT_NORMALIZED: "姓名中的间隔号已统一为“·”",
    Code.OVER_AGE_AGREED: Code.OVER_AGE_AGREED.message,
}


@dataclass(slots=True)
class RowResult:
    row: int  # the Excel row number
    code: Code | None = None
    message: str = ""
    warnings: tuple = ()
    values: dict = field(default_factory=dict)  # cleaned values the kind writes
    # what the database said about the row, kept in the stage (batch/stage.py): the kind's stage_row
    facts: tuple = ()

    @property
    def ok(self) -> bool:
        return self.code is None

    @property
    def warnings_text(self) -> str:
        return "；".join(WARNING_TEXT.get(w, str(w)) for w in self.warnings)

    def fail(self, code: Code, message: str | None = None) -> None:
        if self.code is None:
            self.code = code
            self.message = message if message is not None else code.message

    def as_json(self) -> dict:
        return {
            "row": self.row,
            "status": "ok" if self.ok else "error",
            "code": str(self.code) if self.code else None,
            "message": self.message,
            "warnings": [str(w) for w in self.warnings],
        }


@dataclass
class Context:
    user: object
    batch: ImportBatch
    today: date
    params: dict
    org: Org | None = None  # the unit the rows go to
    extra: dict = field(default_factory=dict)  # what a kind's prepare() works out for its check and write


@dataclass
class Outcome:
    batch: ImportBatch
    table: Table
    results: list[RowResult]
    created: int = 0

    @property
    def ok_count(self) -> int:
        return sum(1 for r in self.results if r.ok)

    @property
    def error_count(self) -> int:
        return len(self.results) - self.ok_count

    @property
    def failed(self) -> list[RowResult]:
        return [r for r in self.results if not r.ok]

    @property
    def over_age_agreed(self) -> list[RowResult]:
        """Passing rows over the age limit whom the agency agreed to: the manual's question is asked."""
        return [r for r in self.results if r.ok and Code.OVER_AGE_AGREED in r.warnings]

    @property
    def fixed(self) -> list[RowResult]:
        """Rows whose values were corrected (spaces, a lowercase x …)."""
        return [r for r in self.results if any(w != Code.OVER_AGE_AGREED for w in r.warnings)]

    def as_json(self) -> dict:
        return {
            "batch_id": self.batch.id,
            "kind": self.batch.kind.value,
            "ok": self.ok_count,
            "errors": self.error_count,
            "created": self.created,
            "rows": [r.as_json() for r in self.results],
        }


class Kind:
    """What an upload kind supplies to the pipeline."""

    kind: BatchKind
    columns: list[Column]  # every column the kind reads
    template_columns: list[Column] | None = None  # the template's columns (default: `columns`)
    template_title: str
    template_notes: list[str]
    # columns the result file adds after 处理结果/失败原因 for the rows written: (header, key of
    # RowResult.values), filled by `assign` before the result file is begun
    result_extra: tuple = ()

    def prepare(self, ctx: Context) -> None:
        """Validate the kind's parameters (raise BatchFileError with a Chinese message)."""

    def assign(self, rows: list[RowResult], ctx: Context) -> None:
        """Give the valid rows what the database will hold and the result file shows (a bounded
        number of statements), before `write`."""

    def check(self, table: Table, ctx: Context) -> list[RowResult]:
        raise NotImplementedError

    def write(self, rows: list[RowResult], ctx: Context) -> int:
        raise NotImplementedError

    # --- one pass per file (batch/stage.py): what the check keeps, and the write from it
    stage_columns: tuple = ()  # the BatchStage columns the kind fills, besides the outcome

    def stage_row(self, r: RowResult) -> tuple:
        """The values of `stage_columns` for one checked row."""
        return ()

    def stage_fingerprint(self, ctx: Context) -> list:
        """What the check depended on besides the rows it re-verifies (goes into stage_key)."""
        return []

    def stage_changed(self, ctx: Context) -> bool:
        """Set-based, in the write transaction: did any fact a row was checked on change since?"""
        return True

    def write_staged(self, rows: list[RowResult], ctx: Context) -> int:
        """Write the passing rows from the stage (INSERT … SELECT) with their audit rows."""
        raise NotImplementedError


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    KINDS[kind.kind.value] = kind
    return kind


def get_kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise BatchFileError(f"未知的批量业务类型“{name}”（可用：{'、'.join(KINDS)}）") from None


def create_batch(kind_name: str, data: bytes, filename: str, user, params: dict | None = None) -> ImportBatch:
    """Record the upload and keep the file; refuse files over the size limit."""
    kind = get_kind(kind_name)
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    if len(data) > limit:
        raise BatchFileError(
            f"文件大小为 {len(data) / 1024 / 1024:.1f} MB，超过 {limit // 1024 // 1024} MB 的上限，"
            "请拆分为几个文件分别上传"
        )
    batch = ImportBatch(
        kind=kind.kind,
        file_name=Path(filename or "upload").name[:255],
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        user_id=user.id,
        org_id=user.org_id,
        params=dict(params or {}),
        status=BatchStatus.UPLOADED,
    )
    db.session.add(batch)
    db.session.flush()
    upload_path(batch).write_bytes(data)
    db.session.commit()
    return batch


def earlier_upload(batch: ImportBatch) -> ImportBatch | None:
    """The same file, processed before by the same org (the pipeline creates nothing twice anyway)."""
    return db.session.scalar(
        sa.select(ImportBatch)
        .where(
            ImportBatch.sha256 == batch.sha256,
            ImportBatch.org_id == batch.org_id,
            ImportBatch.kind == batch.kind,
            ImportBatch.id != batch.id,
            ImportBatch.status == BatchStatus.PROCESSED,
        )
        .order_by(ImportBatch.id.desc())
        .limit(1)
    )


@contextmanager
def gc_paused():
    """No cyclic garbage collection while a batch's rows are read, checked or written: they
    allocate a few objects per cell and free none of them until the end, so the collector
    would walk the whole heap over and over for nothing (a third of the reading and checking
    time of a 50,000-row file).  Memory is still freed by reference counting meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _no_progress(phase: str, done: int, total: int) -> None:
    pass


def _read(batch: ImportBatch, user) -> tuple[Kind, Context, Table]:
    """The kind, its parameters checked, and the stored file read; a file that cannot be read
    marks the batch 无法读取 (unless it was processed: then it stays as it was processed)."""
    kind = get_kind(batch.kind.value)
    ctx = Context(user=user, batch=batch, today=date.today(), params=dict(batch.params or {}))
    try:
        kind.prepare(ctx)
        table = _read_table(batch, kind)
    except BatchFileError as exc:
        db.session.rollback()
        if batch.status != BatchStatus.PROCESSED:  # a processed batch stays processed (and is never run twice)
            batch.status, batch.message = BatchStatus.FAILED, str(exc)
            db.session.commit()
        raise
    return kind, ctx, table


def _read_table(batch: ImportBatch, kind: Kind) -> Table:
    data = upload_path(batch).read_bytes()
    with gc_paused():
        return read_table(data, batch.file_name, kind.columns, current_app.config["UPLOAD_MAX_ROWS"])


def _check(kind: Kind, table: Table, ctx: Context, progress=_no_progress) -> list[RowResult]:
    progress("check", 0, len(table.rows))
    with gc_paused():
        results = kind.check(table, ctx)
    progress("check", len(results), len(results))
    return results


def _run_check(batch: ImportBatch, user, progress=_no_progress) -> tuple[Kind, Context, Table, list[RowResult]]:
    kind, ctx, table = _read(batch, user)
    return kind, ctx, table, _check(kind, table, ctx, progress)


def _count(batch: ImportBatch, results: list[RowResult]) -> None:
    batch.total_rows = len(results)
    batch.ok_rows = sum(1 for r in results if r.ok)
    batch.error_rows = batch.total_rows - batch.ok_rows


def check_batch(batch: ImportBatch, user, progress=_no_progress) -> Outcome:
    """业务校验: every row against the rules and the database; writes only the batch record and
    what it checked (its stage, batch/stage.py), from which 业务办理 writes.
    `progress(phase, rows done, rows in all)` hears how far it got (batch/jobs.py)."""
    kind, ctx, table, results = _run_check(batch, user, progress)
    if batch.status != BatchStatus.PROCESSED:  # a processed batch keeps the counts it was processed with
        _count(batch, results)
        batch.status = BatchStatus.CHECKED
        batch.message = None
        try:
            with gc_paused():
                stage.write_stage(kind, ctx, table, results)
            _store_failed(batch, results)
        except BaseException:
            db.session.rollback()
            raise
    batch.checked_at = utcnow()
    db.session.commit()
    return Outcome(batch, table, results)


def _store_failed(batch: ImportBatch, results: list[RowResult]) -> None:
    """业务校验 keeps its failed rows' outcomes (replacing an earlier check's): the 失败行下载 and the
    remedies are made from them, by anyone, without checking again (GET never writes)."""
    _store_outcomes(batch.id, [r for r in results if not r.ok])


def _store_outcomes(batch_id: int, results: list[RowResult]) -> None:
    """These rows' outcomes replace whatever the batch kept before."""
    _clear_outcomes(batch_id)
    if results:
        bulk_insert(
            db.session,
            ImportRow.__table__,
            ["batch_id", "row_no", "status", "code", "message", "warnings"],
            _outcome_rows(batch_id, results),
        )


def _clear_outcomes(batch_id: int) -> None:
    db.session.execute(sa.delete(ImportRow).where(ImportRow.batch_id == batch_id))


def _lock(batch: ImportBatch) -> None:
    """Hold the batch's row for this transaction (PostgreSQL) and read its state again: a second
    业务办理 of the same batch (pressed twice, two tabs) waits here for the first and then finds it
    done.  SQLite: begin_write has taken the database's write lock already."""
    db.session.execute(sa.select(ImportBatch.id).where(ImportBatch.id == batch.id).with_for_update())
    db.session.refresh(batch)
    if batch.status == BatchStatus.PROCESSED:
        raise BatchFileError(
            f"该批次已于 {batch.processed_at:%Y-%m-%d %H:%M} 办理过，不会重复办理。如需查看结果，请下载处理结果文件"
        )


WRITE_ATTEMPTS = 3


def process_batch(batch: ImportBatch, user, result_file: str | Path | None = None, progress=_no_progress) -> Outcome:
    """业务办理: re-check, then write every valid row, the per-row outcomes and the audit rows in
    one transaction.  A batch is processed once; a second run creates nothing.

    When another writer got there first (the same people in another batch processed at the same
    moment), the database's unique keys refuse the write (uq_policy_in_flight, the ID number):
    nothing of it stays, the rows are checked again, now against what the other one wrote, and
    those rows fail with their own codes (IN_FLIGHT, DUPLICATE, ALREADY_MEMBER) while the rest are
    written."""
    begin_write()
    _lock(batch)
    outcome = _process_staged(batch, user, result_file, progress)
    if outcome is not None:
        return outcome
    begin_write()
    _lock(batch)
    kind, ctx, table = _read(batch, user)
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        results = _check(kind, table, ctx, progress)
        ok_rows = [r for r in results if r.ok]
        progress("write", 0, len(ok_rows))
        result = None
        try:
            if ok_rows:
                kind.assign(ok_rows, ctx)
            # the result file is written by a thread while this one waits for the database, and put
            # in place only after the commit
            result = ResultInBackground(result_path(batch), table, results, extra=kind.result_extra)
            with gc_paused():
                created = kind.write(ok_rows, ctx) if ok_rows else 0
            _store_outcomes(batch.id, results)
            _mark_processed(batch, results, created)
        except sa.exc.IntegrityError as exc:
            _abandon(result, exc)
            if attempt == WRITE_ATTEMPTS:
                raise BatchFileError(
                    "办理时发现部分人员刚刚已被其他操作办理，本次没有写入任何数据，请重新【业务校验】后再办理"
                ) from None
            begin_write()
            _lock(batch)
            continue
        except BaseException as exc:
            _abandon(result, exc)
            raise
        return _processed(batch, table, results, created, result, result_file, progress)
    raise AssertionError("unreachable")  # pragma: no cover


def _mark_processed(batch: ImportBatch, results: list[RowResult], created: int) -> None:
    """The batch 已办理, committed with its rows, their outcomes and their audit rows."""
    stage.clear_stage(batch.id)
    _count(batch, results)
    batch.created_rows = created
    batch.status = BatchStatus.PROCESSED
    batch.message = None
    batch.processed_at = utcnow()
    batch.stage_key = None
    db.session.commit()


def _abandon(result: ResultInBackground | None, exc: BaseException) -> None:
    """A write that failed leaves nothing: its transaction is rolled back (unless the process is
    being stopped) and its result file never put in place."""
    if isinstance(exc, Exception):
        db.session.rollback()
    if result is not None:
        result.discard()


def _processed(batch, table, results, created, result, result_file, progress) -> Outcome:
    """After the commit: the result file put in place (written once; --result gets a copy of it)
    and what 业务校验 kept for this batch let go."""
    done = sum(1 for r in results if r.ok)
    progress("write", done, done)
    outcome = Outcome(batch, table, results, created)
    result.finish(copy_to=result_file or None)
    stage.drop_checked(batch)
    return outcome


def _process_staged(batch: ImportBatch, user, result_file, progress=_no_progress) -> Outcome | None:
    """业务办理 from what 业务校验 kept (batch/stage.py), or None when that no longer holds and the
    file is to be read and checked again.  Until it commits it only reads, or writes inside a
    savepoint (PostgreSQL) that is rolled back when it gives up, so the caller's transaction (and a
    background run's lock on the batch, batch/jobs.py) goes on into the full path unharmed."""
    if not batch.stage_key:
        return None
    kind = get_kind(batch.kind.value)
    ctx = Context(user=user, batch=batch, today=date.today(), params=dict(batch.params or {}))
    try:
        kind.prepare(ctx)
    except BatchFileError:
        return None  # the full path says it, and records it
    if stage.stage_key(kind, ctx) != batch.stage_key:
        return None
    with gc_paused():
        checked = stage.load_checked(batch, RowResult)
    if checked is None:
        return None
    table, results = checked
    ok_rows = [r for r in results if r.ok]
    if stage.staged_rows(batch.id) != len(results) or kind.stage_changed(ctx):
        return None
    savepoint = db.session.begin_nested() if db.session.get_bind().dialect.name == "postgresql" else None
    try:
        if ok_rows:
            kind.assign(ok_rows, ctx)
    except BaseException:
        db.session.rollback()
        raise
    progress("write", 0, len(ok_rows))
    result = ResultInBackground(result_path(batch), table, results, extra=kind.result_extra)
    try:
        with gc_paused():
            created = kind.write_staged(ok_rows, ctx) if ok_rows else 0
        if created != len(ok_rows):
            raise stage.StageStale
        _clear_outcomes(batch.id)  # the check's failed rows make way for every row's outcome
        stage.outcomes_from_stage(batch.id)
        _mark_processed(batch, results, created)
    except (sa.exc.IntegrityError, stage.StageStale):
        # a unique index refused a row, or the stage lost rows: check the file again
        if savepoint is not None and savepoint.is_active:
            savepoint.rollback()
        else:
            db.session.rollback()
        result.discard()
        return None
    except BaseException as exc:
        _abandon(result, exc)
        raise
    return _processed(batch, table, results, created, result, result_file, progress)


def _outcome_rows(batch_id: int, results: list[RowResult]) -> CopyRows:
    """One import_row per data row (binary COPY: every value is a str, an int or None)."""
    ok, error = RowStatus.OK.value, RowStatus.ERROR.value
    return CopyRows(
        (
            batch_id,
            r.row,
            ok if r.code is None else error,
            None if r.code is None else str(r.code),
            r.message[:300],
            ",".join(map(str, r.warnings))[:200] if r.warnings else "",
        )
        for r in results
    )


def _final_results(batch: ImportBatch):
    """The batch's file as stored, with each row's outcome as its own 业务校验 (or 业务办理)
    recorded it.  Reads only: whoever asks, nothing is checked again and nothing changes."""
    if batch.status not in (BatchStatus.CHECKED, BatchStatus.PROCESSED):
        raise BatchFileError("该批次还没有完成【业务校验】，没有失败行可以下载。请先【业务校验】")
    kind = get_kind(batch.kind.value)
    table = _read_table(batch, kind)
    stored = {
        row: (code, message)
        for row, code, message in db.session.execute(
            sa.select(ImportRow.row_no, ImportRow.code, ImportRow.message).where(
                ImportRow.batch_id == batch.id, ImportRow.status == RowStatus.ERROR
            )
        )
    }
    results = [
        RowResult(row, _code(stored[row][0]), stored[row][1]) if row in stored else RowResult(row)
        for row, _cells in table.rows
    ]
    return kind, table, results


def _code(value):
    try:
        return Code(value)
    except ValueError:  # a code stored by an older version
        return value or "ERROR"


def write_failed(batch: ImportBatch, user=None) -> io.BytesIO:
    """失败行下载: the failed rows of the batch's file, in the template's columns, with the reasons
    its owner's check recorded (made in memory: the download writes nothing)."""
    kind, table, results = _final_results(batch)
    out = io.BytesIO()
    write_failed_rows(out, [c for c in kind.columns if c.key in table.columns], table, results)
    out.seek(0)
    return out


@dataclass
class FailedRow:
    """A row that failed, with what the file said of the person: what a remedy starts from."""

    row: int
    code: str
    message: str
    name: object = None
    id_number: object = None
    member_no: object = None


def failed_rows(batch: ImportBatch, user=None) -> list[FailedRow]:
    """The batch's failed rows with their file cells (for 【生成调动申请】 and the other remedies),
    as its own check recorded them."""
    _kind, table, results = _final_results(batch)
    cells = dict(table.rows)
    return [
        FailedRow(
            r.row,
            str(r.code),
            r.message,
            table.cell(cells[r.row], "name"),
            table.cell(cells[r.row], "id_number"),
            table.cell(cells[r.row], "member_no"),
        )
        for r in results
        if not r.ok and r.row in cells
    ]

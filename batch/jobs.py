"""Big batch files in the background: Redis + RQ (DESIGN.md §6; README: 后台任务).

`submit` is the one entry point of 业务校验 and 业务办理 for the screen: a file of more than
BATCH_BACKGROUND_ROWS rows (5,000), when REDIS_URL is set, goes to a queue and a worker (`flask --app
app worker`, `make worker`) runs the same pipeline functions (`check_batch`, `process_batch`) there;
anything else, and everything without Redis, runs inline in the request as before.

What keeps it safe with several workers on several machines sharing Redis and PostgreSQL:
- the batch row says which run is under way (`status` 校验中/办理中 and `job_id`, set in the same
  UPDATE that checks the status it came from); a run whose batch no longer names it does nothing;
- one runner at a time per batch: a lease in Redis (SET NX with a time-out) that the running worker
  renews every few seconds, and on PostgreSQL the batch row stays locked (FOR UPDATE) until the
  pipeline's one commit;
- the pipeline writes everything in one transaction: a worker killed mid-way leaves nothing behind,
  its lease runs out, and the batch shows 已中断 and can be run again.

Progress (phase, rows done, rows in all) lives in Redis, beside the lease; the page polls `state`.

Big files to download (an export of more than EXPORT_BACKGROUND_ROWS rows, a printed document of more
than PDF_BACKGROUND_PAGES pages) are made the same way, on the same queue, with the same lease,
heartbeat and progress (`submit_file` … `file_state`, below; the screens' side is views/downloads.py).
Their record lives in Redis only (no Redis, no background file), for BACKGROUND_FILE_HOURS, and names
the user who asked: nobody else may see or download the file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app

from models import BatchStatus, ImportBatch, db
from models.storage import export_path, folder, upload_path

from .errors import BatchFileError
from .pipeline import Outcome, check_batch, process_batch
from .reader import Limits, iter_rows

log = logging.getLogger(__name__)

QUEUE = "huzhu"
IN_FLIGHT = (BatchStatus.CHECKING, BatchStatus.PROCESSING)
STAGE_STATUS = {"check": BatchStatus.CHECKING, "process": BatchStatus.PROCESSING}
# where each stage may start from (the screen offers the same buttons)
STARTS_FROM = {
    "check": (BatchStatus.UPLOADED, BatchStatus.CHECKED, BatchStatus.FAILED, BatchStatus.INTERRUPTED),
    "process": (BatchStatus.CHECKED, BatchStatus.INTERRUPTED),
}
JOB_TIMEOUT = 3600  # seconds; a 100,000-row file takes well under a minute
KEEP_SECONDS = 7 * 24 * 3600  # progress and job records in Redis

MSG_BUSY = "该批次正在后台{verb}，请稍候，不必重复点击。可以离开本页，稍后在【批量业务】列表中查看结果"
MSG_CHANGED = "该批次的状态刚刚已变化，请刷新页面后再操作"
MSG_INTERRUPTED = "后台{verb}中途停止（办理程序被中断），没有写入任何数据。请重新点【{button}】"
VERB = {"check": "校验", "process": "办理"}
BUTTON = {"check": "业务校验", "process": "业务办理"}


# ---------------------------------------------------------------- Redis
def redis_connection():
    """The app's Redis client, or None without REDIS_URL (then everything runs inline)."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    conn = current_app.extensions.get("redis")
    if conn is None:
        from redis import Redis

        conn = current_app.extensions["redis"] = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
    return conn


def _queue(conn):
    from rq import Queue

    return Queue(QUEUE, connection=conn)


def _lease_key(batch_id: int) -> str:
    return f"huzhu:batch:{batch_id}:lease"


def _progress_key(batch_id: int) -> str:
    return f"huzhu:batch:{batch_id}:progress"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


# ---------------------------------------------------------------- the screen's entry point
def estimate_rows(batch: ImportBatch, cap: int) -> int:
    """Data rows of the stored file, counted up to `cap` + 1 (so a 100,000-row file costs no more than
    a 5,000-row one). An unreadable file counts 0: the inline run tells the clerk why."""
    data = upload_path(batch).read_bytes()
    limits = Limits(rows=current_app.config["UPLOAD_MAX_ROWS"])
    filled = 0
    try:
        for row in iter_rows(data, batch.file_name, limits):
            if any(v is not None and (not isinstance(v, str) or v.strip()) for v in row):
                filled += 1
                if filled > cap + 1:  # + the header row
                    break
    except BatchFileError:
        return 0
    return max(filled - 1, 0)


def submit(batch: ImportBatch, stage: str, user) -> Outcome | None:
    """业务校验 (`check`) or 业务办理 (`process`) of `batch`: here and now (returns the outcome), or
    for a big file with Redis, queued for a worker (returns None; `state` tells how far it got)."""
    if batch.status in IN_FLIGHT:
        reap(batch)
        if batch.status in IN_FLIGHT:
            raise BatchFileError(MSG_BUSY.format(verb=VERB[_stage_of(batch)]))
    conn = redis_connection()
    threshold = current_app.config["BATCH_BACKGROUND_ROWS"]
    if conn is not None and (rows := estimate_rows(batch, threshold)) > threshold:
        try:
            conn.ping()
        except Exception as exc:  # Redis is down: the clerk still gets the work done, inline
            log.warning("Redis unreachable (%s); batch %s runs inline", exc.__class__.__name__, batch.id)
        else:
            _enqueue(conn, batch, stage, rows)
            return None
    if stage == "check":
        return check_batch(batch, user)
    return process_batch(batch, user)


def _enqueue(conn, batch: ImportBatch, stage: str, rows: int) -> None:
    token = uuid.uuid4().hex
    claimed = db.session.execute(
        sa.update(ImportBatch)
        .where(ImportBatch.id == batch.id, ImportBatch.status.in_(STARTS_FROM[stage]))
        .values(status=STAGE_STATUS[stage], job_id=token, message=None)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        raise BatchFileError(MSG_CHANGED)
    db.session.commit()
    conn.delete(_progress_key(batch.id))
    conn.hset(_progress_key(batch.id), mapping={"phase": "queued", "done": 0, "total": 0})  # known once read
    conn.expire(_progress_key(batch.id), KEEP_SECONDS)
    try:
        _put_on_queue(conn, run_job, (batch.id, stage, token), token, on_job_failure, f"batch {batch.id} {stage}")
    except Exception:
        _interrupt(batch.id, token, stage)
        raise
    log.info("batch %s (%s rows) queued for %s as job %s", batch.id, rows, stage, token)


def _put_on_queue(conn, func, args: tuple, job_id: str, on_failure, description: str) -> None:
    """One job on the queue: its id is the run's token, kept (and its failure) for KEEP_SECONDS, and
    `on_failure` told when it raises, times out or its worker dies."""
    from rq import Callback

    _queue(conn).enqueue(
        func,
        *args,
        job_id=job_id,
        job_timeout=JOB_TIMEOUT,
        result_ttl=KEEP_SECONDS,
        failure_ttl=KEEP_SECONDS,
        on_failure=Callback(on_failure),
        description=description,
    )


def _stage_of(batch: ImportBatch) -> str:
    return "check" if batch.status == BatchStatus.CHECKING else "process"


# ---------------------------------------------------------------- in the worker
def run_job(batch_id: int, stage: str, token: str) -> str:
    """The RQ job: run the stage for the batch if the batch still names this run; once only."""
    conn = redis_connection()
    with _leased(conn, _lease_key(batch_id), token) as held:
        if not held:
            log.info("batch %s: another worker holds it; job %s does nothing", batch_id, token)
            return "busy"
        return _run(conn, batch_id, stage, token)


def _run(conn, batch_id: int, stage: str, token: str) -> str:
    query = sa.select(ImportBatch).where(ImportBatch.id == batch_id)
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update()  # held until the pipeline's commit: one runner per batch
    batch = db.session.scalar(query)
    if batch is None or batch.status != STAGE_STATUS[stage] or batch.job_id != token:
        db.session.rollback()
        log.info("batch %s: job %s is not the run under way (done already?); nothing to do", batch_id, token)
        return "stale"

    def progress(phase: str, done: int, total: int) -> None:
        conn.hset(_progress_key(batch_id), mapping={"phase": phase, "done": done, "total": total})

    log.info("batch %s: %s starts (job %s)", batch_id, stage, token)
    try:
        if stage == "check":
            outcome = check_batch(batch, batch.user, progress)
        else:
            outcome = process_batch(batch, batch.user, progress=progress)
    except BatchFileError as exc:  # the clerk's kind of failure: say it on the batch, as inline
        db.session.rollback()
        _settle(batch_id, token, str(exc))
        progress("done", 0, 0)
        return "refused"
    except BaseException:
        db.session.rollback()
        _interrupt(batch_id, token, stage)
        raise
    _forget(batch_id, token)
    progress("done", len(outcome.results), len(outcome.results))
    log.info("batch %s: %s done, %s ok, %s failed", batch_id, stage, outcome.ok_count, outcome.error_count)
    return "done"


class _Heartbeat:
    """Renews the lease every third of its time while the pipeline runs (a thread: the pipeline is
    one long call). When the process dies, the renewals stop and the lease runs out."""

    RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0"

    def __init__(self, conn, key: str, token: str, lease: int):
        self.conn, self.key, self.token, self.lease = conn, key, token, lease
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"lease {key}")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)

    def _beat(self) -> None:
        while not self.stopped.wait(max(self.lease / 3, 0.2)):
            try:
                self.conn.eval(self.RENEW, 1, self.key, self.token, self.lease)
            except Exception as exc:  # keep trying; a lease that runs out only lets another run start
                log.warning("lease renewal failed: %s", exc)


@contextmanager
def _leased(conn, key: str, token: str):
    """Hold the lease `key` for `token` while the body runs (renewed by a heartbeat; released, and
    the database session ended, afterwards): yields True, or False when another worker holds it."""
    lease = current_app.config["JOB_LEASE_SECONDS"]
    if not conn.set(key, token, nx=True, ex=lease):
        yield False
        return
    beat = _Heartbeat(conn, key, token, lease)
    beat.start()
    try:
        yield True
    finally:
        beat.stop()
        _release(conn, key, token)
        db.session.remove()


def _release(conn, key: str, token: str) -> None:
    conn.eval(
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0", 1, key, token
    )


def _settle(batch_id: int, token: str, message: str) -> None:
    """A run the pipeline refused (unreadable file, rows taken meanwhile): back to where it started,
    with the pipeline's message, as the inline run would show it."""
    db.session.execute(
        sa.update(ImportBatch)
        .where(ImportBatch.id == batch_id, ImportBatch.status.in_(IN_FLIGHT), ImportBatch.job_id == token)
        .values(
            status=sa.case(
                (ImportBatch.checked_at.is_(None), BatchStatus.UPLOADED.value), else_=BatchStatus.CHECKED.value
            ),
            job_id=None,
            message=message[:500],
        )
    )
    _forget(batch_id, token)


def _forget(batch_id: int, token: str) -> None:
    """The run is over (its outcome committed): the batch no longer names it."""
    db.session.execute(
        sa.update(ImportBatch).where(ImportBatch.id == batch_id, ImportBatch.job_id == token).values(job_id=None)
    )
    db.session.commit()


def _interrupt(batch_id: int, token: str, stage: str) -> bool:
    """The run `token` stopped mid-way: 已中断 (nothing was written: the pipeline commits once)."""
    done = db.session.execute(
        sa.update(ImportBatch)
        .where(ImportBatch.id == batch_id, ImportBatch.status.in_(IN_FLIGHT), ImportBatch.job_id == token)
        .values(
            status=BatchStatus.INTERRUPTED.value,
            job_id=None,
            message=MSG_INTERRUPTED.format(verb=VERB[stage], button=BUTTON[stage]),
        )
    ).rowcount
    db.session.commit()
    return bool(done)


def on_job_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback: the job raised, timed out, or its worker died (found by RQ's clean-up)."""
    batch_id, stage, token = job.args
    if _interrupt(batch_id, token, stage):
        log.warning(
            "batch %s: job %s failed (%s); marked 已中断", batch_id, token, getattr(exc_type, "__name__", exc_type)
        )


# ---------------------------------------------------------------- how far it got
def state(batch: ImportBatch) -> dict:
    """What the 批量业务 page shows while a run is under way; reads only (a GET never writes)."""
    out = {"batch_id": batch.id, "status": batch.status.value, "label": batch.status.label, "finished": True}
    if batch.status not in IN_FLIGHT:
        return out
    stage = _stage_of(batch)
    out.update(finished=False, stage=stage, phase="queued", done=0, total=0)
    conn = redis_connection()
    alive = _alive(conn, batch) if conn is not None else "lost"
    if alive == "lost" and _ended_meanwhile(batch):
        return state(batch)  # the run ended between reading the batch and asking Redis: its outcome
    if alive == "lost":
        out.update(
            status=BatchStatus.INTERRUPTED.value,
            label=BatchStatus.INTERRUPTED.label,
            finished=True,
            message=MSG_INTERRUPTED.format(verb=VERB[stage], button=BUTTON[stage]),
        )
        return out
    progress = {_text(k): _text(v) for k, v in conn.hgetall(_progress_key(batch.id)).items()}
    out["phase"] = progress.get("phase") or alive
    out["done"] = int(progress.get("done") or 0)
    out["total"] = int(progress.get("total") or 0)
    return out


def _ended_meanwhile(batch: ImportBatch) -> bool:
    """Read the batch again: has the run that looked lost in fact just finished (the worker commits
    the outcome, then lets its lease go, so a page that read the batch a moment before sees no
    lease and a finished job)?"""
    token = batch.job_id
    db.session.refresh(batch)
    return batch.status not in IN_FLIGHT or batch.job_id != token


def _alive(conn, batch: ImportBatch) -> str:
    """ "running", "queued" or "lost" (its worker died, or the job is gone from Redis)."""
    return _liveness(conn, _lease_key(batch.id), batch.job_id)


def _liveness(conn, lease_key: str, token: str | None) -> str:
    """Of the run `token` (its RQ job id and its lease's value): "running", "queued" or "lost"."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    if not token:
        return "lost"
    if _text(conn.get(lease_key)) == token:
        return "running"
    try:
        job = Job.fetch(token, connection=conn)
    except NoSuchJobError:
        return "lost"
    status = job.get_status(refresh=False)
    if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
        return "queued"
    if status == JobStatus.STARTED and job.started_at is not None:
        started = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=UTC)
        if (datetime.now(UTC) - started).total_seconds() < current_app.config["JOB_LEASE_SECONDS"]:
            return "running"  # just picked up, the lease not taken yet
    return "lost"


def reap(batch: ImportBatch | None = None) -> int:
    """Mark 已中断 the runs whose worker is gone (a POST, the worker's start): the batch can be run again."""
    conn = redis_connection()
    query = sa.select(ImportBatch).where(ImportBatch.status.in_(IN_FLIGHT))
    if batch is not None:
        query = query.where(ImportBatch.id == batch.id)
    marked = 0
    for b in db.session.scalars(query).all():
        if conn is None or _alive(conn, b) == "lost":
            marked += _interrupt(b.id, b.job_id, _stage_of(b))
    if batch is not None:
        db.session.refresh(batch)
    return marked


# ---------------------------------------------------------------- the worker process
def work(burst: bool = False) -> None:
    """Run a worker in this process (inside the app context): jobs one after another, no fork, so a
    job has the app's database pool and settings; run several for more at once."""
    from rq import SimpleWorker

    conn = redis_connection()
    if conn is None:
        raise BatchFileError("没有设置 REDIS_URL：没有后台任务可做（批量业务在网页请求中直接办理）")
    marked = reap()
    if marked:
        log.warning("%s batch run(s) left by a stopped worker marked 已中断", marked)
    swept = sweep_files()
    if swept:
        log.info(
            "%s file(s) made in the background removed (kept %s h)", swept, current_app.config["BACKGROUND_FILE_HOURS"]
        )
    SimpleWorker([_queue(conn)], connection=conn).work(burst=burst, logging_level="INFO", with_scheduler=False)


# ---------------------------------------------------------------- files made in the background
# A file's record (a Redis hash, kept BACKGROUND_FILE_HOURS): who asked (user_id), what to make
# (`maker`: the dotted name of the RQ job function, `spec`: its JSON arguments), the run under way
# (`run`: its RQ job id and lease value), phase (queued, making, done, refused, failed), rows or
# pages done / in all (`unit`), and once done the file's name and type. The file itself is
# exports/bg_<token>.<ext> under the storage root, written under a .tmp name and renamed when whole.
FILE_PHASES_IN_FLIGHT = ("queued", "making")
MSG_FILE_INTERRUPTED = "后台生成中途停止（生成程序被中断），文件没有生成。请点【重新生成】再试一次。"
MSG_FILE_GONE = "这个文件已过了保留期限（{hours} 小时）被清理。请回到列表重新下载。"
UNITS = {"rows": "行", "pages": "页"}


def _file_key(token: str) -> str:
    return f"huzhu:file:{token}"


def _file_lease_key(token: str) -> str:
    return f"huzhu:file:{token}:lease"


def _file_keep() -> int:
    return current_app.config["BACKGROUND_FILE_HOURS"] * 3600


def background_threshold(unit: str) -> int:
    return current_app.config["PDF_BACKGROUND_PAGES" if unit == "pages" else "EXPORT_BACKGROUND_ROWS"]


def submit_file(maker: str, spec: dict, user, size: int, unit: str = "rows", back: str = "") -> str | None:
    """A file of `size` rows (or pages) for `user`: when Redis is set and answers and `size` is over
    the threshold, queued for a worker, which calls the job function `maker` (a dotted name,
    "module.function", called with the file's token and run id); returns the file's token. None:
    make it here and now (no Redis, a small file, or Redis down)."""
    conn = redis_connection()
    if conn is None or size <= background_threshold(unit):
        return None
    try:
        conn.ping()
    except Exception as exc:  # Redis is down: the clerk still gets the file, in the request
        log.warning("Redis unreachable (%s); the file is made in the request", exc.__class__.__name__)
        return None
    sweep_files()
    token = uuid.uuid4().hex
    record = {
        "user_id": user.id,
        "maker": maker,
        "spec": json.dumps(spec, ensure_ascii=False, default=str),
        "unit": unit,
        "total": size,
        "back": back if back.startswith("/") and not back.startswith("//") else "",  # the list it came from
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    conn.hset(_file_key(token), mapping=record)
    conn.expire(_file_key(token), _file_keep())
    _enqueue_file(conn, token)
    log.info("file %s (%s %s) queued for user %s", token, size, unit, user.id)
    return token


def _enqueue_file(conn, token: str) -> None:
    run = uuid.uuid4().hex
    record = _file_record(conn, token)
    conn.hset(_file_key(token), mapping={"run": run, "phase": "queued", "done": 0, "message": ""})
    _put_on_queue(conn, record["maker"], (token, run), run, on_file_failure, f"file {token}")


def _file_record(conn, token: str) -> dict | None:
    if not token.isalnum() or len(token) != 32:
        return None
    record = {_text(k): _text(v) for k, v in conn.hgetall(_file_key(token)).items()}
    return record or None


def file_owner(token: str) -> int | None:
    """The id of the user who asked for the file `token` (None: no such file, or it expired)."""
    conn = redis_connection()
    record = _file_record(conn, token) if conn is not None else None
    return int(record["user_id"]) if record else None


def file_state(token: str) -> dict | None:
    """What the download page shows (reads only): phase, done / total, the message, the file's name."""
    conn = redis_connection()
    record = _file_record(conn, token) if conn is not None else None
    if record is None:
        return None
    phase = record.get("phase") or "queued"
    out = {
        "token": token,
        "phase": phase,
        "done": int(record.get("done") or 0),
        "total": int(record.get("total") or 0),
        "unit": UNITS.get(record.get("unit"), "行"),
        "filename": record.get("filename", ""),
        "mimetype": record.get("mimetype") or "application/octet-stream",
        "message": record.get("message", ""),
        "back": record.get("back", ""),
        "finished": phase not in FILE_PHASES_IN_FLIGHT,
        "again": False,
    }
    if phase in FILE_PHASES_IN_FLIGHT:
        alive = _liveness(conn, _file_lease_key(token), record.get("run"))
        fresh = _file_record(conn, token) if alive == "lost" else None
        if fresh is not None and (fresh.get("phase") != phase or fresh.get("run") != record.get("run")):
            return file_state(token)  # it ended (or was asked again) while this was read
        if alive == "lost":
            out.update(phase="failed", finished=True, message=MSG_FILE_INTERRUPTED)
    if out["phase"] == "failed":
        out["again"] = True
    if out["phase"] == "done" and not file_path(token, record).exists():
        keep = current_app.config["BACKGROUND_FILE_HOURS"]
        out.update(phase="gone", message=MSG_FILE_GONE.format(hours=keep))
    return out


def file_path(token: str, record: dict | None = None):
    """Where the file `token` is (or will be) kept."""
    if record is None:
        record = _file_record(redis_connection(), token) or {}
    suffix = os.path.splitext(record.get("filename", ""))[1].lower() or ".bin"
    return export_path(f"bg_{token}{suffix}")


def file_again(token: str) -> bool:
    """【重新生成】: a run that failed or whose worker died is queued again (the same request)."""
    state = file_state(token)
    if state is None or not state["again"]:
        return False
    conn = redis_connection()
    conn.expire(_file_key(token), _file_keep())
    _enqueue_file(conn, token)
    return True


def run_file(token: str, run: str, make) -> str:
    """The worker's part of a file job: once only (the lease; a run already done does nothing),
    `make(spec, user_id, progress)` — a context manager yielding an object with the file's
    `filename`, `mimetype` and `body` (bytes or chunks) — written to a .tmp name and renamed into
    place when whole. A refusal (`BatchFileError`: the user may no longer, the rows changed) is
    told on the page; anything else leaves no file and the page offers 【重新生成】."""
    conn = redis_connection()
    record = _file_record(conn, token)
    if record is None or record.get("run") != run or record.get("phase") not in FILE_PHASES_IN_FLIGHT:
        log.info("file %s: run %s is not the one under way (done already?); nothing to do", token, run)
        return "stale"
    with _leased(conn, _file_lease_key(token), run) as held:
        if not held:
            log.info("file %s: another worker holds it; run %s does nothing", token, run)
            return "busy"
        return _make_file(conn, token, run, make)


def _make_file(conn, token: str, run: str, make) -> str:
    record = _file_record(conn, token)
    if record is None or record.get("run") != run or record.get("phase") not in FILE_PHASES_IN_FLIGHT:
        return "stale"  # another copy finished while this one waited for the lease
    key = _file_key(token)
    last = [0.0]
    counts = {"done": 0, "total": int(record.get("total") or 0)}

    def progress(done: int, total: int | None = None) -> None:
        """Rows (pages) written so far; `total` once the maker knows it exactly."""
        counts["done"] = done
        if total is not None:
            counts["total"] = total
            conn.hset(key, "total", total)
        now = time.monotonic()
        if now - last[0] >= 0.25:  # a few writes a second at most
            last[0] = now
            conn.hset(key, "done", done)

    conn.hset(key, mapping={"phase": "making", "done": 0})
    part = None
    try:
        with _pdf_pages(progress), make(json.loads(record["spec"]), int(record["user_id"]), progress) as download:
            suffix = os.path.splitext(download.filename)[1].lower() or ".bin"
            path = export_path(f"bg_{token}{suffix}")
            part = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            body = download.body
            with open(part, "wb") as fh:
                for chunk in [body] if isinstance(body, (bytes, bytearray)) else body:
                    fh.write(chunk)
            os.replace(part, path)
            part = None
    except BatchFileError as exc:
        conn.hset(key, mapping={"phase": "refused", "message": str(exc)[:500]})
        return "refused"
    except BaseException:
        conn.hset(key, mapping={"phase": "failed", "message": MSG_FILE_INTERRUPTED})
        raise
    finally:
        if part is not None:
            part.unlink(missing_ok=True)
    # rows as counted while written, pages as laid out (the estimate, when nothing was counted)
    total = counts["done"] or counts["total"]
    conn.hset(
        key,
        mapping={
            "phase": "done",
            "done": total,
            "total": total,
            "filename": download.filename,
            "mimetype": download.mimetype,
            "size": path.stat().st_size,
        },
    )
    log.info("file %s made: %s (%s bytes)", token, download.filename, path.stat().st_size)
    return "done"


def on_file_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback for a file job: it raised, timed out, or its worker died."""
    token, run = job.args
    conn = connection
    record = _file_record(conn, token)
    if record and record.get("run") == run and record.get("phase") in FILE_PHASES_IN_FLIGHT:
        conn.hset(_file_key(token), mapping={"phase": "failed", "message": MSG_FILE_INTERRUPTED})


def counted(export, progress):
    """`export` (batch/export.py `Export`) with its rows counted as they are written."""

    def rows():
        n = 0
        for values in export.rows():
            n += 1
            if n % 1000 == 0:
                progress(n)
            yield values
        progress(n)

    def xml_rows():
        n = 0
        for block in export.xml_rows():
            n += block.count(b"<row>")
            progress(n)
            yield block

    return replace(export, rows=rows, xml_rows=xml_rows if export.xml_rows is not None else None)


@contextmanager
def _pdf_pages(progress):
    """Pages laid out so far, while WeasyPrint renders (its progress log names each page)."""
    logger = logging.getLogger("weasyprint.progress")

    class Pages(logging.Handler):
        def emit(self, record):
            if str(record.msg).startswith("Step 5") and record.args:
                progress(int(record.args[0]))

    handler = Pages()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # counted here, not written to the log
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def sweep_files(now: float | None = None) -> int:
    """Remove the files made in the background that are older than BACKGROUND_FILE_HOURS."""
    now = time.time() if now is None else now
    keep = _file_keep()
    removed = 0
    for path in folder("exports").glob("bg_*"):
        try:
            if now - path.stat().st_mtime > keep:
                path.unlink()
                removed += 1
        except OSError:
            pass
    return removed

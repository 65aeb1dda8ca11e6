"""Big batch files in the background (batch/jobs.py): Redis + RQ when REDIS_URL is set, inline without.

The Redis tests need a real Redis: `make test` starts a throwaway one (.ci/redis.sh) and sets
TEST_REDIS_URL; without it they are skipped and only the inline path runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import login_as
from flask import has_app_context
from test_batch_members import HEADER, fresh_id, write_xlsx

import batch.jobs as jobs
from batch import check_batch, create_batch
from models import AuditLog, BatchStatus, Counter, ImportBatch, ImportRow, Member, User, db
from models.audit import audit_rows_naming

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="no TEST_REDIS_URL: the RQ path needs a Redis (make test starts one)"
)


def clerk(name="clerk1") -> User:
    return db.session.scalar(sa.select(User).where(User.username == name))


CHARS = "伟芳娜洋静磊敏强军杰涛明超秀英华慧建国平"


def big_file(tmp_path, n=12, name="big.xlsx") -> tuple[Path, list[str]]:
    ids = [fresh_id() for _ in range(n)]
    names = ["后" + CHARS[i % 20] + CHARS[i // 20 % 20] for i in range(n)]
    return write_xlsx(tmp_path / name, [HEADER] + [list(r) for r in zip(names, ids)]), ids


def new_batch(path: Path, username="clerk1") -> ImportBatch:
    return create_batch("members", path.read_bytes(), path.name, clerk(username))


def members_with(ids) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Member).where(Member.id_number.in_(ids)))


@pytest.fixture
def background(app, monkeypatch):
    """Redis configured, the threshold at 5 rows, the test's own empty Redis database."""
    monkeypatch.setitem(app.config, "REDIS_URL", REDIS_URL)
    monkeypatch.setitem(app.config, "BATCH_BACKGROUND_ROWS", 5)
    monkeypatch.setitem(app.config, "JOB_LEASE_SECONDS", 3)
    app.extensions.pop("redis", None)
    with app.app_context():
        conn = jobs.redis_connection()
        conn.flushdb()
    yield conn
    app.extensions.pop("redis", None)


def work(app):
    """One worker, in this process, until the queue is empty (the test's transaction is its database)."""
    if has_app_context():
        # In production the worker is another process. Here the test's session shares the worker's
        # connection: its open savepoint must end first, or rolling it back later (a request's
        # teardown) would also undo what the worker committed after it.
        db.session.rollback()
    with app.app_context():
        jobs.work(burst=True)
    if has_app_context():
        db.session.expire_all()  # the worker's session wrote; the test's own must read anew


@contextmanager
def worker_killed_at(app, template: str, marker):
    """A real worker process (the `template` script, given the test's database, Redis and storage)
    run until it writes `marker`; then, after the with-block, killed as a machine goes away."""
    script = template.format(
        root=str(ROOT),
        marker=str(marker),
        db=app.config["SQLALCHEMY_DATABASE_URI"],
        redis=REDIS_URL,
        storage=app.config["STORAGE_DIR"],
    )
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert worker.poll() is None, "the worker ended before reaching the point"
            assert time.monotonic() < deadline, "the worker did not reach the point"
            time.sleep(0.05)
        yield marker
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


# ---------------------------------------------------------------- without Redis: inline
def test_without_redis_a_big_file_is_checked_and_processed_in_the_request(app, ctx, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", "")
    monkeypatch.setitem(app.config, "BATCH_BACKGROUND_ROWS", 5)
    path, ids = big_file(tmp_path)
    batch = new_batch(path)
    outcome = jobs.submit(batch, "check", clerk())
    assert outcome is not None and outcome.ok_count == 12 and batch.status == BatchStatus.CHECKED
    outcome = jobs.submit(batch, "process", clerk())
    assert outcome.created == 12 and batch.status == BatchStatus.PROCESSED
    assert members_with(ids) == 12
    assert jobs.state(batch) == {"batch_id": batch.id, "status": "processed", "label": "已办理", "finished": True}


def test_the_row_count_that_decides_stops_counting_past_the_threshold(app, ctx, tmp_path):
    path, _ = big_file(tmp_path, n=40)
    batch = new_batch(path)
    assert jobs.estimate_rows(batch, 100) == 40
    assert jobs.estimate_rows(batch, 10) == 11  # enough to know it is over


def test_a_run_left_in_flight_without_redis_shows_as_interrupted_and_can_be_run_again(
    app, ctx, client, tmp_path, monkeypatch
):
    monkeypatch.setitem(app.config, "REDIS_URL", "")
    path, ids = big_file(tmp_path, n=3)
    batch = new_batch(path)
    batch.status, batch.job_id = BatchStatus.CHECKING, "f" * 32
    db.session.commit()
    shown = jobs.state(batch)
    assert shown["status"] == "interrupted" and "没有写入任何数据" in shown["message"]
    assert batch.status == BatchStatus.CHECKING  # reading it wrote nothing
    login_as(app, client, "clerk1")
    assert "已中断" in client.get("/admin/batches/").get_data(as_text=True)  # the list says so too
    outcome = jobs.submit(batch, "check", clerk())  # the clerk presses 业务校验 again
    assert outcome.ok_count == 3 and batch.status == BatchStatus.CHECKED and batch.job_id is None


# ---------------------------------------------------------------- with Redis: the worker
@needs_redis
def test_a_big_file_is_checked_and_processed_by_a_worker_with_progress_then_the_result(
    app, ctx, client, tmp_path, background, monkeypatch
):
    path, ids = big_file(tmp_path)
    batch = new_batch(path)
    assert jobs.submit(batch, "check", clerk()) is None  # queued, not done here
    assert batch.status == BatchStatus.CHECKING and batch.job_id
    login_as(app, client, "clerk1")
    url = f"/admin/batches/run/{batch.id}/"
    assert client.get(url + "progress/").get_json() == {
        "batch_id": batch.id,
        "status": "checking",
        "label": "校验中",
        "finished": False,
        "stage": "check",
        "phase": "queued",
        "done": 0,
        "total": 0,  # known once the worker has read the file
    }
    assert 'id="job-progress"' in client.get(url).get_data(as_text=True)  # the page polls while it waits

    seen = []  # what the page would have shown at each step of the worker's run
    real = jobs.process_batch

    def spying(b, user, progress, **kw):
        def progress_and_look(phase, done, total):
            progress(phase, done, total)
            seen.append({k: v for k, v in jobs.state(b).items() if k in ("status", "phase", "done", "total")})

        return real(b, user, progress=progress_and_look, **kw)

    work(app)
    batch = db.session.get(ImportBatch, batch.id)
    assert (batch.status, batch.total_rows, batch.ok_rows, batch.job_id) == (BatchStatus.CHECKED, 12, 12, None)
    assert client.get(url + "progress/").get_json()["finished"] is True

    monkeypatch.setattr(jobs, "process_batch", lambda b, user, progress, **kw: spying(b, user, progress, **kw))
    assert jobs.submit(batch, "process", clerk()) is None
    work(app)
    # (业务办理 re-checks the file, or takes what 业务校验 kept: batch/stage.py; either way it writes)
    assert {"status": "processing", "phase": "write", "done": 0, "total": 12} in seen
    assert all(s["status"] == "processing" and s["total"] == 12 for s in seen[:-1]), seen
    assert seen[-1] == {"status": "processed"}  # told after the commit
    batch = db.session.get(ImportBatch, batch.id)
    assert (batch.status, batch.created_rows) == (BatchStatus.PROCESSED, 12)
    assert members_with(ids) == 12
    page = client.get(url).get_data(as_text=True)  # the clerk comes back: the result is there
    assert "已办理" in page and "批量入会处理结果下载" in page and 'id="job-progress"' not in page


@needs_redis
def test_the_screen_sends_a_big_file_to_the_worker_and_shows_the_progress_page(app, client, tmp_path, background):
    from test_batch_screen import run, upload

    login_as(app, client, "clerk1")
    path, _ = big_file(tmp_path, n=8)
    loc = upload(client, path.read_bytes()).headers["Location"]
    resp = run(client, loc, "check")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(loc)
    page = client.get(loc).get_data(as_text=True)
    assert "校验中" in page and 'id="job-progress"' in page and 'id="check-btn"' not in page
    again = run(client, loc, "check")  # pressed twice: told to wait, nothing queued twice
    assert "正在后台校验，请稍候" in again.get_data(as_text=True)
    with app.app_context():
        assert len(jobs._queue(jobs.redis_connection())) == 1
    work(app)
    page = client.get(loc).get_data(as_text=True)
    assert "已校验" in page and "通过 <strong" in page and 'id="process-btn"' in page


@needs_redis
def test_a_page_that_read_the_batch_just_before_the_worker_finished_shows_the_result_not_interrupted(
    app, ctx, tmp_path, background
):
    """The load test's race: the progress page reads the batch (校验中), the worker commits the
    result and lets its lease go, then the page asks Redis: no lease, the job finished. That is
    not a lost run; the page reads the batch again and shows 已校验."""
    path, ids = big_file(tmp_path)
    batch = new_batch(path)
    assert jobs.submit(batch, "check", clerk()) is None
    db.session.rollback()
    seen_by_the_page = db.session.get(ImportBatch, batch.id)
    assert seen_by_the_page.status == BatchStatus.CHECKING
    with app.app_context():  # meanwhile the worker (its own session) checks it and finishes
        jobs.work(burst=True)
    shown = jobs.state(seen_by_the_page)
    assert (shown["status"], shown["finished"], shown.get("message")) == ("checked", True, None)


@needs_redis
def test_a_job_picked_twice_creates_nothing_twice(app, ctx, tmp_path, background):
    path, ids = big_file(tmp_path)
    batch = new_batch(path)
    check_batch(batch, clerk())
    assert jobs.submit(batch, "process", clerk()) is None
    token = batch.job_id
    # the same run delivered a second time (a worker crashed after finishing, a requeue by hand, …)
    jobs._queue(background).enqueue(jobs.run_job, batch.id, "process", token)
    work(app)
    assert members_with(ids) == 12
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(ImportRow).where(ImportRow.batch_id == batch.id)) == 12
    )
    assert db.session.get(ImportBatch, batch.id).status == BatchStatus.PROCESSED
    with app.app_context():  # a worker of its own (its own database session)
        assert jobs.run_job(batch.id, "process", token) == "stale"  # and a third time, by hand
    assert members_with(ids) == 12


@needs_redis
def test_while_one_worker_runs_a_batch_a_second_copy_of_the_job_does_nothing(app, ctx, tmp_path, background):
    path, ids = big_file(tmp_path)
    batch = new_batch(path)
    check_batch(batch, clerk())
    jobs.submit(batch, "process", clerk())
    background.set(f"huzhu:batch:{batch.id}:lease", "another-worker", ex=30)  # someone holds it
    assert jobs.run_job(batch.id, "process", batch.job_id) == "busy"
    assert members_with(ids) == 0 and batch.status == BatchStatus.PROCESSING
    assert jobs.state(batch)["status"] == "processing"  # queued and not lost: the other one is on it


# ---------------------------------------------------------------- a worker killed mid-job
WORKER = """
import os, sys, time
sys.path.insert(0, {root!r})
from app import create_app
import batch.members as members

def then_hang(write):
    def write_then_hang(rows, ctx):
        n = write(rows, ctx)  # the rows are written, the transaction is still open
        open({marker!r}, "w").write(str(n))
        time.sleep(600)
    return write_then_hang

# both ways of writing: from the file, or from what 业务校验 kept (batch/stage.py)
members.MEMBERS.write = then_hang(members.MEMBERS.write)
members.MEMBERS.write_staged = then_hang(members.MEMBERS.write_staged)
app = create_app({{"SQLALCHEMY_DATABASE_URI": {db!r}, "SECRET_KEY": "test-secret", "SMS_BACKEND": "memory",
                  "REDIS_URL": {redis!r}, "JOB_LEASE_SECONDS": 2, "STORAGE_DIR": {storage!r}}})
with app.app_context():
    from batch.jobs import work
    work(burst=True)
"""


@pytest.fixture
def committed_batch(app):
    """A batch committed for real (a worker in another process must see it); removed afterwards."""
    made = {}
    with app.app_context():
        counters = {c.name: c.value for c in db.session.scalars(sa.select(Counter))}
    yield made
    with app.app_context():
        bid = made.get("batch_id")
        if bid:
            mids = sa.select(Member.id).where(Member.import_batch_id == bid)
            db.session.execute(sa.delete(AuditLog).where(AuditLog.id.in_(audit_rows_naming("member", mids))))
            db.session.execute(sa.delete(Member).where(Member.import_batch_id == bid))
            db.session.execute(sa.delete(ImportRow).where(ImportRow.batch_id == bid))
            db.session.execute(sa.delete(AuditLog).where(AuditLog.entity == "import_batch", AuditLog.entity_id == bid))
            db.session.execute(sa.delete(ImportBatch).where(ImportBatch.id == bid))
        for name, value in counters.items():
            db.session.execute(sa.update(Counter).where(Counter.name == name).values(value=value))
        db.session.commit()


@needs_redis
@pytest.mark.committed
def test_a_worker_killed_mid_job_leaves_nothing_written_and_the_batch_can_be_run_again(
    app, tmp_path, background, committed_batch
):
    with app.app_context():
        path, ids = big_file(tmp_path, n=20)
        batch = new_batch(path)
        committed_batch["batch_id"] = bid = batch.id
        check_batch(batch, clerk())
        assert jobs.submit(batch, "process", clerk()) is None
    with worker_killed_at(app, WORKER, tmp_path / "written") as marker:
        assert marker.read_text() == "20"
        with app.app_context():
            assert jobs.state(db.session.get(ImportBatch, bid))["phase"] == "write"  # mid-job

    with app.app_context():
        assert members_with(ids) == 0  # nothing half written
        time.sleep(3)  # the lease runs out
        batch = db.session.get(ImportBatch, bid)
        shown = jobs.state(batch)
        assert shown["status"] == "interrupted" and shown["finished"] is True
        assert "没有写入任何数据" in shown["message"] and "业务办理" in shown["message"]
        assert jobs.submit(batch, "process", clerk()) is None  # pressed again: queued again
        assert batch.status == BatchStatus.PROCESSING
        db.session.remove()
    work(app)
    with app.app_context():
        batch = db.session.get(ImportBatch, bid)
        assert (batch.status, batch.created_rows) == (BatchStatus.PROCESSED, 20)
        assert members_with(ids) == 20

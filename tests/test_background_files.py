"""Big exports and printed documents on the RQ worker (views/downloads.py, batch/jobs.py `submit_file`):
over EXPORT_BACKGROUND_ROWS rows / PDF_BACKGROUND_PAGES pages, with REDIS_URL set, the clerk lands on
"文件较大，已转到后台生成……" with a progress bar and a 【下载】 when done; only that user may download it.
Without Redis the file comes in the request as before.

The Redis tests need a real Redis (`make test` starts one and sets TEST_REDIS_URL); without it they
are skipped and only the inline path runs.
"""

from __future__ import annotations

import io
import json
import re
import time
from contextlib import contextmanager
from datetime import date

import openpyxl
import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as
from pdftext import pdf_pages, pdf_text, squeeze
from test_exports import FIRST, NEXT, expiring_in
from test_jobs import REDIS_URL, needs_redis, work, worker_killed_at
from test_policy_actions import confirm

import batch.jobs as jobs
import views.downloads as downloads
from actions import Download
from batch.export import Export
from models import Member, Org, db
from models.storage import folder, remove_partial_files

TOKEN_URL = re.compile(r"/admin/downloads/([0-9a-f]{32})/$")


@pytest.fixture
def background(app, monkeypatch):
    """Redis configured, thresholds at 1 row / 0 pages, the test's own empty Redis database."""
    monkeypatch.setitem(app.config, "REDIS_URL", REDIS_URL)
    monkeypatch.setitem(app.config, "EXPORT_BACKGROUND_ROWS", 1)
    monkeypatch.setitem(app.config, "PDF_BACKGROUND_PAGES", 0)
    monkeypatch.setitem(app.config, "JOB_LEASE_SECONDS", 3)
    app.extensions.pop("redis", None)
    with app.app_context():
        jobs.redis_connection().flushdb()
    yield
    app.extensions.pop("redis", None)


def sheet(data: bytes):
    return openpyxl.load_workbook(io.BytesIO(data)).active


def made_files(token: str) -> list:
    return sorted(p.name for p in folder("exports").glob(f"bg_{token}*"))


def ask_expiring(client, fmt="xlsx", query=""):
    """【批量导出打印】 of 即将到期订单 confirmed; the answer (a redirect when queued)."""
    _, n = confirm(client, "export", query, endpoint="expiring")
    resp = client.post(
        f"/admin/expiring/bulk/export/?{query}", data={"csrf_token": csrf_token(client), "expected": n, "p-format": fmt}
    )
    return resp, n


def queued_token(resp) -> str:
    assert resp.status_code == 302, resp.status_code
    m = TOKEN_URL.search(resp.headers["Location"])
    assert m, resp.headers["Location"]
    return m.group(1)


# ---------------------------------------------------------------- without Redis: in the request
def test_without_redis_a_big_export_still_comes_in_the_request(app, as_user, monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", "")
    monkeypatch.setitem(app.config, "EXPORT_BACKGROUND_ROWS", 1)
    monkeypatch.setitem(app.config, "PDF_BACKGROUND_PAGES", 0)
    expiring_in(app, FIRST, "测后台无")
    expiring_in(app, FIRST, "测后台无二")
    client = as_user("clerk1")
    resp, n = ask_expiring(client, query=f"month={NEXT}")
    assert resp.status_code == 200 and resp.is_streamed and n >= 2
    assert len(list(sheet(resp.get_data()).iter_rows(min_row=2))) == n
    resp = client.get("/admin/members/export/xlsx/")
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet")
    resp, _ = ask_expiring(client, fmt="pdf", query=f"month={NEXT}")
    assert resp.mimetype == "application/pdf"


# ---------------------------------------------------------------- with Redis: the worker
@needs_redis
def test_a_big_export_goes_to_the_worker_with_progress_and_a_download_of_the_same_rows(app, as_user, background):
    expiring_in(app, FIRST, "测后台一")
    expiring_in(app, FIRST, "测后台二")
    client = as_user("clerk1")
    # no month chosen: the screen's default (next month) is what the worker uses, pinned
    resp, n = ask_expiring(client)
    token = queued_token(resp)
    page = client.get(f"/admin/downloads/{token}/").get_data(as_text=True)
    assert "文件较大，已转到后台生成" in page and 'id="job-progress"' in page and "nonce=" in page
    shown = client.get(f"/admin/downloads/{token}/progress/").get_json()
    assert (shown["phase"], shown["done"], shown["total"], shown["unit"], shown["finished"]) == (
        "queued",
        0,
        n,
        "行",
        False,
    )
    with app.app_context():
        record = jobs._file_record(jobs.redis_connection(), token)
    assert ["month", NEXT] in json.loads(record["spec"])["args"]

    work(app)
    shown = client.get(f"/admin/downloads/{token}/progress/").get_json()
    assert (shown["phase"], shown["done"], shown["finished"]) == ("done", n, True)
    assert shown["filename"].startswith("即将到期订单_") and shown["filename"].endswith(".xlsx")
    page = client.get(f"/admin/downloads/{token}/").get_data(as_text=True)
    assert 'id="download-link"' in page and "下载" in page and "文件已生成" in page
    got = client.get(f"/admin/downloads/{token}/file/")
    assert got.status_code == 200 and "attachment" in got.headers["Content-Disposition"]
    rows = list(sheet(got.get_data()).iter_rows(min_row=2, values_only=True))
    assert len(rows) == n and {"测后台一", "测后台二"} <= {r[2] for r in rows}

    # the same confirmation made in the request (no Redis) gives the same rows
    app.config["REDIS_URL"] = ""
    inline, _ = ask_expiring(client)
    app.config["REDIS_URL"] = REDIS_URL
    assert list(sheet(inline.get_data()).iter_rows(min_row=2, values_only=True)) == rows


@needs_redis
def test_a_list_export_over_the_threshold_is_made_by_the_worker_within_the_users_scope(
    app, as_user, background, monkeypatch
):
    client = as_user("clerk1")
    token = queued_token(client.get("/admin/members/export/xlsx/"))
    seen = []  # what the page would have shown at each step of the worker's run
    real = downloads.make

    @contextmanager
    def looking(spec, user_id, progress):
        def progress_and_look(done, total=None):
            progress(done, total)
            seen.append({k: v for k, v in jobs.file_state(token).items() if k in ("phase", "done", "total")})

        with real(spec, user_id, progress_and_look) as download:
            yield download

    monkeypatch.setattr(downloads, "make", looking)
    work(app)
    got = client.get(f"/admin/downloads/{token}/file/")
    assert got.status_code == 200
    with app.app_context():
        own = set(db.session.scalars(sa.select(Member.member_no).join(Org).where(Org.code == "010101")))
    assert {r[0] for r in sheet(got.get_data()).iter_rows(min_row=2, values_only=True)} == own
    shown = client.get(f"/admin/downloads/{token}/progress/").get_json()
    assert shown["done"] == shown["total"] == len(own) > 2  # the whole count, not the request's capped one
    assert seen and all(s["phase"] == "making" and s["total"] == len(own) for s in seen), seen
    assert seen[0]["done"] == 0


@needs_redis
def test_a_big_printed_list_is_made_by_the_worker(app, as_user, background):
    expiring_in(app, FIRST, "测后台打印")
    client = as_user("clerk1")
    resp, _ = ask_expiring(client, fmt="pdf", query=f"month={NEXT}")
    token = queued_token(resp)
    assert client.get(f"/admin/downloads/{token}/progress/").get_json()["unit"] == "页"
    work(app)
    got = client.get(f"/admin/downloads/{token}/file/")
    assert got.mimetype == "application/pdf"
    flat = squeeze(pdf_text(got.get_data()))
    assert "即将到期保单清单" in flat and "测后台打印" in flat
    shown = client.get(f"/admin/downloads/{token}/progress/").get_json()
    assert shown["done"] == shown["total"] == pdf_pages(got.get_data())  # the pages as laid out


@needs_redis
def test_only_the_user_who_asked_may_see_or_download_the_file(app, as_user, background):
    expiring_in(app, FIRST, "测后台篡改")
    client = as_user("clerk1")
    resp, _ = ask_expiring(client, query=f"month={NEXT}")
    token = queued_token(resp)
    work(app)
    assert client.get(f"/admin/downloads/{token}/file/").status_code == 200
    for other in ("clerk3", "clerk2", "office1"):  # another unit, a unit beside, the office above
        other_client = app.test_client()
        login_as(app, other_client, other)
        for path in ("", "progress/", "file/"):
            assert other_client.get(f"/admin/downloads/{token}/{path}").status_code == 404, (other, path)
        assert other_client.post(f"/admin/downloads/{token}/again/").status_code in (400, 404)
    assert client.get(f"/admin/downloads/{'0' * 32}/").status_code == 404
    assert client.get("/admin/downloads/..%2f..%2fsecret_key/file/").status_code == 404


@needs_redis
def test_a_file_job_picked_twice_makes_one_file(app, as_user, background):
    expiring_in(app, FIRST, "测后台两次")
    client = as_user("clerk1")
    resp, _ = ask_expiring(client, query=f"month={NEXT}")
    token = queued_token(resp)
    with app.app_context():
        conn = jobs.redis_connection()
        run = jobs._file_record(conn, token)["run"]
        jobs._queue(conn).enqueue(downloads.MAKER, token, run)  # the same run delivered a second time
        assert len(jobs._queue(conn)) == 2
    work(app)
    with app.app_context():
        assert made_files(token) == [f"bg_{token}.xlsx"]
        first = (folder("exports") / f"bg_{token}.xlsx").stat().st_mtime_ns
        assert downloads.job(token, run) == "stale"  # and a third time, by hand: nothing
        assert (folder("exports") / f"bg_{token}.xlsx").stat().st_mtime_ns == first
    while_held = client.get(f"/admin/downloads/{token}/progress/").get_json()
    assert while_held["phase"] == "done"


@needs_redis
def test_a_worker_that_fails_mid_file_leaves_no_file_and_the_file_can_be_made_again(
    app, as_user, background, monkeypatch
):
    expiring_in(app, FIRST, "测后台中断")
    client = as_user("clerk1")
    resp, n = ask_expiring(client, query=f"month={NEXT}")
    token = queued_token(resp)
    real = downloads.make

    @contextmanager
    def breaks_mid_way(spec, user_id, progress):
        def chunks():
            yield b"PK half a file"
            raise OSError("disk went away")

        yield Download("即将到期订单.xlsx", "application/octet-stream", chunks())

    monkeypatch.setattr(downloads, "make", breaks_mid_way)
    work(app)
    with app.app_context():
        assert made_files(token) == []  # nothing half written stays
    shown = client.get(f"/admin/downloads/{token}/progress/").get_json()
    assert shown["phase"] == "failed" and shown["again"] and "中途停止" in shown["message"]
    page = client.get(f"/admin/downloads/{token}/").get_data(as_text=True)
    assert 'id="again-btn"' in page and "重新生成" in page

    monkeypatch.setattr(downloads, "make", real)
    resp = client.post(f"/admin/downloads/{token}/again/", data={"csrf_token": csrf_token(client)})
    assert resp.status_code == 302
    assert client.get(f"/admin/downloads/{token}/progress/").get_json()["phase"] == "queued"
    work(app)
    got = client.get(f"/admin/downloads/{token}/file/")
    assert len(list(sheet(got.get_data()).iter_rows(min_row=2))) == n


@needs_redis
def test_a_worker_killed_mid_file_shows_as_stopped_once_its_lease_runs_out(app, as_user, background):
    expiring_in(app, FIRST, "测后台被杀")
    client = as_user("clerk1")
    resp, _ = ask_expiring(client, query=f"month={NEXT}")
    token = queued_token(resp)
    with app.app_context():
        conn = jobs.redis_connection()
        run = jobs._file_record(conn, token)["run"]
        # what a worker killed with SIGKILL leaves: the record says "making", its lease (no longer
        # renewed) runs out, and RQ's job is gone from the queue
        conn.hset(jobs._file_key(token), "phase", "making")
        conn.set(jobs._file_lease_key(token), run, ex=1)
        jobs._queue(conn).remove(run)
        from rq.job import Job

        Job.fetch(run, connection=conn).delete()
    assert client.get(f"/admin/downloads/{token}/progress/").get_json()["phase"] == "making"  # still held
    time.sleep(1.5)
    shown = client.get(f"/admin/downloads/{token}/progress/").get_json()
    assert shown["phase"] == "failed" and shown["again"] and shown["finished"]
    client.post(f"/admin/downloads/{token}/again/", data={"csrf_token": csrf_token(client)})
    work(app)
    assert client.get(f"/admin/downloads/{token}/progress/").get_json()["phase"] == "done"


@needs_redis
def test_a_file_is_removed_after_its_retention_and_the_page_says_so(app, as_user, background):
    expiring_in(app, FIRST, "测后台过期")
    client = as_user("clerk1")
    resp, _ = ask_expiring(client, query=f"month={NEXT}")
    token = queued_token(resp)
    work(app)
    with app.app_context():
        assert jobs.sweep_files() == 0  # fresh: kept
        assert jobs.sweep_files(now=time.time() + 25 * 3600) >= 1  # (and those of the tests before)
        assert made_files(token) == []
    page = client.get(f"/admin/downloads/{token}/").get_data(as_text=True)
    assert "已过了保留期限" in page and 'id="download-link"' not in page
    assert client.get(f"/admin/downloads/{token}/file/").status_code == 302  # back to the page, no error


# ---------------------------------------------------------------- the pieces
def test_rows_are_counted_as_they_are_written(app):
    seen = []
    export = Export(["a"], None, lambda: iter([[1]] * 2500))
    list(jobs.counted(export, seen.append).rows())
    assert seen == [1000, 2000, 2500]
    blocks = Export(["a"], None, lambda: iter(()), xml_rows=lambda: iter([b"<row></row>" * 3, b"<row></row>" * 2]))
    list(jobs.counted(blocks, seen.append).xml_rows())
    assert seen[-2:] == [3, 5]


def test_pages_are_counted_while_a_pdf_is_laid_out(app):
    from batch.pdf import render_pdf

    seen = []
    with jobs._pdf_pages(seen.append):
        render_pdf("policy_list.html", title="测", subtitle="", units=[], printed_on=date.today(), printed_by="x")
    assert seen and seen[0] == 1


FILE_WORKER = """
import sys, time
sys.path.insert(0, {root!r})
from contextlib import contextmanager
from app import create_app
import views.downloads as downloads

real = downloads.make

@contextmanager
def then_hang(spec, user_id, progress):
    with real(spec, user_id, progress) as download:
        inner = download.body

        def chunks():
            for chunk in inner:
                yield chunk
                open({marker!r}, "w").write("writing")
                time.sleep(600)  # half the file written, the worker is killed here
        download.body = chunks()
        yield download

downloads.make = then_hang
app = create_app({{"SQLALCHEMY_DATABASE_URI": {db!r}, "SECRET_KEY": "test-secret", "SMS_BACKEND": "memory",
                  "REDIS_URL": {redis!r}, "JOB_LEASE_SECONDS": 2, "STORAGE_DIR": {storage!r},
                  "EXPORT_BACKGROUND_ROWS": 1}})
with app.app_context():
    from batch.jobs import work
    work(burst=True)
"""


@needs_redis
def test_a_worker_killed_mid_file_leaves_no_file_says_so_and_the_file_can_be_made_again(
    app, client, tmp_path, background
):
    login_as(app, client, "clerk1")  # (the members exported are the demo data's: the worker process sees them too)
    token = queued_token(client.get("/admin/members/export/xlsx/"))
    with worker_killed_at(app, FILE_WORKER, tmp_path / "writing"):
        assert client.get(f"/admin/downloads/{token}/progress/").get_json()["phase"] == "making"
    with app.app_context():
        # only a .tmp was being written: no file to download; the next start clears it (its writer is gone)
        assert [n for n in made_files(token) if not n.endswith(".tmp")] == []
        assert remove_partial_files() >= 1 and made_files(token) == []
    time.sleep(3)  # the lease runs out
    shown = client.get(f"/admin/downloads/{token}/progress/").get_json()
    assert shown["phase"] == "failed" and shown["again"] and "中途停止" in shown["message"]
    assert client.get(f"/admin/downloads/{token}/file/").status_code == 302  # back to the page
    client.post(f"/admin/downloads/{token}/again/", data={"csrf_token": csrf_token(client)})
    work(app)
    with app.app_context():
        assert made_files(token) == [f"bg_{token}.xlsx"]
    assert client.get(f"/admin/downloads/{token}/progress/").get_json()["phase"] == "done"


@needs_redis
def test_the_termination_forms_of_the_ticked_rows_are_printed_by_the_worker_with_the_requests_address(
    app, as_user, background, monkeypatch
):
    from test_terminations import created, effective

    import actions.terminations as terminations

    client = as_user("clerk1")
    one = created(client, effective(app, 1, name="测后台终止"))
    two = created(client, effective(app, 1, name="测后台终止乙"))
    _, n = confirm(client, "print", f"ids={two}", endpoint="terminations")
    resp = client.post(
        f"/admin/terminations/bulk/print/?ids={two}", data={"csrf_token": csrf_token(client), "expected": n}
    )
    token = queued_token(resp)
    shown = client.get(f"/admin/downloads/{token}/progress/").get_json()
    assert (shown["total"], shown["unit"]) == (1, "页")  # one page per application
    monkeypatch.setitem(app.config, "PUBLIC_URL", "http://elsewhere.example.org")  # not what the worker uses
    coded = []
    real = terminations.qr_png
    monkeypatch.setattr(terminations, "qr_png", lambda text, *a, **kw: coded.append(text) or real(text, *a, **kw))
    work(app)
    got = client.get(f"/admin/downloads/{token}/file/")
    assert got.mimetype == "application/pdf"
    text = pdf_text(got.get_data())
    assert f"申请编号：{two}" in text and f"申请编号：{one}" not in text  # the ticked row only
    assert coded == [f"http://localhost/admin/terminations/details/?id={two}"]  # the request's own address

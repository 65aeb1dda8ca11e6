"""GET never writes (issue 15, item 7): opening any page or download a user can reach by following
links changes no row, whoever opens it.  The case that did: agency1 opening 失败行下载 of clerk1's
checked batch re-checked it as agency1, flipped it to 无法读取 with "请选择会员入会的基层单位", and
clerk1 lost her buttons."""

from __future__ import annotations

import io
import re
from collections import Counter
from urllib.parse import parse_qsl, urlsplit

import openpyxl
import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as
from test_batch_screen import make_id, run, upload, xlsx

from models import BatchStatus, ImportBatch, db

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|COPY|CREATE|DROP|ALTER|TRUNCATE)\b", re.IGNORECASE)
LINK = re.compile(r'href="(/admin/[^"#]*)"')
SESSION_TABLE = "user_session"  # the server-side session: a visit may refresh its own session row


class Writes:
    def __init__(self):
        self.seen: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        if WRITE.match(statement) and SESSION_TABLE not in statement:
            self.seen.append(" ".join(statement.split())[:160])


@pytest.fixture
def writes(app):
    w = Writes()
    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", w)
    yield w
    sa.event.remove(engine, "before_cursor_execute", w)


def _checked_batch_of_clerk1(app, client) -> str:
    login_as(app, client, "clerk1")
    loc = upload(client, xlsx([("甲一", make_id(61)), ("王 芳", make_id(62)), ("李四", "123")])).headers["Location"]
    run(client, loc, "check")
    return loc


def test_agency_opening_failed_rows_of_a_clerks_checked_batch_changes_nothing(app, client):
    loc = _checked_batch_of_clerk1(app, client)
    batch_id = int(loc.rstrip("/").split("/")[-1])
    with app.app_context():
        before = db.session.get(ImportBatch, batch_id)
        state = (before.status, before.message, before.total_rows, before.error_rows, before.checked_at)
    login_as(app, client, "agency1")
    resp = client.get(f"{loc}failed/")
    assert resp.status_code == 200
    rows = [[c.value for c in r] for r in openpyxl.load_workbook(io.BytesIO(resp.data)).active.iter_rows()]
    # clerk1's own check's reasons, not agency1's ("请选择会员入会的基层单位")
    assert [r[-1] for r in rows[1:]] == ["第3行：姓名中间不得有空格", "第4行：身份证号必须为18位"]
    with app.app_context():
        after = db.session.get(ImportBatch, batch_id)
        assert (after.status, after.message, after.total_rows, after.error_rows, after.checked_at) == state
        assert after.status == BatchStatus.CHECKED
    login_as(app, client, "clerk1")
    page = client.get(loc).get_data(as_text=True)
    assert "业务办理" in page and "无法读取" not in page


def test_failed_rows_of_a_batch_not_yet_checked_say_to_check_first(app, client):
    login_as(app, client, "clerk1")
    loc = upload(client, xlsx([("甲一", make_id(63))])).headers["Location"]
    resp = client.get(f"{loc}failed/", follow_redirects=True)
    assert "请先【业务校验】" in resp.get_data(as_text=True)


NOISE = {"sort", "desc", "page", "page_size"}  # the same list again, in another order or page


def _pattern(url: str) -> tuple | None:
    """Pages of one kind (a list, the details of a row, a batch's run page) share a pattern; None
    for what is not worth a visit (static files, the same list sorted or paged)."""
    parts = urlsplit(url)
    keys = {k for k, _ in parse_qsl(parts.query)}
    if parts.path.startswith("/admin/static/") or keys & NOISE:
        return None
    return re.sub(r"/\d+/", "/N/", parts.path), tuple(sorted(keys))


@pytest.mark.parametrize("username", ["clerk1", "agency1", "office1", "admin"])
def test_no_page_reachable_by_links_writes_anything(app, client, writes, username):
    _checked_batch_of_clerk1(app, client)
    login_as(app, client, username)
    csrf_token(client)  # the session's CSRF token exists before counting (the session row is not counted anyway)
    queue, seen, per_pattern, visited = ["/admin/"], set(), Counter(), 0
    writes.seen.clear()
    while queue and visited < 300:
        url = queue.pop(0)
        if url in seen or "logout" in url:
            continue
        seen.add(url)
        pattern = _pattern(url)
        if pattern is None or per_pattern[pattern] >= 2:  # two of each kind of page (details of two rows, …)
            continue
        per_pattern[pattern] += 1
        visited += 1
        resp = client.get(url)
        assert resp.status_code < 500, url
        if resp.mimetype == "text/html":
            queue += [u.replace("&amp;", "&") for u in LINK.findall(resp.get_data(as_text=True))]
        assert writes.seen == [], f"GET {url} wrote: {writes.seen}"
    assert visited > 10

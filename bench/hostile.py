"""Issue 15's attacks against the code as it is now: one JSON line with the after-figure of each item
(the closing note's "before/after figure (RSS, exit code, rows created, status code)"; the before
figures are in the issue).

    .venv/bin/python bench/hostile.py     # PostgreSQL: BENCH_DATABASE_URL's server, else a throwaway cluster

Every hostile input is made here, in a temporary folder: tests/hostile.py's generators, and the 2 GB
zip bomb made in a second by repeating one deflated block.  Items 1 and 2 (and item 8's CSV cell):
each file in a child of its own, once through `flask batch check` (the command's own code) and
once through the web's upload + 【业务校验】.  The children are forked from this process once it has
made the app (as gunicorn's --preload would; the demo data is loaded by another child, so this
process is as lean as a fresh worker): a child's peak RSS is its VmHWM, which starts at what it
inherits, and `baseline` is the same child with a valid two-row file.  Each child's address space
is capped at 3 GiB, so that a regression shows here as a failure instead of exhausting the machine.
Items 4-10 on SQLite through the test client, each request in its own app context as in
production; item 3 and the PostgreSQL case of item 8 on a fresh database.  Not a test: it measures
and prints, it asserts nothing.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import resource
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import hostile  # noqa: E402  (tests/hostile.py: the hostile files, generated)
import openpyxl  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench.common import bench_database, log, make_app  # noqa: E402

CAP = 3 << 30  # address space of a measured child
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
TAGS = re.compile(r"<[^>]+>")


# --- hostile inputs ---------------------------------------------------------------------------------


def zip_bomb(inflated_mb: int = 2048) -> bytes:
    """tests/hostile.py's zip_bomb_xlsx (a sheet of the same valid row inflating to `inflated_mb`
    MB), made in about a second: one MiB of rows is deflated once, flushed so that it stands alone,
    and that block repeated; the zip is written by hand around it."""
    row = (
        b'<row><c t="inlineStr"><is><t>\xe5\xbc\xa0\xe4\xbc\x9f</t></is></c>'
        b'<c t="inlineStr"><is><t>110105199001011234</t></is></c></row>'
    )
    block = row * (1024 * 1024 // len(row))
    head, tail = hostile.SHEET_HEAD + hostile.HEADER_ROW, hostile.SHEET_TAIL
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    z_head = co.compress(head) + co.flush(zlib.Z_FULL_FLUSH)
    z_block = co.compress(block) + co.flush(zlib.Z_FULL_FLUSH)  # no reference before it: repeatable
    z_tail = co.compress(tail) + co.flush(zlib.Z_FINISH)
    n = inflated_mb * 1024 * 1024 // len(block)
    crc = zlib.crc32(head)
    for _ in range(n):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    sheet = (z_head + z_block * n + z_tail, crc, len(head) + n * len(block) + len(tail))
    with zipfile.ZipFile(io.BytesIO(hostile.xlsx(hostile.sheet()))) as small:
        parts = [(i.filename, small.read(i)) for i in small.infolist() if not i.filename.endswith("sheet1.xml")]
    entries = []
    for name, data in parts:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        entries.append((name, c.compress(data) + c.flush(), zlib.crc32(data), len(data)))
    entries.append(("xl/worksheets/sheet1.xml", *sheet))
    out, central = bytearray(), bytearray()
    for name, payload, crc, size in entries:
        raw, offset = name.encode(), len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(payload), size, len(raw), 0)
        out += raw + payload
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(payload), size, len(raw), 0, 0, 0, 0, 0,
            offset,
        )  # fmt: skip
        central += raw
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return bytes(out + central + end)


def members_xlsx(rows, header=("姓名", "身份证号")) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(header))
    for r in rows:
        ws.append(list(r))
    for cells in ws.iter_rows(min_row=2):
        cells[1].number_format = "@"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def valid_ids(n: int, start: int = 0) -> list[str]:
    from bench.common import make_id

    return [make_id("120101", date(1990, 3, 7) + timedelta(days=k // 900), k % 900) for k in range(start, start + n)]


# --- children measured by their own VmHWM -----------------------------------------------------------


def in_child(work, tmp: Path) -> dict:
    """Run `work()` in a child forked from this process (which has made the app, as gunicorn's
    --preload does), its address space capped: its exit code (128 + the signal when killed, as a
    shell says), what it wrote and its peak RSS in MB: its VmHWM at the end, else the last one read
    from /proc while it ran."""
    out, err = tmp / "child.out", tmp / "child.err"
    hwm_file = tmp / "child.hwm"
    hwm_file.unlink(missing_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))
            for fd, path in ((1, out), (2, err)):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
            work()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            hwm_file.write_text(_hwm_kb("self"))
            os._exit(code)
    polled = 0
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        try:
            polled = max(polled, int(_hwm_kb(str(pid))))
        except (OSError, ValueError, StopIteration):
            pass
        time.sleep(0.005)
    code = os.waitstatus_to_exitcode(status)
    kb = int(hwm_file.read_text()) if hwm_file.exists() else polled
    return {
        "exit": 128 - code if code < 0 else code,
        "rss_mb": round(kb / 1024),
        "stdout": out.read_text(errors="replace"),
        "stderr": err.read_text(errors="replace"),
    }


def _hwm_kb(pid: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next(line for line in f if line.startswith("VmHWM:")).split()[1]


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def cli_check(app, path: Path):
    """`flask batch check members FILE --user clerk1 --json`, the command line's own code."""
    from flask.cli import FlaskGroup

    def work():
        FlaskGroup(create_app=lambda: app).main(
            args=["batch", "check", "members", str(path), "--user", "clerk1", "--json"], prog_name="flask"
        )

    return work


def web_check(app, path: Path):
    """clerk1 uploads the file at 批量业务 → 批量入会 and presses 【业务校验】; what the page says."""

    def work():
        web = Web(app)
        client = web.client("clerk1")
        url = "/admin/batches/upload/members/"
        with open(path, "rb") as fh:
            up = client.post(
                url,
                data={"csrf_token": web.csrf(client, url), "file": (fh, path.name)},
                content_type="multipart/form-data",
            )
        out = {"upload_status": up.status_code}
        if up.status_code == 302:
            loc = up.headers["Location"]
            out["check_status"] = client.post(loc + "check/", data={"csrf_token": web.csrf(client, loc)}).status_code
            out["message"] = _text(client.get(loc).get_data(as_text=True), r'id="batch-status">(.*?)</td>')
        else:
            out["message"] = _text(up.get_data(as_text=True), r'class="alert[^"]*"[^>]*>(.*?)</div>')
        print(json.dumps(out, ensure_ascii=False))

    return work


def _text(html: str, pattern: str) -> str | None:
    m = re.search(pattern, html, re.S)
    return TAGS.sub("", m.group(1)).replace("&times;", "").strip() if m else None


def file_attacks(app, tmp: Path) -> dict:
    """Items 1, 2 and 8's CSV cell: `flask batch check` (exit code) and the web (status codes) in
    children of their own, each with its peak RSS."""
    from models import db

    files = {
        "baseline_valid_2_rows.xlsx": members_xlsx([("张伟", i) for i in valid_ids(2)]),
        "cell_XFD1048576.xlsx": hostile.far_cell_xlsx("XFD1048576"),
        "cell_GR100000.xlsx": hostile.far_cell_xlsx("GR100000"),
        "zip_bomb_2gb.xlsx": zip_bomb(2048),
        "csv_cell_200000_chars.csv": hostile.csv_with_huge_cell(200_000),
    }
    files["zip_bomb_2gb_lying_size.xlsx"] = hostile.with_lying_size(files["zip_bomb_2gb.xlsx"], size=4096)
    with zipfile.ZipFile(io.BytesIO(files["zip_bomb_2gb.xlsx"])) as z:
        inflated = z.getinfo("xl/worksheets/sheet1.xml").file_size
    out = {}
    for name, data in files.items():
        path = tmp / name
        path.write_bytes(data)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()  # no connection of this process goes into the child
        cli = in_child(cli_check(app, path), tmp)
        web = in_child(web_check(app, path), tmp)
        web_out = json.loads(one_line(web["stdout"]) or "{}")
        out[name] = {
            "file_bytes": len(data),
            "cli": {
                "exit_code": cli["exit"],
                "peak_rss_mb": cli["rss_mb"],
                "message": one_line(cli["stderr"]) if cli["exit"] else "读完：" + one_line(cli["stdout"])[:100],
            },
            "web": {
                "peak_rss_mb": web["rss_mb"],
                **web_out,
                **({"exit_code": web["exit"], "stderr": one_line(web["stderr"])} if web["exit"] else {}),
            },
        }
        log(f"{name}: cli exit {cli['exit']} {cli['rss_mb']} MB, web {web_out.get('check_status')} {web['rss_mb']} MB")
    out["zip_bomb_2gb.xlsx"]["sheet_inflates_to_mb"] = inflated // (1024 * 1024)
    return out


# --- the app in this process (SQLite) ---------------------------------------------------------------


class Web:
    """The app and its test client, each request in its own app context as in production."""

    def __init__(self, app):
        self.app = app

    def client(self, username: str | None = None):
        c = self.app.test_client()
        if username:
            with c.session_transaction() as s:
                s["uid"] = self.uid(username)
        return c

    def uid(self, username: str) -> int:
        from models import User, db

        with self.app.app_context():
            return db.session.scalar(sa.select(User.id).where(User.username == username))

    def scalar(self, stmt):
        from models import db

        with self.app.app_context():
            return db.session.scalar(stmt)

    def execute(self, stmt):
        from models import db

        with self.app.app_context():
            db.session.execute(stmt)
            db.session.commit()

    @staticmethod
    def csrf(client, url: str = "/admin/") -> str:
        return CSRF.search(client.get(url).get_data(as_text=True)).group(1)

    def send_code(self, client, username, password="Demo-2026", ip="198.51.100.20"):
        resp = client.post(
            "/login/send-code",
            data={"username": username, "password": password, "csrf_token": self.csrf(client, "/login")},
            environ_base={"REMOTE_ADDR": ip},
        )
        return resp.status_code, (resp.get_json() or {}).get("message")

    def log_in(self, username, ip="198.51.100.20"):
        """The real login: password, 获取手机验证码, the code from the memory SMS backend."""
        from models import User

        self.execute(sa.update(User).where(User.username == username).values(login_code_sent_at=None))
        client = self.app.test_client()
        status, message = self.send_code(client, username, ip=ip)
        assert status == 200, message
        code = self.app.extensions["sms"].last_code(username)
        form = {"username": username, "password": "Demo-2026", "code": code, "csrf_token": self.csrf(client, "/login")}
        resp = client.post("/login", data=form, environ_base={"REMOTE_ADDR": ip})
        return client, resp.status_code

    def replay(self, token: str) -> int:
        """A fresh browser presenting an old cookie: the status of 首页 (200: still logged in)."""
        other = self.app.test_client()
        other.set_cookie("session", token)
        return other.get("/admin/").status_code

    def user_form(self, username: str, **changes) -> tuple[int, dict]:
        from models import User, db

        with self.app.app_context():
            u = db.session.scalar(sa.select(User).where(User.username == username))
            form = {
                "username": u.username,
                "display_name": u.display_name,
                "org": str(u.org_id),
                "role": u.role.value,
                "phone": u.phone,
                "active": "y",
                "new_password": "",
            }
            pk = u.id
        form.update(changes)
        return pk, {k: v for k, v in form.items() if v is not None}


def cookie_of(client) -> str:
    c = client.get_cookie("session")
    return c.value if c else ""


def item_4_sessions(web: Web) -> dict:
    from models import User, UserSession

    out = {}
    clerk, status = web.log_in("clerk1")
    token = cookie_of(clerk)
    decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    pw_hash = web.scalar(sa.select(User.password_hash).where(User.username == "clerk1"))
    out["cookie"] = {
        "login_status": status,
        "chars": len(token),
        "holds_uid": b"uid" in decoded,
        "holds_password_hash_part": pw_hash[-12:].encode() in decoded,
        "is_random_token_only": bool(re.fullmatch(r"[A-Za-z0-9_-]{40,}", token)),
    }
    before = web.replay(token)
    clerk.post("/logout", data={"csrf_token": web.csrf(clerk)})
    out["logout"] = {
        "old_cookie_status_before": before,
        "old_cookie_status": web.replay(token),
        "sessions_left": _sessions(web, "clerk1"),
    }

    clerk2, _ = web.log_in("clerk2")
    token2 = cookie_of(clerk2)
    before = web.replay(token2)
    admin = web.client("admin")
    csrf = web.csrf(admin)
    admin.post("/admin/users/stepup-code/", data={"csrf_token": csrf})
    code = web.app.extensions["sms"].last_code("admin")
    page = admin.post(
        "/admin/users/reset-password/", data={"csrf_token": csrf, "id": web.uid("clerk2"), "stepup_code": code}
    )
    new = re.search(r'<code id="new-password"[^>]*>([^<]+)</code>', page.get_data(as_text=True)).group(1)
    out["reset_password"] = {
        "old_cookie_status_before": before,
        "reset_status": page.status_code,
        "old_cookie_status": web.replay(token2),
        "new_password_in_a_session_row": bool(
            web.scalar(sa.select(sa.func.count()).where(UserSession.data.contains(new)))
        ),
        "new_password_on_the_next_page": new in admin.get("/admin/").get_data(as_text=True),
    }

    clerk3, _ = web.log_in("clerk3")
    token3 = cookie_of(clerk3)
    before = web.replay(token3)
    pk, form = web.user_form("clerk3", active=None, csrf_token=web.csrf(admin))
    resp = admin.post(f"/admin/users/edit/?id={pk}", data=form)
    out["disable"] = {
        "old_cookie_status_before": before,
        "edit_status": resp.status_code,
        "old_cookie_status": web.replay(token3),
        "sessions_left": _sessions(web, "clerk3"),
    }
    web.execute(sa.update(User).where(User.username == "clerk3").values(active=True))
    return out


def _sessions(web: Web, username: str) -> int:
    from models import UserSession

    return web.scalar(
        sa.select(sa.func.count()).select_from(UserSession).where(UserSession.user_id == web.uid(username))
    )


def item_5_user_admin(web: Web) -> dict:
    from models import AuditLog, User

    info = web.client("info1")

    def post(username, **changes):
        pk, form = web.user_form(username, csrf_token=web.csrf(info), **changes)
        resp = info.post(f"/admin/users/edit/?id={pk}", data=form)
        said = _text(resp.get_data(as_text=True), r'class="alert[^"]*alert-danger[^"]*"[^>]*>(.*?)</div>')
        return {"status": resp.status_code, "message": said} if said else {"status": resp.status_code}

    role = lambda name: web.scalar(sa.select(User.role).where(User.username == name)).value  # noqa: E731
    phone = lambda name: web.scalar(sa.select(User.phone).where(User.username == name))  # noqa: E731
    out = {
        "info1_grants_itself_admin": {**post("info1", role="admin"), "role_after": role("info1")},
        "info1_grants_clerk1_admin": {**post("clerk1", role="admin"), "role_after": role("clerk1")},
    }
    was = phone("clerk1")
    out["info1_changes_clerk1_phone_without_code"] = {
        **post("clerk1", phone="+8613900000001"),
        "phone_changed": phone("clerk1") != was,
    }
    out["info1_changes_clerk1_phone_with_wrong_code"] = {
        **post("clerk1", phone="+8613900000001", stepup_code="000000"),
        "phone_changed": phone("clerk1") != was,
    }
    csrf = web.csrf(info)
    info.post("/admin/users/stepup-code/", data={"csrf_token": csrf})
    code = web.app.extensions["sms"].last_code("info1")
    resp = info.post(
        "/admin/users/reset-password/", data={"csrf_token": csrf, "id": web.uid("admin"), "stepup_code": code}
    )
    from models import db

    with web.app.app_context():
        admin_pw_same = db.session.scalar(sa.select(User).where(User.username == "admin")).check_password("Demo-2026")
    out["info1_resets_admins_password_with_own_code"] = {
        "status": resp.status_code,
        "admin_password_kept": admin_pw_same,
    }
    audits = sa.select(sa.func.count()).select_from(AuditLog).where(AuditLog.entity == "user")
    n = web.scalar(audits)
    web.execute(sa.update(User).where(User.username == "info1").values(login_code_sent_at=None))
    info.post("/admin/users/stepup-code/", data={"csrf_token": web.csrf(info)})
    fresh = web.app.extensions["sms"].last_code("info1")
    out["info1_changes_clerk1_phone_with_own_fresh_code"] = {
        **post("clerk1", phone="+8613900000001", stepup_code=fresh),
        "phone_changed": phone("clerk1") != was,
        "audit_rows_written": web.scalar(audits) - n,
    }
    web.execute(sa.update(User).where(User.username == "clerk1").values(phone=was))
    return out


def item_6_lockout(web: Web) -> dict:
    from models import User

    stranger = web.app.test_client()
    web.execute(sa.update(User).where(User.username == "clerk1").values(login_code_sent_at=None))
    answers = [web.send_code(stranger, "clerk1", password="Wrong-2026", ip="203.0.113.66") for _ in range(12)]
    locked = web.scalar(sa.select(User.locked_until).where(User.username == "clerk1"))
    clerk = web.app.test_client()
    status, message = web.send_code(clerk, "clerk1", ip="198.51.100.21")
    code = web.app.extensions["sms"].last_code("clerk1")
    resp = clerk.post(
        "/login",
        data={"username": "clerk1", "password": "Demo-2026", "code": code, "csrf_token": web.csrf(clerk, "/login")},
        environ_base={"REMOTE_ADDR": "198.51.100.21"},
    )
    return {
        "stranger_12_wrong_passwords_statuses": dict(Counter(s for s, _ in answers)),
        "stranger_last_message": answers[-1][1],
        "clerk1_locked_until": locked,
        "clerk1_own_address_send_code": {"status": status, "message": message},
        "clerk1_login_status": resp.status_code,
    }


def item_7_get_never_writes(web: Web) -> dict:
    from models import ImportBatch

    clerk = web.client("clerk1")
    ids = valid_ids(2, start=500)
    data = members_xlsx([("甲一", ids[0]), ("王 芳", ids[1]), ("李四", "123")])
    up = clerk.post(
        "/admin/batches/upload/members/",
        data={"csrf_token": web.csrf(clerk, "/admin/batches/upload/members/"), "file": (io.BytesIO(data), "入会.xlsx")},
        content_type="multipart/form-data",
    )
    loc = up.headers["Location"]
    clerk.post(f"{loc}check/", data={"csrf_token": web.csrf(clerk, loc)})
    batch_id = int(loc.rstrip("/").split("/")[-1])
    state = sa.select(ImportBatch.status, ImportBatch.message).where(ImportBatch.id == batch_id)
    from models import db

    with web.app.app_context():
        before = db.session.execute(state).one()
    agency = web.client("agency1")
    resp = agency.get(f"{loc}failed/")
    with web.app.app_context():
        after = db.session.execute(state).one()
    reasons = [
        r[-1] for r in openpyxl.load_workbook(io.BytesIO(resp.data)).active.iter_rows(min_row=2, values_only=True)
    ]
    page = clerk.get(loc).get_data(as_text=True)
    return {
        "agency1_download_status": resp.status_code,
        "batch_status_before": before.status.label,
        "batch_status_after": after.status.label,
        "batch_message_after": after.message,
        "failed_rows_reasons": reasons,
        "clerk1_still_has_业务办理": "业务办理" in page,
    }


def item_8_sqlite(web: Web) -> dict:
    from flask_admin.contrib.sqla import ModelView

    from models import LoginFailure, Org, Role, SmsSend, User, UserSession

    out = {}
    # an unknown value in every search-panel field of every list, on the list, its export, its bulk pages
    admin_views = [v for v in web.app.extensions["admin"][0]._views if isinstance(v, ModelView)]
    statuses = {"list": Counter(), "export": Counter(), "bulk": Counter()}
    roles = {
        name: web.scalar(sa.select(User.role).where(User.username == name)) for name in ("clerk1", "agency1", "admin")
    }
    clients = {name: web.client(name) for name in roles}
    for view in admin_views:
        name = next((n for n, r in roles.items() if r in view.roles), None)
        if name is None:
            continue
        c = clients[name]
        for field in view.panel_fields():
            q = f"{field.name}=NOPE"
            page = c.get(f"/admin/{view.endpoint}/?{q}")
            statuses["list"][page.status_code] += 1
            if 'data-kind="error"' not in page.get_data(as_text=True):
                continue  # a text that only finds nothing: no message, and exports/bulk pages take it too
            if roles[name] in view.export_roles:
                statuses["export"][c.get(f"/admin/{view.endpoint}/export/csv/?{q}").status_code] += 1
            for a in view.all_bulk_actions():
                if roles[name] in a.roles:
                    statuses["bulk"][c.get(f"/admin/{view.endpoint}/bulk/{a.name}/?{q}").status_code] += 1
    clerk = clients["clerk1"]
    out["enum_filter_NOPE"] = {
        "/admin/members/?flt1_0=NOPE": clerk.get("/admin/members/?flt1_0=NOPE").status_code,
        "/admin/members/export/csv/?flt1_0=NOPE": clerk.get("/admin/members/export/csv/?flt1_0=NOPE").status_code,
        "/admin/members/bulk/report/?status=NOPE": clerk.get("/admin/members/bulk/report/?status=NOPE").status_code,
        "every_list_field_statuses": {k: dict(v) for k, v in statuses.items()},
    }
    # ten 获取手机验证码 at the same moment (SQLite)
    from werkzeug.security import generate_password_hash

    from models import db

    with web.app.app_context():
        org_id = db.session.scalar(sa.select(Org.id).where(Org.code == "010101"))
        pw = generate_password_hash("Demo-2026")
        db.session.add_all(
            User(username=f"burst{k}", display_name=f"并发{k}", password_hash=pw, phone=f"+86139000001{k:02d}",
                 org_id=org_id, role=Role.UNIT_CLERK)
            for k in range(10)
        )  # fmt: skip
        db.session.commit()
    tokens = []
    for _k in range(10):
        c = web.app.test_client()
        tokens.append((c, web.csrf(c, "/login")))
    barrier, answers = threading.Barrier(10), [None] * 10

    def press(k):
        c, token = tokens[k]
        barrier.wait(timeout=30)
        try:
            resp = c.post(
                "/login/send-code",
                data={"username": f"burst{k}", "password": "Demo-2026", "csrf_token": token},
                environ_base={"REMOTE_ADDR": f"198.51.100.{100 + k}"},
            )
            answers[k] = resp.status_code
        except Exception as exc:  # a 500 in the test client raises only with PROPAGATE_EXCEPTIONS
            answers[k] = repr(exc)[:80]

    threads = [threading.Thread(target=press, args=(k,)) for k in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    out["ten_send_code_at_once_sqlite"] = dict(Counter(answers))
    with web.app.app_context():
        ids = sa.select(User.id).where(User.username.like("burst%"))
        db.session.execute(sa.delete(SmsSend).where(SmsSend.user_id.in_(ids)))
        db.session.execute(sa.delete(UserSession).where(UserSession.user_id.in_(ids)))
        db.session.execute(sa.delete(LoginFailure).where(LoginFailure.username.like("burst%")))
        db.session.execute(sa.delete(User).where(User.username.like("burst%")))
        db.session.commit()
    # the admin 单位 export
    admin = clients["admin"]
    unit_export = {}
    for fmt in ("xlsx", "csv"):
        resp = admin.get(f"/admin/orgs/export/{fmt}/")
        data = resp.get_data()
        rows = (
            openpyxl.load_workbook(io.BytesIO(data)).active.max_row - 1
            if fmt == "xlsx"
            else data.decode("utf-8-sig").count("\n") - 1
        )
        unit_export[fmt] = {"status": resp.status_code, "rows": rows}
    out["admin_unit_export"] = unit_export
    return out


def item_9_headers_and_files(web: Web, tmp: Path) -> dict:
    import urllib.request

    from werkzeug.serving import make_server

    import config
    from app import create_app
    from models import db

    out = {}
    clerk = web.client("clerk1")
    pages = {"/login": web.app.test_client(), "/admin/": clerk, "/admin/batches/template/members/": clerk}
    headers = {}
    for url, c in pages.items():
        h = c.get(url).headers
        csp = h.get("Content-Security-Policy", "")
        headers[url] = {
            "content_security_policy": re.sub(r"'nonce-[^']+'", "'nonce-…'", csp) or None,
            "x_frame_options": h.get("X-Frame-Options"),
            "x_content_type_options": h.get("X-Content-Type-Options"),
            "referrer_policy": h.get("Referrer-Policy"),
            "server": h.get("Server"),
        }
    out["headers"] = headers
    server = make_server("127.0.0.1", 0, web.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/healthz", timeout=10) as resp:
            out["development_server_banner"] = resp.headers.get("Server")
    finally:
        server.shutdown()
    out["gunicorn_banner"] = _gunicorn_banner(tmp)

    key_dir = tmp / "instance"
    key_dir.mkdir()
    config._secret_key_file(str(key_dir))
    new_key = stat.S_IMODE(os.stat(key_dir / "secret_key").st_mode)
    os.chmod(key_dir / "secret_key", 0o644)
    config._secret_key_file(str(key_dir))
    old_key = stat.S_IMODE(os.stat(key_dir / "secret_key").st_mode)

    storage = tmp / "crash" / "storage"
    (storage / "results").mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftovers = [
        storage / "results" / f"7_result.xlsx.{dead.pid}.1234.tmp.part",
        storage / "results" / f"7_result.xlsx.{dead.pid}.1234.tmp",
        storage / "results" / "export.xlsx.part",
    ]
    for p in leftovers:
        p.write_bytes(b"half")
    os.utime(leftovers[2], (time.time() - 3600,) * 2)
    fresh_db = tmp / "crash" / "fresh.db"
    fresh = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{fresh_db}",
            "SECRET_KEY": "bench",
            "SMS_BACKEND": "memory",
            "STORAGE_DIR": str(storage),
        }
    )
    with fresh.app_context():
        db.create_all()
        modes = {
            suffix or "db": oct(stat.S_IMODE(os.stat(f"{fresh_db}{suffix}").st_mode))
            for suffix in ("", "-wal", "-shm")
            if Path(f"{fresh_db}{suffix}").exists()
        }
        db.engine.dispose()
    out["files"] = {
        "secret_key_new": oct(new_key),
        "secret_key_found_0644_after_start": oct(old_key),
        "sqlite_files": modes,
        "crash_leftovers_removed_at_start": f"{sum(not p.exists() for p in leftovers)}/{len(leftovers)}",
    }
    return out


def _gunicorn_banner(tmp: Path):
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ, DATABASE_URL=f"sqlite:///{tmp / 'g.db'}", SECRET_KEY="bench", STORAGE_DIR=str(tmp / "g-storage")
    )
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "--workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                    return resp.headers.get("Server")
            except OSError:
                if time.monotonic() > deadline:
                    return "no answer in 60 s"
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def item_10_audit(web: Web) -> dict:
    import views.base
    from models import AuditLog, Member, MemberStatus, Org, Product, User, db

    audits = sa.select(sa.func.count()).select_from(AuditLog)
    admin = web.client("admin")
    clerk = web.client("clerk1")
    out = {}

    def refuse(*args, **kwargs):
        raise RuntimeError("audit_log is full")

    real = views.base.write_audit
    views.base.write_audit = refuse
    web.app.config["PROPAGATE_EXCEPTIONS"] = False  # the failed audit write: the user's 500 page
    try:
        n = web.scalar(audits)
        pk, form = web.user_form("clerk3", display_name="陈静静", csrf_token=web.csrf(admin))
        edit = admin.post(f"/admin/users/edit/?id={pk}", data=form)
        product = admin.post(
            "/admin/products/new/",
            data={"csrf_token": web.csrf(admin), "code": "P08", "name": "职工健康互助保障", "price": "40.00",
                  "max_shares": "3", "term_months": "12", "gender_restriction": "", "active": "y"},
        )  # fmt: skip
        member_id = web.scalar(
            sa.select(Member.id)
            .join(Org)
            .where(Member.status == MemberStatus.NEW, Org.code == "010101")
            .order_by(Member.id)
            .limit(1)
        )
        delete = clerk.post("/admin/members/delete/", data={"csrf_token": web.csrf(clerk), "id": member_id})
        out["audit_insert_fails"] = {
            "edit": {
                "status": edit.status_code,
                "display_name_after": web.scalar(sa.select(User.display_name).where(User.id == pk)),
            },
            "create": {
                "status": product.status_code,
                "rows_created": web.scalar(sa.select(sa.func.count()).where(Product.code == "P08")),
            },
            "delete": {
                "status": delete.status_code,
                "rows_deleted": 1 - web.scalar(sa.select(sa.func.count()).where(Member.id == member_id)),
            },
            "audit_rows_written": web.scalar(audits) - n,
        }
    finally:
        views.base.write_audit = real
        web.app.config["PROPAGATE_EXCEPTIONS"] = None

    # the audit row commits with the change: statements numbered by the transaction they ran in
    with web.app.app_context():
        engine = db.engine
    seen, txn = [], [0]

    def on_statement(conn, cursor, statement, parameters, context, executemany):
        words = statement.replace('"', "").split()
        if len(words) > 2:
            table = words[2] if words[0].upper() in ("INSERT", "DELETE") else words[1]
            seen.append((txn[0], words[0].upper(), table.lower()))

    def on_commit(conn):
        txn[0] += 1

    sa.event.listen(engine, "before_cursor_execute", on_statement)
    sa.event.listen(engine, "commit", on_commit)
    try:
        pk, form = web.user_form("clerk3", display_name="陈静静", csrf_token=web.csrf(admin))
        seen.clear()
        admin.post(f"/admin/users/edit/?id={pk}", data=form)
        edit_seen = list(seen)
        csrf = web.csrf(clerk)
        seen.clear()
        clerk.post("/admin/members/delete/", data={"csrf_token": csrf, "id": member_id})
        delete_seen = list(seen)
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_statement)
        sa.event.remove(engine, "commit", on_commit)

    def same_txn(statements, verb: str, table: str) -> bool:
        """The change and its audit row were sent in one transaction (committed together)."""
        changed = {t for t, v, name in statements if (v, name) == (verb, table)}
        audited = {t for t, v, name in statements if (v, name) == ("INSERT", "audit_log")}
        return len(changed) == 1 and changed == audited

    with web.app.app_context():
        last = lambda action, entity, i: db.session.scalar(  # noqa: E731
            sa.select(AuditLog)
            .where(AuditLog.action == action, AuditLog.entity == entity, AuditLog.entity_id == i)
            .order_by(AuditLog.id.desc())
            .limit(1)
        )
        edit_row, delete_row = last("update", "user", pk), last("delete", "member", member_id)
        out["edit"] = {
            "same_transaction": same_txn(edit_seen, "UPDATE", "user"),
            "before": edit_row.before if edit_row else None,
            "after_display_name": (edit_row.after or {}).get("display_name") if edit_row else None,
        }
        out["delete"] = {
            "same_transaction": same_txn(delete_seen, "DELETE", "member"),
            "before_fields": len(delete_row.before or {}) if delete_row else 0,
            "before": {k: (delete_row.before or {}).get(k) for k in ("member_no", "name", "status")}
            if delete_row
            else None,
        }
    return out


# --- PostgreSQL: item 3, and the races of item 8 ------------------------------------------------------


def postgres_items(tmp: Path) -> dict:
    with bench_database("hostile") as url:
        app = make_app(url, tmp / "pg-storage")
        from actions.receipts import create_receipt
        from models import db
        from models.demo import load_demo_data

        with app.app_context():
            db.create_all()
            load_demo_data(issue_receipt=create_receipt)
            db.session.remove()
        try:
            return {"item_3": _two_batches_at_once(app), "item_8_process_posted_twice": _one_batch_twice(app)}
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def _members(app, names: list[str], start: int) -> list[dict]:
    from models import Gender, Member, MemberStatus, Org, db
    from models.member import member_numbers

    with app.app_context():
        org = db.session.scalar(sa.select(Org).where(Org.code == "010101"))
        ids = valid_ids(len(names), start)
        members = [
            Member(member_no=no, id_number=i, name=n, gender=Gender.MALE if int(i[16]) % 2 else Gender.FEMALE,
                   birth_date=date(int(i[6:10]), int(i[10:12]), int(i[12:14])), org=org,
                   status=MemberStatus.CONFIRMED, admitted_on=date.today() - timedelta(days=400))
            for no, i, n in zip(member_numbers(len(names)), ids, names)
        ]  # fmt: skip
        db.session.add_all(members)
        db.session.commit()
        return [{"id": m.id, "name": m.name, "id_number": m.id_number} for m in members]


def _policies_file(members) -> bytes:
    return members_xlsx(
        [(m["name"], m["id_number"], 1, 50) for m in members], header=("姓名", "身份证号", "份数", "投保金额")
    )


def _in_threads(app, *jobs):
    from batch import BatchFileError
    from models import User, db

    barrier = threading.Barrier(len(jobs))
    outcomes = [None] * len(jobs)

    def run(i, job):
        try:
            with app.app_context():
                user = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
                barrier.wait(timeout=30)
                outcomes[i] = job(user)
        except BatchFileError as exc:
            outcomes[i] = ("refused", str(exc))
        except Exception as exc:
            outcomes[i] = ("error", repr(exc)[:200])

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return outcomes


def _two_batches_at_once(app) -> dict:
    """The same 投保 file as two batches, both checked, 业务办理 of both at the same moment: once as
    it comes, once with each held until both have passed their re-check (the interleaving the issue
    found)."""
    import batch.policies as policies_kind
    from batch import check_batch, create_batch, process_batch
    from models import ImportBatch, ImportRow, Policy, User, db
    from rules.products import add_months

    eff = add_months(date.today().replace(day=1), 1)
    out = {}
    for run, held in (("as_it_comes", False), ("both_past_their_recheck_first", True)):
        stems = "甲乙丙丁戊己庚辛壬癸"
        members = _members(app, [f"测竞争{run[0]}{stems[k]}" for k in range(10)], start=1000 + 20 * held)
        with app.app_context():
            user = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
            params = {"product": "P01", "effective": eff.isoformat()}
            batches = [create_batch("policies", _policies_file(members), f"投保{k}.xlsx", user, params) for k in (1, 2)]
            ids = [b.id for b in batches]
            checked = [check_batch(b, user).ok_count for b in batches]
        real = policies_kind.create_policies
        if held:
            policies_kind.create_policies = _held_until_both_checked(real)

        def process(batch_id):
            return lambda clerk: process_batch(db.session.get(ImportBatch, batch_id), clerk).created

        try:
            outcomes = _in_threads(app, process(ids[0]), process(ids[1]))
        finally:
            policies_kind.create_policies = real
        with app.app_context():
            per_member = db.session.execute(
                sa.select(sa.func.count())
                .select_from(Policy)
                .where(Policy.member_id.in_([m["id"] for m in members]))
                .group_by(Policy.member_id)
            ).scalars()
            codes = {
                b: dict(
                    Counter(
                        str(c) for c in db.session.scalars(sa.select(ImportRow.code).where(ImportRow.batch_id == b))
                    )
                )
                for b in ids
            }
            messages = db.session.scalars(
                sa.select(ImportRow.message).where(ImportRow.batch_id.in_(ids), ImportRow.code.is_not(None)).limit(1)
            ).all()
            out[run] = {
                "checked_ok_rows": checked,
                "created_per_batch": outcomes,
                "members_with_two_policies": sum(1 for n in per_member if n > 1),
                "row_codes_per_batch": list(codes.values()),
                "loser_message": messages[0] if messages else None,
            }
    return out


def _held_until_both_checked(write):
    """The policy write of each of two threads, held until both have reached it (both re-checks
    passed, nothing written yet)."""
    both, waited = threading.Barrier(2), threading.local()

    def held(*args, **kwargs):
        if not getattr(waited, "done", False):
            waited.done = True
            try:
                both.wait(timeout=10)
            except threading.BrokenBarrierError:  # the other one did not come this way
                pass
        return write(*args, **kwargs)

    return held


def _one_batch_twice(app) -> dict:
    """业务办理 of one checked batch posted twice at the same moment, through the web."""
    from models import Policy, db
    from rules.products import add_months

    members = _members(app, [f"测重复{s}" for s in "甲乙丙丁戊"], start=1100)

    eff = add_months(date.today().replace(day=1), 1)
    web = Web(app)
    clients = [web.client("clerk1") for _ in range(2)]
    c = clients[0]
    up = c.post(
        "/admin/batches/upload/policies/",
        data={"csrf_token": web.csrf(c, "/admin/batches/upload/policies/"), "file": (io.BytesIO(_policies_file(members)),
              "投保.xlsx"), "product": "P01", "effective": eff.isoformat(), "use_template_amount": "y"},
        content_type="multipart/form-data",
    )  # fmt: skip
    loc = up.headers["Location"]
    c.post(f"{loc}check/", data={"csrf_token": web.csrf(c, loc)})
    tokens = [web.csrf(x, loc) for x in clients]
    barrier, answers = threading.Barrier(2), [None, None]

    def press(k):
        barrier.wait(timeout=30)
        resp = clients[k].post(f"{loc}process/", data={"csrf_token": tokens[k]})
        html = resp.get_data(as_text=True)
        answers[k] = {
            "status": resp.status_code,
            "error": _text(html, r'class="alert[^"]*alert-danger[^"]*"[^>]*>(.*?)</div>'),
        }

    app.config["PROPAGATE_EXCEPTIONS"] = False
    threads = [threading.Thread(target=press, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    with app.app_context():
        n = db.session.scalar(
            sa.select(sa.func.count()).select_from(Policy).where(Policy.member_id.in_([m["id"] for m in members]))
        )
    return {"answers": answers, "policies_created_for_5_rows": n}


def main() -> None:
    started = time.monotonic()
    result = {"bench": "hostile", "issue": 15}
    with tempfile.TemporaryDirectory(prefix="huzhu-hostile.") as tmpdir:
        tmp = Path(tmpdir)
        import config
        from actions.receipts import create_receipt
        from app import create_app
        from models import db
        from models.demo import load_demo_data

        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'app.db'}",
                "SECRET_KEY": "bench",
                "SMS_BACKEND": "memory",
                "STORAGE_DIR": str(tmp / "storage"),
            }
        )
        config.log_to_stderr()  # stdout is the one JSON line

        def demo_data():
            with app.app_context():
                db.create_all()
                load_demo_data(issue_receipt=create_receipt)
                db.session.remove()
                db.engine.dispose()

        made = in_child(demo_data, tmp)  # loaded by a child: this process stays as lean as a fresh worker
        assert made["exit"] == 0, made["stderr"]
        log("demo database ready")
        files = file_attacks(app, tmp)
        result["item_1"] = {k: v for k, v in files.items() if k.startswith(("cell_", "baseline"))}
        result["item_2"] = {k: v for k, v in files.items() if "bomb" in k}
        web = Web(app)
        result["item_4"] = item_4_sessions(web)
        result["item_5"] = item_5_user_admin(web)
        result["item_6"] = item_6_lockout(web)
        result["item_7"] = item_7_get_never_writes(web)
        log("items 4-7 done")
        result["item_8"] = item_8_sqlite(web)
        result["item_8"]["csv_cell_200000_chars"] = files["csv_cell_200000_chars.csv"]
        log("item 8 (SQLite) done")
        result["item_9"] = item_9_headers_and_files(web, tmp)
        result["item_10"] = item_10_audit(web)
        log("items 9-10 done")
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        pg = postgres_items(tmp)
        result["item_3"] = pg["item_3"]
        result["item_8"]["process_posted_twice_at_once_postgresql"] = pg["item_8_process_posted_twice"]
    result["seconds"] = round(time.monotonic() - started, 1)
    order = ["bench", "issue"] + [f"item_{k}" for k in range(1, 11)] + ["seconds"]
    print(json.dumps({k: result[k] for k in order}, ensure_ascii=False, default=str), flush=True)


if __name__ == "__main__":
    main()

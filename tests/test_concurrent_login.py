"""Ten clerks pressing 获取手机验证码 at the same moment (issue 15, item 8): each gets an answer in
words, none a 500.  Was, on SQLite: "database is locked" (a transaction that read first could not
wait for the write lock, whatever busy_timeout said).  WAL and the busy timeout are in effect on
every connection, and a login's writing transaction begins as the writer it will be."""

from __future__ import annotations

import re
import threading

import pytest
import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from models import LoginFailure, Org, Role, SmsSend, User, UserSession, db

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
N = 10


@pytest.mark.committed
def test_ten_simultaneous_code_requests_each_get_an_answer_not_an_error(app):
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            with db.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
        org = db.session.scalar(sa.select(Org).where(Org.code == "010101"))
        pw = generate_password_hash("Demo-2026")
        users = [
            User(
                username=f"burst{k}",
                display_name=f"并发{k}",
                password_hash=pw,
                phone=f"+86139000001{k:02d}",
                org_id=org.id,
                role=Role.UNIT_CLERK,
            )
            for k in range(N)
        ]
        db.session.add_all(users)
        db.session.commit()
        ids = [u.id for u in users]
    barrier = threading.Barrier(N)
    answers, errors = [None] * N, []

    def press(k):
        try:
            client = app.test_client()
            token = CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)
            barrier.wait(timeout=30)
            resp = client.post(
                "/login/send-code",
                data={"username": f"burst{k}", "password": "Demo-2026", "csrf_token": token},
                environ_base={"REMOTE_ADDR": f"198.51.100.{100 + k}"},
            )
            answers[k] = (resp.status_code, resp.get_json())
        except Exception as exc:  # pragma: no cover - shown by the assertion
            errors.append(exc)

    try:
        threads = [threading.Thread(target=press, args=(k,)) for k in range(N)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        assert [a[0] for a in answers] == [200] * N, answers
        assert all(a[1]["ok"] and "验证码已发送" in a[1]["message"] for a in answers)
        with app.app_context():
            assert db.session.scalar(sa.select(sa.func.count()).where(SmsSend.user_id.in_(ids))) == N
    finally:
        with app.app_context():
            db.session.execute(sa.delete(SmsSend).where(SmsSend.user_id.in_(ids)))
            db.session.execute(sa.delete(UserSession).where(UserSession.user_id.is_(None)))
            db.session.execute(sa.delete(LoginFailure).where(LoginFailure.username.like("burst%")))
            db.session.execute(sa.delete(User).where(User.id.in_(ids)))
            db.session.commit()

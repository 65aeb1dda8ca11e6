"""Fixtures: one app and one demo database per run; every test runs inside a transaction that is
rolled back afterwards (the app's own commits become savepoints), so tests see the demo data of
DESIGN.md §10 fresh each time.  TEST_DATABASE_URL selects PostgreSQL; empty means SQLite."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from config import database_url  # noqa: E402
from models import User, db  # noqa: E402
from models.demo import load_demo_data  # noqa: E402

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def test_database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return _pg(url)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


def _pg(url: str) -> str:
    return database_url(url)


@pytest.fixture(scope="session")
def db_url(tmp_path_factory):
    return test_database_url(tmp_path_factory)


@pytest.fixture(scope="session")
def app(db_url, tmp_path_factory):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": db_url,
            "SECRET_KEY": "test-secret",
            "SMS_BACKEND": "memory",
            "STORAGE_DIR": str(tmp_path_factory.mktemp("uploads")),
        }
    )
    with app.app_context():
        if db.engine.dialect.name == "postgresql":  # whatever an older schema left, start clean
            with db.engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        else:
            db.drop_all()
        db.create_all()
        from actions.receipts import create_receipt

        load_demo_data(issue_receipt=create_receipt)  # as `flask demo-data` loads it
        db.session.remove()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


_orig_get_bind = None


@pytest.fixture(autouse=True)
def _rollback_after_test(request, app):
    """Wrap the test in a transaction; the app's commits become savepoints inside it."""
    if request.node.get_closest_marker("committed"):
        yield
        return
    from flask_sqlalchemy.session import Session

    global _orig_get_bind
    if _orig_get_bind is None:
        _orig_get_bind = Session.get_bind
    # the app context is pushed only to set up and tear down: each request of the test client
    # gets its own context (its own `g` and session), as in production
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        Session.get_bind = lambda self, *a, **k: connection
        db.session.remove()
        db.session.configure(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield
    finally:
        with app.app_context():
            db.session.remove()
            db.session.configure(bind=None, join_transaction_mode="conditional_savepoint")
        Session.get_bind = _orig_get_bind
        outer.rollback()
        connection.close()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def sms(app):
    backend = app.extensions["sms"]
    backend.outbox.clear()
    return backend


def user_id(app, username: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(User.id).where(User.username == username))


def login_as(app, client, username: str):
    """Log in without the SMS round trip (the login flow itself is tested in test_login.py): a new
    server-side session of that user (models/session.py), its random token in the client's cookie."""
    with app.app_context():
        uid = db.session.scalar(sa.select(User.id).where(User.username == username))
    with client.session_transaction() as s:
        s.clear()
        s["uid"] = uid
    return client


def csrf_token(client, url: str = "/admin/") -> str:
    """The CSRF token of the client's session, read from a page as a browser would."""
    page = client.get(url)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no csrf_token on {url}"
    return match.group(1)


@pytest.fixture
def as_user(app, client):
    def _as(username):
        login_as(app, client, username)
        return client

    return _as

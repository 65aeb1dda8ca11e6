"""Server-side sessions: the cookie carries only an opaque random token; what the session holds
(who is logged in, the CSRF token, flash messages, a step-up code's hash) lives in the database,
so that every worker process agrees and logout, a password reset or 停用 ends every session of
that user at once (`end_sessions`).

The database keeps the SHA-256 of the token, not the token: reading the table gives nobody a
cookie.  A session expires 8 hours after login whatever happens (PERMANENT_SESSION_LIFETIME); a
visitor's session before login lives 2 hours.  A login starts a new session (new token), so a
token planted before login is worthless after it.
"""

from __future__ import annotations

import hashlib
import secrets
from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from .base import db, utcnow

ANONYMOUS_LIFETIME = timedelta(hours=2)
_serializer = TaggedJSONSerializer()  # what Flask's own cookie session uses: tuples, Markup, dates


class UserSession(db.Model):
    __tablename__ = "user_session"

    id = sa.Column(sa.String(64), primary_key=True)  # SHA-256 (hex) of the cookie's token
    user_id = sa.Column(sa.Integer, sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    data = sa.Column(sa.Text, nullable=False, default="")
    created_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)
    expires_at = sa.Column(sa.DateTime, nullable=False, index=True)


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ServerSession(CallbackDict, SessionMixin):
    """The request's session: a dict whose changes are saved to its row at the end of the request."""

    def __init__(self, initial=None, token: str | None = None, user_id: int | None = None, expires_at=None):
        def on_update(self):
            self.modified = True

        super().__init__(initial, on_update)
        self.token = token
        self.user_id = user_id  # as stored: a change of "uid" in the data is a login or a logout
        self.expires_at = expires_at
        self.renew = token is None
        self.modified = False

    def regenerate(self) -> None:
        """A new token at the next save (on login): the old one, if any, stops working."""
        self.renew = True
        self.modified = True


class DatabaseSessionInterface(SessionInterface):
    session_class = ServerSession

    def open_session(self, app, request):
        token = request.cookies.get(self.get_cookie_name(app))
        if not token or len(token) > 100:
            return ServerSession()
        row = db.session.execute(
            sa.select(UserSession.data, UserSession.user_id, UserSession.expires_at).where(
                UserSession.id == _key(token), UserSession.expires_at > utcnow()
            )
        ).first()
        db.session.rollback()  # nothing is held open between here and the view's own work
        if row is None:
            return ServerSession()
        try:
            data = _serializer.loads(row.data) if row.data else {}
        except ValueError:
            data = {}
        return ServerSession(data, token=token, user_id=row.user_id, expires_at=row.expires_at)

    def save_session(self, app, session: ServerSession, response):
        """Written after the view has committed what it meant to (what it left pending is rolled
        back, not saved with the session).  A streamed response (an export) still reads through
        the request's session after this runs: its session is written through a session, and a
        connection, of its own."""
        name = self.get_cookie_name(app)
        domain, path = self.get_cookie_domain(app), self.get_cookie_path(app)
        if not session:
            if session.token is not None:  # emptied (logout): the row goes, the cookie too
                with _writer(response) as s:
                    s.execute(sa.delete(UserSession).where(UserSession.id == _key(session.token)))
                    s.commit()
                response.delete_cookie(name, domain=domain, path=path)
            return
        if not session.modified and not session.renew:
            return
        now = utcnow()
        uid = session.get("uid")
        with _writer(response) as s:
            if session.renew or uid != session.user_id or session.expires_at is None:
                if session.token is not None:
                    s.execute(sa.delete(UserSession).where(UserSession.id == _key(session.token)))
                session.token = secrets.token_urlsafe(32)
                lifetime = app.permanent_session_lifetime if uid is not None else ANONYMOUS_LIFETIME
                session.expires_at = now + lifetime
                s.execute(sa.delete(UserSession).where(UserSession.expires_at <= now))  # the expired ones go
                s.add(
                    UserSession(
                        id=_key(session.token),
                        user_id=uid,
                        data=_serializer.dumps(dict(session)),
                        created_at=now,
                        expires_at=session.expires_at,
                    )
                )
                s.commit()
                session.renew = False
            else:
                done = s.execute(
                    sa.update(UserSession)
                    .where(UserSession.id == _key(session.token), UserSession.expires_at > now)
                    .values(data=_serializer.dumps(dict(session)))
                ).rowcount
                s.commit()
                if not done:  # ended meanwhile (logout elsewhere, password reset): stays ended
                    response.delete_cookie(name, domain=domain, path=path)
                    return
        response.set_cookie(
            name,
            session.token,
            expires=session.expires_at,
            httponly=self.get_cookie_httponly(app),
            domain=domain,
            path=path,
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
        )


@contextmanager
def _writer(response):
    if response.is_streamed:
        with db.session.session_factory() as s:
            yield s
    else:
        db.session.rollback()
        yield db.session


def end_sessions(user_id: int, keep: str | None = None) -> int:
    """End every session of the user (logout everywhere, password reset, 停用), in the caller's
    transaction; `keep` is a token to spare (the user's own, when they change their own password)."""
    stmt = sa.delete(UserSession).where(UserSession.user_id == user_id)
    if keep:
        stmt = stmt.where(UserSession.id != _key(keep))
    return db.session.execute(stmt).rowcount

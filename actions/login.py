"""Login (DESIGN.md §7): username + password, 获取手机验证码, then the code; the throttle of wrong
passwords; the step-up code a manager types before changing a user's phone or password.  The
screens (views/auth.py, views/system.py) only call these.

All state is in the database (the code's hash, its age and tries, the lock-out after wrong codes,
the send log, the wrong passwords by address) or in the server-side session (a step-up code), so
any number of worker processes agree.

Wrong passwords are throttled by address and by (username, address), with delays that grow with
each further failure: a stranger guessing clerk1's password from elsewhere slows down himself,
never clerk1 at her own desk.  An account is locked only by wrong SMS codes, which take the right
password first.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from functools import cache

import sqlalchemy as sa
from flask import current_app, request, session
from werkzeug.security import check_password_hash, generate_password_hash

from models import LoginFailure, SmsSend, User, db, utcnow
from models.base import begin_write
from models.sms import sms_budget_exhausted
from rules.phone import MAINLAND_MOBILE

CODE_TTL = timedelta(minutes=5)
CODE_MAX_TRIES = 5
SEND_INTERVAL = timedelta(seconds=60)
SENDS_PER_HOUR = 10
LOCK_AFTER_FAILURES = 5  # wrong SMS codes in a row (the password was right)
LOCK_DURATION = timedelta(minutes=30)
THROTTLE_WINDOW = timedelta(hours=1)
FREE_TRIES_PER_USER_ADDRESS = 3  # wrong passwords for one username from one address, then delays
FREE_TRIES_PER_ADDRESS = 20  # wrong passwords from one address, whatever the username, then delays
MAX_DELAY = timedelta(minutes=15)
STEPUP_TTL = timedelta(minutes=5)

GENERIC_FAILURE = "登录失败：用户名、密码或验证码不正确，或账户已被锁定。请核对后重试，多次失败请联系系统管理员。"
MSG_THROTTLED = "密码错误次数较多，为保护账户，请于 {wait} 后再试。如忘记密码，请联系系统管理员重置。"
MSG_SENT = "验证码已发送至 {phone}，5分钟内有效。"
MSG_TOO_SOON = "验证码已发送，请于60秒后再重新获取。"
MSG_TOO_MANY = "获取验证码过于频繁，请1小时后再试。"
MSG_BAD_PHONE = "该账户登记的手机号码不是大陆手机号，无法接收验证码，请联系系统管理员。"
MSG_BUDGET = "今日短信发送量已达上限，暂时无法获取验证码，请联系系统管理员。"
MSG_SMS_FAILED = "短信发送失败，请稍后重试。"
MSG_STEPUP_SENT = "验证码已发送至您本人的手机 {phone}，5分钟内有效。"


def client_ip() -> str:
    return request.remote_addr or ""


def _code_hash(code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def _username(value) -> str:
    return (value or "").strip()[:50]


def _find_user(username: str):
    if not username:
        return None
    stmt = sa.select(User).where(User.username == username)
    if db.engine.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return db.session.execute(stmt).scalar_one_or_none()


@cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_hex(16))


def _refuse_unknown(password: str) -> None:
    """An unknown, disabled or locked user costs the same password check as a known one, so the
    time of the answer does not tell which user names exist."""
    check_password_hash(_dummy_hash(), password or "")


def _is_locked(user, now) -> bool:
    return user.locked_until is not None and user.locked_until > now


# --- the throttle of wrong passwords ---------------------------------------------------------------------


def _delay(failures: int, free: int) -> timedelta:
    """No wait for the first `free` failures, then 1 s, 2 s, 4 s, … up to MAX_DELAY."""
    if failures < free:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - free, 20)), MAX_DELAY)


def throttle_wait(username: str, ip: str, now) -> timedelta:
    """How long this address must wait before trying a password for `username` again."""
    since = now - THROTTLE_WINDOW
    q = sa.select(sa.func.count(), sa.func.max(LoginFailure.failed_at)).where(
        LoginFailure.ip == ip, LoginFailure.failed_at > since
    )
    n_ip, last_ip = db.session.execute(q).one()
    n_user, last_user = db.session.execute(q.where(LoginFailure.username == username)).one()
    ready = now
    if n_user:
        ready = max(ready, last_user + _delay(n_user, FREE_TRIES_PER_USER_ADDRESS))
    if n_ip:
        ready = max(ready, last_ip + _delay(n_ip, FREE_TRIES_PER_ADDRESS))
    return ready - now


def _throttled_message(wait: timedelta) -> str:
    seconds = max(int(wait.total_seconds() + 0.999), 1)
    text = f"{seconds} 秒" if seconds < 120 else f"{(seconds + 59) // 60} 分钟"
    return MSG_THROTTLED.format(wait=text)


def _record_failure(username: str, ip: str, now) -> None:
    db.session.add(LoginFailure(username=username, ip=ip, failed_at=now))
    db.session.commit()


def _clear_failures(username: str, ip: str) -> None:
    db.session.execute(sa.delete(LoginFailure).where(LoginFailure.username == username, LoginFailure.ip == ip))


def _check_password(username: str, password: str, ip: str, now) -> tuple[User | None, str | None]:
    """The user whose right password this is, or (None, the message to show).  Writes: a failure."""
    wait = throttle_wait(username, ip, now)
    if wait > timedelta(0):
        db.session.rollback()
        return None, _throttled_message(wait)
    user = _find_user(username)
    if user is None or not user.active or _is_locked(user, now):
        db.session.rollback()  # first: release the row lock before spending the time
        _refuse_unknown(password)
        _record_failure(username, ip, now)
        return None, GENERIC_FAILURE
    if not user.check_password(password or ""):
        _record_failure(username, ip, now)
        return None, GENERIC_FAILURE
    return user, None


def _wrong_code(user, now) -> None:
    """A wrong SMS code after the right password: the fifth in a row locks the account."""
    user.login_code_tries = (user.login_code_tries or 0) + 1
    user.failed_attempts = (user.failed_attempts or 0) + 1
    if user.failed_attempts >= LOCK_AFTER_FAILURES:
        user.locked_until = now + LOCK_DURATION
        user.login_code_hash = None
    db.session.commit()


# --- SMS --------------------------------------------------------------------------------------------------


def _may_send(user, ip: str, now) -> str | None:
    """Why no code may be sent to the user now (None: it may)."""
    if not MAINLAND_MOBILE.match(user.phone or ""):
        return MSG_BAD_PHONE
    hour_ago = now - timedelta(hours=1)
    count = sa.select(sa.func.count()).select_from(SmsSend)
    if db.session.scalar(count.where(SmsSend.user_id == user.id, SmsSend.sent_at >= hour_ago)) >= SENDS_PER_HOUR:
        return MSG_TOO_MANY
    if (
        db.session.scalar(count.where(SmsSend.ip == ip, SmsSend.sent_at >= hour_ago))
        >= current_app.config["SMS_PER_IP_HOURLY"]
    ):
        return MSG_TOO_MANY
    if sms_budget_exhausted(now):
        current_app.logger.warning("SMS daily budget exhausted; refusing to send to %s", user.username)
        return MSG_BUDGET
    return None


def _deliver(user, code: str) -> bool:
    try:
        current_app.extensions["sms"].send(user.phone, user.username, code)
    except Exception:  # the backend's own error: log it, tell the user in their words
        current_app.logger.exception("SMS backend failed for %s", user.username)
        return False
    return True


def send_code(username: str, password: str, ip: str) -> tuple[bool, str]:
    """获取手机验证码: check the password and text a fresh code to the user's phone."""
    begin_write()  # SQLite: wait for another login's write instead of failing with "database is locked"
    now = utcnow()
    username = _username(username)
    user, refusal = _check_password(username, password, ip, now)
    if user is None:
        return False, refusal
    if user.login_code_sent_at and now - user.login_code_sent_at < SEND_INTERVAL:
        db.session.rollback()
        return False, MSG_TOO_SOON
    refusal = _may_send(user, ip, now)
    if refusal:
        db.session.rollback()
        return False, refusal
    code = f"{secrets.randbelow(10**6):06d}"
    user.login_code_hash = _code_hash(code)
    user.login_code_sent_at = now
    user.login_code_tries = 0
    db.session.add(SmsSend(user_id=user.id, phone=user.phone, ip=ip, sent_at=now))
    db.session.commit()
    if not _deliver(user, code):
        # no code reached the phone: forget it, so a retry is not told "已发送，请于60秒后…"
        # (the send log keeps the attempt, which still counts against the hourly and daily limits)
        user.login_code_hash = None
        user.login_code_sent_at = None
        db.session.commit()
        return False, MSG_SMS_FAILED
    return True, MSG_SENT.format(phone=user.masked_phone)


def verify_login(username: str, password: str, code: str, ip: str) -> tuple[User | None, str | None]:
    """(the user, None) when password and code are right and the account is not locked; else
    (None, the message to show)."""
    begin_write()
    now = utcnow()
    username = _username(username)
    user, refusal = _check_password(username, password, ip, now)
    if user is None:
        return None, refusal
    code = (code or "").strip()
    fresh = (
        user.login_code_hash is not None
        and user.login_code_sent_at is not None
        and now - user.login_code_sent_at <= CODE_TTL
        and (user.login_code_tries or 0) < CODE_MAX_TRIES
    )
    if not fresh or not hmac.compare_digest(user.login_code_hash, _code_hash(code)):
        _wrong_code(user, now)
        return None, GENERIC_FAILURE
    user.login_code_hash = None  # one use only
    user.failed_attempts = 0
    user.locked_until = None
    user.last_login_at = now
    _clear_failures(username, ip)
    db.session.commit()
    return user, None


# --- the step-up code: the manager's own phone confirms a change of someone's phone or password ---------


def send_stepup_code(user, ip: str) -> tuple[bool, str]:
    """A code to the acting user's own phone, kept (hashed) in their server-side session."""
    begin_write()
    now = utcnow()
    stepup = session.get("stepup") or {}
    if stepup.get("sent_at") and now - _parse(stepup["sent_at"]) < SEND_INTERVAL:
        db.session.rollback()
        return False, MSG_TOO_SOON
    user = db.session.get(User, user.id)
    refusal = _may_send(user, ip, now)
    if refusal:
        db.session.rollback()
        return False, refusal
    code = f"{secrets.randbelow(10**6):06d}"
    db.session.add(SmsSend(user_id=user.id, phone=user.phone, ip=ip, sent_at=now))
    db.session.commit()
    if not _deliver(user, code):
        return False, MSG_SMS_FAILED
    session["stepup"] = {"hash": _code_hash(code), "sent_at": now.isoformat(), "tries": 0}
    return True, MSG_STEPUP_SENT.format(phone=user.masked_phone)


def use_stepup_code(code: str) -> bool:
    """True (once) when `code` is the step-up code sent within the last 5 minutes; five wrong
    tries spend it."""
    stepup = session.get("stepup")
    if not stepup:
        return False
    fresh = utcnow() - _parse(stepup["sent_at"]) <= STEPUP_TTL and stepup.get("tries", 0) < CODE_MAX_TRIES
    if fresh and hmac.compare_digest(stepup["hash"], _code_hash((code or "").strip())):
        session.pop("stepup")
        return True
    session["stepup"] = dict(stepup, tries=stepup.get("tries", 0) + 1)
    return False


def _parse(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)

"""Login: username + password, 获取手机验证码, then the code (DESIGN.md §7).

All login state (the code's hash, its age, tries, failed attempts, lock-out, the send log) is in
the database, so any number of worker processes agree.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from functools import cache

import sqlalchemy as sa
from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from models import SmsSend, User, db, utcnow
from models.sms import sms_budget_exhausted
from rules.phone import MAINLAND_MOBILE

bp = Blueprint("auth", __name__)

CODE_TTL = timedelta(minutes=5)
CODE_MAX_TRIES = 5
SEND_INTERVAL = timedelta(seconds=60)
SENDS_PER_HOUR = 10
LOCK_AFTER_FAILURES = 5
LOCK_DURATION = timedelta(minutes=30)

GENERIC_FAILURE = "登录失败：用户名、密码或验证码不正确，或账户已被锁定。请核对后重试，多次失败请联系系统管理员。"
MSG_SENT = "验证码已发送至 {phone}，5分钟内有效。"
MSG_TOO_SOON = "验证码已发送，请于60秒后再重新获取。"
MSG_TOO_MANY = "获取验证码过于频繁，请1小时后再试。"
MSG_BAD_PHONE = "该账户登记的手机号码不是大陆手机号，无法接收验证码，请联系系统管理员。"
MSG_BUDGET = "今日短信发送量已达上限，暂时无法获取验证码，请联系系统管理员。"
MSG_SMS_FAILED = "短信发送失败，请稍后重试。"


def _code_hash(code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def _client_ip() -> str:
    return request.remote_addr or ""


def _find_user(username: str):
    username = (username or "").strip()
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
    db.session.rollback()  # first: release the row lock before spending the time
    check_password_hash(_dummy_hash(), password or "")


def _safe_next(target: str) -> str:
    """A path on this site to go to after login; anything else (another site, "//host",
    "/\\host", control characters browsers strip) goes to 首页."""
    target = target or ""
    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    ):
        return url_for("admin.index")
    return target


def _is_locked(user, now) -> bool:
    return user.locked_until is not None and user.locked_until > now


def _fail(user, now) -> None:
    """Count a failed attempt; the fifth in a row locks the account."""
    if user is not None:
        user.failed_attempts = (user.failed_attempts or 0) + 1
        if user.failed_attempts >= LOCK_AFTER_FAILURES:
            user.locked_until = now + LOCK_DURATION
            user.login_code_hash = None
    db.session.commit()


def send_code(username: str, password: str, ip: str) -> tuple[bool, str]:
    """Check the password and text a fresh code to the user's phone."""
    now = utcnow()
    user = _find_user(username)
    if user is None or not user.active or _is_locked(user, now):
        _refuse_unknown(password)
        return False, GENERIC_FAILURE
    if not user.check_password(password or ""):
        _fail(user, now)
        return False, GENERIC_FAILURE
    if not MAINLAND_MOBILE.match(user.phone or ""):
        db.session.rollback()
        return False, MSG_BAD_PHONE
    if user.login_code_sent_at and now - user.login_code_sent_at < SEND_INTERVAL:
        db.session.rollback()
        return False, MSG_TOO_SOON
    hour_ago = now - timedelta(hours=1)
    count = sa.select(sa.func.count()).select_from(SmsSend)
    if db.session.scalar(count.where(SmsSend.user_id == user.id, SmsSend.sent_at >= hour_ago)) >= SENDS_PER_HOUR:
        db.session.rollback()
        return False, MSG_TOO_MANY
    if (
        db.session.scalar(count.where(SmsSend.ip == ip, SmsSend.sent_at >= hour_ago))
        >= current_app.config["SMS_PER_IP_HOURLY"]
    ):
        db.session.rollback()
        return False, MSG_TOO_MANY
    if sms_budget_exhausted(now):
        db.session.rollback()
        current_app.logger.warning("SMS daily budget exhausted; refusing to send to %s", user.username)
        return False, MSG_BUDGET
    code = f"{secrets.randbelow(10**6):06d}"
    user.login_code_hash = _code_hash(code)
    user.login_code_sent_at = now
    user.login_code_tries = 0
    db.session.add(SmsSend(user_id=user.id, phone=user.phone, ip=ip, sent_at=now))
    db.session.commit()
    try:
        current_app.extensions["sms"].send(user.phone, user.username, code)
    except Exception:  # the backend's own error: log it, tell the user in their words
        current_app.logger.exception("SMS backend failed for %s", user.username)
        # no code reached the phone: forget it, so a retry is not told "已发送，请于60秒后…"
        # (the send log keeps the attempt, which still counts against the hourly and daily limits)
        user.login_code_hash = None
        user.login_code_sent_at = None
        db.session.commit()
        return False, MSG_SMS_FAILED
    return True, MSG_SENT.format(phone=user.masked_phone)


def verify_login(username: str, password: str, code: str):
    """The user when password and code are right and the account is not locked; else None."""
    now = utcnow()
    user = _find_user(username)
    if user is None or not user.active or _is_locked(user, now):
        _refuse_unknown(password)
        return None
    if not user.check_password(password or ""):
        _fail(user, now)
        return None
    code = (code or "").strip()
    fresh = (
        user.login_code_hash is not None
        and user.login_code_sent_at is not None
        and now - user.login_code_sent_at <= CODE_TTL
        and (user.login_code_tries or 0) < CODE_MAX_TRIES
    )
    if not fresh or not hmac.compare_digest(user.login_code_hash, _code_hash(code)):
        user.login_code_tries = (user.login_code_tries or 0) + 1
        _fail(user, now)
        return None
    user.login_code_hash = None  # one use only
    user.failed_attempts = 0
    user.locked_until = None
    user.last_login_at = now
    db.session.commit()
    return user


@bp.before_app_request
def load_user():
    g.user = None
    uid = session.get("uid")
    if uid is None:
        return
    user = db.session.get(User, uid)
    if user is not None and user.active and session.get("pw") == user.password_hash[-12:]:
        g.user = user
    else:
        session.clear()


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "")
        user = verify_login(username, request.form.get("password", ""), request.form.get("code", ""))
        if user is not None:
            session.clear()
            session["uid"] = user.id
            session["pw"] = user.password_hash[-12:]
            return redirect(_safe_next(request.args.get("next")))
        error = GENERIC_FAILURE
    return render_template("login.html", error=error, username=username), (401 if error else 200)


@bp.route("/login/send-code", methods=["POST"])
def send_code_view():
    ok, message = send_code(request.form.get("username", ""), request.form.get("password", ""), _client_ip())
    return jsonify(ok=ok, message=message), (200 if ok else 400)


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("auth.login"))

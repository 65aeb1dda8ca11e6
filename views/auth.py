"""The login screens (DESIGN.md §7): the page, 获取手机验证码, 登录 and 退出.  What they do is in
actions/login.py; who is logged in is the server-side session's "uid" (models/session.py)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, g, jsonify, redirect, render_template, request, session, url_for

from actions.login import client_ip, send_code, verify_login
from models import User, db, end_sessions

bp = Blueprint("auth", __name__)


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


@bp.before_app_request
def load_user():
    g.user = None
    uid = session.get("uid")
    if uid is None:
        return
    user = db.session.get(User, uid, options=[sa.orm.joinedload(User.org)])  # every page's scope reads the org
    if user is not None and user.active:
        g.user = user
    else:
        session.clear()


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "")
        user, error = verify_login(
            username, request.form.get("password", ""), request.form.get("code", ""), client_ip()
        )
        if user is not None:
            session.clear()
            session.regenerate()  # a new token: one planted before login is worth nothing after it
            session["uid"] = user.id
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error, username=username), (401 if error else 200)


@bp.route("/login/send-code", methods=["POST"])
def send_code_view():
    ok, message = send_code(request.form.get("username", ""), request.form.get("password", ""), client_ip())
    return jsonify(ok=ok, message=message), (200 if ok else 400)


@bp.route("/logout", methods=["POST"])
def logout():
    """退出 ends every session of the user (this browser and any other), not only this one."""
    uid = session.get("uid")
    if uid is not None:
        end_sessions(uid)
        db.session.commit()
    session.clear()
    return redirect(url_for("auth.login"))

"""What production serving adds to every request: the client's real address behind trusted proxies,
a request id and one log line per request (with the user), and `/healthz` for the load balancer.

create_app calls `init_serving(app)` once; gunicorn (`make serve`, gunicorn.conf.py) and Flask's
development server (`make run`) run the same app.
"""

from __future__ import annotations

import gc
import re
import time
import uuid

import sqlalchemy as sa
from flask import Flask, g, jsonify, request
from werkzeug.middleware.proxy_fix import ProxyFix

from models import db

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def settle_worker() -> None:
    """Once a worker has built its app (gunicorn.conf.py post_worker_init): what start-up made — the
    modules, the app, its views, templates and translations, some 170,000 objects — goes where the
    cyclic garbage collector never walks it again.  Every full collection walked all of it, about
    2 ms per request on average on a list page (issue 13); reference counting still frees anything."""
    gc.collect()
    gc.freeze()


def init_serving(app: Flask) -> None:
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies > 0:
        # Each trusted proxy appends the address it saw to X-Forwarded-For: the N-th from the right is
        # the client. Without this every clerk behind the proxy would share its address (and the
        # per-address SMS limit); with it and no proxy, anyone could claim any address.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)

    @app.before_request
    def _start():
        g.request_started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "") if proxies > 0 else ""
        g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex[:16]
        # registered after views/auth.py's load_user, so the user is known (and not yet expired by a commit)
        user = g.get("user")
        g.log_user = user.username if user is not None else None

    @app.after_request
    def _finish(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        started = g.get("request_started")
        ms = (time.perf_counter() - started) * 1000 if started else 0.0
        if request.path != "/healthz":  # polled every few seconds by the load balancer
            app.logger.info("%s %s %s %.0fms", request.method, request.path, response.status_code, ms)
        return response

    @app.route("/healthz")
    def healthz():
        """200 when the database answers, 503 when it does not (take this worker out of rotation)."""
        try:
            with db.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:  # any failure to reach the database is "not healthy"
            app.logger.warning("healthz: database unreachable: %s", exc.__class__.__name__)
            return jsonify(status="error", database="unreachable"), 503
        return jsonify(status="ok", database="ok")

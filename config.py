"""Configuration in one place: every setting, its default and the environment variable it comes
from. `create_app` reads it once (`load`) into `app.config`; nothing else reads `os.environ`.
Code below the app asks `current_app.config[...]` (or is handed the value).
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path

MB = 1024 * 1024

# Fixed settings: not taken from the environment.
FIXED = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": 8 * 3600,
    "WTF_CSRF_TIME_LIMIT": 8 * 3600,
    "BABEL_DEFAULT_LOCALE": "zh_Hans_CN",
    "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
    "FLASK_ADMIN_SWATCH": "cerulean",
    "HOME_TEMPLATES": [("批量入会模板", "members"), ("批量投保模板", "policies")],  # (label, batch kind)
}


def _text(value: str) -> str:
    return value


def _int(value: str) -> int:
    return int(value)


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


# config key: (environment variable, parser, default). A default of None is worked out by `load`.
FROM_ENVIRONMENT = {
    "SQLALCHEMY_DATABASE_URI": ("DATABASE_URL", _text, None),  # SQLite in instance/huzhu.db
    "SECRET_KEY": ("SECRET_KEY", _text, None),  # generated once into instance/secret_key
    "SMS_BACKEND": ("SMS_BACKEND", _text, "console"),
    "SMS_DAILY_BUDGET": ("SMS_DAILY_BUDGET", _int, 500),
    "SMS_PER_IP_HOURLY": ("SMS_PER_IP_HOURLY", _int, 30),
    "TWILIO_ACCOUNT_SID": ("TWILIO_ACCOUNT_SID", _text, ""),
    "TWILIO_AUTH_TOKEN": ("TWILIO_AUTH_TOKEN", _text, ""),
    "TWILIO_FROM": ("TWILIO_FROM", _text, ""),
    "SESSION_COOKIE_SECURE": ("SESSION_COOKIE_SECURE", _flag, False),
    "UPLOAD_MAX_BYTES": ("UPLOAD_MAX_BYTES", _int, 20 * MB),
    "UPLOAD_MAX_ROWS": ("UPLOAD_MAX_ROWS", _int, 100_000),
    "MAX_CONTENT_LENGTH": ("MAX_CONTENT_LENGTH", _int, None),  # the upload limit plus 1 MB for the form
    "STORAGE_DIR": ("STORAGE_DIR", _text, None),  # every kept file (models/storage.py); instance/uploads
    "LOG_LEVEL": ("LOG_LEVEL", _text, "INFO"),
    # 会员调动的查找 is the one place a unit sees (masked) data of another unit's member: limited per user
    "TRANSFER_LOOKUPS_PER_HOUR": ("TRANSFER_LOOKUPS_PER_HOUR", _int, 30),
    # how many reverse proxies in front of the app set X-Forwarded-For/-Proto (0: none; serving.py)
    "TRUSTED_PROXIES": ("TRUSTED_PROXIES", _int, 0),
    # background jobs (batch/jobs.py): without REDIS_URL everything runs inline, in the request
    "REDIS_URL": ("REDIS_URL", _text, ""),
    "BATCH_BACKGROUND_ROWS": ("BATCH_BACKGROUND_ROWS", _int, 5_000),  # a bigger file goes to a worker
    "JOB_LEASE_SECONDS": ("JOB_LEASE_SECONDS", _int, 30),  # a worker silent this long is taken for dead
    # a bigger export (rows) or printed document (pages, estimated) is made by a worker (views/downloads.py)
    "EXPORT_BACKGROUND_ROWS": ("EXPORT_BACKGROUND_ROWS", _int, 20_000),
    "PDF_BACKGROUND_PAGES": ("PDF_BACKGROUND_PAGES", _int, 200),
    "BACKGROUND_FILE_HOURS": ("BACKGROUND_FILE_HOURS", _int, 24),  # a file made by a worker is kept this long
    # the address the clerks open the system at: the QR codes on receipts and forms lead there
    "PUBLIC_URL": ("PUBLIC_URL", _text, "http://127.0.0.1:5000"),
}


def load(instance_path: str, environ: Mapping[str, str] = os.environ, overrides: Mapping | None = None) -> dict:
    """All settings: the fixed ones, then the environment's, then `overrides` (create_app's argument)."""
    cfg = dict(FIXED)
    for key, (var, parse, default) in FROM_ENVIRONMENT.items():
        raw = environ.get(var, "")
        if raw == "":
            cfg[key] = default
            continue
        try:
            cfg[key] = parse(raw)
        except ValueError:
            raise ValueError(f"环境变量 {var} 的值“{raw}”不是有效的数字") from None
    cfg.update(overrides or {})
    if not cfg["SQLALCHEMY_DATABASE_URI"]:
        cfg["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{os.path.join(instance_path, 'huzhu.db')}"
    cfg["SQLALCHEMY_DATABASE_URI"] = database_url(cfg["SQLALCHEMY_DATABASE_URI"])
    if not cfg["SECRET_KEY"]:
        cfg["SECRET_KEY"] = _secret_key_file(instance_path)
    if not cfg["MAX_CONTENT_LENGTH"]:
        cfg["MAX_CONTENT_LENGTH"] = cfg["UPLOAD_MAX_BYTES"] + MB
    if not cfg["STORAGE_DIR"]:
        cfg["STORAGE_DIR"] = str(Path(instance_path) / "uploads")
    if cfg["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # a pooled connection that died with a database restart is replaced, not handed to a request;
        # an unreachable server fails a request (and /healthz) in seconds rather than hanging it
        cfg.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True, "connect_args": {"connect_timeout": 5}})
    return cfg


def database_url(url: str) -> str:
    """A URL as hosting services give it (`postgres://…`) in the form SQLAlchemy uses with psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _secret_key_file(instance_path: str) -> str:
    """The key generated once into instance/secret_key, readable by the server's user only (0600)."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker wrote it first
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    private_file(path)
    return path.read_text().strip()


def private_file(path) -> None:
    """Make an existing file readable and writable by its owner only (0600)."""
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError:  # not ours, or gone: leave it
        pass


LOG_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s %(user)s] %(name)s: %(message)s"


class RequestContext(logging.Filter):
    """Puts the request id and the logged-in user (serving.py) on every line; "-" outside a request.
    Drops the development server's own per-request line: the app writes one (serving.py)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "werkzeug" and str(record.msg).rstrip().endswith('"%s" %s %s'):
            return False
        from flask import g, has_request_context

        record.request_id, record.user = "-", "-"
        if has_request_context():
            record.request_id = g.get("request_id") or "-"
            record.user = g.get("log_user") or "-"
        return True


def log_handler(stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RequestContext())
    return handler


def configure_logging(level: str) -> None:
    """One handler on the root logger, to stdout, set up once per process (Flask's and Werkzeug's
    loggers then use it rather than adding their own; gunicorn.conf.py sends gunicorn's there too)."""
    root = logging.getLogger()
    if not any(getattr(h, "_huzhu", False) for h in root.handlers):
        handler = log_handler()
        handler._huzhu = True
        root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)  # seven INFO lines per PDF


def log_to_stderr() -> None:
    """For command-line commands whose stdout is their answer (`flask batch … --json`)."""
    for h in logging.getLogger().handlers:
        if getattr(h, "_huzhu", False):
            h.setStream(sys.stderr)

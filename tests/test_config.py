"""Configuration is read once, in config.py, by create_app; every kept file's path comes from models/storage.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import config
from models import storage

ROOT = Path(__file__).resolve().parent.parent
APP_CODE = ("app.py", "config.py", "rules", "models", "batch", "actions", "views")


def _sources():
    for name in APP_CODE:
        path = ROOT / name
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def test_only_config_py_reads_the_environment():
    readers = [
        str(p.relative_to(ROOT))
        for p in _sources()
        if re.search(r"os\.environ\b|os\.getenv\b|getenv\(", p.read_text()) and p.name not in ("config.py", "app.py")
    ]
    assert readers == [], f"read settings in config.py (create_app passes them on), not in {readers}"


def test_settings_come_from_the_environment_and_create_apps_argument_wins(tmp_path):
    env = {"SMS_DAILY_BUDGET": "7", "SESSION_COOKIE_SECURE": "1", "DATABASE_URL": "postgres://u@h/db"}
    cfg = config.load(str(tmp_path), env, {"SMS_DAILY_BUDGET": 9})
    assert cfg["SMS_DAILY_BUDGET"] == 9 and cfg["SESSION_COOKIE_SECURE"] is True
    assert cfg["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"
    assert cfg["SMS_PER_IP_HOURLY"] == 30 and cfg["SMS_BACKEND"] == "console"


def test_without_settings_the_demo_runs_on_sqlite_in_the_instance_folder(tmp_path):
    cfg = config.load(str(tmp_path), {})
    assert cfg["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'huzhu.db'}"
    assert cfg["STORAGE_DIR"] == str(tmp_path / "uploads")
    assert cfg["SECRET_KEY"] == (tmp_path / "secret_key").read_text().strip()
    assert config.load(str(tmp_path), {})["SECRET_KEY"] == cfg["SECRET_KEY"]  # generated once, then kept
    assert cfg["MAX_CONTENT_LENGTH"] == cfg["UPLOAD_MAX_BYTES"] + config.MB


def test_a_setting_that_is_not_a_number_names_the_variable(tmp_path):
    with pytest.raises(ValueError, match="SMS_PER_IP_HOURLY"):
        config.load(str(tmp_path), {"SMS_PER_IP_HOURLY": "thirty"})


def test_every_kept_file_lives_under_the_storage_folder(app):
    with app.app_context():
        root = Path(app.config["STORAGE_DIR"])
        for path in (
            storage.failures_path("3_../../etc/passwd"),
            storage.document_path("../secret"),
            storage.export_path(".."),
        ):
            assert path.resolve().is_relative_to(root.resolve()), path
        with pytest.raises(ValueError):
            storage.folder("../elsewhere")


def test_the_public_address_of_the_qr_codes_is_a_setting_with_the_others(app, tmp_path):
    cfg = config.load(str(tmp_path), {"PUBLIC_URL": "https://huzhu.example.org/"})
    assert cfg["PUBLIC_URL"] == "https://huzhu.example.org/"
    assert config.load(str(tmp_path), {})["PUBLIC_URL"] == "http://127.0.0.1:5000"
    from actions.receipts import verify_url
    from actions.terminations import application_url

    with app.app_context():  # outside a request (a worker, a command): the setting's address
        old = app.config["PUBLIC_URL"]
        app.config["PUBLIC_URL"] = "https://huzhu.example.org/"
        try:
            assert verify_url("2026-000001") == "https://huzhu.example.org/admin/receipts/verify/2026-000001"
            assert application_url(7) == "https://huzhu.example.org/admin/terminations/details/?id=7"
        finally:
            app.config["PUBLIC_URL"] = old

"""互助保障业务系统: the application factory, its extensions and its command-line interface."""

from __future__ import annotations

import os
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, render_template
from flask_babel import Babel
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFError, CSRFProtect

import config as settings
from models import db
from models.session import DatabaseSessionInterface
from serving import init_serving

BASE_DIR = Path(__file__).resolve().parent
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()


def create_app(config: dict | None = None) -> Flask:
    """The application: settings read once (config.py; `config` overrides the environment)."""
    app = Flask(__name__, instance_path=str(BASE_DIR / "instance"))
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(settings.load(app.instance_path, os.environ, config))
    settings.configure_logging(app.config["LOG_LEVEL"])

    db.init_app(app)
    app.session_interface = DatabaseSessionInterface()  # the cookie holds only a random token
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=lambda: "zh_Hans_CN", timezone_selector=lambda: "Asia/Shanghai")

    from views.sms import make_backend

    app.extensions["sms"] = app.config.get("SMS_BACKEND_INSTANCE") or make_backend(
        app.config["SMS_BACKEND"],
        account_sid=app.config["TWILIO_ACCOUNT_SID"],
        auth_token=app.config["TWILIO_AUTH_TOKEN"],
        sender=app.config["TWILIO_FROM"],
    )

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _private_sqlite_file(db.engine.url.database)
            sa.event.listen(db.engine, "connect", _sqlite_pragmas)
            from models.base import sqlite_begin

            sa.event.listen(db.engine, "begin", sqlite_begin)

    from views import init_admin
    from views.auth import bp as auth_bp
    from views.security import init_security

    app.register_blueprint(auth_bp)
    init_admin(app)
    init_serving(app)  # after auth's load_user: its log lines name the user
    init_security(app)  # Content-Security-Policy and the other headers; no Server banner
    with app.app_context():
        from models.storage import remove_partial_files

        remove_partial_files()  # what a crash left half-written (*.tmp, *.part)
    _register_error_pages(app)
    _register_cli(app)

    @app.route("/")
    def root():
        from flask import redirect, url_for

        return redirect(url_for("admin.index"))

    return app


def _private_sqlite_file(path: str | None) -> None:
    """The SQLite file (and its -wal and -shm, which SQLite creates with the file's own mode) is
    readable by the server's user only: created 0600 before SQLite opens it, or made 0600."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # an empty file is an empty database
        except FileExistsError:
            pass
    for name in (path, path + "-wal", path + "-shm"):
        if os.path.exists(name):
            settings.private_file(name)


def _sqlite_pragmas(dbapi_connection, _record):
    # let SQLAlchemy, not the driver, open transactions (so SAVEPOINT and rollback work as on PostgreSQL)
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _register_error_pages(app: Flask) -> None:
    messages = {
        400: ("请求有误", "提交的内容不完整或格式不对，请返回上一页检查后重试。"),
        403: ("无权操作", "您的账户没有权限进行此操作。如需办理，请联系上级单位或系统管理员。"),
        404: ("记录不存在", "您要查看的记录不存在，或不属于您的单位。请返回列表重新查询。"),
        405: ("操作方式不正确", "请通过页面上的按钮进行操作。"),
        413: (
            "文件太大",
            f"上传的文件超过 {app.config['UPLOAD_MAX_BYTES'] // settings.MB} MB，请拆分为几个较小的文件后分别上传。",
        ),
        500: ("系统出错", "系统处理时出现错误，您的操作没有生效。请稍后重试，或联系系统管理员。"),
    }

    def render(code, title=None, detail=None):
        t, d = messages[code]
        return render_template("error.html", code=code, title=title or t, detail=detail or d), code

    for code in messages:
        app.register_error_handler(code, lambda e, code=code: render(code))

    @app.errorhandler(CSRFError)
    def csrf_error(e):
        return render(400, "页面已过期", "页面停留时间过长或来源不明，操作没有生效。请刷新页面后重新操作。")


def _register_cli(app: Flask) -> None:
    _register_batch_cli(app)

    @app.cli.command("worker")
    @click.option("--burst", is_flag=True, help="做完队列中的任务就退出")
    def worker(burst):
        """后台任务：运行一个 RQ worker，办理大批量文件、生成大的导出和打印文件（需要 REDIS_URL）。"""
        from batch import BatchFileError
        from batch.jobs import work

        try:
            work(burst=burst)
        except BatchFileError as exc:
            click.echo(str(exc), err=True)
            raise SystemExit(2) from None

    @app.cli.command("demo-data")
    @click.option("--if-empty", is_flag=True, help="只在数据库为空时装载")
    def demo_data(if_empty):
        """装载演示数据（DESIGN.md §10）。"""
        from models import Org
        from models.demo import load_demo_data

        if if_empty and db.session.scalar(sa.select(sa.func.count()).select_from(Org)):
            click.echo("数据库已有数据，跳过演示数据。")
            return
        from actions.receipts import create_receipt

        counts = load_demo_data(issue_receipt=create_receipt)
        click.echo("演示数据已装载：" + "，".join(f"{k} {v}" for k, v in counts.items()))


def _register_batch_cli(app: Flask) -> None:
    """flask --app app batch check|process KIND FILE --user USERNAME [options] (DESIGN.md §9)."""
    import json
    import sys

    batch_group = click.Group("batch", help="批量业务：校验或办理上传文件（members 入会 / policies 投保）")
    app.cli.add_command(batch_group)

    def run(mode, kind, file, username, result, as_json, params):
        settings.log_to_stderr()  # stdout is the command's answer
        from batch import BatchFileError, check_batch, create_batch, process_batch
        from models import User

        user = db.session.scalar(sa.select(User).where(User.username == username, User.active.is_(True)))
        if user is None:
            click.echo(f"用户“{username}”不存在或已停用", err=True)
            sys.exit(2)
        try:
            with open(file, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            click.echo(f"无法打开文件“{file}”：{exc.strerror}", err=True)
            sys.exit(2)
        try:
            batch = create_batch(kind, data, os.path.basename(file), user, {k: v for k, v in params.items() if v})
            if mode == "check":
                outcome = check_batch(batch, user)
                if result:
                    from batch.result import write_result

                    write_result(result, outcome.table, outcome.results)
            else:
                outcome = process_batch(batch, user, result_file=result)
        except BatchFileError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        if as_json:
            click.echo(json.dumps(outcome.as_json(), ensure_ascii=False))
        else:
            verb = "校验" if mode == "check" else "办理"
            click.echo(
                f"批次 {batch.id}：{verb}完成，共 {len(outcome.results)} 行，通过 {outcome.ok_count} 行，"
                f"失败 {outcome.error_count} 行" + (f"，已办理 {outcome.created} 行" if mode == "process" else "")
            )
            for r in outcome.failed[:50]:
                click.echo(f"  第{r.row}行 [{r.code}] {r.message}")
            if outcome.error_count > 50:
                click.echo(f"  ……其余 {outcome.error_count - 50} 行失败见结果文件")

    for mode in ("check", "process"):

        @batch_group.command(mode, help="业务校验（不写入）" if mode == "check" else "业务办理（校验后写入全部有效行）")
        @click.argument("kind")
        @click.argument("file", type=click.Path(dir_okay=False))
        @click.option("--user", "username", required=True, help="以哪个用户的身份办理")
        @click.option("--result", type=click.Path(dir_okay=False), help="结果文件（.xlsx）")
        @click.option("--json", "as_json", is_flag=True, help="输出一行 JSON")
        @click.option("--org", "org_code", help="入会单位编号（代办处及以上用户）")
        @click.option("--product", "product", help="产品编号（投保）")
        @click.option("--amount", "amount", help="统一投保金额（元），覆盖文件中的金额")
        @click.option("--effective", "effective", help="预期生效时间 YYYY-MM-DD")
        def _cmd(kind, file, username, result, as_json, org_code, product, amount, effective, _mode=mode):
            run(
                _mode,
                kind,
                file,
                username,
                result,
                as_json,
                {"org_code": org_code, "product": product, "amount": amount, "effective": effective},
            )

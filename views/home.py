"""首页: who I am, what waits for me, and the templates to download."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, redirect, request, url_for
from flask_admin import AdminIndexView, expose

from models import (
    WORKFLOWS,
    db,
    scoped,
)
from models.org import Role as R
from models.sms import sms_budget_exhausted, sms_sent_today

from .access import current_user, screens


def _count(model, *conds) -> int:
    stmt = scoped(sa.select(sa.func.count()).select_from(model), model, current_user()).where(*conds)
    return db.session.scalar(stmt)


def _list_view_of(workflow):
    """The first screen the user may open that lists the workflow's rows."""
    for view in screens():
        if getattr(view, "workflow", None) is workflow and view.is_accessible():
            return view
    return None


def workflow_todos(user) -> list[tuple[str, int, str]]:
    """From every declared transition (models/workflow.py): for each of its to-do states, the rows
    in the user's scope that wait there for someone of the user's role."""
    items = []
    for wf in WORKFLOWS:
        for t in wf.transitions:
            if not t.todo or user.role not in t.roles:
                continue
            view = _list_view_of(wf)
            if view is None:
                continue
            for state, words in t.todo.items():
                n = _count(wf.model, wf.model.status == state, *view.todo_conditions())
                items.append((words, n, view.state_url(state)))
    return items


REASONS_SHOWN = 5


def todo_reasons(user) -> dict[str, list[tuple[str, str]]]:
    """For a to-do of rows that someone sent back with a reason (打回, 驳回): the latest few rows and
    their reasons, so the clerk reads why on 首页.  Derived too: the reason column is the one the
    transition into that state declares."""
    out = {}
    for wf in WORKFLOWS:
        for t in wf.transitions:
            if not t.todo or user.role not in t.roles:
                continue
            for state, words in t.todo.items():
                column = next(
                    (o.reason_column for o in wf.transitions if o.to_state == state and o.reason_column), None
                )
                if column is None:
                    continue
                model = wf.model
                rows = db.session.scalars(
                    scoped(sa.select(model), model, user)
                    .where(model.status == state, getattr(model, column).is_not(None))
                    .order_by(model.id.desc())
                    .limit(REASONS_SHOWN)
                ).all()
                if rows:
                    out[words] = [(str(r), getattr(r, column)) for r in rows]
    return out


def todo_items(user) -> list[tuple[str, int, str]]:
    """(label, count, url) of what waits for this user's role."""
    return workflow_todos(user)


class HomeView(AdminIndexView):
    def is_accessible(self):
        return current_user() is not None

    def inaccessible_callback(self, name, **kwargs):
        return redirect(url_for("auth.login", next=request.full_path))

    @expose("/")
    def index(self):
        user = current_user()
        budget_warning = None
        if user.role == R.ADMIN and sms_budget_exhausted():
            budget_warning = (
                f"今日短信验证码已发送 {sms_sent_today()} 条，达到每日上限 "
                f"{current_app.config['SMS_DAILY_BUDGET']} 条，系统已停止发送验证码。"
                "如属正常业务高峰，请调高 SMS_DAILY_BUDGET；否则可能有人恶意刷短信。"
            )
        from batch import KINDS

        templates = [
            (label, url_for("batches.template_view", kind=kind))
            for label, kind in current_app.config["HOME_TEMPLATES"]
            if kind in KINDS
        ]
        return self.render(
            "admin/home.html",
            user=user,
            todos=todo_items(user),
            reasons=todo_reasons(user),
            budget_warning=budget_warning,
            templates=templates,
        )

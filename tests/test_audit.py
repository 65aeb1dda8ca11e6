"""Audit in the same transaction, and the audit log in the clerks' words (issue 15, item 10).

A single-record create, edit or delete and its audit row commit together or not at all (was: the
audit row written after Flask-Admin's commit, so an edit could be saved without it).  审计日志 names
every action, entity and field in Chinese and shows a change as "字段: 旧值 → 新值", never JSON."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as
from flask import g, request_tearing_down

import views.base
from models import Member, MemberStatus, Product, User, db
from models.audit import ACTION_LABELS, ENTITY_LABELS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def each_request_stands_alone(app):
    def tear_down(sender, **extra):
        g.pop("csrf_token", None)
        db.session.remove()

    request_tearing_down.connect(tear_down, app, weak=False)
    yield
    request_tearing_down.disconnect(tear_down, app)


@pytest.fixture
def failing_audit(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("audit_log is full")

    monkeypatch.setattr(views.base, "write_audit", refuse)


def _product_form(client, **changes):
    form = {
        "csrf_token": csrf_token(client),
        "code": "P08",
        "name": "职工健康互助保障",
        "price": "40.00",
        "max_shares": "3",
        "term_months": "12",
        "gender_restriction": "",
        "active": "y",
    }
    form.update(changes)
    return form


def test_when_the_audit_row_cannot_be_written_a_new_record_is_not_saved(app, client, failing_audit):
    login_as(app, client, "admin")
    client.post("/admin/products/new/", data=_product_form(client))
    with app.app_context():
        assert db.session.scalar(sa.select(Product).where(Product.code == "P08")) is None


def test_when_the_audit_row_cannot_be_written_an_edit_is_not_saved(app, client, failing_audit):
    login_as(app, client, "admin")
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "clerk3"))
        pk, form = (
            user.id,
            {
                "username": "clerk3",
                "display_name": "陈静静",
                "org": str(user.org_id),
                "role": "unit_clerk",
                "phone": user.phone,
                "active": "y",
                "new_password": "",
            },
        )
    form["csrf_token"] = csrf_token(client)
    page = client.post(f"/admin/users/edit/?id={pk}", data=form, follow_redirects=True)
    assert page.status_code == 200
    with app.app_context():
        assert db.session.get(User, pk).display_name == "陈静"  # was: saved as 陈静静, without its audit row


def test_when_the_audit_row_cannot_be_written_a_delete_does_not_happen(app, client, failing_audit):
    login_as(app, client, "clerk1")
    with app.app_context():
        member = db.session.scalar(
            sa.select(Member).where(Member.status == MemberStatus.NEW, Member.org.has(code="010101")).limit(1)
        )
        pk = member.id
    client.post("/admin/members/delete/", data={"csrf_token": csrf_token(client), "id": pk})
    with app.app_context():
        assert db.session.get(Member, pk) is not None


# --- every action, entity and field in Chinese -------------------------------------------------------


def _literal_actions() -> set[str]:
    """Every audit action named in the code: write_audit/dml_with_audit/transition/create_policies
    calls and Transition declarations with a literal action."""
    found = set()
    for pkg in ("actions", "batch", "models", "views"):
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                args = list(node.args)
                if name in ("write_audit", "dml_with_audit", "transition") and args:
                    pos = {"write_audit": 0, "dml_with_audit": 2, "transition": 5}[name]
                    if len(args) > pos:
                        found |= _strings(args[pos])
                for kw in node.keywords:
                    if kw.arg == "action":
                        found |= _strings(kw.value)
    return found


def _strings(node) -> set[str]:
    """A literal action, or each literal of `"create" if created else "update"`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    return set()


def test_every_audit_action_in_the_code_has_a_chinese_label(app):
    actions = _literal_actions()
    assert {"create", "update", "delete", "report", "reset_password", "set_password"} <= actions
    missing = sorted(a for a in actions if not re.search(r"[\u4e00-\u9fff]", ACTION_LABELS.get(a, "")))
    assert missing == []


def test_every_table_an_audit_row_can_name_has_a_chinese_label_and_so_does_each_field(app):
    from views.audit_text import field_label

    with app.app_context():
        tables = set(db.metadata.tables)
        audited = tables - {
            "audit_log",
            "import_row",
            "counter",
            "receipt_policy",
            "termination_policy",
            "sms_send",
            "user_session",
            "login_failure",
            "batch_stage",
        }
        assert audited <= set(ENTITY_LABELS), sorted(audited - set(ENTITY_LABELS))
        unlabeled = []
        for entity in audited:
            for col in db.metadata.tables[entity].columns:
                if col.key in ("password_hash", "login_code_hash"):
                    continue  # never in an audit row
                if not re.search(r"[\u4e00-\u9fff]", field_label(entity, col.key)) or "其他字段" in field_label(
                    entity, col.key
                ):
                    unlabeled.append(f"{entity}.{col.key}")
        assert unlabeled == []


def test_the_audit_log_shows_an_edit_as_field_old_arrow_new_with_before_filled(app, client):
    login_as(app, client, "admin")
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "clerk3"))
        pk, form = (
            user.id,
            {
                "username": "clerk3",
                "display_name": "陈静静",
                "org": str(user.org_id),
                "role": "unit_clerk",
                "phone": user.phone,
                "active": "y",
                "new_password": "",
            },
        )
    form["csrf_token"] = csrf_token(client)
    client.post(f"/admin/users/edit/?id={pk}", data=form)
    html = client.get(f"/admin/audit/?entity=user&entity_id={pk}").get_data(as_text=True)
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*陈静静(?:(?!</tr>).)*</tr>", html, re.S).group(0)
    cells = [re.sub(r"<[^>]+>", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert "修改" in cells and "用户" in cells
    assert "姓名: 陈静" in cells  # 修改前
    assert "姓名: 陈静 → 陈静静" in cells  # 修改后
    assert "{" not in row and "display_name" not in row


def test_a_state_change_and_a_new_record_read_in_chinese(app, client):
    from actions.workflow import run_transition
    from models import POLICY_WORKFLOW, Policy, PolicyStatus, scoped

    login_as(app, client, "admin")
    client.post("/admin/products/new/", data=_product_form(client, code="P06", name="测试产品"))
    with app.app_context():
        clerk = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
        ids = scoped(sa.select(Policy.id).where(Policy.status == PolicyStatus.NEW), Policy, clerk).limit(1)
        run_transition(POLICY_WORKFLOW, POLICY_WORKFLOW.get("report"), ids, clerk, expected=1)
        db.session.commit()
    html = client.get("/admin/audit/").get_data(as_text=True)
    assert "产品名称: 测试产品" in html and "每份金额: 40.00" in html
    assert "状态: 上报" in html and "上报" in html and "投保记录" in html
    assert '"status"' not in html and "REPORTED" not in html


def test_the_audit_export_has_no_json_either(app, client):
    login_as(app, client, "admin")
    client.post("/admin/products/new/", data=_product_form(client, code="P05", name="导出产品"))
    data = client.get("/admin/audit/export/csv/").get_data().decode("utf-8-sig")
    assert "产品名称: 导出产品" in data and "新增" in data and '{"' not in data

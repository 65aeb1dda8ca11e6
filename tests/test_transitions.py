"""Transitions are declared once per aggregate (models/workflow.py); the bulk actions, the 首页
to-dos, the "cannot edit in this state" messages and the audit labels come from the declarations."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from conftest import login_as
from test_policy_actions import a_set, confirm, execute, qs, status_of

from models import (
    MEMBER_WORKFLOW,
    POLICY_WORKFLOW,
    TERMINATION_WORKFLOW,
    WORKFLOWS,
    AuditLog,
    Policy,
    PolicyStatus,
    TerminationApplication,
    Transition,
    User,
    db,
)
from models import ApplicationStatus as AS
from models.audit import ACTION_LABELS
from models.org import Role

HOLD = Transition(
    name="test-hold",
    label="当前查询结果暂缓",
    from_states=(PolicyStatus.AGENCY_REPORTED,),
    to_state=PolicyStatus.REPORTED,
    roles=frozenset({Role.AGENCY_STAFF}),
    action="test_hold",
    action_label="暂缓",
    reason="暂缓原因（基层单位会看到）",
    reason_column="return_reason",
    todo={PolicyStatus.AGENCY_REPORTED: "测试：可暂缓的投保记录"},
    note="测试用的转换，只在这个测试里声明。",
)


@pytest.fixture
def hold_declared():
    POLICY_WORKFLOW.add(HOLD)
    try:
        yield HOLD
    finally:
        POLICY_WORKFLOW.remove(HOLD)
        ACTION_LABELS.pop("test_hold", None)


def _todo(html: str, words: str) -> int | None:
    m = re.search(re.escape(words) + r"</a></td><td[^>]*>(\d+)</td>", html)
    return int(m.group(1)) if m else None


def test_a_transition_declared_only_in_a_test_is_a_bulk_action_a_to_do_and_an_audit_label(app, client, hold_declared):
    mine = a_set(app, "测声明")
    target = mine[PolicyStatus.AGENCY_REPORTED]
    login_as(app, client, "agency1")

    home = client.get("/admin/").get_data(as_text=True)
    with app.app_context():
        waiting = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Policy)
            .where(
                Policy.status == PolicyStatus.AGENCY_REPORTED, Policy.org.has(sa.text("org.path LIKE '/000/01/0101/%'"))
            )
        )
    assert _todo(home, "测试：可暂缓的投保记录") == waiting > 0

    listing = client.get("/admin/policies/?" + qs(name="测声明")).get_data(as_text=True)
    assert 'id="bulk-test-hold"' in listing and "【当前查询结果暂缓】" in listing

    html, n = confirm(client, "test-hold", qs(name="测声明"))
    assert n == 1 and "暂缓原因（基层单位会看到）" in html
    page = execute(client, "test-hold", qs(name="测声明"), n, **{"p-reason": "缺少签字"})
    assert "已暂缓 1 条，跳过 0 条" in page.get_data(as_text=True)
    assert status_of(app, *target) == [PolicyStatus.REPORTED]
    with app.app_context():
        row = db.session.scalar(
            sa.select(AuditLog).where(AuditLog.action == "test_hold", AuditLog.entity_id == target[0])
        )
        assert row.after == {"status": "REPORTED", "return_reason": "缺少签字"}
        assert db.session.get(Policy, target[0]).return_reason == "缺少签字"

    login_as(app, client, "admin")
    audit = client.get("/admin/audit/?entity=policy").get_data(as_text=True)
    assert "暂缓" in audit

    login_as(app, client, "clerk1")  # not the transition's role: no button, no page, no to-do
    assert 'id="bulk-test-hold"' not in client.get("/admin/policies/").get_data(as_text=True)
    assert client.get("/admin/policies/bulk/test-hold/").status_code == 404
    assert _todo(client.get("/admin/").get_data(as_text=True), "测试：可暂缓的投保记录") is None


def test_without_the_declaration_there_is_no_such_button(app, client):
    login_as(app, client, "agency1")
    assert 'id="bulk-test-hold"' not in client.get("/admin/policies/").get_data(as_text=True)
    assert client.get("/admin/policies/bulk/test-hold/").status_code == 404


def test_a_reason_the_declaration_requires_cannot_be_left_empty(app, client, hold_declared):
    mine = a_set(app, "测缺原因")
    login_as(app, client, "agency1")
    html, n = confirm(client, "test-hold", qs(name="测缺原因"))
    page = execute(client, "test-hold", qs(name="测缺原因"), n, **{"p-reason": "  "})
    assert "请填写暂缓原因" in page.get_data(as_text=True)
    assert status_of(app, *mine[PolicyStatus.AGENCY_REPORTED]) == [PolicyStatus.AGENCY_REPORTED]


def test_every_declared_action_has_its_audit_label():
    for wf in WORKFLOWS:
        for t in wf.transitions:
            assert ACTION_LABELS[t.action] == t.action_label


def test_one_audit_action_cannot_have_two_labels():
    with pytest.raises(ValueError, match="report"):
        POLICY_WORKFLOW.add(
            Transition(
                name="test-other",
                label="另一个上报",
                from_states=(PolicyStatus.NEW,),
                to_state=PolicyStatus.REPORTED,
                roles=frozenset({Role.UNIT_CLERK}),
                action="report",
                action_label="报送",
            )
        )
    assert all(t.name != "test-other" for t in POLICY_WORKFLOW.transitions)


def test_the_cannot_edit_message_names_the_state_and_the_editable_states(app):
    class Row:
        status = PolicyStatus.REPORTED

    assert POLICY_WORKFLOW.edit_refusal(Row()) == (
        "该投保记录当前状态为“上报”，只有新建或打回状态的投保记录可以修改或删除。"
    )
    Row.status = PolicyStatus.RETURNED
    assert POLICY_WORKFLOW.edit_refusal(Row()) is None
    assert MEMBER_WORKFLOW.noun == "会员"


RECALL = Transition(
    name="test-recall",
    label="当前查询结果退回申请单位",
    from_states=(AS.SUBMITTED,),
    to_state=AS.NEW,
    roles=frozenset({Role.OFFICE_STAFF}),
    action="test_recall",
    action_label="退回申请单位",
    todo={AS.SUBMITTED: "测试：可退回的保单提前终止申请"},
    note="测试用的转换，只在这个测试里声明。",
)


def test_a_transition_declared_only_in_a_test_on_an_application_is_a_button_and_a_to_do_of_the_office(app, client):
    """The same for the one application workflow (保单提前终止, decided by the office): no code but
    the declaration makes the office's button and to-do."""
    TERMINATION_WORKFLOW.add(RECALL)
    try:
        login_as(app, client, "office1")
        with app.app_context():
            waiting = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(TerminationApplication)
                .where(
                    TerminationApplication.status == AS.SUBMITTED,
                    TerminationApplication.org.has(sa.text("org.path LIKE '/000/01/%'")),
                )
            )
        assert _todo(client.get("/admin/").get_data(as_text=True), "测试：可退回的保单提前终止申请") == waiting
        assert 'id="bulk-test-recall"' in client.get("/admin/terminations/").get_data(as_text=True)
        login_as(app, client, "clerk1")
        assert _todo(client.get("/admin/").get_data(as_text=True), "测试：可退回的保单提前终止申请") is None
    finally:
        TERMINATION_WORKFLOW.remove(RECALL)
        ACTION_LABELS.pop("test_recall", None)


def declared_todos(role) -> set[str]:
    return {words for wf in WORKFLOWS for t in wf.transitions if role in t.roles for words in t.todo.values()}


@pytest.mark.parametrize("username", ["clerk1", "agency1", "office1", "info1", "admin"])
def test_every_to_do_on_首页_is_one_a_declaration_gives_and_every_declared_one_is_there(app, client, username):
    """No to-do is counted by hand: the 首页 of each role lists exactly the to-dos that the declared
    transitions of that role name (the office's 待审批的保单提前终止申请, the agency's 超龄例外 …)."""
    login_as(app, client, username)
    html = client.get("/admin/").get_data(as_text=True)
    table = re.search(r'<table[^>]*id="todo-table".*?</table>', html, re.S)
    shown = set(re.findall(r'<tr><td><a href="[^"]*">([^<]+)</a></td>', table.group(0))) if table else set()
    with app.app_context():
        role = db.session.scalar(sa.select(User.role).where(User.username == username))
    assert shown == declared_todos(role)

"""The index diet of policy (issue 13): 上报 and 打回 change no indexed column, so PostgreSQL
updates the rows in place (HOT); the enrolment rules' unique indexes keep the same rows by phase."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from conftest import login_as
from test_policy_actions import a_set, confirm, execute, qs, status_of

from models import POLICY_WORKFLOW, Policy, PolicyStatus, db
from models.policy import POLICY_IN_FLIGHT, phase_of


def _indexed_text(index: sa.Index) -> str:
    """The index's columns and its WHERE, as one text to look for column names in."""
    where = index.dialect_options["postgresql"]["where"]
    return " ".join([*(c.name for c in index.columns), str(where) if where is not None else ""])


def test_reporting_and_returning_change_no_indexed_column_of_a_policy():
    """Every transition that stays in flight (上报 新建/打回 → 上报, 打回 上报 → 打回) writes only
    columns that no policy index names, in its columns or in its WHERE: the condition of a HOT update."""
    within = [t for t in POLICY_WORKFLOW.transitions if t.to_state in POLICY_IN_FLIGHT]
    within = [t for t in within if all(s in POLICY_IN_FLIGHT for s in t.from_states)]
    assert {t.name for t in within} >= {"report", "return"}
    written = {"status", "updated_at", "version"}
    for t in within:
        written |= set(t.clears) | ({t.reason_column} if t.reason_column else set())
    for index in Policy.__table__.indexes:
        named = written & set(re.findall(r"\w+", _indexed_text(index)))
        assert not named, f"{index.name} names {named}: 上报/打回 could not update a policy in place"


def test_the_phase_is_the_status_with_new_returned_and_reported_as_one(app):
    mine = a_set(app, "测阶段")
    with app.app_context():
        ids = [i for group in mine.values() for i in group]
        rows = db.session.execute(sa.select(Policy.status, Policy.phase).where(Policy.id.in_(ids))).all()
    assert {(s, p) for s, p in rows} == {
        (PolicyStatus.NEW, "IN_FLIGHT"),
        (PolicyStatus.RETURNED, "IN_FLIGHT"),
        (PolicyStatus.REPORTED, "IN_FLIGHT"),
        (PolicyStatus.AGENCY_REPORTED, "AGENCY_REPORTED"),
        (PolicyStatus.EFFECTIVE, "EFFECTIVE"),
    }
    assert all(phase_of(s) == p for s, p in rows)


def test_a_query_by_status_finds_the_same_rows_with_the_phase_it_adds(app):
    """`Policy.status == …` / `.in_(…)` also name the phase (so the phase indexes serve them): the
    rows are those of the bare status condition, for every state and set of states."""
    a_set(app, "测状态")
    col = Policy.__table__.c.status  # the column itself: no phase added
    with app.app_context():
        for states in [[s] for s in PolicyStatus] + [
            list(POLICY_IN_FLIGHT),
            [PolicyStatus.NEW, PolicyStatus.EFFECTIVE],
        ]:
            by_attr = set(db.session.scalars(sa.select(Policy.id).where(Policy.status.in_(states))))
            by_col = set(db.session.scalars(sa.select(Policy.id).where(col.in_([s.value for s in states]))))
            assert by_attr == by_col
            if len(states) == 1:
                assert set(db.session.scalars(sa.select(Policy.id).where(Policy.status == states[0]))) == by_col

    def sql(cond) -> str:
        return str(sa.select(Policy.id).where(cond).compile(compile_kwargs={"literal_binds": True}))

    assert "phase = 'IN_FLIGHT'" in sql(Policy.status == PolicyStatus.NEW) and "status" in sql(
        Policy.status == PolicyStatus.NEW
    )
    # whole phases by the phase alone: a count from the index without reading the rows
    assert "status" not in sql(Policy.status == PolicyStatus.EFFECTIVE).split("WHERE")[1]
    assert "status" not in sql(Policy.status.in_(list(POLICY_IN_FLIGHT))).split("WHERE")[1]


def test_reporting_updates_the_policies_in_place_on_postgresql(app, client):
    """上报 of three policies: three HOT updates (pg_stat_xact_user_tables counts this transaction)."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("HOT updates are PostgreSQL's")
    mine = a_set(app, "测就地")
    editable = mine[PolicyStatus.NEW] + mine[PolicyStatus.RETURNED]
    stats = sa.text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'policy'")
    with app.app_context():
        upd0, hot0 = db.session.execute(stats).one()
    login_as(app, client, "clerk1")
    query = qs(name="测就地")
    _html, n = confirm(client, "report", query)
    assert n == 3
    execute(client, "report", query, n)
    assert status_of(app, *editable) == [PolicyStatus.REPORTED] * 3
    with app.app_context():
        upd, hot = db.session.execute(stats).one()
    assert upd - upd0 == 3 and hot - hot0 == 3

"""Bulk actions on the current query (DESIGN.md §8).

An action is a plain function `(ids, user, **params) -> Result` where `ids` is a SELECT of the
ids the list screen's query matches (its filters and search, already narrowed to the user's
scope).  Every state change is one `UPDATE … WHERE id IN (ids) AND status IN (:expected)` with
its audit row written in the same statement (PostgreSQL: a data-modifying CTE; one audit row
naming every record moved, models/audit.py), so a row whose state changed meanwhile is skipped and counted, never clobbered, and the statement count does
not depend on the row count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa

from models import AuditLog, db, utcnow
from models.audit import grouped_row, insert_audit_select, insert_grouped_select, json_or_null


@dataclass
class Result:
    done: int
    skipped: int
    message: str
    failures: list = field(default_factory=list)  # (row description, reason) for actions that list them
    link: tuple | None = None  # (endpoint, url arguments) of the page to open afterwards, e.g. the new receipt


@dataclass
class Summary:
    """What the confirmation page shows: actionable rows, the rest by state, and 汇总金额."""

    actionable: int
    by_state: dict  # state label -> count of rows the action will skip
    headcount: int | None = None
    total: Decimal | None = None

    @property
    def skipped(self) -> int:
        return sum(self.by_state.values())


@dataclass
class BulkAction:
    name: str  # the URL slug
    label: str  # the button, e.g. 当前查询结果上报
    run: Callable  # (ids, user, **params) -> Result
    from_states: tuple  # states the action applies to; other rows are skipped
    roles: frozenset
    confirm_phrase: str | None = None  # e.g. 全部删除, typed by the user
    form: type | None = None  # WTForms form of the action's parameters
    danger: bool = False
    condition: Callable | None = None  # () -> extra SQL condition a row must meet besides its state
    condition_label: str = ""  # why a row failing `condition` is skipped
    with_amount: bool = False  # show 汇总金额 (policies)
    note: str = ""  # what the action does, in the clerk's words
    # "write" changes rows in one transaction; "download" changes nothing and answers with a file
    # (`run` returns a `Download`) — printing and exporting the current query
    kind: str = "write"
    # (ids, user) -> (lines shown on the confirmation page, a refusal message or None)
    precheck: Callable | None = None
    submit_label: str = "确定"
    # () -> [(why a row is skipped, SQL condition the row must meet)], for actions with several reasons
    blockers: Callable | None = None
    # download-kind: (ids, user, expected, **params) -> ("rows" | "pages", how many): what decides
    # whether the file is made by a worker (views/downloads.py); by default the rows confirmed
    size: Callable | None = None
    # (ids) -> what the parameters' form is prepared for (`form.prepare_for(…)`, e.g. the members of
    # the query, so that a question is asked only when it concerns someone)
    params_scope: Callable | None = None

    def all_blockers(self) -> list[tuple[str, sa.ColumnElement]]:
        out = [(self.condition_label, self.condition())] if self.condition is not None else []
        return out + (list(self.blockers()) if self.blockers is not None else [])


def blocker_code(blockers: list[tuple[str, sa.ColumnElement]]):
    """A column: 0 when a row meets every condition, else the number (1…) of the first it fails."""
    if not blockers:
        return sa.literal(0)
    return sa.case(*[(~cond, n) for n, (_label, cond) in enumerate(blockers, start=1)], else_=0)


@dataclass
class Download:
    """What a download-kind action answers: a file name and its bytes or an iterator of chunks."""

    filename: str
    mimetype: str
    body: object  # bytes | Iterator[bytes]
    # an .xlsx made from an `Export` (batch/export.py): the Export and its sheet's title, so a
    # background run (views/downloads.py) can count the rows as they are written
    export: object = None
    sheet: str = "导出"


def summarize(model, ids: sa.Select, action: BulkAction) -> Summary:
    """Counts of the current query by state and by the reason a row would be skipped, in one
    grouped query (plus one for 汇总金额)."""
    from_states = action.from_states
    blockers = action.all_blockers()
    meets = sa.and_(*[c for _, c in blockers]) if blockers else sa.true()
    inner = (
        sa.select(model.status.label("status"), blocker_code(blockers).label("code"))
        .where(model.id.in_(ids))
        .subquery()
    )
    rows = db.session.execute(
        sa.select(inner.c.status, inner.c.code, sa.func.count()).group_by(inner.c.status, inner.c.code)
    ).all()
    actionable, by_state = 0, {}
    for state, code, n in rows:
        if state in from_states and not code:
            actionable += n
        else:
            reason = blockers[code - 1][0] if state in from_states else f"状态为“{state.label}”"
            by_state[reason] = by_state.get(reason, 0) + n
    summary = Summary(actionable, by_state)
    if action.with_amount:
        headcount, total = db.session.execute(
            sa.select(
                sa.func.count(sa.distinct(model.member_id)), sa.func.coalesce(sa.func.sum(model.amount), 0)
            ).where(model.id.in_(ids), model.status.in_(from_states), meets)
        ).one()
        summary.headcount, summary.total = headcount, Decimal(total).quantize(Decimal("0.01"))
    return summary


def _entity(model) -> str:
    return model.__tablename__


def dml_with_audit(
    dml,
    model,
    action: str,
    user_id: int | None,
    before=None,
    after=None,
    before_columns: dict | None = None,
    returning_ids: bool = False,
):
    """Run an UPDATE/DELETE and audit the rows it touched; return their count (or, with
    `returning_ids`, their ids, for what the caller does to exactly them next).

    `before`/`after` the same for every row: ONE audit row naming all of them (models/audit.py
    insert_grouped_select; a single-record row when it touched one, none when none).
    `before_columns` maps names to columns whose per-row values go into each row's `before` (e.g.
    the old date, read from a self-joined alias in UPDATE … FROM): then a row per record.

    PostgreSQL: one statement, `WITH done AS (dml RETURNING id, …) INSERT INTO audit_log …
    SELECT … FROM done`.  SQLite (single writer, development only): the DML with RETURNING, then
    one INSERT of the audit row(s)."""
    before_columns = before_columns or {}
    dml = dml.returning(model.id, *[col.label(f"b_{k}") for k, col in before_columns.items()])
    session = db.session
    now = utcnow()
    table = AuditLog.__table__
    if session.get_bind().dialect.name == "postgresql":
        done = dml.cte("done")
        if not before_columns:
            logged = (
                insert_grouped_select(
                    action, _entity(model), user_id, done.c.id, json_or_null(before), json_or_null(after), now
                )
                .returning(table.c.entity_id, table.c.entity_ids, table.c.entity_count)
                .cte("logged")
            )
            row = session.execute(sa.select(logged)).first()
            if returning_ids:
                return [] if row is None else ([row.entity_id] if row.entity_id is not None else list(row.entity_ids))
            return 0 if row is None else row.entity_count
        pairs = []
        for k in before_columns:
            pairs += [sa.literal(k, sa.String), done.c[f"b_{k}"]]
        before_expr = sa.func.json_build_object(*pairs).cast(sa.JSON)
        logged = (
            insert_audit_select(action, _entity(model), user_id, done.c.id, before_expr, json_or_null(after), now)
            .returning(table.c.id, table.c.entity_id)
            .cte("logged")
        )
        if returning_ids:
            return list(session.scalars(sa.select(logged.c.entity_id)))
        return session.scalar(sa.select(sa.func.count()).select_from(logged))
    rows = session.execute(dml).all()
    ids = [r[0] for r in rows]
    if not before_columns:
        row = grouped_row(action, _entity(model), ids, user_id, before, after, now)
        audit = [row] if row is not None else []
    else:
        keys = list(before_columns)
        audit = [
            dict(
                created_at=now,
                user_id=user_id,
                action=action,
                entity=_entity(model),
                entity_id=r[0],
                before={k: _jsonable(v) for k, v in zip(keys, r[1:])},
                after=after,
            )
            for r in rows
        ]
    if audit:
        session.execute(sa.insert(table), audit)
    return ids if returning_ids else len(rows)


def json_object(*pairs):
    """A JSON object built in SQL from key, value, key, value …: one per row of an INSERT … SELECT."""
    fn = sa.func.json_build_object if db.session.get_bind().dialect.name == "postgresql" else sa.func.json_object
    return fn(*[sa.literal(p, sa.String) if isinstance(p, str) else p for p in pairs], type_=sa.JSON)


def _jsonable(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def transition(
    model,
    ids: sa.Select,
    from_states,
    to_state,
    user,
    action: str,
    values: dict | None = None,
    after: dict | None = None,
    where: tuple = (),
    returning_ids: bool = False,
):
    """Move the rows of `ids` that are still in `from_states` (and meet `where`) to `to_state`."""
    vals = {"status": to_state, "updated_at": utcnow(), "version": model.version + 1}
    vals.update(values or {})
    guard = model.transition_guard(ids, from_states, to_state) if hasattr(model, "transition_guard") else []
    stmt = (
        sa.update(model)
        .where(model.id.in_(ids), model.status.in_(list(from_states)), *where, *guard)
        .values(**vals)
        .execution_options(synchronize_session=False)
    )
    audit_after = {"status": to_state.value}
    audit_after.update(after or {})
    return dml_with_audit(stmt, model, action, user.id, after=audit_after, returning_ids=returning_ids)


def delete_rows(model, ids: sa.Select, from_states, user, *extra_where) -> int:
    """Delete the rows of `ids` still in `from_states` (and matching `extra_where`)."""
    stmt = (
        sa.delete(model)
        .where(model.id.in_(ids), model.status.in_(list(from_states)), *extra_where)
        .execution_options(synchronize_session=False)
    )
    return dml_with_audit(stmt, model, "delete", user.id)

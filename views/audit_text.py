"""The audit log in the clerks' words (系统管理 → 审计日志): every action, entity and field by its
Chinese label, every value as the screens show it (a state's label, 是/否, a unit's code and name),
and a change as "字段: 旧值 → 新值" — never the JSON the rows keep.

Field labels come from the screens themselves (each model view's column_labels, a relation's label
for its *_id column) and FIELD_LABELS (models/audit.py) for the rest; values of the units, users,
products and members a page names are read with one query per table, whatever the row count."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from flask import current_app, g

from models import LabeledEnum, Member, Policy, Product, db, scoped
from models.audit import ACTION_LABELS, ENTITY_LABELS, FIELD_LABELS, NOISE_FIELDS

from .access import current_user, screens

EMPTY = "（空）"
ARROW = " → "


def action_label(action: str) -> str:
    return ACTION_LABELS.get(action) or f"其他操作（{action}）"


def entity_label(entity: str) -> str:
    return ENTITY_LABELS.get(entity) or f"其他对象（{entity}）"


def _models() -> dict:
    return {m.class_.__tablename__: m.class_ for m in db.Model.registry.mappers if hasattr(m.class_, "__tablename__")}


def field_labels(entity: str) -> dict[str, str]:
    """The Chinese label of every field of `entity` the screens name, plus the shared ones."""
    cache = current_app.extensions.setdefault("audit_field_labels", {})
    if entity not in cache:
        labels = dict(FIELD_LABELS)
        model = _models().get(entity)
        for view in screens():
            if getattr(view, "model", None) is model and model is not None:
                for key, label in (view.column_labels or {}).items():
                    labels[key] = str(label)
                    labels.setdefault(f"{key}_id", str(label))  # the relation's column
        cache[entity] = labels
    return cache[entity]


def field_label(entity: str, key: str) -> str:
    return field_labels(entity).get(key) or f"其他字段（{key}）"


def _column(entity: str, key: str):
    model = _models().get(entity)
    table = getattr(model, "__table__", None)
    return table.c.get(key) if table is not None else None


def _enum_of(column):
    enum_class = getattr(column.type, "enum_class", None) if column is not None else None
    return enum_class if enum_class is not None and issubclass(enum_class, LabeledEnum) else None


def _target_table(column) -> str | None:
    for fk in column.foreign_keys if column is not None else ():
        return fk.column.table.name
    return None


REFERENCED = {  # key without a foreign key (provenance columns) -> the table it names
    "created_by_id": "user",
    "decided_by_id": "user",
    "voided_by_id": "user",
    "issued_by_id": "user",
    "over_age_approved_by_id": "user",
    "import_batch_id": None,
}


def _reference(entity: str, key: str) -> str | None:
    if key in REFERENCED:
        return REFERENCED[key]
    return _target_table(_column(entity, key))


def value_text(entity: str, key: str, value, names: dict | None = None) -> str:
    """One value as the screens show it."""
    if value is None or value == "":
        return EMPTY
    column = _column(entity, key)
    enum_class = _enum_of(column)
    if enum_class is not None:
        try:
            return enum_class(value).label
        except ValueError:
            return str(value)
    if isinstance(value, bool):
        return "是" if value else "否"
    if column is not None and isinstance(column.type, sa.Boolean) and value in (0, 1):
        return "是" if value else "否"  # SQLite's JSON keeps a boolean of INSERT … SELECT as 0/1
    target = _reference(entity, key)
    if target is not None and isinstance(value, int):
        return (names or {}).get((target, value)) or f"编号 {value}"
    if isinstance(value, str) and len(value) >= 16 and value[4:5] == "-" and value[10:11] == "T":
        try:
            return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return value
    if isinstance(value, (date, datetime)):
        return value.strftime("%Y-%m-%d %H:%M" if isinstance(value, datetime) else "%Y-%m-%d")
    if isinstance(value, dict):
        return "，".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)


def change_lines(row, names: dict | None = None) -> tuple[list[str], list[str]]:
    """(修改前, 修改后) of one audit row: for an edit, the old value of each changed field and
    "字段: 旧值 → 新值"; for a new record or a state change, what it holds now; for a deletion,
    what it held."""
    before = row.before if isinstance(row.before, dict) else {}
    after = row.after if isinstance(row.after, dict) else {}
    entity = row.entity
    label = lambda k: field_label(entity, k)  # noqa: E731
    text = lambda k, v: value_text(entity, k, v, names)  # noqa: E731
    if before and after:  # an edit: the fields it changed, and what else the action set
        keys = [k for k in before if k not in NOISE_FIELDS]
        changed = [k for k in keys if k in after and text(k, before[k]) != text(k, after[k])]
        keys = changed or keys  # a field kept as it was is no news (unless nothing changed at all)
        old = [f"{label(k)}: {text(k, before[k])}" for k in keys]
        new = [f"{label(k)}: {text(k, before[k])}{ARROW}{text(k, after.get(k))}" for k in keys]
        extra = [
            f"{label(k)}: {text(k, v)}"
            for k, v in after.items()
            if k not in before and k not in NOISE_FIELDS and v not in (None, "")
        ]
        if row.action == "update":
            extra = []  # an edit's "after" is the whole record: only what changed is news
        return old, new + extra
    if before:
        return [
            f"{label(k)}: {text(k, v)}" for k, v in before.items() if k not in NOISE_FIELDS and v not in (None, "")
        ], []
    return [], [f"{label(k)}: {text(k, v)}" for k, v in after.items() if k not in NOISE_FIELDS and v not in (None, "")]


def referenced_names(rows) -> dict:
    """{(table, id): its name} for every unit, user, product, member … the rows' values name: one
    query per table."""
    wanted: dict[str, set] = {}
    for row in rows:
        for part in (row.before, row.after):
            if not isinstance(part, dict):
                continue
            for key, value in part.items():
                target = _reference(row.entity, key) if isinstance(value, int) else None
                if target is not None:
                    wanted.setdefault(target, set()).add(value)
    models = _models()
    names = {}
    for table, ids in wanted.items():
        model = models.get(table)
        if model is None:
            continue
        for obj in db.session.scalars(sa.select(model).where(model.id.in_(sorted(ids)))):
            names[(table, obj.id)] = str(obj)
    return names


def page_names(rows) -> dict:
    """referenced_names of a page's rows, worked out once per request."""
    key = id(rows)
    cached = g.get("audit_names")
    if cached is None or cached[0] != key:
        g.audit_names = cached = (key, referenced_names(list(rows)))
    return cached[1]


def records_text(count: int) -> str:
    """What a grouped row's 对象编号 says: how many records the action touched."""
    return f"共 {count:,} 条"


SCREEN_OF = {"member": "member_query", "policy": "policies"}  # the screen a record opens on, by table


def record_screen(entity: str):
    """The screen that shows a record of `entity` to the current user (its details page), or None."""
    model = _models().get(entity)
    views = [v for v in screens() if getattr(v, "model", None) is model and model is not None]
    views.sort(key=lambda v: v.endpoint != SCREEN_OF.get(entity))
    for view in views:
        if view.is_accessible() and getattr(view, "can_view_details", False):
            return view
    return None


def record_names(entity: str, ids: list[int]) -> dict:
    """{id: what the screens call it} for a page of records of `entity` the current user may see
    (one query, through the one scope filter): a member's number and name, a policy's member,
    product and number, else the record's own name."""
    if not ids:
        return {}
    if entity == "policy":
        stmt = (
            sa.select(Policy.id, Member.member_no, Member.name, Product.name, Policy.policy_no)
            .join(Member, Member.id == Policy.member_id)
            .join(Product, Product.id == Policy.product_id)
            .where(Policy.id.in_(ids))
        )
        rows = db.session.execute(scoped(stmt, Policy, current_user()))
        return {r[0]: " ".join(str(v) for v in r[1:] if v) for r in rows}
    model = _models().get(entity)
    if model is None or model.__str__ is object.__str__:
        return {}
    try:
        stmt = scoped(sa.select(model).where(model.id.in_(ids)), model, current_user())
    except TypeError:  # a table without an org scope: its numbers alone
        return {}
    return {obj.id: str(obj) for obj in db.session.scalars(stmt)}

"""The SQLAlchemy handle, enum columns with Chinese labels, and the shared column mixins."""

from __future__ import annotations

import enum
from contextvars import ContextVar
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=sa.MetaData(naming_convention=NAMING_CONVENTION))


def utcnow() -> datetime:
    """Naive UTC timestamp (both databases store it the same way)."""
    return datetime.now(UTC).replace(tzinfo=None)


class LabeledEnum(str, enum.Enum):
    """A state or kind stored as its English value and shown by its Chinese label."""

    def __new__(cls, value: str, label: str):
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.label = label
        return obj

    def __str__(self) -> str:  # what Flask-Admin and templates print
        return self.label

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        return [(m.value, m.label) for m in cls]

    @classmethod
    def coerce(cls, value):
        if value is None or value == "" or isinstance(value, cls):
            return value or None
        return cls(value)


def enum_type(enum_cls: type[LabeledEnum]) -> sa.Enum:
    return sa.Enum(
        enum_cls,
        native_enum=False,
        length=20,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
        create_constraint=True,
        name=enum_cls.__name__.lower(),
    )


class Timestamps:
    created_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)
    updated_at = sa.Column(sa.DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class Versioned:
    """Optimistic concurrency: every UPDATE checks and bumps `version`."""

    version = sa.Column(sa.Integer, nullable=False, default=1, server_default="1")

    @sa.orm.declared_attr.directive
    def __mapper_args__(cls):
        return {"version_id_col": cls.version}


# --- SQLite: a writing transaction takes the write lock when it begins --------------------------------

_BEGIN_IMMEDIATE: ContextVar[bool] = ContextVar("begin_immediate", default=False)


def sqlite_begin(conn) -> None:
    """The engine's "begin" event on SQLite: SQLAlchemy, not the driver, opens transactions.  A
    transaction that reads first and writes later cannot wait for another writer (SQLite answers
    "database is locked" at once, whatever busy_timeout says), so one that will write begins as
    BEGIN IMMEDIATE (`begin_write`): it waits up to busy_timeout for the lock, then holds it."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if _BEGIN_IMMEDIATE.get() else "BEGIN")


def begin_write(session=None) -> None:
    """SQLite: end the session's transaction and begin the next one as a writer (BEGIN IMMEDIATE).
    Call before the reads a write depends on.  PostgreSQL: nothing (its row locks and unique keys
    do the work; the transaction under way, with any lock it holds, goes on)."""
    session = session or db.session
    if session.get_bind().dialect.name != "sqlite":
        return
    session.rollback()
    token = _BEGIN_IMMEDIATE.set(True)
    try:
        session.connection()
    finally:
        _BEGIN_IMMEDIATE.reset(token)

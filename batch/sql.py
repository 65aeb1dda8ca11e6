"""Set-based SQL helpers that keep the statement count independent of the row count."""

from __future__ import annotations

import json
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSON


def dialect(session) -> str:
    return session.get_bind().dialect.name


def in_values(session, column, values: list, item_type=sa.String):
    """`column IN (values)` as one bound parameter, a JSON array: on PostgreSQL
    `column = ANY(ARRAY(SELECT json_array_elements_text(…)))`, on SQLite json_each.

    On PostgreSQL the JSON text is bound as one string (psycopg adapts a Python list of 50,000
    strings element by element, several times slower), and the array built by a sub-select is
    of a size the planner cannot see, so it probes the column's index with the sorted array
    instead of scanning the whole table to hash-match a large array literal."""
    payload = json.dumps(list(values), ensure_ascii=False)
    if dialect(session) == "postgresql":
        items = sa.cast(
            sa.func.json_array_elements_text(sa.cast(sa.bindparam(None, payload, type_=sa.Text), JSON)), item_type
        )
        return column == sa.any_(sa.func.array(sa.select(items).scalar_subquery()))
    table = sa.func.json_each(sa.bindparam(None, payload)).table_valued("value")
    return column.in_(sa.select(table.c.value))


def in_select(session, column, select: sa.Select):
    """`column IN (select)` that PostgreSQL answers by probing the column's index with the
    select's values (`column = ANY(ARRAY(select))`: the planner cannot see the array's size), as
    `in_values` does for a list: for a batch's few ten thousand keys out of millions of rows, a
    hash join over a scan of the whole table is what it would pick otherwise.  SQLite: IN."""
    if dialect(session) == "postgresql":
        return column == sa.any_(sa.func.array(select.scalar_subquery()))
    return column.in_(select)


class CopyRows(list):
    """Rows for `bulk_insert` whose every value is exactly of its column's Python type or None
    (str for String and non-native Enum columns, int for Integer, bool, datetime.date for Date,
    naive datetime for DateTime, Decimal for Numeric): on PostgreSQL they go by binary COPY, which spares the
    driver the text formatting of each value (5× less CPU on the client) and the server the
    parsing of dates and numbers.  A plain list goes by text COPY, which takes anything."""


_BINARY_TYPES = (
    (sa.Boolean, "bool"),
    (sa.Float, None),  # a Numeric, but its values are floats
    (sa.Numeric, "numeric"),  # decimal.Decimal (an int is taken too)
    (sa.BigInteger, "int8"),
    (sa.SmallInteger, "int2"),
    (sa.Integer, "int4"),
    (sa.DateTime, "timestamp"),
    (sa.Date, "date"),
    (sa.String, "text"),
)


def _binary_type(column: sa.Column) -> str | None:
    t = column.type
    if isinstance(t, sa.Enum) and t.native_enum:
        return None
    if isinstance(t, sa.DateTime) and t.timezone:
        return None
    for cls, name in _BINARY_TYPES:  # String: Enum (non-native), Text and VARCHAR(n) alike
        if isinstance(t, cls):
            return name
    return None


@contextmanager
def driver_errors(statement: str):
    """A statement run on the driver's own connection (COPY) fails as SQLAlchemy's statements do:
    a unique violation is `sqlalchemy.exc.IntegrityError`, which the callers handle (a psycopg
    UniqueViolation would escape them as a 500)."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise sa.exc.DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


def bulk_insert(session, table: sa.Table, columns: list[str], rows: list[tuple]) -> int:
    """Insert many rows with one statement: COPY on PostgreSQL (binary for `CopyRows`), one
    executemany on SQLite."""
    if not rows:
        return 0
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        cols = ", ".join(f'"{c}"' for c in columns)
        types = [_binary_type(table.c[c]) for c in columns] if isinstance(rows, CopyRows) else [None]
        binary = None not in types
        sql = f'COPY "{table.name}" ({cols}) FROM STDIN' + (" (FORMAT BINARY)" if binary else "")
        with driver_errors(sql), raw.cursor() as cur, cur.copy(sql) as copy:
            if binary:
                copy.set_types(types)
            for row in rows:
                copy.write_row(row)
        return len(rows)
    cols = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})', rows)
    return len(rows)

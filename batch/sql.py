"""Set-based SQL helpers that keep the statement count independent of the row count."""
from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY


def dialect(session) -> str:
    return session.get_bind().dialect.name


def in_values(session, column, values: list, item_type=sa.String):
    """`column IN (values)` as one bound parameter: an array on PostgreSQL, json_each on SQLite."""
    if dialect(session) == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=ARRAY(item_type)))
    table = sa.func.json_each(sa.bindparam(None, json.dumps(list(values), ensure_ascii=False))).table_valued("value")
    return column.in_(sa.select(table.c.value))


def bulk_insert(session, table: sa.Table, columns: list[str], rows: list[tuple]) -> int:
    """Insert many rows with one statement: COPY on PostgreSQL, one executemany on SQLite."""
    if not rows:
        return 0
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        cols = ", ".join(f'"{c}"' for c in columns)
        with raw.cursor() as cur:
            with cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
        return len(rows)
    cols = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})', rows)
    return len(rows)

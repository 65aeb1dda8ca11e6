"""The unit a member or a policy belongs to, kept by PostgreSQL once per statement (issue 13).

`member.org_id` and `policy.org_id` name an org that exists, as a foreign key would say it; but a
foreign key checks (and key-share locks) the referenced org once per ROW, and a 50,000-row 入会 file
names the same unit 50,000 times: that alone cost 0.7–2 s of the write.  On PostgreSQL the two
references are therefore kept by statement-level triggers instead, with the same guarantees:

  * INSERT/UPDATE (COPY included) of member or policy: the distinct orgs the statement's rows name
    are locked FOR KEY SHARE (as the foreign key's check locks them, so that a concurrent DELETE of
    the org waits for this transaction) and must all exist, else the statement fails with
    foreign_key_violation (SQLSTATE 23503: sqlalchemy.exc.IntegrityError, as before);
  * DELETE/UPDATE of org: an org that no longer exists after the statement may not be named by any
    member or policy (found through their org_id indexes), else foreign_key_violation.

One query per statement whatever its row count.  The foreign keys stay declared on the models (the
ORM joins by them, and SQLite, which never enforced them — no PRAGMA foreign_keys —, keeps them as
documentation); on PostgreSQL they are not created (`ddl_if`) and migration 0020 drops them.
tests/test_integrity.py shows that no write path leaves a member or policy without its unit.
"""

from __future__ import annotations

import sqlalchemy as sa

from .member import Member
from .policy import Policy

# (table, column) whose reference to org.id PostgreSQL keeps by these triggers, not by a foreign key
STATEMENT_CHECKED = (("member", "org_id"), ("policy", "org_id"))

_REFERENCING = tuple(table for table, _column in STATEMENT_CHECKED)

_MISSING = """
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"',
                TG_TABLE_NAME, 'fk_' || TG_TABLE_NAME || '_org_id_org'
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME,
                  CONSTRAINT = 'fk_' || TG_TABLE_NAME || '_org_id_org',
                  DETAIL = format('Key (org_id)=(%s) is not present in table "org".', missing);
    END IF;
    RETURN NULL;
END $$"""

FUNCTIONS = [
    # INSERT (COPY too), once per statement: the distinct orgs its rows name, key-share locked as a
    # foreign key's check locks them, must all exist
    """CREATE OR REPLACE FUNCTION org_exists_for_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing integer;
BEGIN
    PERFORM 1 FROM org WHERE id IN (SELECT DISTINCT org_id FROM new_rows) FOR KEY SHARE OF org;
    SELECT n.org_id INTO missing FROM (SELECT DISTINCT org_id FROM new_rows) n
        WHERE NOT EXISTS (SELECT 1 FROM org o WHERE o.id = n.org_id) LIMIT 1;"""
    + _MISSING,
    # UPDATE that moves a row to another unit (rare: 会员调动): that one org
    """CREATE OR REPLACE FUNCTION org_exists_for_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing integer;
BEGIN
    PERFORM 1 FROM org WHERE id = NEW.org_id FOR KEY SHARE OF org;
    IF NOT FOUND THEN
        missing := NEW.org_id;
    END IF;"""
    + _MISSING,
    # DELETE of orgs (or a changed org id): none of those gone may still be named
    """CREATE OR REPLACE FUNCTION org_not_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone integer;
    tab text;
BEGIN
    FOREACH tab IN ARRAY ARRAY[__TABLES__] LOOP
        EXECUTE format('SELECT o.id FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM org k WHERE k.id = o.id) '
                       'AND EXISTS (SELECT 1 FROM %I r WHERE r.org_id = o.id) LIMIT 1', tab) INTO gone;
        IF gone IS NOT NULL THEN
            RAISE EXCEPTION 'update or delete on table "org" violates foreign key constraint "%" on table "%"',
                    'fk_' || tab || '_org_id_org', tab
                USING ERRCODE = 'foreign_key_violation', TABLE = 'org', CONSTRAINT = 'fk_' || tab || '_org_id_org',
                      DETAIL = format('Key (id)=(%s) is still referenced from table "%s".', gone, tab);
        END IF;
    END LOOP;
    RETURN NULL;
END $$""".replace("__TABLES__", ", ".join(f"'{t}'" for t in _REFERENCING)),
]


def create_statements() -> list[str]:
    """The functions and triggers, in order (db.create_all and migration 0020 run the same text)."""
    out = list(FUNCTIONS)
    for table in _REFERENCING:
        out.append(
            f"CREATE TRIGGER {table}_org_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
            "FOR EACH STATEMENT EXECUTE FUNCTION org_exists_for_rows()"
        )
        out.append(
            f"CREATE TRIGGER {table}_org_update AFTER UPDATE OF org_id ON {table} FOR EACH ROW "
            "WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id) EXECUTE FUNCTION org_exists_for_row()"
        )
    out.append(
        "CREATE TRIGGER org_refs_delete AFTER DELETE ON org REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION org_not_referenced()"
    )
    out.append(
        "CREATE TRIGGER org_refs_update AFTER UPDATE ON org REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION org_not_referenced()"
    )
    return out


def drop_statements() -> list[str]:
    out = ["DROP TRIGGER IF EXISTS org_refs_delete ON org", "DROP TRIGGER IF EXISTS org_refs_update ON org"]
    for table in _REFERENCING:
        out += [f"DROP TRIGGER IF EXISTS {table}_org_{e} ON {table}" for e in ("insert", "update")]
    out += [
        "DROP FUNCTION IF EXISTS org_not_referenced()",
        "DROP FUNCTION IF EXISTS org_exists_for_row()",
        "DROP FUNCTION IF EXISTS org_exists_for_rows()",
    ]
    return out


for _table in (Member.__table__, Policy.__table__):
    (_fk,) = _table.c.org_id.foreign_keys
    _fk.constraint.ddl_if(dialect="sqlite")

# db.create_all on PostgreSQL: once the last of the three tables exists
for _sql in create_statements():
    sa.event.listen(Policy.__table__, "after_create", sa.DDL(_sql.replace("%", "%%")).execute_if(dialect="postgresql"))


def skip_statement_checked(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's include_object: on PostgreSQL these foreign keys are triggers, not constraints."""
    if type_ == "foreign_key_constraint":
        table = obj.table if obj is not None else compare_to.table
        cols = {c.name for c in (obj or compare_to).columns}
        if any(table.name == t and cols == {c} for t, c in STATEMENT_CHECKED):
            return False
    return True

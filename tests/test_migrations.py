"""One Alembic history: `upgrade` on an empty database gives exactly the schema of the models."""

import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from app import create_app
from models import db
from models.integrity import skip_statement_checked


@pytest.fixture
def empty_database(db_url, tmp_path):
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"huzhu_mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield db_url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.committed
# PostgreSQL gives back policy.phase's expression in its own spelling (casts, ARRAY[…]); Alembic
# cannot compare generated expressions and only warns (tests/test_indexes.py checks the values)
@pytest.mark.filterwarnings("ignore:Computed default on policy.phase cannot be modified")
def test_upgrade_on_an_empty_database_gives_the_models_schema(empty_database):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database, "SECRET_KEY": "x", "SMS_BACKEND": "memory"})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True, "include_object": skip_statement_checked}),
                db.metadata,
            )
        assert diff == []
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {
            "org",
            "user",
            "product",
            "member",
            "policy",
            "termination_application",
            "transfer_application",
            "change_application",
            "receipt",
            "claim",
            "import_batch",
            "import_row",
            "audit_log",
        } <= tables
        downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()


@pytest.mark.committed
def test_unique_keys_clerks_rely_on_exist(empty_database):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database, "SECRET_KEY": "x", "SMS_BACKEND": "memory"})
    with app.app_context():
        upgrade()
        insp = sa.inspect(db.engine)

        def unique_cols(table):
            cols = {tuple(u["column_names"]) for u in insp.get_unique_constraints(table)}
            cols |= {tuple(i["column_names"]) for i in insp.get_indexes(table) if i["unique"]}
            return cols

        assert ("member_no",) in unique_cols("member")
        assert ("id_number",) in unique_cols("member")
        assert ("policy_no",) in unique_cols("policy")
        assert ("receipt_no",) in unique_cols("receipt")
        assert ("code",) in unique_cols("org")
        # the enrolment rules (IN_FLIGHT, DUPLICATE) by phase, the lists and 即将到期 (issue 13's index diet)
        assert ("member_id", "product_id") in unique_cols("policy")
        assert ("member_id", "product_id", "expected_effective_date") in unique_cols("policy")
        indexed = {tuple(i["column_names"]) for i in insp.get_indexes("policy")}
        assert ("org_id", "phase", "product_id", "id") in indexed
        assert ("expiry_date", "id") in indexed
        db.engine.dispose()

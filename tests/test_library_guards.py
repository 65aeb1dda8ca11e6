"""Guards for what we take from Flask-Admin and Flask beyond their documented API.

Each test names what we rely on and fails with a message saying what to change when an upgraded
library drops it.  Where a public hook exists we use it instead (Flask-Admin's `get_list(execute=
False)` for the page's ids first, Flask's `get_flashed_messages`/`flash` for the one message of 入会);
those get behaviour tests here too, so that the reason for the code stays visible.
"""

from __future__ import annotations

import inspect

from conftest import csrf_token, login_as
from flask import g
from flask_admin.babel import gettext
from flask_admin.contrib.sqla import validators as fa_validators

from models import Policy, User, db
from views.base import ScopedAjaxLoader, ScopedModelView


def _user(username):
    return db.session.scalar(db.select(User).where(User.username == username))


def test_a_list_page_reads_the_pages_ids_first_through_get_list(app):
    """views/base.py ScopedModelView.get_list: Flask-Admin's public get_list(execute=False) gives
    the sorted, paged query; we turn it into `id IN (SELECT id … LIMIT n)`."""
    view = app.extensions["admin"][0]
    policies = next(v for v in view._views if v.endpoint == "policies")
    with app.test_request_context("/admin/policies/"):
        g.user = _user("clerk1")
        count, query = policies.get_list(0, None, False, None, None, execute=False)
        sql = str(query.statement.compile(compile_kwargs={"literal_binds": True})).upper()
        assert "IN (SELECT" in sql and "LIMIT 20" in sql, sql
        _, rows = policies.get_list(0, None, False, None, None)
        assert len(rows) == min(count, 20) and all(isinstance(p, Policy) for p in rows)


def test_flask_admin_still_builds_ajax_loaders_through_create_ajax_loader(app):
    class Guard(ScopedModelView):
        form_ajax_refs = {"member": {"fields": ["name"]}}

    with app.app_context():
        view = Guard(Policy, db.session, endpoint="guard_ajax")
        loader = view._form_ajax_refs.get("member")
    assert isinstance(loader, ScopedAjaxLoader), (
        "Flask-Admin no longer builds form_ajax_refs loaders through ModelView._create_ajax_loader: "
        "ajax drop-downs would list rows outside the user's scope. Scope them another way in views/base.py."
    )


def test_flask_admin_still_says_whether_a_view_has_a_search_box(app):
    class Searching(ScopedModelView):
        column_searchable_list = ["username"]

    with app.app_context():
        assert Searching(User, db.session, endpoint="guard_search")._search_supported is True
        assert ScopedModelView(User, db.session, endpoint="guard_no_search")._search_supported is False, (
            "Flask-Admin's ModelView._search_supported is gone: views/panel.py reads it to tell an old "
            "`search=` link from a list that has a search box."
        )


def test_the_admin_still_lists_its_views_in__views(app):
    endpoints = {v.endpoint for v in app.extensions["admin"][0]._views}
    assert {"members", "policies", "batches"} <= endpoints, (
        "flask_admin.Admin._views is gone: views.access.screens() reads it (首页's to-dos, the audit "
        "log's field labels, the background file's screen)."
    )
    with app.test_request_context():
        from views.access import screens

        assert [v.endpoint for v in screens()] == [v.endpoint for v in app.extensions["admin"][0]._views]


def test_the_unique_validator_still_skips_the_record_being_edited_through_form__obj():
    source = inspect.getsource(fa_validators.Unique)
    assert "form._obj" in source, (
        "Flask-Admin's Unique validator no longer reads form._obj: views/base.py AdminForm sets it so "
        "that saving a record unchanged is not called a duplicate of itself."
    )


def test_flask_admin_still_flashes_its_generic_created_message(app, client):
    """入会 replaces it with the one that names the member number (views/members.py create_view);
    another screen shows it as Flask-Admin words it."""
    login_as(app, client, "admin")
    page = client.post(
        "/admin/products/new/",
        data={
            "csrf_token": csrf_token(client),
            "code": "P98",
            "name": "守卫测试产品",
            "price": "10.00",
            "max_shares": "1",
            "term_months": "12",
            "gender_restriction": "",
            "active": "y",
        },
    )
    assert page.status_code == 302
    with app.test_request_context():
        generic = gettext("Record was successfully created.")
    assert generic in client.get(page.headers["Location"]).get_data(as_text=True), (
        "Flask-Admin's create_view no longer flashes 'Record was successfully created.': "
        "views/members.py create_view filters that message out; change the text it looks for."
    )


def test_our_translations_come_after_flask_admins_own(app):
    from flask_admin import babel as fa_babel

    from views import TRANSLATIONS

    dirs = fa_babel.domain.translation_directories
    assert dirs[-1] == str(TRANSLATIONS), (
        "views/__init__.py _use_project_catalog_last no longer puts our catalog last: the manual's "
        "button names (保存并创建下一个) would lose to Flask-Admin's own zh_Hans_CN strings."
    )


def test_get_list_still_takes_execute_and_page_size():
    from flask_admin.contrib.sqla import ModelView

    params = inspect.signature(ModelView.get_list).parameters
    assert {"execute", "page_size"} <= set(params), (
        "Flask-Admin's ModelView.get_list lost execute= or page_size=: views/base.py get_list needs both."
    )


def test_a_sqlalchemy_select_still_tells_whether_it_is_ordered():
    import sqlalchemy as sa

    ordered = sa.select(Policy.id).order_by(Policy.id)
    assert ordered._order_by_clauses and not sa.select(Policy.id)._order_by_clauses, (
        "SQLAlchemy's Select._order_by_clauses is gone: actions/exports.py keeps the screen's order "
        "when the query has one and orders by its own columns otherwise."
    )

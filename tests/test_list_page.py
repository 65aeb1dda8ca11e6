"""The list page built in Python (views/list_page.py) shows what Flask-Admin's own list template
showed: each part is compared here with Flask-Admin's code and macros on the same request, so a
library upgrade that changes them fails here, not silently on the screen."""

from __future__ import annotations

import re

import pytest
from conftest import login_as
from flask import g, render_template_string

from models import User, db
from views import list_page
from views.access import screens


def _user(username):
    return db.session.scalar(db.select(User).where(User.username == username))


def _view(app, endpoint):
    return next(v for v in app.extensions["admin"][0]._views if v.endpoint == endpoint)


def _same(a, b):
    """Equal as a browser draws them: runs of whitespace are one space."""
    return re.sub(r"\s+", " ", str(a)).strip() == re.sub(r"\s+", " ", str(b)).strip()


def test_no_list_screen_uses_a_flask_admin_list_feature_the_page_does_not_draw(app):
    """The page draws no filter bar, search box, in-place editing, modal window, "with selected"
    action or extra row icon: a screen that turns one on would lose it silently; this says so."""
    with app.test_request_context():
        g.user = _user("admin")
        views = [v for v in screens() if hasattr(v, "column_editable_list")]
        assert views
        for v in views:
            assert not v._filters and not v._search_supported, v.endpoint
            assert not (v.create_modal or v.edit_modal or v.details_modal), v.endpoint
            assert not v.get_actions_list()[0], v.endpoint
            assert not v.column_extra_row_actions, v.endpoint


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?page=2",
        "?sort=1&desc=1&page_size=50",
        "?status=NEW&name=%E5%BC%A0%20%26x&page=1",
        "?page_size=7&sort=0",
        "?ids=1,2&search=x",
    ],
)
def test_every_link_of_the_list_is_flask_admins_list_url(app, query):
    view = _view(app, "policies")
    with app.test_request_context("/admin/policies/" + query):
        g.user = _user("clerk1")
        args = view._get_list_extra_args()
        urls = list_page.ListUrls(view, args)
        assert urls.url() == view._get_list_url(args)
        for change in ({"page": 3}, {"page": None}, {"sort": 2, "sort_desc": None}, {"sort": 1, "sort_desc": 1}):
            assert urls.url(**change) == view._get_list_url(args.clone(**change)), change
        assert urls.url(page_size=100) == view._get_list_url(args.clone(page_size=100))


@pytest.mark.parametrize("page,pages", [(0, 0), (0, 1), (0, 2), (0, 9), (4, 9), (8, 9), (5, 501), (2, 5)])
def test_the_pager_is_flask_admins_pager(app, page, pages):
    view = _view(app, "policies")
    with app.test_request_context("/admin/policies/?status=NEW"):
        g.user = _user("clerk1")
        args = view._get_list_extra_args()
        urls = list_page.ListUrls(view, args)

        def generator(p):
            return view._get_list_url(args.clone(page=p if p else None))

        theirs = render_template_string(
            "{% import 'admin/lib.html' as lib with context %}{{ lib.pager(page, pages, generator) }}",
            page=page,
            pages=pages,
            generator=generator,
            admin_view=view,
            get_url=view.get_url,
        )
        assert _same(list_page.pager_html(urls, page, pages, [], 20), theirs)
        theirs = render_template_string(
            "{% import 'admin/lib.html' as lib with context %}{{ lib.simple_pager(page, True, generator) }}",
            page=page,
            generator=generator,
            admin_view=view,
            get_url=view.get_url,
        )
        assert _same(list_page.pager_html(urls, page, None, [None] * 20, 20), theirs)


def test_the_tabs_are_flask_admins_export_link_and_page_size_menu(app):
    from flask_admin.babel import gettext, ngettext

    view = _view(app, "policies")
    with app.test_request_context("/admin/policies/?status=NEW&page=1"):
        g.user = _user("clerk1")
        args = view._get_list_extra_args()
        urls = list_page.ListUrls(view, args)
        theirs = render_template_string(
            "{% import 'admin/model/layout.html' as m with context %}{{ m.export_options() }}"
            "{{ m.page_size_form(page_size_url, admin_view.page_size_options) }}",
            admin_view=view,
            get_url=view.get_url,
            page_size=20,
            page_size_url=lambda s: view._get_list_url(args.clone(page_size=s or view.page_size)),
            _gettext=gettext,
            _ngettext=ngettext,
        )
        assert _same(list_page.export_html(view) + list_page.page_size_html(view, urls, 20), theirs)


def test_each_rows_icons_are_flask_admins_row_action_macros(app, client):
    """views/list_page.py RowActions draws 查看/编辑/删除 as templates/admin/model/row_actions.html
    does (with the delete asking through data-confirm), for an editable and a locked row."""
    from models import Member, MemberStatus

    view = _view(app, "members")
    with app.test_request_context("/admin/members/?status=NEW"):
        g.user = _user("clerk1")
        rows = {
            locked: db.session.scalar(db.select(Member).where(Member.status == status))
            for locked, status in ((False, MemberStatus.NEW), (True, MemberStatus.CONFIRMED))
        }
        return_url = view._get_list_url(view._get_list_extra_args())
        actions = list_page.RowActions(view, {"return_url": return_url})
        delete_form = g._list_delete_form = view.delete_form()
        for locked, row in rows.items():
            shown = [
                a for a in view.get_list_row_actions() if not (locked and type(a).__name__ in view.EDITING_ROW_ACTIONS)
            ]
            theirs = render_template_string(
                "{% import 'admin/model/row_actions.html' as row_actions with context %}"
                "{% for action in shown %}{{ action.render_ctx(get_pk_value(row), row) }}{% endfor %}",
                shown=shown,
                row=row,
                get_pk_value=view.get_pk_value,
                return_url=return_url,
                delete_form=delete_form,
                admin_view=view,
                get_url=view.get_url,
                _gettext=__import__("flask_admin.babel", fromlist=["gettext"]).gettext,
            )
            assert _same(actions.html(row), theirs), locked
            assert ("/edit/" in theirs) is not locked


def test_a_cell_is_flask_admins_list_value(app):
    """The per-column formatter table gives each cell what Flask-Admin's get_list_value gives."""
    from markupsafe import escape

    checked = set()
    for endpoint in (
        "policies",
        "members",
        "receipts",
        "audit",
        "transfers",
        "changes",
        "terminations",
        "users",
        "orgs",
    ):
        view = _view(app, endpoint)
        with app.test_request_context(f"/admin/{endpoint}/"):
            g.user = _user("admin")
            _, data = view.get_list(0, None, False, None, None, page_size=20)
            context = {"return_url": f"/admin/{endpoint}/", "data": data, "admin_view": view}
            checked.update(endpoint for _ in data[:1])
            for c, _ in view._list_columns:
                value = list_page._cell_value(view, c)
                for row in data:
                    ours = escape(value(context, row))
                    theirs = escape(
                        view._get_list_value(context, row, c, view.column_formatters, view.column_type_formatters)
                    )
                    assert ours == theirs, (endpoint, c)
    assert {"policies", "members", "receipts", "audit", "users", "orgs"} <= checked


def test_the_list_page_imports_no_macro_library(app, client):
    """The point of the page (DESIGN.md §11): no `import … with context` of Flask-Admin's macro
    libraries on a list, and the same page as before for the clerk."""
    from pathlib import Path

    text = (Path(app.root_path) / "templates" / "admin" / "list_with_actions.html").read_text()
    assert "{% import" not in text and "url_for(" not in text and "get_url(" not in text
    login_as(app, client, "clerk1")
    html = client.get("/admin/policies/?status=NEW").get_data(as_text=True)
    assert "列表 (" in html and "【搜索】" in html
    assert html.count('<td class="list-buttons-column">') == html.count("<tr>") - 1


def test_the_list_count_is_exact_and_a_page_that_is_not_full_runs_no_count(app, client):
    """views/base.py get_list: the page first; its rows are the count when it is the last page
    (not full), else the capped COUNT runs.  "列表 (n)" and the pager stay what they were."""
    import sqlalchemy as sa

    from models import Member

    login_as(app, client, "clerk1")
    with app.app_context():
        clerk = _user("clerk1")
        total = db.session.scalar(sa.select(sa.func.count()).where(Member.org_id == clerk.org_id))
        engine = db.engine
    assert total > 20
    counts = []

    def grab(conn, cursor, statement, *args):
        if "count(" in statement.lower():
            counts.append(statement)

    sa.event.listen(engine, "before_cursor_execute", grab)
    try:
        last = (total - 1) // 20
        for query, runs_count in (
            ("", True),  # a full first page: COUNT
            (f"?page={last}", total % 20 == 0),  # the last page: its rows tell the count
            ("?page=999", True),  # beyond the end: COUNT
            ("?page_size=100", total >= 100),
        ):
            counts.clear()
            html = client.get("/admin/members/" + query).get_data(as_text=True)
            assert f"列表 ({total})" in html, query
            assert bool(counts) is runs_count, query
    finally:
        sa.event.remove(engine, "before_cursor_execute", grab)

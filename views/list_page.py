"""A list screen's page, computed in Python once per request (DESIGN.md §11: list p95 ≤ 25 ms).

Flask-Admin's list template re-imports its macro libraries with the template's context for every
request (a dozen times), builds each sort header's and pager link's URL through `url_for`, and
reaches every cell through a context-passing call from the template: at a page of 20 rows that
was most of the request.  Here the page's parts are built with plain Python from one base URL
and one formatter per column, and templates/admin/list_with_actions.html only places them.

What the page shows is Flask-Admin's (2.2, bootstrap4): the same tabs (列表 (n), 添加, 导出, page
size), sort headers, cells (the view's column formatters, choices and type formatters), row icons
(templates/admin/model/row_actions.html), pager and empty-list message; tests/test_list_page.py
compares each part with what Flask-Admin's own code and macros produce.  Flask-Admin features
the screens do not use (its filter bar, search box, in-place editing, modal windows and
"with selected" actions) are not drawn: tests/test_list_page.py fails when a screen turns one on.
"""

from __future__ import annotations

from math import ceil
from urllib.parse import quote, urlencode

from flask import current_app, g, request, url_for
from flask_admin.babel import gettext, ngettext
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

# Flask-Admin's placeholder address of a dropdown toggle, the 列表 tab and a disabled pager link:
# kept so the list looks and behaves as it always has (bootstrap's own script handles the click;
# the Content-Security-Policy runs no javascript: address, so it does nothing by itself).
NO_LINK = "javascript:void(0)"
ROW_ID = "__ROW_ID__"  # a stand-in for a row's id while its URLs are built (real ids are integers)
_URL_SAFE = "!$'()*,/:;?@"  # what werkzeug's url_for leaves unquoted in a query string


def query_string(items) -> str:
    """`url_for`'s query string of (name, value) pairs, None values left out."""
    return urlencode([(k, v) for k, v in items if v is not None], safe=_URL_SAFE)


def static_url(filename: str, v: str | None = None, endpoint: str = "admin") -> str:
    """Flask-Admin's `admin_static.url(filename=…, v=…)`: the same address, built by url_for once
    per process and mount point (it depends on nothing else)."""
    cache = current_app.extensions.setdefault("list_page_static_urls", {})
    key = (request.script_root, endpoint, filename, v)
    url = cache.get(key)
    if url is None:
        url = cache[key] = url_for(f"{endpoint}.static", filename=filename, v=v)
    return url


def admin_static_url(endpoint: str, *args, **kwargs) -> str:
    """templates/admin/static.html's `url(filename=…, v=…)` (anything else: url_for as it is)."""
    if args or set(kwargs) - {"filename", "v"}:
        return url_for(f"{endpoint}.static", *args, **kwargs)
    return static_url(kwargs["filename"], kwargs.get("v"), endpoint)


class ListUrls:
    """Flask-Admin's `_get_list_url(view_args)` for every link of one page, by string formatting
    from the one `url_for` of the list itself."""

    def __init__(self, view, args):
        self.view, self.args = view, args
        self.base = view.get_url(".index_view")
        self._filters = view._get_filters(args.filters)

    def url(self, **changes) -> str:
        a = self.args.clone(**changes) if changes else self.args
        items = [("page", a.page or None), ("sort", a.sort), ("desc", 1 if a.sort_desc else None), ("search", a.search)]
        items += list(a.extra_args.items())
        items.append(("page_size", self.view.get_safe_page_size(a.page_size)))
        items += self._filters.items()  # (a page's links never change its filters)
        qs = query_string(_dedupe(items))
        return self.base + ("?" + qs if qs else "")


def _dedupe(items):
    """Later values win, in the first one's place (a dict's update, as url_for's keywords)."""
    out: dict = {}
    for k, v in items:
        out[k] = v
    return list(out.items())


def build(view) -> dict:
    """Everything templates/admin/list_with_actions.html shows, for the current request."""
    args = view._get_list_extra_args()
    sort_column = view._get_column_by_idx(args.sort)
    page_size = view.get_safe_page_size(args.page_size)
    count, data = view.get_list(
        args.page,
        sort_column[0] if sort_column is not None else None,
        args.sort_desc,
        args.search,
        args.filters,
        page_size=page_size,
    )
    if count is not None and page_size:
        num_pages = int(ceil(count / float(page_size)))
    elif not page_size:
        num_pages = 0
    else:
        num_pages = None
    urls = ListUrls(view, args)
    return_url = urls.url()
    context = {"return_url": return_url, "data": data, "admin_view": view}
    return {
        "data": data,
        "count": count,
        "page": args.page,
        "page_size": page_size,
        "num_pages": num_pages,
        "return_url": return_url,
        "index_url": urls.base,
        "list_columns": view._list_columns,
        "can_set_page_size": view.can_set_page_size,
        "create_url": view.get_url(".create_view", url=return_url) if view.can_create else None,
        "export_html": export_html(view) if view.can_export else "",
        "page_size_html": page_size_html(view, urls, page_size) if view.can_set_page_size else "",
        "table_head_html": head_html(view, urls, args),
        "table_rows_html": rows_html(view, data, context),
        "pager_html": pager_html(urls, args.page, num_pages, data, page_size),
        "static_url": static_url,
        "no_link": NO_LINK,
        "bulk_url": lambda name: row_url(view, ".bulk_view", name, _param="action_name"),
    }


# ---- the tabs above the table ------------------------------------------------------------------


def export_html(view) -> Markup:
    """Flask-Admin's export_options(): one 导出 link, or a drop-down of the export types."""
    params = [(k, v) for k, v in request.args.items() if k != "export_type"]

    def href(export_type):
        qs = query_string(params)
        return view.get_url(".export", export_type=export_type) + ("?" + qs if qs else "")

    title = gettext("Export")
    if len(view.export_types) > 1:
        items = Markup("").join(
            Markup('\n<a class="dropdown-item"\n href="{}"\n title="{}">{}</a>').format(
                href(t), title, title + " " + t.upper()
            )
            for t in view.export_types
        )
        return Markup(
            '\n<li class="dropdown">\n<a class="nav-link dropdown-toggle" data-toggle="dropdown" href="{}" role="button"\n'
            ' aria-haspopup="true" aria-expanded="false">{}</a>\n<div class="dropdown-menu">{}\n</div>\n</li>\n'
        ).format(NO_LINK, title, items)
    return Markup('\n<li>\n<a class="nav-link" href="{}"\n title="{}">{}</a>\n</li>\n').format(
        href(view.export_types[0]), title, title
    )


def page_size_html(view, urls: ListUrls, page_size: int) -> Markup:
    """Flask-Admin's page_size_form(): "20 条" and its drop-down of 每页 20/50/100 条."""
    options = Markup("").join(
        Markup('\n<a class="dropdown-item{}" href="{}">{}</a>').format(
            " active" if page_size == option else "",
            urls.url(page_size=option or view.page_size),
            ngettext(f"{option} item", f"{option} items", option),
        )
        for option in view.page_size_options
    )
    return Markup(
        '\n<a class="nav-link dropdown-toggle" data-toggle="dropdown" href="{}">\n{} {}\n</a>\n'
        '<div class="dropdown-menu">{}\n</div>\n'
    ).format(NO_LINK, page_size, gettext("items"), options)


# ---- the table ---------------------------------------------------------------------------------


def head_html(view, urls: ListUrls, args) -> Markup:
    """The header row: a sort link on each sortable column (the sorted one with its chevron and
    the opposite order), a column's description as a tooltip."""
    parts = []
    if view.column_display_actions:
        parts.append(Markup('<th class="">&nbsp;</th>'))
    for column, (c, name) in enumerate(view._list_columns):
        if view.is_sortable(c):
            title = gettext("Sort by %(name)s", name=name)
            if args.sort == column:
                desc = 1 if not args.sort_desc else None
                chevron = "down" if args.sort_desc else "up"
                inner = Markup(
                    '<a href="{}" title="{}">\n{}\n<span class="fa fa-chevron-{} glyphicon glyphicon-chevron-{}"></span>\n</a>'
                ).format(urls.url(sort=column, sort_desc=desc), title, name, chevron, chevron)
            else:
                inner = Markup('<a href="{}" title="{}">{}</a>').format(
                    urls.url(sort=column, sort_desc=None), title, name
                )
        else:
            inner = escape(name)
        description = view.column_descriptions.get(c) if view.column_descriptions else None
        if description:
            inner += Markup(
                '\n<a class="fa fa-question-circle glyphicon glyphicon-question-sign"\n title="{}"\n href="{}" data-role="tooltip"\n></a>'
            ).format(description, NO_LINK)
        parts.append(Markup('<th class="column-header col-{}">\n{}\n</th>').format(c.replace(".", "-"), inner))
    return Markup("\n").join(parts)


def rows_html(view, data, context) -> Markup:
    """Every row of the page: its icons, then each column's value as Flask-Admin's
    `get_list_value` gives it, escaped unless it is already HTML."""
    if not data:
        return Markup('<tr>\n<td colspan="999">\n<div class="text-center">\n{}\n</div>\n</td>\n</tr>').format(
            view.get_empty_list_message()
        )
    cells = [(f'<td class="col-{escape(c)}">', _cell_value(view, c)) for c, _ in view._list_columns]
    actions = RowActions(view, context) if view.column_display_actions else None
    out = []
    for row in data:
        parts = ["<tr>\n"]
        if actions is not None:
            parts.append('<td class="list-buttons-column">')
            parts.append(actions.html(row))
            parts.append("</td>")
        for td, value in cells:
            parts.append(td)
            parts.append(escape(value(context, row)))
            parts.append("</td>")
        parts.append("\n</tr>")
        out.append("".join(parts))
    return Markup("\n".join(out))


def _cell_value(view, name):
    """Flask-Admin's `_get_list_value` for one column: its formatter, else the attribute; a
    choices map, else the first type formatter that fits the value's type (looked up once per type)."""
    formatter = view.column_formatters.get(name)
    choices = view._column_choices_map.get(name, {})
    type_formatters = view.column_type_formatters
    by_type: dict = {}

    def value(context, row):
        v = formatter(view, context, row, name) if formatter is not None else view._get_field_value(row, name)
        if choices:
            return choices.get(v) or v
        kind = type(v)
        fmt = by_type.get(kind, _MISSING)
        if fmt is _MISSING:
            fmt = by_type[kind] = next((f for t, f in type_formatters.items() if isinstance(v, t)), None)
        return fmt(view, v, name) if fmt is not None else v

    return value


_MISSING = object()


class RowActions:
    """A row's icons (查看, 编辑, 删除), as templates/admin/model/row_actions.html draws them, built
    once per page for an editable and for a locked row with a stand-in id; each row gets its id by a
    string replace.  A row its workflow no longer lets change (views/base.py `edit_refusal`) shows
    查看 alone."""

    def __init__(self, view, context):
        self.view, self.context = view, context
        self.actions = view.get_list_row_actions()
        self._html: dict = {}

    def html(self, row) -> str:
        locked = bool(self.view.edit_refusal(row))
        html = self._html.get(locked)
        if html is None:
            shown = [
                self._one(action)
                for action in self.actions
                if not (locked and action.__class__.__name__ in self.view.EDITING_ROW_ACTIONS)
            ]
            html = self._html[locked] = "".join("\n" + a for a in shown) + ("\n" if shown else "")
        return html.replace(ROW_ID, escape(quote(str(self.view.get_pk_value(row)), safe="")))

    def _one(self, action) -> str:
        from flask_admin.model import template as row_templates

        view, return_url = self.view, self.context["return_url"]
        kind = type(action)
        if kind is row_templates.ViewRowAction:
            return _icon_link(
                action, row_url(view, ".details_view", ROW_ID, url=return_url), "fa fa-eye glyphicon glyphicon-eye-open"
            )
        if kind is row_templates.EditRowAction:
            return _icon_link(
                action, row_url(view, ".edit_view", ROW_ID, url=return_url), "fa fa-pencil glyphicon glyphicon-pencil"
            )
        if kind is row_templates.DeleteRowAction:
            return self._delete_form()
        raise TypeError(
            f"{view.endpoint}: the list draws Flask-Admin's view, edit and delete icons only, not {kind.__name__}"
        )

    def _delete_form(self) -> str:
        view, return_url = self.view, self.context["return_url"]
        form = g.get("_list_delete_form")
        if form is None:
            form = g._list_delete_form = view.delete_form()
        token = getattr(form, "csrf_token", None)
        csrf = (
            str(token)
            if token
            else Markup('<input type="hidden" name="csrf_token" value="{}"/>').format(generate_csrf())
        )
        return Markup(
            '<form class="icon" method="POST" action="{}">\n{}\n{}\n{}\n'
            '<button data-confirm="{}" title="{}">\n<span class="fa fa-trash glyphicon glyphicon-trash"></span>\n'
            "</button>\n</form>"
        ).format(
            view.get_url(".delete_view"),
            form.id(value=ROW_ID),
            form.url(value=return_url),
            Markup(csrf),
            gettext("Are you sure you want to delete this record?"),
            gettext("Delete Record"),
        )


def _icon_link(action, url, icon_class) -> str:
    return Markup('<a class="icon" href="{}" title="{}">\n<span class="{}"></span>\n</a>').format(
        url, action.title or "", icon_class or action.icon_class
    )


def row_url(view, endpoint: str, row_id, _param: str = "id", **params) -> str:
    """`view.get_url(endpoint, id=row_id, **params)`, with url_for called once per page for all rows
    (`_param`: the argument that varies, if not `id`)."""
    cache = g.setdefault("_row_urls", {})
    key = (view.endpoint, endpoint, _param, tuple(sorted(params.items())))
    template = cache.get(key)
    if template is None:
        template = cache[key] = view.get_url(endpoint, **{_param: ROW_ID}, **params)
    return template.replace(ROW_ID, quote(str(row_id), safe=""))


# ---- the pager ---------------------------------------------------------------------------------


def pager_html(urls: ListUrls, page: int, num_pages, data, page_size) -> Markup:
    """Flask-Admin's lib.pager (up to 7 page numbers around this one, « < > »), or its simple
    pager (< >) when the count is not known."""

    def link(p):
        return urls.url(page=p if p else None)

    def item(href, text, state=""):
        return Markup('<li class="page-item{}">\n<a class="page-link" href="{}">{}</a>\n</li>').format(
            state, NO_LINK if href is None else href, text
        )

    if num_pages is None:  # lib.simple_pager
        have_next = len(data) == page_size
        return Markup('<ul class="pagination">\n{}\n{}\n</ul>').format(
            item(link(page - 1), Markup("&lt;")) if page > 0 else item(link(0), Markup("&lt;"), " disabled"),
            item(link(page + 1), Markup("&gt;")) if have_next else item(link(page), Markup("&gt;"), " disabled"),
        )
    pages = num_pages
    if pages <= 1:
        return Markup("")
    lo, hi = page - 3, page + 3 + 1
    if lo < 0:
        hi = hi - lo
    if hi >= pages:
        lo = lo - hi + pages
    lo = max(lo, 0)
    hi = min(hi, pages)
    parts = [
        item(link(0), Markup("&laquo;")) if lo > 0 else item(None, Markup("&laquo;"), " disabled"),
        item(link(page - 1), Markup("&lt;")) if page > 0 else item(None, Markup("&lt;"), " disabled"),
    ]
    for p in range(lo, hi):
        parts.append(item(None, p + 1, " active") if p == page else item(link(p), p + 1))
    parts.append(item(link(page + 1), Markup("&gt;")) if page + 1 < pages else item(None, Markup("&gt;"), " disabled"))
    parts.append(item(link(pages - 1), Markup("&raquo;")) if hi < pages else item(None, Markup("&raquo;"), " disabled"))
    return Markup('<ul class="pagination">\n{}\n</ul>').format(Markup("\n").join(parts))

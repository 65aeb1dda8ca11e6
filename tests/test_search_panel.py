"""The search panel of every list (views/panel.py): stable names, one query for the list and its bulk
actions, and a value it cannot use gives the list with a Chinese message — never a 500, never more rows.

The first test is generated: every list screen × every panel field × an unknown value, on the list,
its export and each of its bulk-action pages, for every demo role that opens the screen."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import sqlalchemy as sa
from conftest import csrf_token, login_as
from flask_admin.contrib.sqla import ModelView

from models import Member, MemberStatus, Org, Policy, PolicyStatus, Product, db
from views.base import ScopedModelView

USERS = ("clerk1", "agency1", "admin")
BAD = "NOPE"
MESSAGE = re.compile(r'id="panel-message"[^>]*>\s*(.*?)\s*</div>', re.S)
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def list_views(app) -> list[ScopedModelView]:
    admin = app.extensions["admin"][0]
    return [v for v in admin._views if isinstance(v, ModelView)]


def _role(app, username):
    from models import User

    with app.app_context():
        return db.session.scalar(sa.select(User.role).where(User.username == username))


def panel_message(html: str) -> str:
    m = MESSAGE.search(html)
    return re.sub(r"<[^>]+>", "", m.group(1)).strip() if m else ""


def test_every_list_every_panel_field_and_an_unknown_value_gives_the_list_with_a_chinese_message(app, client):
    checked, problems = 0, []
    for view in list_views(app):
        users = [u for u in USERS if _role(app, u) in view.roles]
        assert users, f"{view.endpoint}: no demo user opens it"
        for i, username in enumerate(users):
            role = _role(app, username)
            login_as(app, client, username)
            for field in view.panel_fields():
                qs = urlencode({field.name: BAD})
                url = f"/admin/{view.endpoint}/?{qs}"
                page = client.get(url)
                html = page.get_data(as_text=True)
                msg = panel_message(html)
                if page.status_code != 200 or not CHINESE.search(msg):
                    problems.append(f"{username} {url}: {page.status_code} {msg!r}")
                elif '<table class="table table-striped' not in html:
                    problems.append(f"{username} {url}: no list on the page")
                checked += 1
                if i or 'data-kind="error"' not in html:  # a value that only finds nothing is no error
                    continue  # exports and bulk pages: once per screen, by its first user
                others = []
                if role in view.export_roles:
                    others.append(f"/admin/{view.endpoint}/export/csv/?{qs}")
                others += [
                    f"/admin/{view.endpoint}/bulk/{a.name}/?{qs}" for a in view.all_bulk_actions() if role in a.roles
                ]
                for other in others:
                    page = client.get(other)
                    if page.status_code != 302 or page.headers["Location"] != url:
                        problems.append(f"{username} {other}: {page.status_code} {page.headers.get('Location')}")
                        continue
                    if not CHINESE.search(panel_message(client.get(page.headers["Location"]).get_data(as_text=True))):
                        problems.append(f"{username} {other}: the list it leads to has no message")
                    checked += 1
    assert not problems, "\n".join(problems)
    assert checked > 100


def test_a_link_with_the_old_positional_filters_says_so_and_matches_nothing(app, client):
    login_as(app, client, "clerk1")
    for url in ("/admin/members/?flt1_0=NOPE", "/admin/members/?flt0_0=NEW", "/admin/policies/?search=1"):
        page = client.get(url)
        assert page.status_code == 200, url
        html = page.get_data(as_text=True)
        assert "旧格式" in panel_message(html), url
        assert re.search(r"列表\s*</a>", html) or "列表 (" not in html, "no rows counted"
    page = client.get("/admin/members/bulk/report/?flt0_0=NEW")
    assert page.status_code == 302, "no bulk action on a condition the panel cannot read"
    export = client.get("/admin/members/export/csv/?flt1_0=NOPE")
    assert export.status_code == 302


def test_an_unknown_state_does_not_widen_the_query_of_a_bulk_action(app, client):
    login_as(app, client, "clerk1")
    before = _members(app, "010101", MemberStatus.NEW)
    page = client.post(
        "/admin/members/bulk/report/?status=NOPE",
        data={"csrf_token": csrf_token(client), "expected": 0},
    )
    assert page.status_code == 302
    assert _members(app, "010101", MemberStatus.NEW) == before > 0


def _members(app, code, status):
    with app.app_context():
        return db.session.scalar(
            sa.select(sa.func.count()).select_from(Member).join(Org).where(Org.code == code, Member.status == status)
        )


# The URL names are a contract: 首页's to-do links, bookmarks and tests use them.
STABLE_NAMES = {
    "members": ["status", "id_number", "member_no", "name", "unit"],
    "member_query": ["id_number", "member_no", "name", "unit"],
    "policies": ["status", "product", "id_number", "member_no", "name", "effective_from", "effective_to", "unit"],
    "expiring": ["month", "product"],
    "transfers": ["status", "member", "unit"],
    "changes": ["status", "member", "unit"],
    "terminations": ["status", "member", "unit", "app_no", "policy_no"],
    "termination_policies": ["id_number", "member_no", "name", "product", "policy_no"],
}


def test_the_panel_fields_of_the_manuals_screens_have_their_stable_names_and_labels(app):
    views = {v.endpoint: v for v in list_views(app)}
    for endpoint, names in STABLE_NAMES.items():
        assert [f.name for f in views[endpoint].panel_fields()] == names, endpoint
    labels = {f.name: f.label for f in views["policies"].panel_fields()}
    assert labels["status"] == "选择状态" and labels["product"] == "产品名称" and labels["unit"] == "当前单位编号"
    assert [f.label for f in views["members"].panel_fields()] == [
        "选择状态",
        "身份证号",
        "会员编号",
        "姓名",
        "单位编号",
    ]


def test_the_panel_is_above_every_list_with_search_and_reset_and_no_filter_bar(app, client):
    login_as(app, client, "clerk1")
    html = client.get("/admin/policies/?status=NEW&product=P03").get_data(as_text=True)
    panel = html[html.index('id="search-panel"') : html.index("</form>", html.index('id="search-panel"'))]
    assert "【搜索】" in panel and "【重置】" in panel
    assert re.search(r'<option value="NEW" selected>新建</option>', panel), "the chosen state stays chosen"
    assert re.search(r'<option value="P03" selected>职工意外伤害互助保障</option>', panel)
    assert 'name="unit"' not in panel, "a clerk's list is one unit: no 当前单位编号 for her"
    assert html.index('id="search-panel"') < html.index('<table class="table table-striped')
    assert "flt0_0" not in html and "添加查询条件" not in html and "Add Filter" not in html
    login_as(app, client, "agency1")
    assert 'name="unit"' in client.get("/admin/policies/").get_data(as_text=True)


def test_the_list_and_its_bulk_action_count_the_same_rows(app, client):
    login_as(app, client, "clerk1")
    with app.app_context():
        p03 = db.session.scalar(sa.select(Product.id).where(Product.code == "P03"))
        unit = db.session.scalar(sa.select(Org.id).where(Org.code == "010101"))
        n = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Policy)
            .where(Policy.org_id == unit, Policy.status == PolicyStatus.NEW, Policy.product_id == p03)
        )
    assert n > 0
    html = client.get("/admin/policies/?status=NEW&product=P03").get_data(as_text=True)
    assert re.search(rf"列表\s*\({n}\)", html)
    confirm = client.get("/admin/policies/bulk/report/?status=NEW&product=P03").get_data(as_text=True)
    assert re.search(rf'id="bulk-count"[^>]*>{n}<', confirm)
    assert "选择状态：新建；产品名称：职工意外伤害互助保障" in confirm


def test_a_unit_code_outside_the_scope_is_not_found_and_an_agency_code_means_its_units(app, client):
    login_as(app, client, "agency1")
    html = client.get("/admin/members/?unit=010201").get_data(as_text=True)
    assert "没有单位编号为“010201”的单位，或该单位不在您的管辖范围内" in panel_message(html)
    own = client.get("/admin/members/?unit=0101&page_size=100").get_data(as_text=True)
    one = client.get("/admin/members/?unit=010102&page_size=100").get_data(as_text=True)
    count = lambda html: int(re.search(r"列表\s*\((\d+)\)", html).group(1))  # noqa: E731
    assert count(own) > count(one) > 0
    assert "东城区第一机床厂工会" not in one


def test_the_month_of_expiring_orders_narrows_by_expiry_date(app, client):
    login_as(app, client, "clerk1")
    with app.app_context():
        when = db.session.scalar(
            sa.select(Policy.expiry_date)
            .join(Org)
            .where(Org.code == "010101", Policy.status == PolicyStatus.EFFECTIVE)
            .order_by(Policy.expiry_date)
            .limit(1)
        )
    html = client.get(f"/admin/expiring/?month={when:%Y-%m}&page_size=100").get_data(as_text=True)
    dates = re.findall(r'<td class="col-expiry_date">\s*(\d{4}-\d\d-\d\d)', html)
    assert dates and all(d.startswith(f"{when:%Y-%m}") for d in dates)
    assert f"{when.year}年{when.month}月" in html

"""Every screen of the menu opens in Chinese for the roles that use it, and refuses the others."""

import pytest
from conftest import login_as

MENU = {
    "/admin/": "首页",
    "/admin/members/": "入会管理",
    "/admin/member_query/": "会员信息查询",
    "/admin/transfers/": "会员调动管理",
    "/admin/changes/": "会员变更管理",
    "/admin/policies/": "投保管理",
    "/admin/terminations/": "保单提前终止",
    "/admin/expiring/": "即将到期订单",
    "/admin/batches/": "批量业务",
}
SYSTEM = {"/admin/orgs/": "单位", "/admin/users/": "用户", "/admin/products/": "产品", "/admin/audit/": "审计日志"}


@pytest.mark.parametrize("url,title", list(MENU.items()))
def test_clerk_opens_every_business_screen_in_chinese(app, client, url, title):
    login_as(app, client, "clerk1")
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"<title>{title} - 互助保障业务系统" in html
    for menu in ("会员管理", "保单管理", "批量业务管理"):
        assert menu in html


@pytest.mark.parametrize("url,title", list(SYSTEM.items()))
def test_admin_opens_every_system_screen(app, client, url, title):
    login_as(app, client, "admin")
    page = client.get(url)
    assert page.status_code == 200
    assert f"<title>{title} - 互助保障业务系统" in page.get_data(as_text=True)


@pytest.mark.parametrize("url", list(SYSTEM))
def test_clerk_may_not_open_system_management(app, client, url):
    login_as(app, client, "clerk1")
    page = client.get(url)
    assert page.status_code == 403
    assert "无权操作" in page.get_data(as_text=True)


def test_clerk_does_not_see_system_management_in_the_menu(app, client):
    login_as(app, client, "clerk1")
    html = client.get("/admin/").get_data(as_text=True)
    assert "系统管理" not in html
    assert "审计日志" not in html


def test_admin_sees_system_management_in_the_menu(app, client):
    login_as(app, client, "admin")
    html = client.get("/admin/").get_data(as_text=True)
    assert "系统管理" in html and "审计日志" in html


def test_anonymous_visitor_is_sent_to_login(client):
    for url in list(MENU) + list(SYSTEM):
        page = client.get(url)
        assert page.status_code == 302, url
        assert "/login" in page.headers["Location"]


def test_home_shows_the_users_org_role_and_todo_counts(app, client):
    login_as(app, client, "clerk1")
    html = client.get("/admin/").get_data(as_text=True)
    assert "010101 东城区第一机床厂工会" in html
    assert "基层单位操作员" in html
    assert "被打回的会员" in html and "新建未上报的投保记录" in html


def test_flask_admin_strings_are_chinese(app, client):
    login_as(app, client, "clerk1")
    html = client.get("/admin/members/").get_data(as_text=True)
    assert "列表" in html  # Flask-Admin's "List"
    assert "创建" in html  # "Create"
    assert ">List<" not in html and ">Create<" not in html


def test_dates_are_shown_as_year_month_day_and_money_in_yuan(app, client):
    import re

    login_as(app, client, "clerk1")
    html = client.get("/admin/policies/").get_data(as_text=True)
    assert re.search(r"\b20\d\d-\d\d-\d\d\b", html)
    assert re.search(r"\d+\.\d\d 元", html)


def test_states_and_genders_are_shown_by_their_chinese_labels(app, client):
    login_as(app, client, "clerk1")
    html = client.get("/admin/members/?page_size=100").get_data(as_text=True)
    assert "财务确认" in html and ("男" in html or "女" in html)
    import re

    cells = " ".join(re.findall(r'<td class="col-[^"]*">(.*?)</td>', html, re.S))
    assert "财务确认" in cells and "CONFIRMED" not in cells and "MALE" not in cells
    csv = client.get("/admin/members/export/csv/").get_data(as_text=True)
    assert "财务确认" in csv and ",CONFIRMED," not in csv


def test_a_huge_list_counts_up_to_the_cap_and_says_so(app, client, monkeypatch):
    import re

    import views.base

    monkeypatch.setattr(views.base, "LIST_COUNT_CAP", 50)
    login_as(app, client, "admin")
    html = client.get("/admin/members/").get_data(as_text=True)
    assert re.search(r"列表\s*\(50\+\)", html)
    login_as(app, client, "clerk1")  # a unit's list under the cap stays exact
    monkeypatch.setattr(views.base, "LIST_COUNT_CAP", 1000)
    assert re.search(r"列表\s*\(100\)", client.get("/admin/members/").get_data(as_text=True))


def test_the_menu_shows_each_role_its_own_screens_and_highlights_the_screen_open(app, client):
    """The menu is rendered once per (role, screen) and kept (views.menu_html): a clerk after an
    admin, or 投保管理 after 入会管理, still gets their own menu with the right item highlighted."""
    import re

    def menu(url):
        page = client.get(url).get_data(as_text=True)
        nav = page[page.index('<ul class="nav navbar-nav mr-auto">') : page.index('id="current-user"')]
        items = re.findall(r'class="dropdown-item([^"]*)"\s+href="([^"]+)"', nav)
        return {href for _, href in items}, [href for cls, href in items if "active" in cls]

    login_as(app, client, "admin")
    admin_items, active = menu("/admin/members/")
    assert {"/admin/users/", "/admin/audit/", "/admin/members/"} <= admin_items
    assert active == ["/admin/members/"]
    login_as(app, client, "clerk1")
    clerk_items, active = menu("/admin/members/")
    assert active == ["/admin/members/"] and "/admin/users/" not in clerk_items
    assert clerk_items < admin_items
    assert menu("/admin/policies/")[1] == ["/admin/policies/"]
    login_as(app, client, "agency1")
    assert menu("/admin/policies/")[1] == ["/admin/policies/"]

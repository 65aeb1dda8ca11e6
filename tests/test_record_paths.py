"""The manual's single-record paths (一(五)3/4): 点击查询结果中的会员编号进入修改、删除界面 — on every list
that shows a 会员编号 — and the edit page's 【删除】 beside 【保存并退出】, only while the record is 新建/打回."""

from __future__ import annotations

import re

import sqlalchemy as sa
from conftest import csrf_token, login_as

from models import Member, MemberStatus, Org, Policy, PolicyStatus, db

LINK = re.compile(r'<td class="col-(?:member_no|member\.member_no)">\s*<a href="([^"]+)">(\d{10})</a>')


def _links(html):
    return LINK.findall(html)


def test_the_member_number_leads_into_the_record_on_every_list_that_shows_it(app, client):
    login_as(app, client, "clerk1")
    for url, into in (
        ("/admin/members/?status=NEW", "/admin/members/edit/"),
        ("/admin/members/?status=CONFIRMED", "/admin/members/details/"),
        ("/admin/member_query/", "/admin/member_query/details/"),
        ("/admin/policies/?status=NEW", "/admin/policies/edit/"),
        ("/admin/policies/?status=EFFECTIVE", "/admin/policies/details/"),
        ("/admin/expiring/", "/admin/expiring/details/"),
    ):
        links = _links(client.get(url).get_data(as_text=True))
        assert links, url
        assert all(href.startswith(into) for href, _ in links), (url, links[:2])
        href, no = links[0]
        page = client.get(href.replace("&amp;", "&"))
        assert page.status_code == 200 and no in page.get_data(as_text=True), href
    # an agency cannot change a unit's records: its links lead to the details
    login_as(app, client, "agency1")
    links = _links(client.get("/admin/policies/?status=NEW").get_data(as_text=True))
    assert links and all(h.startswith("/admin/policies/details/") for h, _ in links)


def test_the_link_returns_to_the_same_query(app, client):
    login_as(app, client, "clerk1")
    href, _ = _links(client.get("/admin/members/?status=NEW").get_data(as_text=True))[0]
    assert "url=/admin/members/?status%3DNEW" in href


def _one(app, model, status, unit="010101"):
    with app.app_context():
        return db.session.scalar(
            sa.select(model.id).join(Org, Org.id == model.org_id).where(Org.code == unit, model.status == status)
        )


def test_the_edit_page_has_delete_beside_save_and_exit_and_it_deletes(app, client):
    login_as(app, client, "clerk1")
    pk = _one(app, Member, MemberStatus.NEW)
    html = client.get(f"/admin/members/edit/?id={pk}&url=/admin/members/?status=NEW").get_data(as_text=True)
    buttons = html[html.index('class="col-md-offset-2 col-md-10 submit-row"') :]
    assert buttons.index('value="保存并退出"') < buttons.index("【删除】")
    form = re.search(r'<form id="record-delete-form" method="post" action="([^"]+)"', html)
    assert form and form.group(1) == "/admin/members/delete/"
    page = client.post(
        "/admin/members/delete/", data={"id": pk, "url": "/admin/members/?status=NEW", "csrf_token": csrf_token(client)}
    )
    assert page.status_code == 302 and page.headers["Location"].endswith("/admin/members/?status=NEW")
    with app.app_context():
        assert db.session.get(Member, pk) is None

    pid = _one(app, Policy, PolicyStatus.RETURNED)
    assert "【删除】" in client.get(f"/admin/policies/edit/?id={pid}").get_data(as_text=True)


def test_no_delete_on_a_record_that_may_no_longer_change(app, client):
    login_as(app, client, "clerk1")
    pid = _one(app, Policy, PolicyStatus.REPORTED)
    page = client.get(f"/admin/policies/edit/?id={pid}")
    assert page.status_code == 302, "a reported policy opens as details, with the reason"
    assert "【删除】" not in client.get(page.headers["Location"]).get_data(as_text=True)


def test_the_export_has_the_member_number_as_text_not_a_link(app, client):
    login_as(app, client, "clerk1")
    for endpoint in ("members", "member_query", "policies", "expiring"):
        csv = client.get(f"/admin/{endpoint}/export/csv/").get_data(as_text=True)
        assert re.search(r"(^|,)\d{10},", csv, re.M) and "<a " not in csv, endpoint


def _rows(html):
    """(ids named by the row's icons and links, the row's HTML) per list row."""
    bodies = [b for b in html.split("<tr>") if 'class="list-buttons-column"' in b]
    return [(set(re.findall(r'\?id=(\d+)&amp;|name="id" type="hidden" value="(\d+)"', b)), b) for b in bodies]


def test_each_rows_icons_open_and_delete_that_row_and_a_locked_row_has_only_its_details(app, client):
    """The view, edit and delete icons of a list row are built once per page (views/base.py:
    row_actions_html): each row's icons still lead to that row, and a row that may no longer
    change shows only 查看."""
    login_as(app, client, "clerk1")
    with app.app_context():
        numbers = dict(db.session.execute(sa.select(Member.member_no, Member.id)).all())
    rows = _rows(client.get("/admin/members/?status=NEW").get_data(as_text=True))
    assert len(rows) > 1
    for found, body in rows:
        ids = {a or b for a, b in found}
        (pk,) = ids  # every icon and link of the row names the same record …
        (no,) = re.findall(r">(\d{10})</a>", body)
        assert numbers[no] == int(pk)  # … the row's own member
        assert f"/admin/members/details/?id={pk}&amp;" in body and f"/admin/members/edit/?id={pk}&amp;" in body
        assert f'name="id" type="hidden" value="{pk}"' in body and "data-confirm=" in body
    locked = _rows(client.get("/admin/members/?status=CONFIRMED").get_data(as_text=True))
    assert locked and all(
        "/admin/members/details/?id=" in b and "/edit/?id=" not in b and "/delete/" not in b for _, b in locked
    )


def test_no_list_edits_in_place_so_a_cell_is_its_value(app):
    """templates/admin/list_with_actions.html renders a row's cells flat (no in-place editing):
    a screen that turned on Flask-Admin's column_editable_list would lose it silently; this says so."""
    from views.access import screens

    with app.test_request_context():
        views = [v for v in screens() if hasattr(v, "column_editable_list")]
    assert views and all(not v.column_editable_list for v in views)

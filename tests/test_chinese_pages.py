"""No English on any page a clerk or the admin opens (issue 14): every menu screen of every demo role,
its 添加 page, the details and edit pages its list links to, its bulk-action pages and its other
in-page links, the login page and the error pages — their visible text, titles, placeholders and
button words.  The audit log screen is left to its own issue (labels of actions and fields).

Allowed: file formats (Excel, PDF, CSV, xls, xlsx, JPG, PNG), the demo user names, and the navbar toggler's
aria-label, which Flask-Admin writes in English and static/screens.js renames (checked in the
browser by tests/browser/test_search_panel.py)."""

from __future__ import annotations

import html as H
import re

import sqlalchemy as sa
from conftest import csrf_token, login_as

from models import User, db

ROLES = ("clerk1", "agency1", "office1", "info1", "admin")
ALLOWED = {"Excel", "PDF", "CSV", "csv", "xls", "xlsx", "JPG", "PNG", "jpg", "png", "Toggle", "navigation"}
WORD = re.compile(r"\b[A-Za-z]{3,}\b")
SKIP = ("/admin/audit/",)


def visible_words(page_html: str) -> set[str]:
    page_html = re.sub(r"<script.*?</script>|<style.*?</style>|<!--.*?-->", " ", page_html, flags=re.S)
    attrs = re.findall(r'(?:title|placeholder|aria-label|alt)="([^"]*)"', page_html)
    attrs += re.findall(r'<input[^>]*type="(?:submit|button)"[^>]*value="([^"]*)"', page_html)
    text = re.sub(r"<[^>]+>", " ", page_html)
    return set(WORD.findall(H.unescape(text + " " + " ".join(attrs))))


def pages_of(client, app) -> list[str]:
    admin = app.extensions["admin"][0]
    urls = ["/admin/"]
    for view in admin._views:
        ep = getattr(view, "endpoint", "admin")
        if ep == "admin" or f"/admin/{ep}/" in SKIP:
            continue
        listing = client.get(f"/admin/{ep}/")
        if listing.status_code != 200:
            continue
        body = listing.get_data(as_text=True)
        urls += [f"/admin/{ep}/", f"/admin/{ep}/new/", f"/admin/{ep}/?status=不存在"]
        links = re.findall(rf'href="(/admin/{ep}/[^"#]+)"', body)
        kinds: dict[str, int] = {}
        for link in links:
            link = H.unescape(link)
            if "/export/" in link or "/pdf" in link or "/template/" in link:
                continue  # files, not pages
            kind = re.sub(r"\?.*", "", link)
            if kinds.get(kind, 0) < 2:
                kinds[kind] = kinds.get(kind, 0) + 1
                urls.append(link)
    return list(dict.fromkeys(urls))


def test_no_english_on_any_page_of_any_role(app, client):
    with app.app_context():
        names = set(db.session.scalars(sa.select(User.username)))
    allowed = ALLOWED | names
    problems, checked = [], 0
    for username in ROLES:
        login_as(app, client, username)
        for url in pages_of(client, app):
            page = client.get(url)
            if page.status_code != 200 or "html" not in page.content_type:
                continue
            english = visible_words(page.get_data(as_text=True)) - allowed
            checked += 1
            if english:
                problems.append(f"{username} {url}: {sorted(english)}")
    assert not problems, "\n".join(problems)
    assert checked > 150, checked


def test_no_english_on_the_login_and_error_pages(app, client):
    assert not visible_words(client.get("/login").get_data(as_text=True)) - ALLOWED
    login_as(app, client, "clerk1")
    for url, status in (
        ("/admin/nope/", 404),
        ("/admin/members/details/?id=999999", 404),
        ("/admin/members/edit/?id=abc", 404),
        ("/admin/orgs/", 403),
        ("/admin/members/?page=abc&sort=zz&desc=x", 200),
    ):
        page = client.get(url)
        assert page.status_code == status, url
        assert not visible_words(page.get_data(as_text=True)) - ALLOWED, url


def test_wrong_values_in_forms_are_told_in_chinese(app, client):
    login_as(app, client, "clerk1")
    page = client.post(
        "/admin/policies/new/",
        data={
            "csrf_token": csrf_token(client),
            "product_id": "abc",
            "member_ref": "1",
            "shares": "abc",
            "amount": "x",
            "expected_effective_date": "x",
        },
    )
    errors = re.findall(r"<li>([^<]*)</li>", page.get_data(as_text=True))
    assert errors and not any(WORD.search(e) for e in errors), errors
    login_as(app, client, "admin")
    page = client.post(
        "/admin/users/new/", data={"csrf_token": csrf_token(client), "username": "u", "role": "zzz", "org": "999999"}
    )
    errors = [H.unescape(e) for e in re.findall(r"<li>([^<]*)</li>", page.get_data(as_text=True))]
    assert "不是有效的选择，请重新选择。" in errors and not any(WORD.search(e) for e in errors), errors

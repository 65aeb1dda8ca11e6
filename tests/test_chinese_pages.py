"""No English on any page a clerk or the admin opens (issue 14): every menu screen of every demo role,
its 添加 page, the details and edit pages its list links to, its bulk-action pages and its other
in-page links, the login page and the error pages — their visible text, titles, placeholders and
button words.  The audit log screen too: after the demo flows of every role have written an audit row
of every kind, its list and the detail of one row of each (action, entity) read in Chinese, with
changes as "字段: 旧值 → 新值" — no English word, no enum value, no JSON.

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
ALLOWED = {"Excel", "PDF", "CSV", "csv", "xls", "xlsx", "JPG", "PNG", "jpg", "png", "pdf", "Toggle", "navigation"}
WORD = re.compile(r"\b[A-Za-z]{3,}\b")
SKIP = ()


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


# ---- 审计日志 after the demo flows --------------------------------------------------------------------
def _bulk(client, endpoint: str, action: str, query: str = "", **fields) -> str:
    """A list button over the current query, as the clerk presses it: confirmation page, then 确定."""
    url = f"/admin/{endpoint}/bulk/{action}/" + (f"?{query}" if query else "")
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    n = int(re.search(r'id="bulk-count"[^>]*>(\d+)<', page.get_data(as_text=True)).group(1))
    data = {"csrf_token": csrf_token(client, url), "expected": n, **fields}
    return client.post(url, data=data, follow_redirects=True).get_data(as_text=True)


def _demo_flows(app, client) -> None:
    """The manual's flows of every role, through the screens, so that every kind of audit row exists."""
    from test_batch_members import fresh_id
    from test_changes import save
    from test_member_entry import make_id, post_member, years_ago
    from test_over_age import approved_request, decide, request_exception, request_of
    from test_over_age_everywhere import batch, members_xlsx, stage
    from test_policies_entry import EFF, birth_for, make_member, post_policy
    from test_terminations import created, effective
    from test_transfers import lookup, submit

    from models import Member, Org, Policy, TransferApplication

    # 入会 one by one and by file, edit, 上报 (clerk1); 超龄例外 approved and one rejected (agency1)
    login_as(app, client, "clerk1")
    first = fresh_id(male=True)
    post_member(client, name="审计甲", id_number=first, phone="13800000001")
    with app.app_context():
        mid = db.session.scalar(sa.select(Member.id).where(Member.name == "审计甲"))
    edit = f"/admin/members/edit/?id={mid}"
    page = client.post(
        edit,
        data={"csrf_token": csrf_token(client, edit), "name": "审计甲", "id_number": first, "phone": "13800000002"},
    )
    assert page.status_code == 302, page.get_data(as_text=True)[-2000:]
    loc, _ = batch(client, "members", members_xlsx([("审计乙", fresh_id(male=False))]))
    stage(client, loc, "process")
    _bulk(client, "members", "report", "name=审计乙")
    idn = make_id(years_ago(58, days=30), seq=81, male=False)
    approved_request(app, client, idn, name="审计局长")
    post_member(client, name="审计局长", id_number=idn, confirm_over_age="y")
    older = make_member(app, "审计处员", birth=birth_for(56))  # a member already: the approval flags her
    approved_request(app, client, older["id_number"], name="审计处员")
    refused_idn = make_id(years_ago(58, days=30), seq=83, male=False)
    request_exception(client, refused_idn, name="审计处长")
    decide(client, "submit", request_of(app, refused_idn).id)
    login_as(app, client, "agency1")
    decide(client, "reject", request_of(app, refused_idn).id, **{"p-reason": "证明文件不清楚"})
    login_as(app, client, "clerk1")
    decide(client, "reopen", request_of(app, refused_idn).id)

    # 投保 one by one, 修改预期生效时间, 上报; the agency reports one and returns one; the office
    # makes one effective, sends none back; 收据
    for name in ("审计丙", "审计丁", "审计庚", "审计辛"):
        m = make_member(app, name, male=True)
        post_policy(client, app, m["id_number"])
    later = EFF.replace(day=15).isoformat()
    _bulk(client, "policies", "change-date", "name=审计丙", **{"p-effective": later})
    for name in ("审计丙", "审计丁", "审计庚", "审计辛"):
        _bulk(client, "policies", "report", f"name={name}")
    post_member(client, name="审计删", id_number=fresh_id(male=False))
    _bulk(client, "members", "delete", "status=NEW&name=审计删", phrase="全部删除")
    login_as(app, client, "agency1")
    for name in ("审计丙", "审计庚", "审计辛"):
        _bulk(client, "policies", "agency-report", f"name={name}")
    _bulk(client, "policies", "return", "name=审计丁", **{"p-reason": "份数有误"})
    _bulk(client, "policies", "receipt", "name=审计丙")
    _bulk(client, "policies", "receipt", "name=审计庚")
    with app.app_context():
        receipt = db.session.scalar(
            sa.select(Policy.receipt_id).join(Member).where(Member.name == "审计庚", Policy.receipt_id.is_not(None))
        )
    client.post(
        f"/admin/receipts/void/{receipt}/",
        data={"csrf_token": csrf_token(client, "/admin/receipts/"), "reason": "金额开错"},
    )
    login_as(app, client, "office1")
    _bulk(client, "policies", "confirm", "name=审计丙")
    _bulk(client, "policies", "office-return", "name=审计辛", **{"p-reason": "缴费未到账"})

    # 会员调动 (look-up, 提交新建申请) and 会员变更 (保存, 上报): 信息部 approves both
    with app.app_context():
        west = db.session.scalar(
            sa.select(Member)
            .join(Org)
            .where(Org.code == "010201", ~Member.policies.any())
            .where(~sa.exists().where(TransferApplication.member_id == Member.id))
            .order_by(Member.id.desc())
        )
        west_no = west.member_no
    login_as(app, client, "clerk1")
    lookup(client, west_no)
    submit(client, west_no)
    save(client, _member_no(app, mid), new_name="审计甲改")
    _bulk(client, "changes", "submit", "status=NEW")
    login_as(app, client, "info1")
    _bulk(client, "transfers", "approve", "status=SUBMITTED")
    _bulk(client, "changes", "approve", "status=SUBMITTED")

    # 保单提前终止: created, submitted, approved by the office
    login_as(app, client, "clerk1")
    app_id = created(client, effective(app, 1, name="审计戊"))
    _bulk(client, "terminations", "submit", f"ids={app_id}")
    login_as(app, client, "office1")
    _bulk(client, "terminations", "approve", f"ids={app_id}")

    # 系统管理: a user's name, a product, a password reset
    login_as(app, client, "admin")
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "clerk3"))
        form = {
            "username": "clerk3",
            "display_name": "审计员",
            "org": str(user.org_id),
            "role": "unit_clerk",
            "phone": user.phone,
            "active": "y",
            "new_password": "",
        }
        uid = user.id
    client.post(f"/admin/users/edit/?id={uid}", data={**form, "csrf_token": csrf_token(client)})
    client.post(
        "/admin/users/unlock/", data={"id": uid, "csrf_token": csrf_token(client, f"/admin/users/details/?id={uid}")}
    )


def _member_no(app, member_id) -> str:
    from models import Member

    with app.app_context():
        return db.session.get(Member, member_id).member_no


def test_the_audit_log_and_each_kind_of_its_rows_read_in_chinese_after_the_demo_flows(app, client):
    from models import AuditLog

    _demo_flows(app, client)
    with app.app_context():
        names = set(db.session.scalars(sa.select(User.username)))
        kinds = db.session.execute(
            sa.select(AuditLog.action, AuditLog.entity, sa.func.max(AuditLog.id)).group_by(
                AuditLog.action, AuditLog.entity
            )
        ).all()
    seen = {(a, e) for a, e, _ in kinds}
    for wanted in [
        ("create", "member"),
        ("update", "member"),
        ("report", "member"),
        ("over_age", "member"),
        ("transfer", "member"),
        ("change", "member"),
        ("lookup", "member"),
        ("report", "policy"),
        ("return", "policy"),
        ("confirm", "policy"),
        ("change_date", "policy"),
        ("approve", "transfer_application"),
        ("reject", "over_age_application"),
        ("reopen", "over_age_application"),
        ("approve", "termination_application"),
        ("update", "user"),
        ("unlock", "user"),
        ("delete", "member"),
        ("office_return", "policy"),
        ("void", "receipt"),
        ("receipt_void", "policy"),
    ]:
        assert wanted in seen, (wanted, sorted(seen))
    allowed = ALLOWED | names
    login_as(app, client, "admin")
    problems = []
    urls = ["/admin/audit/"] + [f"/admin/audit/?entity={e}" for e in {e for _, e in seen}]
    urls += [f"/admin/audit/details/?id={i}" for _, _, i in kinds]
    for url in urls:
        page = client.get(url)
        assert page.status_code == 200, url
        html = page.get_data(as_text=True)
        body = re.sub(r"<script.*?</script>|<style.*?</style>", " ", html, flags=re.S)
        text = H.unescape(re.sub(r"<[^>]+>", " ", body))
        english = visible_words(html) - allowed
        if english:
            at = min(text.find(w) for w in english)
            problems.append(f"{url}: {sorted(english)} in …{' '.join(text[max(0, at - 80) : at + 80].split())}…")
        for raw in ('{"', "其他操作", "其他对象", "其他字段", "[{", "None"):
            if raw in text:
                at = text.index(raw)
                problems.append(f"{url}: {raw!r} in …{' '.join(text[max(0, at - 80) : at + 80].split())}…")
    assert not problems, "\n".join(problems)

    def cells_of(action, entity, words) -> list[str]:
        """The cells of the newest (action, entity) row whose text holds `words`."""
        with app.app_context():
            ids = db.session.scalars(
                sa.select(AuditLog.id)
                .where(AuditLog.action == action, AuditLog.entity == entity)
                .order_by(AuditLog.id.desc())
            ).all()
        for i in ids:
            html = client.get(f"/admin/audit/details/?id={i}").get_data(as_text=True)
            cells = [
                " ".join(H.unescape(re.sub(r"<[^>]+>", " ", c)).split())
                for c in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)
            ]
            if any(words in c for c in cells):
                return cells
        raise AssertionError((action, entity, words))

    edit = cells_of("update", "member", "13800000002")
    assert "联系电话: 13800000001" in edit, "|".join(edit)  # 修改前 filled for an edit
    assert "联系电话: 13800000001 → 13800000002" in edit
    change = cells_of("change", "member", "审计甲改")
    assert any(c.startswith("姓名: 审计甲 → 审计甲改") for c in change)
    assert not any("身份证号" in c for c in change)  # kept as it was: no news
    flagged = cells_of("over_age", "member", "超龄例外")
    assert any("否 → 是" in c for c in flagged), flagged

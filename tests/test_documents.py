"""办事处 确认生效 / 打回 / 打印生效清单 and 代办处 开具收据 / 收据管理 (manual 二、1; DESIGN.md §3, §6):
what the office and the agency do to a policy after the unit reported it, and the documents they print."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import csrf_token
from pdftext import pdf_pages, pdf_text, squeeze
from test_policies_entry import EFF, make_member, make_policy
from test_policy_actions import confirm, execute, qs, totals

from models import Counter, Org, Policy, PolicyStatus, Receipt, ReceiptPolicy, ReceiptStatus, db
from models.audit import audit_entries
from rules import amount_in_words, policy_expiry

TODAY = date.today()
HOSTILE = "<img src=file:///etc/passwd>"


def counter(app, name: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(Counter.value).where(Counter.name == name)) or 0


def rows(app, ids) -> list[Policy]:
    with app.app_context():
        out = db.session.scalars(sa.select(Policy).where(Policy.id.in_(list(ids))).order_by(Policy.id)).all()
        for p in out:
            db.session.expunge(p)
        return out


def waiting(app, org="010101", n=3, name="测生效", start=EFF, code="P03", status=PolicyStatus.AGENCY_REPORTED):
    """`n` policies of new members of `org` in `status` (default 代办处已上报)."""
    ids = []
    for k in range(n):
        m = make_member(app, f"{name}{org[-1]}{k}", org=org)
        ids.append(make_policy(app, m, code, status, start=start, shares=1 + k % 2))
    return ids


# ---- 确认生效 ------------------------------------------------------------------------------------
def test_office_confirms_the_agency_reported_policies_of_the_query_with_policy_numbers_in_sequence(app, as_user):
    ids = waiting(app, "010101", 3) + waiting(app, "010102", 2)
    before = counter(app, f"policy_no:{TODAY.year}")
    client = as_user("office1")
    query = qs(status="AGENCY_REPORTED")
    html, n = confirm(client, "confirm", query)
    assert n >= 5 and "确认生效" in html
    headcount, total = totals(html)
    assert headcount >= 5 and total > 0
    assert f"按预期生效时间 {EFF:%Y-%m-%d} 生效" in html  # the confirmation page says which date
    page = execute(client, "confirm", query, n)
    assert "已确认生效" in page.get_data(as_text=True)
    after = counter(app, f"policy_no:{TODAY.year}")
    assert after == before + n  # exactly as many numbers as rows: no gap
    mine = rows(app, ids)
    assert {p.status for p in mine} == {PolicyStatus.EFFECTIVE}
    numbers = sorted(int(p.policy_no[6:]) for p in mine)
    assert all(p.policy_no.startswith(f"BD{TODAY.year}") and len(p.policy_no) == 14 for p in mine)
    assert len(set(numbers)) == 5 and before < numbers[0] and numbers[-1] <= after
    for p in mine:
        assert p.effective_date == EFF and p.expiry_date == policy_expiry(EFF, 12)
    with app.app_context():
        e = audit_entries()
        assert db.session.scalar(
            sa.select(sa.func.count()).select_from(e).where(e.c.action == "confirm", e.c.entity_id.in_(ids))
        ) == len(ids)


def test_a_policy_whose_expected_date_has_passed_takes_effect_on_the_confirmation_day(app, as_user):
    late = TODAY - timedelta(days=10)
    ids = waiting(app, "010101", 2, name="测过期", start=late)
    on_time = waiting(app, "010101", 1, name="测按期")
    client = as_user("office1")
    query = qs(status="AGENCY_REPORTED", unit="010101")
    html, n = confirm(client, "confirm", query)
    assert f"的预期生效时间已过，正式生效时间为今天 {TODAY:%Y-%m-%d}" in html
    execute(client, "confirm", query, n)
    for p in rows(app, ids):
        assert p.effective_date == TODAY and p.expiry_date == policy_expiry(TODAY, 12)
    (p,) = rows(app, on_time)
    assert p.effective_date == EFF and p.expiry_date == policy_expiry(EFF, 12)


def test_confirming_twice_numbers_nothing_twice(app, as_user):
    ids = waiting(app, "010102", 2, name="测两次")
    client = as_user("office1")
    query = qs(status="AGENCY_REPORTED", unit="010102")
    _, n = confirm(client, "confirm", query)
    execute(client, "confirm", query, n)
    numbers = [p.policy_no for p in rows(app, ids)]
    before = counter(app, f"policy_no:{TODAY.year}")
    page = execute(client, "confirm", query, n)  # the same confirmation page submitted again
    assert "数据已变化" in page.get_data(as_text=True)
    assert [p.policy_no for p in rows(app, ids)] == numbers
    assert counter(app, f"policy_no:{TODAY.year}") == before


def test_only_the_office_sees_the_confirm_button(app, as_user):
    ids = waiting(app, "010101", 1, name="测越权")
    for user in ("clerk1", "agency1", "info1"):
        client = as_user(user)
        for action in ("confirm", "office-return"):
            assert client.get(f"/admin/policies/bulk/{action}/?{qs(status='AGENCY_REPORTED')}").status_code == 404
            page = execute(client, action, qs(status="AGENCY_REPORTED"), 1, follow=False, **{"p-reason": "x"})
            assert page.status_code == 404
        assert 'id="bulk-confirm"' not in client.get("/admin/policies/").get_data(as_text=True)
    assert {p.status for p in rows(app, ids)} == {PolicyStatus.AGENCY_REPORTED}
    assert 'id="bulk-confirm"' in as_user("office1").get("/admin/policies/").get_data(as_text=True)


def test_the_office_returns_policies_to_the_agency_with_a_reason_the_agency_sees(app, as_user):
    ids = waiting(app, "010101", 2, name="测办打回")
    client = as_user("office1")
    query = qs(status="AGENCY_REPORTED", unit="010101")
    _, n = confirm(client, "office-return", query)
    page = execute(client, "office-return", query, n, **{"p-reason": ""})
    assert "请填写打回原因" in page.get_data(as_text=True)
    assert {p.status for p in rows(app, ids)} == {PolicyStatus.AGENCY_REPORTED}
    execute(client, "office-return", query, n, **{"p-reason": "缴费金额与清单不符"})
    assert {(p.status, p.return_reason) for p in rows(app, ids)} == {(PolicyStatus.REPORTED, "缴费金额与清单不符")}
    listing = as_user("agency1").get(f"/admin/policies/?{qs(status='REPORTED', unit='010101')}")
    assert "办事处打回原因：缴费金额与清单不符" in listing.get_data(as_text=True)


# ---- 打印生效清单 ---------------------------------------------------------------------------------
def test_the_effective_list_prints_one_section_per_unit_with_numbers_names_and_totals_in_words(app, as_user):
    east = waiting(app, "010101", 3, name="测清单")
    west = waiting(app, "010102", 2, name="测清单")
    client = as_user("office1")
    query = qs(status="AGENCY_REPORTED")
    _, n = confirm(client, "confirm", query)
    execute(client, "confirm", query, n)
    mine = rows(app, east + west)
    # print only these: the query of 打印生效 rows named 测清单
    pq = qs(status="EFFECTIVE", name="测清单")
    html, n = confirm(client, "print-effective", pq)
    assert n == 5 and "共 2 个单位" in html
    page = execute(client, "print-effective", pq, n, follow=False)
    assert page.status_code == 200 and page.mimetype == "application/pdf"
    pdf = page.get_data()
    assert pdf_pages(pdf) == 2  # one page per unit
    text = pdf_text(pdf)
    flat = squeeze(text)
    assert "打印生效清单" in text and "东城区第一机床厂工会" in text and "东城区百货公司工会" in text
    for p in mine:
        assert p.policy_no in flat
    with app.app_context():
        names = db.session.scalars(sa.select(Policy).where(Policy.id.in_(east + west))).all()
        for p in names:
            assert p.member.name in flat
    east_total = sum((p.amount for p in mine if p.id in east), Decimal("0"))
    assert f"{east_total:.2f}" in flat and amount_in_words(east_total) in flat


def test_a_list_too_long_to_print_says_how_to_narrow_it(app, as_user, monkeypatch):
    import actions.effective as eff

    monkeypatch.setattr(eff, "PRINT_LIMIT", 3)
    monkeypatch.setattr("actions.documents.PRINT_LIMIT", 3)
    html, n = confirm(as_user("office1"), "print-effective", qs(status="EFFECTIVE"))
    assert "一份打印清单最多 3 条" in html and 'id="bulk-refusal"' in html


# ---- 开具收据 ------------------------------------------------------------------------------------
def _issue(client, org="010101", status="REPORTED"):
    query = qs(status=status, unit=org)
    html, n = confirm(client, "receipt", query)
    page = execute(client, "receipt", query, n)
    return html, n, page


def _latest_receipt(app) -> Receipt:
    with app.app_context():
        r = db.session.scalar(sa.select(Receipt).order_by(Receipt.id.desc()).limit(1))
        db.session.expunge(r)
        return r


def test_the_agency_issues_a_receipt_for_one_units_reported_policies(app, as_user):
    ids = waiting(app, "010101", 3, name="测收据", status=PolicyStatus.REPORTED)
    client = as_user("agency1")
    before = counter(app, f"receipt_no:{TODAY.year}")
    html, n, page = _issue(client)
    assert "缴费单位：东城区第一机床厂工会" in html
    body = page.get_data(as_text=True)
    r = _latest_receipt(app)
    assert r.receipt_no == f"{TODAY.year}-{before + 1:06d}"
    assert f"已开具收据 {r.receipt_no}" in body and r.receipt_no in body  # lands on the receipt's page
    with app.app_context():
        assert set(db.session.scalars(sa.select(Policy.id).where(Policy.receipt_id == r.id))) >= set(ids)
        assert db.session.scalar(sa.select(sa.func.count()).where(ReceiptPolicy.receipt_id == r.id)) == n
        amount = db.session.scalar(sa.select(sa.func.sum(Policy.amount)).where(Policy.receipt_id == r.id))
        heads = db.session.scalar(
            sa.select(sa.func.count(sa.distinct(Policy.member_id))).where(Policy.receipt_id == r.id)
        )
    assert r.total == amount and r.headcount == heads
    pdf = client.get(f"/admin/receipts/pdf/{r.id}/").get_data()
    assert pdf == r.pdf  # reprint: the stored bytes
    assert client.get(f"/admin/receipts/pdf/{r.id}/").get_data() == pdf
    flat = squeeze(pdf_text(pdf))
    assert f"No.{r.receipt_no}" in flat
    assert "东城区第一机床厂工会" in flat and f"{r.headcount}人" in flat
    assert f"{r.total:.2f}" in flat and amount_in_words(r.total) in flat
    assert "职工意外伤害互助保障" in flat  # the breakdown by product
    assert "开具人" in flat and "东城代办处" in flat
    assert f"/admin/receipts/verify/{r.receipt_no}" in flat  # the QR code's address, printed under it


def test_a_query_spanning_units_is_refused_and_says_to_choose_one_unit(app, as_user):
    waiting(app, "010101", 1, name="测跨单位", status=PolicyStatus.REPORTED)
    waiting(app, "010102", 1, name="测跨单位", status=PolicyStatus.REPORTED)
    client = as_user("agency1")
    before = counter(app, f"receipt_no:{TODAY.year}")
    query = qs(status="REPORTED")
    html, n = confirm(client, "receipt", query)
    assert 'id="bulk-refusal"' in html and "一张收据只能开给一个缴费单位" in html and "当前单位编号" in html
    page = execute(client, "receipt", query, n)
    assert "一张收据只能开给一个缴费单位" in page.get_data(as_text=True)
    assert counter(app, f"receipt_no:{TODAY.year}") == before


def test_a_policy_is_on_at_most_one_valid_receipt(app, as_user):
    waiting(app, "010102", 2, name="测一张", status=PolicyStatus.REPORTED)
    client = as_user("agency1")
    _issue(client, "010102")
    before = counter(app, f"receipt_no:{TODAY.year}")
    html, n = confirm(client, "receipt", qs(status="REPORTED", unit="010102"))
    assert n == 0 and "已在有效收据上" in html
    assert counter(app, f"receipt_no:{TODAY.year}") == before


def test_a_voided_receipt_keeps_its_number_shows_void_and_frees_its_policies(app, as_user):
    ids = waiting(app, "010101", 2, name="测作废", status=PolicyStatus.AGENCY_REPORTED)
    client = as_user("agency1")
    _issue(client, status="AGENCY_REPORTED")
    r = _latest_receipt(app)
    token = csrf_token(client, f"/admin/receipts/details/?id={r.id}")
    page = client.post(f"/admin/receipts/void/{r.id}/", data={"csrf_token": token, "reason": ""}, follow_redirects=True)
    assert "请填写作废原因" in page.get_data(as_text=True)
    page = client.post(
        f"/admin/receipts/void/{r.id}/", data={"csrf_token": token, "reason": "金额开错"}, follow_redirects=True
    )
    assert f"收据 {r.receipt_no} 已作废" in page.get_data(as_text=True)
    with app.app_context():
        again = db.session.get(Receipt, r.id)
        assert again.status == ReceiptStatus.VOID and again.receipt_no == r.receipt_no
        assert again.pdf == r.pdf  # the original stays as it was printed
        assert db.session.scalar(sa.select(sa.func.count()).where(Policy.receipt_id == r.id)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).where(ReceiptPolicy.receipt_id == r.id)) >= 2
    text = pdf_text(client.get(f"/admin/receipts/pdf/{r.id}/").get_data())
    assert "作废" in text and "金额开错" in text and r.receipt_no in text
    _issue(client, status="AGENCY_REPORTED")  # its policies can be receipted again
    r2 = _latest_receipt(app)
    assert r2.id != r.id and int(r2.receipt_no[5:]) == int(r.receipt_no[5:]) + 1
    assert {p.receipt_id for p in rows(app, ids)} == {r2.id}


def test_only_the_agency_issues_and_voids_receipts(app, as_user):
    r = _latest_receipt(app)
    for user in ("clerk1", "office1"):
        client = as_user(user)
        assert client.get(f"/admin/policies/bulk/receipt/?{qs(status='REPORTED')}").status_code == 404
        token = csrf_token(client)
        assert client.post(f"/admin/receipts/void/{r.id}/", data={"csrf_token": token, "reason": "x"}).status_code in (
            403,
            404,
        )
    with app.app_context():
        assert db.session.get(Receipt, r.id).status == ReceiptStatus.VALID


# ---- tampering ---------------------------------------------------------------------------------
def _receipt_of(app, code) -> Receipt:
    with app.app_context():
        r = db.session.scalar(sa.select(Receipt).join(Org).where(Org.code == code).limit(1))
        db.session.expunge(r)
        return r


@pytest.mark.parametrize("url", ["/admin/receipts/pdf/{id}/", "/admin/receipts/details/?id={id}"])
def test_another_units_receipt_is_not_found(app, as_user, url):
    west = _receipt_of(app, "010201")
    for user in ("clerk1", "agency1"):
        assert as_user(user).get(url.format(id=west.id)).status_code == 404
    assert as_user("clerk3").get(url.format(id=west.id)).status_code == 200


def test_the_qr_address_opens_the_record_only_within_scope(app, as_user):
    west = _receipt_of(app, "010201")
    own = as_user("clerk3").get(f"/admin/receipts/verify/{west.receipt_no}")
    assert own.status_code == 302 and f"id={west.id}" in own.headers["Location"]
    assert as_user("clerk1").get(f"/admin/receipts/verify/{west.receipt_no}").status_code == 404
    assert as_user("clerk1").get("/admin/receipts/verify/2026-999999").status_code == 404


def test_agency1_cannot_void_another_agencys_receipt(app, as_user):
    west = _receipt_of(app, "010201")
    client = as_user("agency1")
    token = csrf_token(client)
    assert client.post(f"/admin/receipts/void/{west.id}/", data={"csrf_token": token, "reason": "x"}).status_code == 404
    with app.app_context():
        assert db.session.get(Receipt, west.id).status == ReceiptStatus.VALID


def test_a_tampered_unit_filter_prints_nothing_of_another_unit(app, as_user):
    for user, action, status in (("clerk1", "print-effective", "EFFECTIVE"), ("agency1", "receipt", "REPORTED")):
        client = as_user(user)
        query = qs(status=status, unit="010201")
        assert client.get(f"/admin/policies/bulk/{action}/?{query}").status_code == 302  # back to the list
        page = execute(client, action, query, 1, follow=False)
        assert page.status_code == 302 and page.mimetype != "application/pdf"
        listing = client.get(f"/admin/policies/?{query}").get_data(as_text=True)
        assert "不在您的管辖范围内" in listing


# ---- a member's name is text in every document -------------------------------------------------
def test_a_hostile_member_name_prints_as_text_in_the_receipt_and_the_effective_list(app, as_user):
    m = make_member(app, "测")
    with app.app_context():
        from models import Member

        db.session.get(Member, m["id"]).name = HOSTILE
        db.session.commit()
    pid = make_policy(app, m, "P03", PolicyStatus.AGENCY_REPORTED)
    agency = as_user("agency1")
    _issue(agency, status="AGENCY_REPORTED")
    r = _latest_receipt(app)
    # the receipt names the unit, not members; its text is still plain
    assert "root:" not in pdf_text(agency.get(f"/admin/receipts/pdf/{r.id}/").get_data())
    office = as_user("office1")
    query = qs(status="AGENCY_REPORTED", unit="010101")
    _, n = confirm(office, "confirm", query)
    execute(office, "confirm", query, n)
    (p,) = rows(app, [pid])
    pq = qs(status="EFFECTIVE", member_no=m["member_no"])
    _, n = confirm(office, "print-effective", pq)
    text = pdf_text(execute(office, "print-effective", pq, n, follow=False).get_data())
    assert HOSTILE in text and p.policy_no in squeeze(text)
    assert "root:" not in text


def test_the_document_fetcher_reads_nothing_outside_pdf_templates():
    from batch.pdf import FetchRefused, check_url

    assert check_url((__import__("batch.pdf").pdf.TEMPLATES / "base.css").as_uri()).name == "base.css"
    for url in (
        "file:///etc/passwd",
        "http://127.0.0.1/",
        "https://example.com/x.png",
        "data:text/plain,x",
        (__import__("batch.pdf").pdf.TEMPLATES / ".." / "app.py").as_uri(),
        "file://otherhost/etc/passwd",
    ):
        with pytest.raises(FetchRefused):
            check_url(url)


def test_markup_that_reached_a_template_still_fetches_nothing(tmp_path, caplog):
    """Defence in depth: even an <img> or a stylesheet link that was not escaped reads no file."""
    from weasyprint import HTML

    from batch.pdf import BASE_URL, _fetcher

    secret = tmp_path / "secret.css"
    secret.write_text("body { color: red }")
    html = f'<link rel="stylesheet" href="{secret.as_uri()}"><img src="file:///etc/passwd"><p>正文</p>'
    with caplog.at_level("WARNING", logger="weasyprint"):
        pdf = HTML(string=html, base_url=BASE_URL, url_fetcher=_fetcher()).write_pdf()
    assert "正文" in pdf_text(pdf)
    refused = caplog.text
    assert "refused to fetch 'file:///etc/passwd'" in refused
    assert f"refused to fetch '{secret.as_uri()}'" in refused


def test_receipt_numbers_run_per_year(app):
    from actions.receipts import create_receipt

    with app.app_context():
        from models import User

        agency = db.session.scalar(sa.select(User).where(User.username == "agency1"))
        ids = waiting(app, "010102", 1, name="测跨年", status=PolicyStatus.REPORTED)
        r = create_receipt(sa.select(Policy.id).where(Policy.id.in_(ids)), agency, today=date(2031, 1, 2))
        assert r.receipt_no == "2031-000001"
        assert re.fullmatch(r"\d{4}-\d{6}", r.receipt_no)
        db.session.rollback()


def test_the_audit_log_names_what_the_office_and_the_agency_did(app, as_user):
    from models.audit import ACTION_LABELS

    assert ACTION_LABELS["confirm"] == "确认生效" and ACTION_LABELS["office_return"] == "打回代办处"
    assert ACTION_LABELS["receipt"] == "开具收据" and ACTION_LABELS["void"] == "作废"
    html = as_user("admin").get("/admin/audit/").get_data(as_text=True)
    assert "开具收据" in html  # the demo receipts, issued as agency1 issues them

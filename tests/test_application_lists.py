"""The application lists have one way in, in the manual's words: 【创建调入调出申请】 on 会员调动管理,
【创建】 on 会员变更管理 (manual 一(四)1, 3), 【创建超龄例外申请】, 【创建保单终止申请】 — and no generic
创建 tab of Flask-Admin beside 列表, nor on an application's detail page."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from conftest import login_as

from models import (
    ChangeApplication,
    Gender,
    Member,
    Org,
    OverAgeApplication,
    TerminationApplication,
    TransferApplication,
    User,
    db,
)

BUTTONS = {
    "transfers": ("创建调入调出申请", TransferApplication),
    "changes": ("创建", ChangeApplication),
    "over_age": ("创建超龄例外申请", OverAgeApplication),
    "terminations": ("创建保单终止申请", TerminationApplication),
}


def links_to_create(html: str, endpoint: str) -> list[str]:
    """The text of every link into the screen's creation page."""
    return [
        re.sub(r"<[^>]+>", "", text).strip()
        for text in re.findall(rf'<a [^>]*href="/admin/{endpoint}/new/[^"]*"[^>]*>(.*?)</a>', html, re.S)
    ]


@pytest.mark.parametrize("endpoint", list(BUTTONS))
def test_the_list_offers_only_the_manuals_button_to_create(app, client, endpoint):
    words, _ = BUTTONS[endpoint]
    login_as(app, client, "clerk1")
    html = client.get(f"/admin/{endpoint}/").get_data(as_text=True)
    assert links_to_create(html, endpoint) == [f"【{words}】"]
    assert not re.search(r'class="nav-link"[^>]*>\s*创建\s*</a>', html)


def one_of_each(app) -> dict[str, int]:
    """A 新建 application of each kind of clerk1's unit."""
    with app.app_context():
        org = db.session.scalar(sa.select(Org).where(Org.code == "010101"))
        clerk = db.session.scalar(sa.select(User).where(User.username == "clerk1"))
        mine = db.session.scalars(sa.select(Member).where(Member.org_id == org.id).order_by(Member.id.desc()).limit(2))
        other = db.session.scalar(sa.select(Member).where(Member.org_id != org.id).order_by(Member.id.desc()).limit(1))
        m1, _ = mine.all()
        rows = {
            "transfers": TransferApplication(member=other, from_org_id=other.org_id, to_org=org, created_by=clerk),
            "changes": ChangeApplication(
                member=m1, org=org, old_name=m1.name, new_name=m1.name + "改", old_id_number=m1.id_number, reason="更正"
            ),
            "over_age": OverAgeApplication(
                org=org,
                id_number="110105196001010011",
                name="钱局长",
                gender=Gender.MALE,
                birth_date=date(1960, 1, 1),
                reason="局级干部",
                created_by=clerk,
            ),
            "terminations": TerminationApplication(
                org=org, reason="调离", requested_end_date=date.today() + timedelta(days=30), created_by=clerk
            ),
        }
        db.session.add_all(rows.values())
        db.session.commit()
        return {k: v.id for k, v in rows.items()}


def test_an_applications_page_has_no_second_way_to_create(app, client):
    ids = one_of_each(app)
    login_as(app, client, "clerk1")
    for endpoint, app_id in ids.items():
        page = client.get(f"/admin/{endpoint}/details/?id={app_id}")
        assert page.status_code == 200, endpoint
        html = page.get_data(as_text=True)
        assert links_to_create(html, endpoint) == [], endpoint
        assert "申请" in html


def test_the_approver_sees_no_button_to_create(app, client):
    login_as(app, client, "info1")
    for endpoint in ("transfers", "changes"):
        assert links_to_create(client.get(f"/admin/{endpoint}/").get_data(as_text=True), endpoint) == []

"""Scope cannot leak: a user sees and touches only rows of their org's subtree.

The tamper tests are generated over every model view registered in the admin: clerk1 asks for a
row of clerk2's or clerk3's unit by id in details, edit, delete and export, and gets 404/403 with
the row unchanged."""

from datetime import date

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as
from flask_admin.contrib.sqla import ModelView

from models import (
    ApplicationStatus,
    BatchKind,
    ChangeApplication,
    ImportBatch,
    Member,
    Org,
    Policy,
    TerminationApplication,
    TransferApplication,
    User,
    db,
    scoped,
)


def model_views(app):
    admin = app.extensions["admin"][0]
    return [v for v in admin._views if isinstance(v, ModelView)]


def _org(code):
    return db.session.scalar(sa.select(Org).where(Org.code == code))


def _user(name):
    return db.session.scalar(sa.select(User).where(User.username == name))


def _seed_applications():
    """Applications and batches are empty in the demo data: give every unit one of each."""
    for code, clerk in (("010101", "clerk1"), ("010102", "clerk2"), ("010201", "clerk3")):
        org, user = _org(code), _user(clerk)
        member = db.session.scalar(sa.select(Member).where(Member.org_id == org.id).limit(1))
        policy = db.session.scalar(sa.select(Policy).where(Policy.org_id == org.id).limit(1))
        db.session.add(
            TerminationApplication(
                org=org, reason="调离本单位", requested_end_date=date.today(), created_by=user, policies=[policy]
            )
        )
        db.session.add(
            ChangeApplication(
                member=member,
                org=org,
                old_name=member.name,
                new_name=member.name + "华",
                reason="更正姓名",
                created_by=user,
            )
        )
        db.session.add(
            ImportBatch(kind=BatchKind.MEMBERS, file_name=f"{code}.xlsx", sha256=code * 8, user=user, org=org)
        )
    east, west = _org("010102"), _org("010201")
    m = db.session.scalar(sa.select(Member).where(Member.org_id == west.id).limit(1))
    db.session.add(
        TransferApplication(
            member=m,
            from_org=west,
            to_org=_org("010201"),
            created_by=_user("clerk3"),
            status=ApplicationStatus.SUBMITTED,
        )
    )
    m2 = db.session.scalar(sa.select(Member).where(Member.org_id == east.id).limit(1))
    db.session.add(TransferApplication(member=m2, from_org=east, to_org=east, created_by=_user("clerk2")))
    db.session.commit()


def _foreign_ids(view, owner="clerk1"):
    """Ids of the view's model that clerk1 must not reach (those in clerk2's or clerk3's scope)."""
    model = view.model
    mine = set(db.session.scalars(scoped(sa.select(model.id), model, _user(owner))))
    others = set()
    for name in ("clerk2", "clerk3"):
        others |= set(db.session.scalars(scoped(sa.select(model.id), model, _user(name))))
    return sorted(others - mine)


def _view_ids(app):
    return [v.endpoint for v in model_views(app)]


@pytest.fixture
def seeded(app):
    with app.app_context():
        _seed_applications()


def _views_with_foreign_rows(app):
    with app.app_context():
        _seed_applications()
        out = []
        for v in model_views(app):
            ids = _foreign_ids(v)
            out.append((v, ids))
        return out


def test_every_model_view_is_covered_by_a_scope_rule(app):
    with app.app_context():
        for view in model_views(app):
            # raises TypeError for a model that models.scope does not know
            scoped(sa.select(view.model.id), view.model, _user("clerk1"))


@pytest.mark.parametrize("verb", ["details", "edit"])
def test_clerk1_cannot_open_another_units_row_by_id(app, client, verb):
    login_as(app, client, "clerk1")
    checked = 0
    for view, ids in _views_with_foreign_rows(app):
        for pk in ids[:3] + ids[-2:]:
            page = client.get(f"/admin/{view.endpoint}/{verb}/?id={pk}")
            assert page.status_code in (403, 404), (view.endpoint, pk, page.status_code)
            body = page.get_data(as_text=True)
            assert "记录不存在" in body or "无权操作" in body
            checked += 1
    assert checked >= 20


def test_clerk1_cannot_delete_another_units_row(app, client):
    login_as(app, client, "clerk1")
    token = csrf_token(client)
    checked = 0
    for view, ids in _views_with_foreign_rows(app):
        for pk in ids[:2]:
            page = client.post(f"/admin/{view.endpoint}/delete/", data={"id": pk, "csrf_token": token})
            assert page.status_code in (403, 404), (view.endpoint, pk, page.status_code)
            with app.app_context():
                assert db.session.get(view.model, pk) is not None, (view.endpoint, pk)
            checked += 1
    assert checked >= 10


def test_clerk1_cannot_edit_another_units_member_by_a_tampered_post(app, client):
    login_as(app, client, "clerk1")
    token = csrf_token(client)
    with app.app_context():
        other = db.session.scalar(sa.select(Member).join(Org).where(Org.code == "010102").limit(1))
        pk, name = other.id, other.name
    page = client.post(f"/admin/members/edit/?id={pk}", data={"name": "篡改", "id_number": "x", "csrf_token": token})
    assert page.status_code == 404
    with app.app_context():
        assert db.session.get(Member, pk).name == name


def test_clerk1_export_holds_only_own_units_rows(app, client):
    login_as(app, client, "clerk1")
    csv = client.get("/admin/members/export/csv/").get_data(as_text=True)
    with app.app_context():
        own = db.session.scalars(sa.select(Member.member_no).join(Org).where(Org.code == "010101")).all()
        foreign = db.session.scalars(sa.select(Member.member_no).join(Org).where(Org.code != "010101")).all()
    assert all(no in csv for no in own)
    assert not any(no in csv for no in foreign)


def test_clerk1_member_lookup_in_the_policy_form_finds_no_other_units_member(app, client):
    login_as(app, client, "clerk1")
    with app.app_context():
        other = db.session.scalar(sa.select(Member).join(Org).where(Org.code == "010201").limit(1))
        own = db.session.scalar(sa.select(Member).join(Org).where(Org.code == "010101").limit(1))
        other_idn, own_idn = other.id_number, own.id_number
    found = client.get(f"/admin/policies/lookup/?q={other_idn}").get_json()
    assert found["ok"] is False and found["code"] == "NOT_IN_UNIT" and found["message"] == "查无此会员信息"
    assert "name" not in found and "unit" not in found  # nothing of the other unit's member leaks
    found = client.get(f"/admin/policies/lookup/?q={own_idn}").get_json()
    assert found["ok"] is True and found["unit"] == "东城区第一机床厂工会"


def test_relation_drop_downs_offer_only_rows_in_scope(app, client):
    login_as(app, client, "info1")  # root: sees all orgs in the parent drop-down
    html = client.get("/admin/orgs/new/").get_data(as_text=True)
    assert "西城区供电局工会" in html
    login_as(app, client, "agency1")
    page = client.get("/admin/orgs/new/")
    assert page.status_code == 403


def _listed_units(client, url="/admin/members/export/csv/"):
    html = client.get(url).get_data(as_text=True)
    return {name for name in ("东城区第一机床厂工会", "东城区百货公司工会", "西城区供电局工会") if name in html}


def test_clerk1_list_shows_only_010101(app, client):
    login_as(app, client, "clerk1")
    assert _listed_units(client) == {"东城区第一机床厂工会"}


def test_agency1_sees_010101_and_010102_but_not_010201(app, client):
    login_as(app, client, "agency1")
    assert _listed_units(client) == {"东城区第一机床厂工会", "东城区百货公司工会"}
    with app.app_context():
        west = db.session.scalar(sa.select(Member.id).join(Org).where(Org.code == "010201").limit(1))
        east = db.session.scalar(sa.select(Member.id).join(Org).where(Org.code == "010102").limit(1))
    assert client.get(f"/admin/members/details/?id={west}").status_code == 404
    assert client.get(f"/admin/members/details/?id={east}").status_code == 200


def test_admin_sees_every_unit(app, client):
    login_as(app, client, "admin")
    assert _listed_units(client) == {"东城区第一机床厂工会", "东城区百货公司工会", "西城区供电局工会"}


def test_list_counts_match_the_scope(app, client):
    import re

    with app.app_context():
        expected = db.session.scalar(
            sa.select(sa.func.count()).select_from(Member).join(Org).where(Org.code == "010101")
        )
    login_as(app, client, "clerk1")
    html = client.get("/admin/members/").get_data(as_text=True)
    m = re.search(r"列表\s*\((\d+)\)", html)
    assert m, "the list shows its row count"
    assert int(m.group(1)) == expected


def test_a_non_numeric_id_is_a_404_not_a_500(app, client):
    login_as(app, client, "clerk1")
    assert client.get("/admin/members/details/?id=abc").status_code == 404
    assert client.get("/admin/members/edit/?id=1%20OR%201=1").status_code == 404

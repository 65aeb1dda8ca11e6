"""Scope cannot leak through the application screens: generated tamper tests for every route they add.

Each unit (clerk1 010101, clerk2 010102, clerk3 010201) gets an application of each kind in every
state; clerk1 then asks for the others' by id on every route (details, edit, the document, every
transition of the detail page's buttons by `?rid=`, the remedies) and gets 404/403 with nothing
changed.  The transfer look-up, the one place a unit sees another unit's member, never returns the
full ID number, the phone or the birth date."""

from __future__ import annotations

import io
from datetime import date

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as

from models import ApplicationStatus as AS
from models import (
    AuditLog,
    ChangeApplication,
    DocumentKind,
    Gender,
    Member,
    Org,
    OverAgeApplication,
    TransferApplication,
    User,
    db,
)
from models.storage import attachment_path

UNITS = {"clerk1": "010101", "clerk2": "010102", "clerk3": "010201"}
KINDS = {"transfers": TransferApplication, "changes": ChangeApplication, "over_age": OverAgeApplication}
TRANSITIONS = ("submit", "approve", "reject", "reopen")
PDF = b"%PDF-1.4 tamper test\n"


def _seed():
    """Per unit and kind: one application in each state; returns {(endpoint, owner): [ids]}."""
    org = {c: db.session.scalar(sa.select(Org).where(Org.code == code)) for c, code in UNITS.items()}
    user = {c: db.session.scalar(sa.select(User).where(User.username == c)) for c in UNITS}
    out: dict = {}
    seq = 0
    pool = [
        m
        for o in org.values()
        for m in db.session.scalars(
            sa.select(Member).where(Member.org_id == o.id).order_by(Member.id.desc()).offset(20).limit(20)
        )
    ]
    taken: set[int] = set()  # one undecided transfer per member
    for clerk in UNITS:
        members = db.session.scalars(
            sa.select(Member).where(Member.org_id == org[clerk].id).order_by(Member.id.desc()).limit(12)
        ).all()
        for n, status in enumerate(AS):
            seq += 1
            mover = next(m for m in pool if m.org_id != org[clerk].id and m.id not in taken)
            taken.add(mover.id)
            t = TransferApplication(
                member=mover, from_org_id=mover.org_id, to_org=org[clerk], created_by=user[clerk], status=status
            )
            c = ChangeApplication(
                member=members[n * 3],
                org=org[clerk],
                old_name=members[n * 3].name,
                new_name=members[n * 3].name + "改",
                old_id_number=members[n * 3].id_number,
                reason="篡改测试",
                created_by=user[clerk],
                status=status,
            )
            o = OverAgeApplication(
                org=org[clerk],
                id_number=f"1101051960010{seq:04d}X"[:18],
                name=f"超龄{seq}",
                gender=Gender.MALE,
                birth_date=date(1965, 1, 1),
                reason="局级干部",
                document_name="证明.pdf",
                document_kind=DocumentKind.PDF,
                document_size=len(PDF),
                document_sha256="0" * 64,
                created_by=user[clerk],
                status=status,
            )
            db.session.add_all([t, c, o])
            db.session.flush()
            attachment_path(f"over_age_{o.id}.pdf").write_bytes(PDF)
            for endpoint, app_ in (("transfers", t), ("changes", c), ("over_age", o)):
                out.setdefault((endpoint, clerk), []).append(app_.id)
    db.session.commit()
    return out


@pytest.fixture
def seeded(app):
    with app.app_context():
        return _seed()


def _foreign(seeded, endpoint):
    return seeded[(endpoint, "clerk2")] + seeded[(endpoint, "clerk3")]


def _states(app, model, ids):
    with app.app_context():
        return dict(db.session.execute(sa.select(model.id, model.status).where(model.id.in_(ids))).all())


@pytest.mark.parametrize("endpoint", list(KINDS))
@pytest.mark.parametrize("route", ["details/?id={id}", "edit/?id={id}", "document/{id}/"])
def test_clerk1_cannot_open_another_units_application(app, client, seeded, endpoint, route):
    if route.startswith("document") and endpoint != "over_age":
        pytest.skip("only over-age requests carry a document")
    login_as(app, client, "clerk1")
    for pk in _foreign(seeded, endpoint):
        page = client.get(f"/admin/{endpoint}/" + route.format(id=pk))
        assert page.status_code in (403, 404), (endpoint, route, pk, page.status_code)
        assert PDF not in page.data


@pytest.mark.parametrize("endpoint", list(KINDS))
@pytest.mark.parametrize("action", TRANSITIONS)
def test_clerk1_cannot_move_another_units_application_by_a_tampered_rid(app, client, seeded, endpoint, action):
    model = KINDS[endpoint]
    foreign = _foreign(seeded, endpoint)
    before = _states(app, model, foreign)
    login_as(app, client, "clerk1")
    token = csrf_token(client)
    for pk in foreign:
        page = client.get(f"/admin/{endpoint}/bulk/{action}/?rid={pk}")
        if page.status_code == 200:  # her own button, but another unit's row: nothing to act on
            assert 'id="bulk-count" class="text-primary">0<' in page.get_data(as_text=True).replace(
                "text-danger", "text-primary"
            )
        else:
            assert page.status_code == 404
        client.post(
            f"/admin/{endpoint}/bulk/{action}/?rid={pk}",
            data={"csrf_token": token, "expected": 1, "p-reason": "篡改"},
        )
    assert _states(app, model, foreign) == before


@pytest.mark.parametrize("endpoint", list(KINDS))
def test_clerk1_cannot_edit_another_units_application_by_a_tampered_post(app, client, seeded, endpoint):
    model = KINDS[endpoint]
    login_as(app, client, "clerk1")
    token = csrf_token(client)
    foreign = _foreign(seeded, endpoint)
    with app.app_context():
        before = {r.id: r.version for r in db.session.scalars(sa.select(model).where(model.id.in_(foreign)))}
    for pk in foreign:
        page = client.post(
            f"/admin/{endpoint}/edit/?id={pk}",
            data={"csrf_token": token, "new_name": "篡改", "reason": "篡改", "id_number": "", "name": "篡改"},
        )
        assert page.status_code in (403, 404), (endpoint, pk, page.status_code)
        page = client.post(f"/admin/{endpoint}/delete/", data={"csrf_token": token, "id": pk})
        assert page.status_code in (403, 404), (endpoint, pk, page.status_code)
    with app.app_context():
        after = {r.id: r.version for r in db.session.scalars(sa.select(model).where(model.id.in_(foreign)))}
    assert after == before


@pytest.mark.parametrize("endpoint", list(KINDS))
def test_lists_and_to_dos_hold_only_the_units_own_applications(app, client, seeded, endpoint):
    login_as(app, client, "clerk1")
    html = client.get(f"/admin/{endpoint}/?page_size=100").get_data(as_text=True)
    for pk in _foreign(seeded, endpoint):
        assert f"/admin/{endpoint}/details/?id={pk}&" not in html and f'details/?id={pk}"' not in html
    for pk in seeded[(endpoint, "clerk1")]:
        assert f"id={pk}" in html


@pytest.mark.parametrize("endpoint", list(KINDS))
def test_an_approver_outside_the_applicants_agency_sees_nothing_of_it(app, client, seeded, endpoint):
    """agency1 (东城代办处) approves over-age requests of 010101 and 010102, never 010201's."""
    if endpoint != "over_age":
        pytest.skip("transfers and changes are decided by 信息部 (the whole tree)")
    login_as(app, client, "agency1")
    for pk in seeded[("over_age", "clerk3")]:
        assert client.get(f"/admin/over_age/details/?id={pk}").status_code == 404
        assert client.get(f"/admin/over_age/document/{pk}/").status_code == 404


# ---- the look-up never gives the full ID number, the phone or the birth date -------------------------
def _lookup(client, term):
    return client.post(
        "/admin/transfers/new/",
        data={"csrf_token": csrf_token(client, "/admin/transfers/new/"), "q": term, "do": "lookup"},
    ).get_data(as_text=True)


@pytest.mark.parametrize("by", ["member_no", "id_number"])
def test_the_look_up_of_every_other_units_member_is_masked(app, client, by):
    with app.app_context():
        rows = db.session.execute(
            sa.select(Member.member_no, Member.id_number, Member.phone, Member.birth_date)
            .join(Org)
            .where(Org.code != "010101", Member.phone.is_not(None))
            .order_by(Member.id)
            .limit(10)
        ).all()
    app.config["TRANSFER_LOOKUPS_PER_HOUR"] = 100
    try:
        login_as(app, client, "clerk1")
        for member_no, idn, phone, birth in rows:
            html = _lookup(client, member_no if by == "member_no" else idn)
            assert f"{idn[:6]}********{idn[14:]}" in html
            if by == "member_no":
                assert idn not in html
            else:
                assert html.count(idn) == 1 and member_no not in html  # only the number she typed
            assert phone not in html
            assert birth.strftime("%Y-%m-%d") not in html and birth.strftime("%Y年%m月%d日") not in html
    finally:
        app.config["TRANSFER_LOOKUPS_PER_HOUR"] = 30
    with app.app_context():
        uid = db.session.scalar(sa.select(User.id).where(User.username == "clerk1"))
        assert db.session.scalar(
            sa.select(sa.func.count()).select_from(AuditLog).where(AuditLog.action == "lookup", AuditLog.user_id == uid)
        ) == len(rows)


def test_the_change_query_finds_no_member_of_another_unit(app, client):
    with app.app_context():
        other = db.session.execute(
            sa.select(Member.member_no, Member.id_number, Member.name).join(Org).where(Org.code == "010201").limit(1)
        ).one()
    login_as(app, client, "clerk1")
    for term in (other.member_no, other.id_number):
        html = client.get(f"/admin/changes/new/?q={term}").get_data(as_text=True)
        assert "查无此会员信息" in html and other.name not in html and 'id="save-btn"' not in html


def test_an_over_age_request_names_no_member_of_another_unit(app, client):
    with app.app_context():
        other = db.session.execute(
            sa.select(Member.id_number, Member.name).join(Org).where(Org.code == "010201").limit(1)
        ).one()
    login_as(app, client, "clerk1")
    html = client.post(
        "/admin/over_age/new/",
        data={
            "csrf_token": csrf_token(client, "/admin/over_age/new/"),
            "id_number": other.id_number,
            "name": "某人",
            "reason": "x",
            "document": (io.BytesIO(PDF), "a.pdf"),
        },
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert "查无此会员信息" in html and other.name not in html

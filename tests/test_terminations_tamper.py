"""Scope cannot leak through 保单提前终止: every route of its two screens, tampered by clerk1 with the
ids of other units' applications and policies, answers 403/404 or finds nothing — and changes
nothing.  The cases are checked against the app's URL map: a new route without a case fails."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login_as
from test_policies_entry import make_member, make_policy

from models import ApplicationStatus, Policy, PolicyStatus, TerminationApplication, User, db, termination_policy

SCREENS = ("terminations", "termination_policies")
START = date.today() - timedelta(days=60)


@pytest.fixture
def foreign(app):
    """An application of clerk2's unit (新建) and one of clerk3's (已提交), with their policies."""
    from actions.terminations import create_application

    out = {"apps": [], "policies": []}
    with app.app_context():
        for org, clerk, status in (("010102", "clerk2", ApplicationStatus.NEW), ("010201", "clerk3", None)):
            m = make_member(app, f"测篡改{org[-1]}", org=org)
            pid = make_policy(app, m, "P03", PolicyStatus.EFFECTIVE, start=START)
            user = db.session.scalar(sa.select(User).where(User.username == clerk))
            a = create_application(
                sa.select(Policy.id).where(Policy.id == pid), user, "会员退休", "", date.today() + timedelta(days=3)
            )
            if status is None:
                a.status = ApplicationStatus.SUBMITTED
            db.session.commit()
            out["apps"].append(a.id)
            out["policies"].append(pid)
    return out


def _state(app, foreign):
    with app.app_context():
        apps = db.session.execute(
            sa.select(TerminationApplication.id, TerminationApplication.status, TerminationApplication.version)
            .where(TerminationApplication.id.in_(foreign["apps"]))
            .order_by(TerminationApplication.id)
        ).all()
        pols = db.session.execute(
            sa.select(Policy.id, Policy.status, Policy.version)
            .where(Policy.id.in_(foreign["policies"]))
            .order_by(Policy.id)
        ).all()
        links = db.session.scalar(
            sa.select(sa.func.count()).where(termination_policy.c.policy_id.in_(foreign["policies"]))
        )
        n_apps = db.session.scalar(sa.select(sa.func.count()).select_from(TerminationApplication))
        return [tuple(r) for r in apps], [tuple(r) for r in pols], links, n_apps


def _ids(xs):
    return ",".join(map(str, xs))


def _refused(page):
    assert page.status_code in (400, 403, 404, 405), page.status_code


def _lists_none(page, ids):
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for i in ids:
        assert f'class="tick" value="{i}"' not in html


# each case: (client, foreign ids) -> asserts the answer; the data must be unchanged afterwards
def apps_index(c, f):
    _lists_none(c.get(f"/admin/terminations/?ids={_ids(f['apps'])}"), f["apps"])
    _lists_none(c.get(f"/admin/terminations/?app_no={f['apps'][0]}"), f["apps"])


def apps_details(c, f):
    for a in f["apps"]:
        _refused(c.get(f"/admin/terminations/details/?id={a}"))


def apps_edit(c, f):
    for a in f["apps"]:
        _refused(c.get(f"/admin/terminations/edit/?id={a}"))
        _refused(c.post(f"/admin/terminations/edit/?id={a}", data={"reason": "篡改", "csrf_token": csrf_token(c)}))


def apps_delete(c, f):
    for a in f["apps"]:
        _refused(c.post("/admin/terminations/delete/", data={"id": a, "csrf_token": csrf_token(c)}))


def apps_create(c, f):
    page = c.get("/admin/terminations/new/")
    assert page.status_code == 302 and page.headers["Location"].endswith("/admin/termination_policies/")


def apps_bulk(c, f):
    token = csrf_token(c)
    for name in ("print", "submit", "reopen"):
        for query in (f"rid={f['apps'][0]}", f"ids={_ids(f['apps'])}"):
            page = c.get(f"/admin/terminations/bulk/{name}/?{query}")
            assert page.status_code == 200 and 'id="bulk-count" class="text-primary">0<' in page.get_data(as_text=True)
            page = c.post(f"/admin/terminations/bulk/{name}/?{query}", data={"csrf_token": token, "expected": 0})
            assert page.mimetype != "application/pdf", (name, query)  # the download prints nothing of theirs
    for name in ("approve", "reject"):  # not the clerk's buttons at all
        _refused(c.get(f"/admin/terminations/bulk/{name}/?rid={f['apps'][1]}"))


def apps_export(c, f):
    _refused(c.get("/admin/terminations/export/xlsx/"))
    _refused(c.get("/admin/terminations/export/csv/"))


def apps_action(c, f):
    page = c.post(
        "/admin/terminations/action/",
        data={"action": "delete", "rowid": f["apps"], "csrf_token": csrf_token(c)},
    )
    assert page.status_code in (302, 400, 403, 404)


def ajax_lookup(endpoint):
    def case(c, f):
        page = c.get(f"/admin/{endpoint}/ajax/lookup/?name=org&query=0")
        assert page.status_code in (400, 404)

    return case


def ajax_update(endpoint):
    def case(c, f):
        for pk in f["apps"] + f["policies"]:
            page = c.post(
                f"/admin/{endpoint}/ajax/update/",
                data={"list_form_pk": pk, "status": "APPROVED", "csrf_token": csrf_token(c)},
            )
            assert page.status_code in (400, 403, 404, 405)

    return case


def failures(endpoint):
    def case(c, f):
        _refused(c.get(f"/admin/{endpoint}/bulk-failures/999999_deadbeef/"))
        page = c.post(
            f"/admin/{endpoint}/bulk-failures/999999_deadbeef/remedy/transfer/", data={"csrf_token": csrf_token(c)}
        )
        _refused(page)

    return case


def pick_index(c, f):
    _lists_none(c.get(f"/admin/termination_policies/?ids={_ids(f['policies'])}"), f["policies"])


def pick_terminate(c, f):
    page = c.get(f"/admin/termination_policies/terminate/?ids={_ids(f['policies'])}")
    assert 'id="terminate-count">0<' in page.get_data(as_text=True)
    page = c.post(
        f"/admin/termination_policies/terminate/?ids={_ids(f['policies'])}",
        data={
            "csrf_token": csrf_token(c),
            "reason": "会员退休",
            "end_date": (date.today() + timedelta(days=5)).isoformat(),
            "do": "create",
        },
    )
    assert page.status_code == 200 and "没有选中保单" in page.get_data(as_text=True)


def pick_details(c, f):
    for p in f["policies"]:
        _refused(c.get(f"/admin/termination_policies/details/?id={p}"))


def pick_edit(c, f):
    for p in f["policies"]:
        _refused(c.get(f"/admin/termination_policies/edit/?id={p}"))


def pick_delete(c, f):
    for p in f["policies"]:
        _refused(c.post("/admin/termination_policies/delete/", data={"id": p, "csrf_token": csrf_token(c)}))


def pick_create(c, f):
    page = c.post("/admin/termination_policies/new/", data={"csrf_token": csrf_token(c)})
    assert page.status_code in (302, 403, 404)


def pick_bulk(c, f):
    _refused(c.get(f"/admin/termination_policies/bulk/report/?ids={_ids(f['policies'])}"))


def pick_export(c, f):
    _refused(c.get("/admin/termination_policies/export/xlsx/"))


def pick_action(c, f):
    page = c.post(
        "/admin/termination_policies/action/",
        data={"action": "delete", "rowid": f["policies"], "csrf_token": csrf_token(c)},
    )
    assert page.status_code in (302, 400, 403, 404)


CASES = {
    "terminations.index_view": apps_index,
    "terminations.details_view": apps_details,
    "terminations.edit_view": apps_edit,
    "terminations.delete_view": apps_delete,
    "terminations.create_view": apps_create,
    "terminations.bulk_view": apps_bulk,
    "terminations.export": apps_export,
    "terminations.action_view": apps_action,
    "terminations.ajax_lookup": ajax_lookup("terminations"),
    "terminations.ajax_update": ajax_update("terminations"),
    "terminations.bulk_failures_view": failures("terminations"),
    "terminations.bulk_remedy_view": failures("terminations"),
    "termination_policies.index_view": pick_index,
    "termination_policies.terminate_view": pick_terminate,
    "termination_policies.details_view": pick_details,
    "termination_policies.edit_view": pick_edit,
    "termination_policies.delete_view": pick_delete,
    "termination_policies.create_view": pick_create,
    "termination_policies.bulk_view": pick_bulk,
    "termination_policies.export": pick_export,
    "termination_policies.action_view": pick_action,
    "termination_policies.ajax_lookup": ajax_lookup("termination_policies"),
    "termination_policies.ajax_update": ajax_update("termination_policies"),
    "termination_policies.bulk_failures_view": failures("termination_policies"),
    "termination_policies.bulk_remedy_view": failures("termination_policies"),
}


def test_every_route_of_the_termination_screens_has_a_tamper_case(app):
    routes = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.split(".")[0] in SCREENS}
    assert routes == set(CASES), f"routes without a tamper case: {sorted(routes - set(CASES))}"


@pytest.mark.parametrize("endpoint", sorted(CASES))
def test_clerk1_tampering_with_another_units_ids_finds_nothing_and_changes_nothing(app, client, foreign, endpoint):
    before = _state(app, foreign)
    login_as(app, client, "clerk1")
    CASES[endpoint](client, foreign)
    assert _state(app, foreign) == before


def test_the_other_units_see_their_own_application_and_the_office_the_submitted_one(app, client, foreign):
    """The fixture's rows are reachable by their owners (so the cases above test scope, not absence)."""
    new, submitted = foreign["apps"]
    login_as(app, client, "clerk2")
    assert client.get(f"/admin/terminations/details/?id={new}").status_code == 200
    login_as(app, client, "clerk3")
    assert client.get(f"/admin/terminations/details/?id={submitted}").status_code == 200
    login_as(app, client, "office1")
    assert client.get(f"/admin/terminations/details/?id={submitted}").status_code == 200
    assert client.get(f"/admin/terminations/details/?id={new}").status_code == 404  # a draft is the unit's
    login_as(app, client, "agency1")  # 东城代办处: not 西城's application
    assert client.get(f"/admin/terminations/details/?id={submitted}").status_code == 404

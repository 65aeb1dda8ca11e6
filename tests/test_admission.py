"""One admission check (batch/admission.py) behind 入会管理 【添加】 and 批量入会: the same person is
refused for the same reason, in the same words, on the form and in the result file."""

from __future__ import annotations

import pytest
from conftest import login_as
from test_batch_members import check, demo_member, fresh_id, id_of_age, members_file, rows_of, wrong_check_digit
from test_member_entry import errors, post_member

CASES = {
    "a woman of 58": (lambda: ("钱芳", id_of_age(58, male=False)), "OVER_AGE"),
    "a man of 70": (lambda: ("钱强", id_of_age(70, male=True)), "OVER_AGE"),
    "a boy of 16": (lambda: ("小明", id_of_age(16, male=True)), "UNDER_AGE"),
    "a member of my own unit": (
        lambda: (demo_member("010101").name, demo_member("010101").id_number),
        "ALREADY_MEMBER",
    ),
    "a member of another unit": (lambda: ("重复", demo_member("010201").id_number), "ALREADY_MEMBER"),
    "a wrong check digit": (lambda: ("李四", wrong_check_digit(fresh_id())), "ID_CHECKSUM"),
    "a space inside the name": (lambda: ("李 四", fresh_id()), "NAME_SPACE"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_form_and_the_batch_file_refuse_alike_in_the_same_words(app, client, tmp_path, case):
    make, code = CASES[case]
    with app.app_context():
        name, idn = make()
        row = rows_of(check(members_file(tmp_path, [[name, idn]])))[2]
    assert (row["status"], row["code"]) == ("error", code), row
    login_as(app, client, "clerk1")
    page = post_member(client, name=name, id_number=idn)
    assert page.status_code == 200
    assert row["message"] in errors(page), (row["message"], errors(page))


def test_over_age_under_65_says_how_the_exception_is_made_and_65_does_not(app, tmp_path):
    with app.app_context():
        rows = rows_of(
            check(members_file(tmp_path, [["钱芳", id_of_age(58, male=False)], ["孙老", id_of_age(65, True)]]))
        )
    assert rows[2]["message"].startswith("超龄（58周岁）。") and "代办处同意" in rows[2]["message"]
    assert rows[3]["message"] == "超龄（65周岁）"

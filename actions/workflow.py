"""The bulk action of every declared transition (models/workflow.py): one function runs them all.

`bulk_action(workflow, transition)` gives the BulkAction the list screen shows: its button words,
its roles, its reason field when the declaration asks for one, its confirmation note; `run` moves
the rows of the current query that are still in the transition's from-states, in one UPDATE with
its audit rows (actions/base.py `transition`).
"""

from __future__ import annotations

from functools import cache

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from models import Transition, Workflow, utcnow

from .base import BulkAction, Result, transition

REASON_MAX = 200


@cache
def reason_form(label: str) -> type:
    """The form of a transition's required reason (e.g. 打回原因, 驳回原因)."""
    short = label.split("（")[0]
    return type(
        "ReasonForm",
        (FlaskForm,),
        {
            "reason": StringField(
                label,
                [
                    DataRequired(f"请填写{short}"),  # after the strip below: spaces alone are no reason
                    Length(max=REASON_MAX, message=f"{short}不超过{REASON_MAX}字"),
                ],
                filters=[lambda v: v.strip() if isinstance(v, str) else v],
            )
        },
    )


def transition_values(t: Transition, user, reason: str | None) -> tuple[dict, dict]:
    """The columns the transition sets besides its state, and what its audit rows add."""
    values: dict = {col: None for col in t.clears}
    after: dict = {}
    if t.reason_column:
        text = (reason or "").strip()
        values[t.reason_column] = text
        after[t.reason_column] = text
    now = utcnow()
    for col, what in t.stamps.items():
        values[col] = now if what == "now" else user.id
    return values, after


def skipped_count(expected, done) -> int:
    return max((expected or done) - done, 0)


def run_transition(wf: Workflow, t: Transition, ids, user, expected=None, reason: str | None = None) -> Result:
    """Move the rows of `ids` still in the transition's from-states; the rest are skipped and counted."""
    values, after = transition_values(t, user, reason)
    done = transition(wf.model, ids, t.from_states, t.to_state, user, t.action, values=values, after=after)
    skipped = skipped_count(expected, done)
    return Result(done, skipped, f"{t.done_words} {done} 条，跳过 {skipped} 条（状态已变化）")


def bulk_action(wf: Workflow, t: Transition, run=None, **extra) -> BulkAction:
    """The list screen's button for a declared transition (`run` replaces the plain state change)."""

    def default_run(ids, user, expected=None, reason=None):
        return run_transition(wf, t, ids, user, expected=expected, reason=reason)

    return BulkAction(
        name=t.name,
        label=t.label,
        run=run or default_run,
        from_states=t.from_states,
        roles=t.roles,
        form=reason_form(t.reason) if t.reason else None,
        danger=t.danger,
        with_amount=t.with_amount,
        note=t.note,
        **extra,
    )


# (model, transition name) -> keyword arguments of `bulk_action` for transitions that do more than
# change a state (an application's 通过 applies what it asked for): their `run`, extra conditions
_SPECIAL: dict[tuple, dict] = {}


def special(wf: Workflow, name: str, **kwargs) -> None:
    wf.get(name)  # a typo is an error at import, not a silently plain transition
    _SPECIAL[(wf.model, name)] = kwargs


def workflow_actions(wf: Workflow) -> list[BulkAction]:
    """The bulk actions of every transition the workflow declares now."""
    return [bulk_action(wf, t, **_SPECIAL.get((wf.model, t.name), {})) for t in wf.transitions]

"""State transitions, declared once per aggregate (DESIGN.md §3, STYLE.md "a transition").

A `Transition` says everything a state change is: its name, the manual's button words, the states
it leaves, the state it reaches, who may do it, its audit action and label, and whether it needs a
reason (and where the reason is kept for the person who must read it).  A `Workflow` holds the
transitions of one model, its noun and the states in which a row may still be edited.

Everything else is derived from these declarations, so moving a state means one declaration:
    - the bulk action of each transition (actions/workflow.py, shown by views/bulk.py),
    - the to-do counts on 首页 (`todo`: from-state -> the to-do's words, for the transition's roles),
    - the "cannot edit in this state" message (`Workflow.edit_refusal`),
    - the audit log's label of the action (`ACTION_LABELS`, filled in on declaration).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .audit import ACTION_LABELS
from .base import LabeledEnum


@dataclass(frozen=True, eq=False)
class Transition:
    name: str  # the bulk action's URL slug, unique within its workflow
    label: str  # the manual's button words, e.g. 当前查询结果上报
    from_states: tuple
    to_state: LabeledEnum
    roles: frozenset
    action: str  # audit action, e.g. "report"
    action_label: str  # what the audit log (and the result line "已上报 N 条") calls it
    reason: str | None = None  # label of a required reason field; None: no reason asked
    reason_column: str | None = None  # where the reason is kept, for the one who must read it
    clears: tuple = ()  # columns emptied by the transition (e.g. an old 打回原因 on 上报)
    stamps: dict = field(default_factory=dict)  # column -> "now" | "user" (e.g. decided_at, decided_by_id)
    todo: dict = field(default_factory=dict)  # from-state -> to-do words on 首页, for `roles`
    note: str = ""  # what the action does, in the clerk's words (confirmation page)
    danger: bool = False
    with_amount: bool = False  # the confirmation page shows 汇总金额 (policies)

    @property
    def done_words(self) -> str:
        return f"已{self.action_label}"


class Workflow:
    """The transitions of one model."""

    def __init__(self, model, noun: str, editable: tuple = (), transitions: list[Transition] | None = None):
        self.model = model
        self.noun = noun  # 会员, 投保记录, 会员调动申请 …
        self.editable = tuple(editable)  # states in which a row may be edited or deleted
        self.transitions: list[Transition] = []
        for t in transitions or []:
            self.add(t)
        WORKFLOWS.append(self)

    def add(self, t: Transition) -> Transition:
        if any(o.name == t.name for o in self.transitions):
            raise ValueError(f"{self.model.__name__}: transition {t.name!r} declared twice")
        known = ACTION_LABELS.setdefault(t.action, t.action_label)
        if known != t.action_label:
            raise ValueError(f"audit action {t.action!r} is {known!r}, not {t.action_label!r}")
        self.transitions.append(t)
        return t

    def remove(self, t: Transition) -> None:
        """Take a transition away again (tests that declare one of their own)."""
        self.transitions.remove(t)

    def get(self, name: str) -> Transition:
        return next(t for t in self.transitions if t.name == name)

    def edit_refusal(self, obj) -> str | None:
        """Why `obj` may not be edited or deleted now (None: it may)."""
        if not self.editable or obj.status in self.editable:
            return None
        allowed = "或".join(s.label for s in self.editable)
        return f"该{self.noun}当前状态为“{obj.status.label}”，只有{allowed}状态的{self.noun}可以修改或删除。"


WORKFLOWS: list[Workflow] = []


def workflow_of(model) -> Workflow | None:
    return next((w for w in WORKFLOWS if w.model is model), None)

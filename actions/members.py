"""Bulk actions of 入会管理: 当前查询结果上报 and 全部删除."""

from __future__ import annotations

import sqlalchemy as sa

from models import MEMBER_EDITABLE, MEMBER_WORKFLOW, Member, Policy
from models.roles import UNIT

from .base import BulkAction, Result, delete_rows
from .workflow import run_transition


def report(ids, user, expected: int | None = None) -> Result:
    """新建/打回 → 财务确认 (the declared transition, models/member.py)."""
    return run_transition(MEMBER_WORKFLOW, MEMBER_WORKFLOW.get("report"), ids, user, expected=expected)


def without_policy():
    return ~sa.exists().where(Policy.member_id == Member.id)


def delete_all(ids, user, expected: int | None = None) -> Result:
    """Only 新建/打回 members, and never one with any policy."""
    done = delete_rows(Member, ids, MEMBER_EDITABLE, user, without_policy())
    skipped = max((expected or done) - done, 0)
    return Result(done, skipped, f"已删除 {done} 条，跳过 {skipped} 条（状态已变化或已有投保记录）")


DELETE_ALL = BulkAction(
    name="delete",
    label="全部删除",
    run=delete_all,
    from_states=MEMBER_EDITABLE,
    roles=UNIT,
    confirm_phrase="全部删除",
    danger=True,
    condition=without_policy,
    condition_label="已有投保记录，不能删除",
    note="删除当前查询结果中“新建”和“打回”状态、且没有任何投保记录的会员。删除后不能恢复。",
)

"""The data model: one module per aggregate (DESIGN.md §2–3)."""
from .base import LabeledEnum, db, utcnow  # noqa: F401
from .org import Org, OrgLevel, Role, SmsSend, User  # noqa: F401
from .member import Counter, Gender, Member, MemberStatus, MEMBER_EDITABLE, member_numbers  # noqa: F401
from .policy import (  # noqa: F401
    Claim, ClaimStatus, GenderRestriction, Policy, PolicyStatus, POLICY_EDITABLE, POLICY_IN_FLIGHT,
    Product, Receipt,
)
from .applications import (  # noqa: F401
    ApplicationStatus, ChangeApplication, TerminationApplication, TransferApplication,
    termination_policy,
)
from .batch import BatchKind, BatchStatus, ImportBatch, ImportRow, RowStatus  # noqa: F401
from .audit import AuditLog, write_audit  # noqa: F401
from .scope import scope_filter, scoped, org_subtree_ids  # noqa: F401

"""The data model: one module per aggregate (DESIGN.md §2–3)."""

from . import integrity  # noqa: F401  (after member and policy: it changes how their org keys are kept)
from .applications import (  # noqa: F401
    CHANGE_WORKFLOW,
    OVER_AGE_WORKFLOW,
    TERMINATION_WORKFLOW,
    TRANSFER_WORKFLOW,
    ApplicationStatus,
    ChangeApplication,
    DocumentKind,
    OverAgeApplication,
    TerminationApplication,
    TransferApplication,
    application_workflow,
    termination_policy,
)
from .audit import AuditLog, write_audit  # noqa: F401
from .base import LabeledEnum, db, utcnow  # noqa: F401
from .batch import BatchKind, BatchStage, BatchStatus, ImportBatch, ImportRow, RowStatus  # noqa: F401
from .member import MEMBER_EDITABLE, MEMBER_WORKFLOW, Counter, Gender, Member, MemberStatus, member_numbers  # noqa: F401
from .org import LoginFailure, Org, OrgLevel, Role, SmsSend, User  # noqa: F401
from .policy import (  # noqa: F401
    POLICY_EDITABLE,
    POLICY_IN_FLIGHT,
    POLICY_LIVE,
    POLICY_WORKFLOW,
    Claim,
    ClaimStatus,
    GenderRestriction,
    Policy,
    PolicyStatus,
    Product,
    Receipt,
    ReceiptPolicy,
    ReceiptStatus,
    product_choices,
    products,
)
from .scope import org_subtree_ids, scope_filter, scoped  # noqa: F401
from .session import UserSession, end_sessions  # noqa: F401
from .workflow import WORKFLOWS, Transition, Workflow, workflow_of  # noqa: F401

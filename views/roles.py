"""Which roles use which screens (DESIGN.md §1, §5)."""

from models.org import Role as R

EVERYONE = frozenset(R)
UNIT = frozenset({R.UNIT_CLERK})
AGENCY = frozenset({R.AGENCY_STAFF})
OFFICE = frozenset({R.OFFICE_STAFF})
INFO = frozenset({R.INFO_DEPT})
ADMIN = frozenset({R.ADMIN})
MANAGERS = frozenset({R.ADMIN, R.INFO_DEPT})
BUSINESS = frozenset({R.UNIT_CLERK, R.AGENCY_STAFF, R.OFFICE_STAFF, R.INFO_DEPT, R.ADMIN})

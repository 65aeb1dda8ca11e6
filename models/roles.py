"""Which roles use which screens and actions (DESIGN.md §1, §5): each role set defined once.

A models module so that the actions (a lower layer) and the views take their role sets from
the same place.
"""

from .org import Role as R

EVERYONE = frozenset(R)
UNIT = frozenset({R.UNIT_CLERK})
AGENCY = frozenset({R.AGENCY_STAFF})
OFFICE = frozenset({R.OFFICE_STAFF})
INFO = frozenset({R.INFO_DEPT})
ADMIN = frozenset({R.ADMIN})
MANAGERS = frozenset({R.ADMIN, R.INFO_DEPT})
BUSINESS = frozenset({R.UNIT_CLERK, R.AGENCY_STAFF, R.OFFICE_STAFF, R.INFO_DEPT, R.ADMIN})

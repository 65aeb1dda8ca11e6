"""Who is logged in, and whether their role may do something: the one small module every view
(and the bulk-action mixin) imports, so none of them needs another view module for it.

The role sets themselves live in models/roles.py (the actions use them too) and are re-exported
here for the views: `access.UNIT`, `access.MANAGERS`, ….
"""

from __future__ import annotations

from flask import current_app, g

from models.roles import ADMIN, AGENCY, BUSINESS, EVERYONE, INFO, MANAGERS, OFFICE, UNIT

__all__ = [
    "ADMIN",
    "AGENCY",
    "BUSINESS",
    "EVERYONE",
    "INFO",
    "MANAGERS",
    "OFFICE",
    "UNIT",
    "current_user",
    "has_role",
]


def current_user():
    """The logged-in user of this request (set by views/auth.py), or None."""
    return getattr(g, "user", None)


def has_role(*roles) -> bool:
    user = current_user()
    return user is not None and user.role in roles


def screens() -> list:
    """Every screen registered on the app's Admin, in menu order.  Flask-Admin keeps them only in
    its private `Admin._views`: this is the one place that reads it, and
    tests/test_library_guards.py fails if the library renames it."""
    return [view for admin in current_app.extensions.get("admin", []) for view in admin._views]

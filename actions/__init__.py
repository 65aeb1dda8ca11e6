"""Bulk actions: each one a plain function over the current query (DESIGN.md §8)."""

# 保单提前终止, the fourth application kind, lives in its own module (its forms and printing are
# larger); importing it with the package registers it wherever the workflow's actions are used.
from . import terminations  # noqa: F401
from .base import BulkAction, Download, Result, Summary, delete_rows, dml_with_audit, summarize, transition  # noqa: F401

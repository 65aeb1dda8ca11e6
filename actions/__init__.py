"""Bulk actions: each one a plain function over the current query (DESIGN.md §8)."""

from .base import BulkAction, Download, Result, Summary, delete_rows, dml_with_audit, summarize, transition  # noqa: F401

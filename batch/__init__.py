"""Batch files: reading, checking and writing uploads (one pipeline for every kind)."""

from . import members, policies  # noqa: F401,E402  (register the kinds)
from .pipeline import (  # noqa: F401
    KINDS,
    Outcome,
    RowResult,
    check_batch,
    create_batch,
    earlier_upload,
    get_kind,
    process_batch,
    write_failed,
)
from .reader import BatchFileError  # noqa: F401

"""Every file the system keeps, in one place: where it lives and what it is called.

The root is the STORAGE_DIR setting (config.py; instance/uploads by default). Under it, one folder per
kind of file:

    files/      the uploaded batch files, as uploaded        upload_path(batch)
    results/    batch result files and failed-row lists      result_path(batch), failed_path(batch)
                failure lists of bulk actions                failures_path(token)
    documents/  generated documents (PDF)                    document_path(name)
    exports/    generated exports                            export_path(name)
                big exports and prints made by a worker      export_path("bg_<token>.xlsx"), removed
                (views/downloads.py), for their user only     after BACKGROUND_FILE_HOURS (batch/jobs.py)
    attachments/ documents clerks attach to applications     attachment_path(name)
                 (超龄例外的证明文件), downloaded only within scope

A models module so that the batch pipeline, the actions and the views all take their paths from here.
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app

FOLDERS = ("files", "results", "documents", "exports", "attachments")


def root() -> Path:
    return Path(current_app.config["STORAGE_DIR"])


def folder(name: str) -> Path:
    """The folder for one kind of file, created on first use."""
    if name not in FOLDERS:
        raise ValueError(f"unknown storage folder {name!r} ({', '.join(FOLDERS)})")
    path = root() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def safe_name(name: str) -> str:
    """A file name made only of letters, digits, '_', '-' and '.', never starting with '.': a
    name that came from a URL cannot leave its folder."""
    cleaned = "".join(ch for ch in name if ch.isalnum() or ch in "_-.").lstrip(".")
    return cleaned or "_"


def upload_path(batch) -> Path:
    return folder("files") / f"{batch.id}{Path(batch.file_name).suffix.lower()}"


def result_path(batch) -> Path:
    return folder("results") / f"{batch.id}_result.xlsx"


def failed_path(batch) -> Path:
    return folder("results") / f"{batch.id}_failed.xlsx"


def failures_path(token: str) -> Path:
    return folder("results") / f"failures_{safe_name(token)}.xlsx"


def document_path(name: str) -> Path:
    return folder("documents") / safe_name(name)


def export_path(name: str) -> Path:
    return folder("exports") / safe_name(name)


def attachment_path(name: str) -> Path:
    return folder("attachments") / safe_name(name)


def checked_path(batch) -> Path:
    """What 业务校验 read and concluded (batch/stage.py): the rows as read and their outcomes, so
    that 业务办理 writes the result file without reading the upload again.  A cache: when it is
    missing, 业务办理 reads and checks the upload again."""
    return folder("files") / f"{batch.id}.checked"


PARTIAL = ("*.tmp", "*.part")  # written under these names, renamed into place when complete
PARTIAL_MAX_AGE = 600  # seconds without a write: nobody is writing it any more


def remove_partial_files(now: float | None = None) -> int:
    """Remove the half-written files a crash (kill -9, power) left behind: at start-up, every
    `*.tmp`/`*.part` under the storage root whose writer is gone (its process id, in the name,
    is not running here) or that nobody wrote to for 10 minutes (another worker's file, still
    being written, changes all the time and stays)."""
    import os
    import re
    import time

    now = time.time() if now is None else now
    removed = 0
    base = root()
    if not base.is_dir():
        return 0
    for pattern in PARTIAL:
        for path in base.rglob(pattern):
            try:
                age = now - path.stat().st_mtime
            except OSError:
                continue
            pid = re.search(r"\.(\d+)(?:\.\d+)?\.tmp(?:\.part)?$", path.name)
            writer_gone = pid is not None and int(pid.group(1)) != os.getpid() and not _running(int(pid.group(1)))
            if writer_gone or age > PARTIAL_MAX_AGE:
                try:
                    path.unlink()
                    removed += 1
                except OSError:
                    pass
    return removed


def _running(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Read a PDF back as a person would: its text (pdftotext) and its page count (pdfinfo), and
its pages as PNG files (pdftoppm) to look at."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

# TEST_ARTIFACTS: another folder for a second run at the same time (.ci/test.sh runs two)
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS") or Path(__file__).resolve().parent / "artifacts")


def pdf_text(data: bytes) -> str:
    assert data[:5] == b"%PDF-", data[:40]
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(data)
        f.flush()
        return subprocess.run(["pdftotext", "-layout", f.name, "-"], capture_output=True, check=True, text=True).stdout


def pdf_pages(data: bytes) -> int:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(data)
        f.flush()
        info = subprocess.run(["pdfinfo", f.name], capture_output=True, check=True, text=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def pdf_png(data: bytes, name: str, dpi: int = 60) -> list[Path]:
    """Render every page to tests/artifacts/<name>-<n>.png; return the paths."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(data)
        f.flush()
        subprocess.run(["pdftoppm", "-png", "-r", str(dpi), f.name, str(ARTIFACTS / name)], check=True)
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))


def squeeze(text: str) -> str:
    """The text without the spaces and line breaks that layout puts between table cells."""
    return re.sub(r"\s+", "", text)

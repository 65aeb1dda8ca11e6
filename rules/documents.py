"""Attached documents (超龄例外的证明文件): what a file is, by its content, never by its name."""

from __future__ import annotations

DOCUMENT_MAX_BYTES = 5 * 1024 * 1024

# (kind, the bytes every such file starts with)
_SIGNATURES = (
    ("pdf", b"%PDF-"),
    ("png", b"\x89PNG\r\n\x1a\n"),
    ("jpg", b"\xff\xd8\xff"),
)


def document_kind(head: bytes) -> str | None:
    """'pdf', 'png' or 'jpg' for a file starting with `head` (its first bytes), else None."""
    for kind, magic in _SIGNATURES:
        if head.startswith(magic):
            return kind
    return None


def check_document(data: bytes, max_bytes: int = DOCUMENT_MAX_BYTES) -> tuple[str | None, str]:
    """(kind, "") for an acceptable document, (None, the Chinese reason) otherwise."""
    if not data:
        return None, "请选择要上传的证明文件（PDF、JPG 或 PNG）"
    if len(data) > max_bytes:
        return None, (
            f"证明文件为 {len(data) / 1024 / 1024:.1f} MB，超过 {max_bytes // 1024 // 1024} MB 的上限，"
            "请压缩或缩小后重新上传"
        )
    kind = document_kind(data[:16])
    if kind is None:
        return None, "证明文件只能是 PDF、JPG 或 PNG 格式（按文件内容判断，改扩展名无效），请重新选择"
    return kind, ""

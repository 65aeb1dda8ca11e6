"""Attached documents are recognised by their content (rules/documents.py)."""

from rules.documents import DOCUMENT_MAX_BYTES, check_document, document_kind


def test_pdf_png_and_jpg_are_recognised_by_their_first_bytes():
    assert document_kind(b"%PDF-1.7\n") == "pdf"
    assert document_kind(b"\x89PNG\r\n\x1a\n\x00\x00") == "png"
    assert document_kind(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "jpg"


def test_a_renamed_spreadsheet_or_script_is_no_document():
    assert document_kind(b"PK\x03\x04") is None  # an .xlsx called proof.pdf
    assert document_kind(b"<script>") is None
    assert check_document(b"MZ\x90\x00" * 10)[0] is None
    assert "按文件内容判断" in check_document(b"MZ\x90\x00")[1]


def test_an_empty_file_and_one_over_5_mb_are_refused_with_what_to_do():
    assert check_document(b"") == (None, "请选择要上传的证明文件（PDF、JPG 或 PNG）")
    kind, why = check_document(b"%PDF-" + b"0" * DOCUMENT_MAX_BYTES)
    assert kind is None and "超过 5 MB" in why and "压缩" in why


def test_a_pdf_of_exactly_5_mb_is_accepted():
    assert check_document(b"%PDF-" + b"0" * (DOCUMENT_MAX_BYTES - 5)) == ("pdf", "")

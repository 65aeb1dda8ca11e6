"""A hostile file must never hurt the office (issue 15, items 1 and 2): a cell far away, a zip bomb,
a zip whose directory lies, an .xls with a far cell, a CSV with a huge cell or a million columns
are refused with a Chinese message before anything is read into memory.

Each hostile file is read in a child process (with an address-space cap, so that the old
behaviour fails the test instead of exhausting the machine), which reports the message it got
and its own peak RSS (VmHWM): at most 300 MB for any refused upload."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import hostile  # tests/hostile.py (pytest puts tests/ on the path)
import openpyxl
import pytest

from batch.members import MEMBERS
from batch.reader import BatchFileError, Limits, read_table

ROOT = Path(__file__).resolve().parent.parent
RSS_BUDGET_MB = 300

CHILD = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))
sys.path.insert(0, sys.argv[1])
from batch.members import MEMBERS
from batch.reader import BatchFileError, read_table
data = open(sys.argv[2], "rb").read()
try:
    table = read_table(data, sys.argv[3], MEMBERS.columns, 100_000)
    out = {"error": None, "rows": len(table.rows)}
except BatchFileError as exc:
    out = {"error": str(exc)}
# the peak RSS of this process's own memory (ru_maxrss would include the parent's at fork time)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
out["rss_mb"] = int(hwm.split()[1]) / 1024
print(json.dumps(out, ensure_ascii=False))
"""


def read_in_child(tmp_path: Path, data: bytes, name: str) -> dict:
    path = tmp_path / name
    path.write_bytes(data)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), str(path), name], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"the reader died (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_refused(out: dict, *words: str) -> str:
    assert out["error"], f"the file was read: {out}"
    assert "\n" not in out["error"]
    for w in words:
        assert w in out["error"], out["error"]
    assert out["rss_mb"] <= RSS_BUDGET_MB, f"peak RSS {out['rss_mb']:.0f} MB"
    return out["error"]


@pytest.fixture(scope="module")
def bomb():
    """A ~0.8 MB .xlsx whose sheet inflates to 210 MB (over the 200 MB a part may have)."""
    return hostile.zip_bomb_xlsx(210)


# --- 1. a cell far away ---------------------------------------------------------------------------


def test_a_1_6_kb_file_with_a_cell_at_XFD1048576_is_refused_before_it_is_read(tmp_path):
    data = hostile.far_cell_xlsx("XFD1048576")
    assert len(data) < 2000
    assert_refused(read_in_child(tmp_path, data, "far.xlsx"), "1048576", "行")


def test_a_cell_at_GR100000_is_refused_for_its_column_without_costing_900_mb(tmp_path):
    assert_refused(read_in_child(tmp_path, hostile.far_cell_xlsx("GR100000"), "gr.xlsx"), "GR", "列")


def test_a_sheet_claiming_a_small_dimension_is_measured_by_its_cells(tmp_path):
    data = hostile.far_cell_xlsx("GR200000", dimension="A1:B2")
    assert_refused(read_in_child(tmp_path, data, "lying.xlsx"), "200000")


def test_cells_without_references_are_counted_where_they_land(tmp_path):
    out = read_in_child(tmp_path, hostile.far_cell_without_references_xlsx(3000), "norefs.xlsx")
    assert_refused(out, "列")


def test_an_xls_with_a_cell_at_row_65536_column_100_is_refused(tmp_path):
    data = hostile.xls([(0, 0, "姓名"), (0, 1, "身份证号"), (65535, 99, "x")])
    assert_refused(read_in_child(tmp_path, data, "far.xls"), "65536")


def test_an_xls_whose_stream_points_nowhere_gets_a_message_not_a_crash(tmp_path):
    data = bytearray(hostile.xls([(0, 0, "姓名"), (0, 1, "身份证号")]))
    # the Workbook stream's size says "in the mini stream", which this file does not have
    directory = bytes(data).find("Workbook".encode("utf-16-le"))
    data[directory + 120 : directory + 124] = (100).to_bytes(4, "little")
    assert_refused(read_in_child(tmp_path, bytes(data), "broken.xls"), "不是有效的 Excel 文件")


# --- 2. zip bombs ---------------------------------------------------------------------------------


def test_a_zip_bomb_is_refused_by_its_size_before_it_is_inflated(tmp_path, bomb):
    assert len(bomb) < 2 * 1024 * 1024
    assert_refused(read_in_child(tmp_path, bomb, "bomb.xlsx"), "解压后", "200 MB")


def test_a_zip_bomb_whose_directory_lies_about_its_size_is_refused_while_it_inflates(tmp_path, bomb):
    lying = hostile.with_lying_size(bomb, size=4096)
    assert zipfile.ZipFile(io.BytesIO(lying)).getinfo("xl/worksheets/sheet1.xml").file_size == 4096
    assert_refused(read_in_child(tmp_path, lying, "lying.xlsx"), "解压后")


def test_shared_strings_that_inflate_hundreds_of_times_are_refused(tmp_path):
    strings = (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + b"<si><t>\xe5\xbc\xa0\xe4\xbc\x9f</t></si>" * 3_000_000
        + b"</sst>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(hostile.xlsx(hostile.sheet()))) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info), zipfile.ZIP_DEFLATED)
        dst.writestr("xl/sharedStrings.xml", strings, zipfile.ZIP_DEFLATED, compresslevel=9)
    assert_refused(read_in_child(tmp_path, buf.getvalue(), "strings.xlsx"), "解压后")


# --- the CSV -----------------------------------------------------------------------------------------


def test_a_csv_cell_over_131072_characters_names_its_row():
    with pytest.raises(BatchFileError, match="CSV 文件第 2 行有一个单元格超过 131072 个字符"):
        read_table(hostile.csv_with_huge_cell(), "big.csv", MEMBERS.columns, 100)


def test_a_csv_line_with_millions_of_columns_is_refused_before_it_is_split(tmp_path):
    out = read_in_child(tmp_path, hostile.csv_with_many_columns(2_000_000), "wide.csv")
    assert_refused(out, "第 2 行", "列数")


# --- row counts while streaming ------------------------------------------------------------------------


def test_rows_beyond_the_limit_are_counted_while_streaming_and_never_kept(tmp_path):
    rows = b"".join(
        f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>张伟</t></is></c></row>'.encode() for r in range(2, 40)
    )
    data = hostile.xlsx(hostile.sheet(rows))
    with pytest.raises(BatchFileError, match="文件有 38 行数据，超过每个文件 30 行的上限"):
        read_table(data, "x.xlsx", MEMBERS.columns, 30)
    # a sheet reaching past the limit plus the blank rows a sheet may have is refused unread
    far = hostile.xlsx(hostile.sheet(b'<row r="50"><c r="A50"><v>1</v></c></row>'))
    with pytest.raises(BatchFileError, match="第 50 行还有内容"):
        read_table(far, "x.xlsx", MEMBERS.columns, 5, Limits(rows=5, blank_rows=10))


# --- what real files look like still reads --------------------------------------------------------------


def _cells(table):
    return [(n, [v for v in cells if v not in ("", None)]) for n, cells in table.rows]


def test_a_sheet_with_more_than_26_columns_still_reads(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["备注"] * 28 + ["姓名", "身份证号"])
    ws.append(["x"] * 28 + ["张伟", "110105199001011234"])
    path = tmp_path / "wide.xlsx"
    wb.save(path)
    table = read_table(path.read_bytes(), "wide.xlsx", MEMBERS.columns, 100)
    assert table.columns == {"name": 28, "id_number": 29}
    assert table.rows[0][0] == 2 and table.cell(table.rows[0][1], "id_number") == "110105199001011234"


def test_cells_without_references_and_prefixed_elements_still_read():
    plain = (
        b'<row><c t="inlineStr"><is><t>\xe5\xa7\x93\xe5\x90\x8d</t></is></c>'
        b'<c t="inlineStr"><is><t>\xe8\xba\xab\xe4\xbb\xbd\xe8\xaf\x81\xe5\x8f\xb7</t></is></c></row>'
        b'<row><c t="inlineStr"><is><t>\xe5\xbc\xa0\xe4\xbc\x9f</t></is></c><c t="inlineStr"><is><t>110105199001011234</t></is></c></row>'
    )
    table = read_table(hostile.xlsx([hostile.SHEET_HEAD, plain, hostile.SHEET_TAIL]), "a.xlsx", MEMBERS.columns, 10)
    assert _cells(table) == [(2, ["张伟", "110105199001011234"])]
    prefixed = (
        b'<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:sheetData>'
        + plain.replace(b"<", b"<x:").replace(b"<x:/", b"</x:")
        + b"</x:sheetData></x:worksheet>"
    )
    table = read_table(hostile.xlsx([prefixed]), "b.xlsx", MEMBERS.columns, 10)
    assert _cells(table) == [(2, ["张伟", "110105199001011234"])]


def test_a_table_that_starts_at_C3_keeps_excel_row_numbers_and_columns():
    rows = (
        b'<row r="3"><c r="C3" t="inlineStr"><is><t>\xe5\xa7\x93\xe5\x90\x8d</t></is></c>'
        b'<c r="D3" t="inlineStr"><is><t>\xe8\xba\xab\xe4\xbb\xbd\xe8\xaf\x81\xe5\x8f\xb7</t></is></c></row>'
        b'<row r="5"><c r="C5" t="inlineStr"><is><t>\xe5\xbc\xa0\xe4\xbc\x9f</t></is></c>'
        b'<c r="D5" t="inlineStr"><is><t>110105199001011234</t></is></c></row>'
    )
    table = read_table(hostile.xlsx([hostile.SHEET_HEAD, rows, hostile.SHEET_TAIL]), "c.xlsx", MEMBERS.columns, 10)
    assert table.header_row == 3 and table.columns == {"name": 2, "id_number": 3}
    assert table.rows == [(5, ["", "", "张伟", "110105199001011234"])]


def test_a_small_xls_written_here_reads_like_the_fixture():
    data = hostile.xls([(0, 0, "姓名"), (0, 1, "身份证号"), (1, 0, "张伟"), (1, 1, "110105199001011234")])
    assert _cells(read_table(data, "m.xls", MEMBERS.columns, 10)) == [(2, ["张伟", "110105199001011234"])]


def test_an_opendocument_or_binary_workbook_named_xlsx_is_told_apart():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", "<office:document-content/>")
    with pytest.raises(BatchFileError, match="不是有效的 Excel 文件"):
        read_table(buf.getvalue(), "a.xlsx", MEMBERS.columns, 10)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("xl/workbook.bin", b"\0")
    with pytest.raises(BatchFileError, match=r"\.xlsb"):
        read_table(buf.getvalue(), "a.xlsx", MEMBERS.columns, 10)

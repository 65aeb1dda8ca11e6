"""Reading an uploaded file: .xlsx/.xls (python-calamine) or .csv (UTF-8 with or without BOM, or
GBK/GB18030), columns found by header name in any order, blank rows skipped, Excel row numbers kept.

Anything that is not a readable table raises `BatchFileError` with a one-line Chinese message.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

EXCEL_EXTS = {".xlsx", ".xlsm", ".xls"}
CSV_EXTS = {".csv", ".txt"}
HEADER_SCAN_ROWS = 20


class BatchFileError(Exception):
    """The file cannot be read as a table; the message says why in the clerk's words."""


@dataclass
class Column:
    key: str
    label: str  # the template's header
    aliases: tuple[str, ...]
    required: bool = True


@dataclass
class Table:
    header: list[str]  # the header row as in the file
    header_row: int  # its Excel row number
    columns: dict[str, int]  # key -> index in the row
    rows: list[tuple[int, list]] = field(default_factory=list)  # (Excel row number, cells)

    def cell(self, cells: list, key: str):
        i = self.columns.get(key)
        if i is None or i >= len(cells):
            return None
        return cells[i]


def _norm_header(value) -> str:
    if value is None:
        return ""
    text = str(value)
    for ch in (" ", "\u3000", "\t", "\r", "\n", "*", "＊", "(必填)", "（必填）"):
        text = text.replace(ch, "")
    return text.strip()


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read_cells(data: bytes, filename: str) -> list[list]:
    """All rows of the first sheet (or the CSV) as lists of cell values; row i is Excel row i+1."""
    ext = Path(filename or "").suffix.lower()
    if not data:
        raise BatchFileError("文件是空的，请检查后重新上传")
    if ext in EXCEL_EXTS:
        return _read_excel(data)
    if ext in CSV_EXTS:
        return _read_csv(data)
    raise BatchFileError(f"不支持的文件类型“{ext or '无扩展名'}”，请上传 Excel（.xlsx、.xls）或 CSV 文件")


def _read_excel(data: bytes) -> list[list]:
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not book.sheet_names:
            raise BatchFileError("文件中没有工作表，请使用【批量入会模板】填写后上传")
        sheet = book.get_sheet_by_index(0)
        return sheet.to_python(skip_empty_area=False)
    except BatchFileError:
        raise
    except Exception:  # calamine's errors: not a workbook, encrypted, broken zip, …
        raise BatchFileError(
            "文件无法读取：不是有效的 Excel 文件（可能已损坏、加密，或是改了扩展名的其他文件）。"
            "请用 Excel 打开后另存为 .xlsx 再上传"
        ) from None


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise BatchFileError("CSV 文件的文字编码无法识别，请用 Excel 另存为 .xlsx 后上传") from None


def _read_csv(data: bytes) -> list[list]:
    if b"\x00" in data[:4096]:
        raise BatchFileError("文件无法读取：不是文本格式的 CSV 文件，请用 Excel 另存为 .xlsx 后上传")
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    return [row for row in csv.reader(io.StringIO(text, newline=""), dialect)]


def read_table(data: bytes, filename: str, columns: list[Column], max_rows: int) -> Table:
    """Find the header row, map the columns, keep the non-blank rows with their Excel numbers."""
    cells = read_cells(data, filename)
    if not cells or all(all(_blank(v) for v in row) for row in cells):
        raise BatchFileError("文件中没有数据（工作表是空的），请填写后重新上传")
    header_idx, mapping = None, {}
    for i, row in enumerate(cells[:HEADER_SCAN_ROWS]):
        names = [_norm_header(v) for v in row]
        found = {}
        for col in columns:
            for j, name in enumerate(names):
                if name in col.aliases and col.key not in found:
                    found[col.key] = j
        if found:
            header_idx, mapping = i, found
            break
    if header_idx is None:
        wanted = "、".join(c.label for c in columns if c.required)
        raise BatchFileError(f"找不到表头：文件前{HEADER_SCAN_ROWS}行中没有“{wanted}”列，请使用模板的表头")
    missing = [c.label for c in columns if c.required and c.key not in mapping]
    if missing:
        raise BatchFileError(f"第{header_idx + 1}行表头中缺少“{'、'.join(missing)}”列，请使用模板的表头")
    rows = []
    append = rows.append
    for i in range(header_idx + 1, len(cells)):
        row = cells[i]
        for v in row:  # kept when any cell is not blank (see _blank), usually the first
            if v is not None and (not isinstance(v, str) or v.strip()):
                append((i + 1, row))
                break
    if not rows:
        raise BatchFileError("文件中只有表头，没有数据行，请填写后重新上传")
    if len(rows) > max_rows:
        raise BatchFileError(f"文件有 {len(rows)} 行数据，超过每个文件 {max_rows} 行的上限，请拆分为几个文件分别上传")
    header = ["" if v is None else str(v) for v in cells[header_idx]]
    return Table(header=header, header_row=header_idx + 1, columns=mapping, rows=rows)

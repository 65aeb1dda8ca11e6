"""Reading an uploaded file: .xlsx/.xls (python-calamine) or .csv (UTF-8 with or without BOM, or
GBK/GB18030), columns found by header name in any order, blank rows skipped, Excel row numbers kept.

Rows are streamed: a workbook is first measured without being read (`sheetcheck`: its real extent,
its zip's true sizes), then its rows come one by one and only the non-blank ones are kept, up to
the row limit; a CSV line is looked at before it is split.  Anything that is not a readable table,
or is beyond the limits, raises `BatchFileError` with a one-line Chinese message.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BatchFileError
from .sheetcheck import CSV_MAX_FIELD, NOT_EXCEL, OLE_MAGIC, Limits, check_csv_line, check_xls, check_xlsx

__all__ = ["BatchFileError", "Column", "Limits", "Table", "iter_rows", "read_table"]

EXCEL_EXTS = {".xlsx", ".xlsm", ".xls"}
CSV_EXTS = {".csv", ".txt"}
HEADER_SCAN_ROWS = 20


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


def iter_rows(data: bytes, filename: str, limits: Limits) -> Iterator[list]:
    """The rows of the first sheet (or of the CSV) one by one, each a list of cell values; the
    i-th row yielded is Excel row i (1-based).  Refused before anything is read when beyond `limits`."""
    ext = Path(filename or "").suffix.lower()
    if not data:
        raise BatchFileError("文件是空的，请检查后重新上传")
    if ext in EXCEL_EXTS:
        return _excel_rows(data, limits)
    if ext in CSV_EXTS:
        return _csv_rows(data, limits)
    raise BatchFileError(f"不支持的文件类型“{ext or '无扩展名'}”，请上传 Excel（.xlsx、.xls）或 CSV 文件")


def _excel_rows(data: bytes, limits: Limits) -> Iterator[list]:
    if data[:8] == OLE_MAGIC:
        check_xls(data, limits)
    elif data[:4] == b"PK\x03\x04":
        check_xlsx(data, limits)
    else:
        raise BatchFileError(NOT_EXCEL)
    with _calamine_errors():
        from python_calamine import CalamineWorkbook

        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not book.sheet_names:
            raise BatchFileError("文件中没有工作表，请使用【批量入会模板】填写后上传")
        sheet = book.get_sheet_by_index(0)
        # iter_rows starts at row 1 but at the first column that has a cell: pad back to column A
        pad = [""] * sheet.start[1] if sheet.start else []
        rows = sheet.iter_rows()
    return _rows_of(rows, pad)


def _rows_of(rows, pad: list) -> Iterator[list]:
    with _calamine_errors():
        if pad:
            for row in rows:
                yield pad + row
        else:
            yield from rows


@contextmanager
def _calamine_errors():
    """calamine's errors (not a workbook, encrypted, broken zip, …) and its panics on malformed
    files (pyo3's PanicException is a BaseException) become the clerk's message."""
    try:
        yield
    except BatchFileError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except BaseException:
        raise BatchFileError(NOT_EXCEL) from None


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


def _csv_rows(data: bytes, limits: Limits) -> Iterator[list]:
    if b"\x00" in data[:4096]:
        raise BatchFileError("不是文本格式的 CSV 文件，无法读取。请用 Excel 另存为 .xlsx 后上传")
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    delimiter = dialect.delimiter

    def lines():
        for line_no, line in enumerate(io.StringIO(text, newline=""), start=1):
            check_csv_line(line_no, line, delimiter, limits)
            yield line

    reader = csv.reader(lines(), dialect)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise BatchFileError(
                    f"CSV 文件第 {reader.line_num} 行有一个单元格超过 {CSV_MAX_FIELD} 个字符，不是正常的名单内容"
                    "（常见原因：某处引号没有配对）。请检查该行，或用 Excel 打开后另存为 .xlsx 再上传"
                ) from None
            raise BatchFileError(
                f"CSV 文件第 {reader.line_num} 行无法读取（{_csv_reason(exc)}）。请用 Excel 打开后另存为 .xlsx 再上传"
            ) from None
        yield row


def _csv_reason(exc: csv.Error) -> str:
    text = str(exc)
    if "NUL" in text:
        return "含有空字符"
    if "new-line character" in text or "EOF" in text:
        return "引号没有配对"
    return "格式不正确"


def read_table(data: bytes, filename: str, columns: list[Column], max_rows: int, limits: Limits | None = None) -> Table:
    """Find the header row, map the columns, keep the non-blank rows with their Excel numbers.
    More than `max_rows` non-blank rows are counted on, never kept, and refused."""
    limits = limits or Limits(rows=max_rows)
    rows = iter_rows(data, filename, limits)
    head = []
    for cells in rows:
        head.append(cells)
        if len(head) >= HEADER_SCAN_ROWS:
            break
    header_idx, mapping = None, {}
    for i, row in enumerate(head):
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
        if not any(_filled(row) for row in head) and not any(_filled(row) for row in rows):
            raise BatchFileError("文件中没有数据（工作表是空的），请填写后重新上传")
        wanted = "、".join(c.label for c in columns if c.required)
        raise BatchFileError(f"找不到表头：文件前{HEADER_SCAN_ROWS}行中没有“{wanted}”列，请使用模板的表头")
    missing = [c.label for c in columns if c.required and c.key not in mapping]
    if missing:
        raise BatchFileError(f"第{header_idx + 1}行表头中缺少“{'、'.join(missing)}”列，请使用模板的表头")
    kept = []
    append = kept.append
    count = 0
    row_no = header_idx + 1
    for row in itertools.chain(head[header_idx + 1 :], rows):
        row_no += 1
        for v in row:  # kept when any cell is not blank (see _blank), usually the first
            if v is not None and (not isinstance(v, str) or v.strip()):
                count += 1
                if count <= max_rows:
                    append((row_no, row))
                break
    if not count:
        raise BatchFileError("文件中只有表头，没有数据行，请填写后重新上传")
    if count > max_rows:
        raise BatchFileError(f"文件有 {count} 行数据，超过每个文件 {max_rows} 行的上限，请拆分为几个文件分别上传")
    header = ["" if v is None else str(v) for v in head[header_idx]]
    return Table(header=header, header_row=header_idx + 1, columns=mapping, rows=kept)


def _filled(row) -> bool:
    return any(not _blank(v) for v in row)

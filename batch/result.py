"""Files the clerk downloads: the result file, the failed rows, and the upload templates."""

from __future__ import annotations

import io
import math
import os
import shutil
import threading
import zipfile
from datetime import UTC, date, datetime

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation

from rules import ILLEGAL_CHARACTERS, escape_formula, worksheet_text
from rules.spreadsheet import REPLACEMENT_CHARACTER

RESULT_COLUMNS = ("处理结果", "失败原因")


def safe(value):
    """A cell a spreadsheet would run as a formula is written as text with a leading apostrophe."""
    if isinstance(value, str):
        return escape_formula(value)
    if isinstance(value, (int, float, date, datetime)) or value is None:
        return value
    return str(value)


def result_text(result) -> tuple[str, str]:
    status = "成功" if result.ok else "失败"
    reason = result.message
    if result.warnings:
        text = result.warnings_text
        reason = f"{reason}；{text}" if reason else text
    return status, reason


def _result_rows(table, results, extra=()):
    """The rows of the result file: the header, then each uploaded row as it was (cut or padded
    to the header's width) with 处理结果 and 失败原因, and the kind's `extra` columns ((header,
    key of RowResult.values), e.g. the new 会员编号 of each admitted row)."""
    yield [safe(h) for h in table.header] + list(RESULT_COLUMNS) + [h for h, _ in extra]
    width = len(table.header)
    pad = [None] * width
    by_row = {r.row: r for r in results}
    for row_no, cells in table.rows:
        values = [safe(v) for v in cells[:width]]
        if len(values) < width:
            values += pad[: width - len(values)]
        r = by_row[row_no]
        values += result_text(r)
        if extra:
            values += [r.values.get(key) if r.ok else None for _, key in extra]
        yield values


def write_result(path, table, results, copy_to=None, extra=()) -> None:
    """The uploaded rows as they were, plus 处理结果 and 失败原因 and the kind's `extra` columns
    (and the same file at `copy_to`).

    Written by `write_sheet`."""
    n_cols = len(table.header) + len(RESULT_COLUMNS) + len(extra)
    write_sheet(path, "处理结果", lambda: _result_rows(table, results, extra), len(table.rows) + 1, n_cols)
    if copy_to is not None:
        try:
            shutil.copyfile(path, copy_to)
        except shutil.SameFileError:
            pass


def write_sheet(path, title: str, rows, n_rows: int, n_cols: int) -> None:
    """A one-sheet .xlsx of the rows (lists of values) that `rows()` yields, streamed (it is called
    a second time if the fallback below is needed).  Written by a small streaming writer
    (`_write_fast`) that produces the same cells as openpyxl's write-only mode (inline strings,
    numbers as "%.16g", booleans, error strings), about 10× faster; a sheet holding anything else
    (dates, times, a non-finite number) is written by openpyxl itself.  Characters a worksheet
    cannot hold are shown as � either way (rules.worksheet_text)."""
    try:
        _write_fast(path, title, rows(), n_rows, n_cols)
    except _Unsupported:
        wb = Workbook(write_only=True)
        ws = wb.create_sheet(title)
        for values in rows():
            ws.append([worksheet_text(v) for v in values])
        wb.save(path)


class ResultInBackground:
    """`write_result` in a thread while the caller waits for the database (its COPY and
    INSERT … SELECT leave this process idle); the file appears at `path` only on `finish()`,
    after the commit, and `discard()` leaves nothing behind.  The thread only reads `table`
    and `results` (nobody changes them once checked) and touches no database or app context."""

    def __init__(self, path, table, results, extra=()):
        self.path = str(path)
        self.tmp = f"{self.path}.{os.getpid()}.{threading.get_ident()}.tmp"
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(table, results, extra), name="result-xlsx", daemon=True)
        self.thread.start()

    def _run(self, table, results, extra) -> None:
        try:
            write_result(self.tmp, table, results, extra=extra)
        except BaseException as exc:  # raised by finish(), where write_result would have raised it
            self.error = exc

    def finish(self, copy_to=None) -> None:
        self.thread.join()
        if self.error is not None:
            self.discard()
            raise self.error
        os.replace(self.tmp, self.path)
        if copy_to is not None:
            try:
                shutil.copyfile(self.path, copy_to)
            except shutil.SameFileError:
                pass

    def discard(self) -> None:
        self.thread.join()
        try:
            os.unlink(self.tmp)
        except OSError:
            pass


# --- a minimal streaming .xlsx writer: one sheet, inline strings, no styles -------------------


class _Unsupported(Exception):
    """A value the fast writer does not write the way openpyxl would: let openpyxl do it."""


_ILLEGAL = ILLEGAL_CHARACTERS  # openpyxl's ILLEGAL_CHARACTERS_RE
_ERROR_CODES = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))
_MAX_TEXT = 32767  # openpyxl cuts longer strings
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PR = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument"


def _static_parts(sheet_title: str) -> dict[str, str]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    title = sheet_title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return {
        "[Content_Types].xml": _XML
        + (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.spreadsheetml.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.spreadsheetml.worksheet+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.spreadsheetml.styles+xml"/>'
            '<Override PartName="/docProps/core.xml" '
            'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
            f'<Override PartName="/docProps/app.xml" ContentType="{_CT}.extended-properties+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": _XML
        + (
            f'<Relationships xmlns="{_NS_PR}">'
            f'<Relationship Id="rId1" Type="{_NS_R}/officeDocument" Target="xl/workbook.xml"/>'
            f'<Relationship Id="rId2" Type="{_NS_PR}/metadata/core-properties" Target="docProps/core.xml"/>'
            f'<Relationship Id="rId3" Type="{_NS_R}/extended-properties" Target="docProps/app.xml"/>'
            "</Relationships>"
        ),
        "docProps/app.xml": _XML
        + (
            '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
            "<Application>Microsoft Excel</Application></Properties>"
        ),
        "docProps/core.xml": _XML
        + (
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{now}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{now}</dcterms:modified></cp:coreProperties>'
        ),
        "xl/workbook.xml": _XML
        + (
            f'<workbook xmlns="{_NS}" xmlns:r="{_NS_R}"><bookViews><workbookView activeTab="0"/></bookViews>'
            f'<sheets><sheet name="{title}" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": _XML
        + (
            f'<Relationships xmlns="{_NS_PR}">'
            f'<Relationship Id="rId1" Type="{_NS_R}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{_NS_R}/styles" Target="styles.xml"/>'
            "</Relationships>"
        ),
        "xl/styles.xml": _XML
        + (
            f'<styleSheet xmlns="{_NS}">'
            '<fonts count="1"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
            '<fills count="2"><fill><patternFill patternType="none"/></fill>'
            '<fill><patternFill patternType="gray125"/></fill></fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
            '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
            '<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
            '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
            "</styleSheet>"
        ),
    }


def _column_letter(i: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _cell(ref: str, v) -> str:
    """One <c> element as openpyxl's write-only mode writes it ("" for None: no element)."""
    t = type(v)
    if t is str:
        if not v:
            return f'<c r="{ref}" t="inlineStr"/>'
        if len(v) > _MAX_TEXT:
            v = v[:_MAX_TEXT]
        if v in _ERROR_CODES:
            return f'<c r="{ref}" t="e"><v>{v}</v></c>'
        if v[0] == "=" and len(v) > 1:  # openpyxl would write a formula (safe() never lets one through)
            raise _Unsupported
        if "&" in v or "<" in v or ">" in v:
            v = v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if (v[0].isspace() or v[-1].isspace()) and not v.isspace():
            return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{v}</t></is></c>'
        return f'<c r="{ref}" t="inlineStr"><is><t>{v}</t></is></c>'
    if v is None:
        return ""
    if t is bool:
        return f'<c r="{ref}" t="b"><v>{1 if v else 0}</v></c>'
    if t is int or t is float:
        if t is float and not math.isfinite(v):
            raise _Unsupported
        return f'<c r="{ref}" t="n"><v>{f"{v:.16g}"}</v></c>'
    raise _Unsupported  # dates, times, …: openpyxl writes them with number formats


def _write_fast(path, sheet_title: str, rows, n_rows: int, n_cols: int, chunk_rows: int = 5000) -> None:
    """Stream `rows` (lists of values) into a one-sheet .xlsx at `path`.  Raises _Unsupported
    (and leaves no file behind) when a value is not one it writes exactly as openpyxl would."""
    letters = [_column_letter(i) for i in range(max(n_cols, 1))]
    tmp = f"{path}.part"
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            for name, text in _static_parts(sheet_title).items():
                z.writestr(name, text)
            with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
                f.write(
                    (
                        _XML + f'<worksheet xmlns="{_NS}" xmlns:r="{_NS_R}">'
                        f'<dimension ref="A1:{letters[-1]}{max(n_rows, 1)}"/><sheetData>'
                    ).encode()
                )
                out: list[str] = []
                append = out.append
                row_idx = 0
                for values in rows:
                    row_idx += 1
                    r = str(row_idx)
                    if len(values) > len(letters):
                        letters += [_column_letter(i) for i in range(len(letters), len(values))]
                    parts = [f'<row r="{r}">']
                    for letter, v in zip(letters, values):
                        if type(v) is str and v:  # the common case, inlined
                            if (
                                len(v) > _MAX_TEXT
                                or v in _ERROR_CODES
                                or v[0] == "="
                                or "&" in v
                                or "<" in v
                                or ">" in v
                                or v[0].isspace()
                                or v[-1].isspace()
                            ):
                                parts.append(_cell(letter + r, v))
                            else:
                                parts.append(f'<c r="{letter}{r}" t="inlineStr"><is><t>{v}</t></is></c>')
                        elif v is not None:
                            parts.append(_cell(letter + r, v))
                    parts.append("</row>")
                    append("".join(parts))
                    if len(out) >= chunk_rows:
                        _flush(f, out)
                _flush(f, out)
                f.write(b"</sheetData></worksheet>")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _flush(f, out: list[str]) -> None:
    text = "".join(out)
    out.clear()
    if _ILLEGAL.search(text):  # a worksheet cannot hold them (only values bring them: shown as �)
        text = _ILLEGAL.sub(REPLACEMENT_CHARACTER, text)
    f.write(text.encode("utf-8"))


def write_failed_rows(path, columns, table, results) -> int:
    """Only the failed rows, in the template's own columns with 失败原因 beside them, so the clerk
    fixes them in place and uploads this file again as it is."""
    wb = Workbook()
    ws = wb.active
    ws.title = "失败行"
    ws.append([c.label for c in columns] + ["失败原因"])
    for i, c in enumerate(columns, start=1):
        ws.column_dimensions[ws.cell(1, i).column_letter].number_format = "@"
        ws.column_dimensions[ws.cell(1, i).column_letter].width = 22 if "身份证" in c.label else 14
    ws.column_dimensions[ws.cell(1, len(columns) + 1).column_letter].width = 60
    failed = {r.row: r for r in results if not r.ok}
    count = 0
    for row_no, cells in table.rows:
        r = failed.get(row_no)
        if r is None:
            continue
        out = [_failed_cell(table.cell(cells, c.key)) for c in columns]
        ws.append([worksheet_text(v) for v in out] + [f"第{row_no}行：{r.message}"])
        for cell in ws[ws.max_row][: len(columns)]:
            cell.number_format = "@"
        count += 1
    wb.save(path)
    return count


def _failed_cell(v):
    """A cell of a failed row as the clerk gave it.  A number stays a number: Excel has already
    dropped digits of a long one, so written back as text it would pass for an ID nobody typed;
    uploaded again it must say ID_NUMERIC_CELL again."""
    if v is None:
        return ""
    if isinstance(v, str):
        return safe(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    return safe(_as_text(v))


def _as_text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (date, datetime)):
        return v.strftime("%Y-%m-%d")
    return str(v)


def write_template(
    path,
    columns,
    notes: list[str],
    title: str,
    id_key: str = "id_number",
    max_rows: int = 100000,
    rows: list[tuple] | None = None,
):
    """An upload template: the header row, text-formatted columns, a length check on the ID column,
    and a 填写说明 sheet with the rules."""
    wb = Workbook()
    ws = wb.active
    ws.title = title
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for i, col in enumerate(columns, start=1):
        cell = ws.cell(1, i, col.label)
        cell.font, cell.fill = bold, fill
        letter = cell.column_letter
        ws.column_dimensions[letter].number_format = "@"
        ws.column_dimensions[letter].width = 24 if col.key == id_key else 14
        for r in range(2, 502):  # pre-format the rows clerks paste into as text
            ws.cell(r, i).number_format = "@"
        if col.key == id_key:
            dv = DataValidation(
                type="textLength",
                operator="equal",
                formula1="18",
                allow_blank=True,
                showErrorMessage=True,
                errorTitle="身份证号位数不对",
                error="身份证号必须为18位，末尾X须为大写",
            )
            dv.add(f"{letter}2:{letter}{max_rows + 1}")
            ws.add_data_validation(dv)
    for r, values in enumerate(rows or [], start=2):  # a template filled already (【生成入会文件】)
        for i, value in enumerate(values, start=1):
            cell = ws.cell(r, i, safe(value))
            cell.number_format = "@"
    ws.freeze_panes = "A2"
    notes_ws = wb.create_sheet("填写说明")
    notes_ws.column_dimensions["A"].width = 100
    notes_ws.append(["填写说明"])
    notes_ws["A1"].font = Font(bold=True, size=14)
    for line in notes:
        notes_ws.append([line])
        notes_ws.cell(notes_ws.max_row, 1).alignment = Alignment(wrap_text=True)
    wb.save(path)


def template_file(kind, rows=None) -> io.BytesIO:
    """An upload kind's template (batch/pipeline.py Kind), made in memory for a download: the
    system keeps no copy (optionally pre-filled with `rows`)."""
    buf = io.BytesIO()
    write_template(buf, kind.template_columns or kind.columns, kind.template_notes, kind.template_title, rows=rows)
    buf.seek(0)
    return buf


def write_failures(path, failures: list[dict]) -> None:
    """【批量投保失败人员名单】: who failed and why."""
    wb = Workbook()
    ws = wb.active
    ws.title = "失败人员"
    ws.append(["会员编号", "姓名", "身份证号", "失败原因"])
    for col, width in zip("ABCD", (14, 12, 22, 70)):
        ws.column_dimensions[col].width = width
    for f in failures:
        ws.append(
            [
                worksheet_text(safe(f.get("member_no", ""))),
                worksheet_text(safe(f.get("name", ""))),
                worksheet_text(safe(f.get("id_number", ""))),
                worksheet_text(safe(f.get("reason", ""))),
            ]
        )
    wb.save(path)

"""Files the clerk downloads: the result file, the failed rows, and the upload templates."""
from __future__ import annotations

from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
RESULT_COLUMNS = ("处理结果", "失败原因")


def safe(value):
    """A cell a spreadsheet would run as a formula is written as text with a leading apostrophe."""
    if isinstance(value, str):
        if value.startswith(FORMULA_PREFIXES):
            return "'" + value
        return value
    if isinstance(value, (int, float, date, datetime)) or value is None:
        return value
    return str(value)


def result_text(result) -> tuple[str, str]:
    status = "成功" if result.ok else "失败"
    reason = result.message
    if result.warnings_text:
        reason = f"{reason}；{result.warnings_text}" if reason else result.warnings_text
    return status, reason


def write_result(path, table, results) -> None:
    """The uploaded rows as they were, plus 处理结果 and 失败原因."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("处理结果")
    ws.append([safe(h) for h in table.header] + list(RESULT_COLUMNS))
    width = len(table.header)
    by_row = {r.row: r for r in results}
    for row_no, cells in table.rows:
        values = [safe(v) for v in cells[:width]]
        values += [None] * (width - len(values))
        ws.append(values + list(result_text(by_row[row_no])))
    wb.save(path)


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
        ws.append(out + [f"第{row_no}行：{r.message}"])
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


def write_template(path, columns, notes: list[str], title: str, id_key: str = "id_number", max_rows: int = 100000):
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
            dv = DataValidation(type="textLength", operator="equal", formula1="18", allow_blank=True,
                                showErrorMessage=True, errorTitle="身份证号位数不对",
                                error="身份证号必须为18位，末尾X须为大写")
            dv.add(f"{letter}2:{letter}{max_rows + 1}")
            ws.add_data_validation(dv)
    ws.freeze_panes = "A2"
    notes_ws = wb.create_sheet("填写说明")
    notes_ws.column_dimensions["A"].width = 100
    notes_ws.append(["填写说明"])
    notes_ws["A1"].font = Font(bold=True, size=14)
    for line in notes:
        notes_ws.append([line])
        notes_ws.cell(notes_ws.max_row, 1).alignment = Alignment(wrap_text=True)
    wb.save(path)


def write_failures(path, failures: list[dict]) -> None:
    """【批量投保失败人员名单】: who failed and why."""
    wb = Workbook()
    ws = wb.active
    ws.title = "失败人员"
    ws.append(["会员编号", "姓名", "身份证号", "失败原因"])
    for col, width in zip("ABCD", (14, 12, 22, 70)):
        ws.column_dimensions[col].width = width
    for f in failures:
        ws.append([safe(f.get("member_no", "")), safe(f.get("name", "")), safe(f.get("id_number", "")),
                   safe(f.get("reason", ""))])
    wb.save(path)

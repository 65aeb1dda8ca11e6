"""Exports streamed row by row: an .xlsx (one sheet) produced while the rows arrive.

Used by every list's 导出 and by 即将到期订单's 【批量导出打印】.  The workbook is written as the
rows come (a zip written to a non-seekable sink, handed on in chunks), so memory stays flat
whatever the row count.  Cells are typed: a Decimal is an amount (a number shown with a
``0.00 "元"`` format), a date/datetime a real date, an int a number, everything else text — and
text that a spreadsheet would run as a formula (``= + - @``, tab, CR) gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal

from .result import _ILLEGAL, _XML, _column_letter, _static_parts, safe

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_EPOCH = date(1899, 12, 30)
_EPOCH_DT = datetime(1899, 12, 30)
# cellXfs: 0 text/default, 1 date, 2 amount, 3 date+time, 4 header (bold)
_STYLES = (
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="3"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>'
    '<numFmt numFmtId="165" formatCode="0.00&quot; 元&quot;"/>'
    '<numFmt numFmtId="166" formatCode="yyyy-mm-dd hh:mm"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="等线"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="等线"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="5"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def _text(ref: str, v: str, style: str = "") -> str:
    v = safe(v)
    if len(v) > 32767:
        v = v[:32767]
    if "&" in v or "<" in v or ">" in v:
        v = v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if _ILLEGAL.search(v):
        v = _ILLEGAL.sub("", v)
    space = ' xml:space="preserve"' if v[:1].isspace() or v[-1:].isspace() else ""
    return f'<c r="{ref}" t="inlineStr"{style}><is><t{space}>{v}</t></is></c>'


def cell(ref: str, v) -> str:
    """One typed cell ("" for None)."""
    t = type(v)
    if t is str:
        return _text(ref, v) if v else ""
    if v is None:
        return ""
    if t is Decimal:
        return f'<c r="{ref}" s="2"><v>{v}</v></c>' if v.is_finite() else _text(ref, str(v))
    if t is date:
        return f'<c r="{ref}" s="1"><v>{(v - _EPOCH).days}</v></c>'
    if t is datetime:
        d = v - _EPOCH_DT
        return f'<c r="{ref}" s="3"><v>{d.days + d.seconds / 86400:.6f}</v></c>'
    if t is bool:
        return _text(ref, "是" if v else "否")
    if t is int:
        return f'<c r="{ref}" t="n"><v>{v}</v></c>'
    if t is float:
        return f'<c r="{ref}" t="n"><v>{v:.16g}</v></c>' if v == v and v not in (float("inf"), float("-inf")) else ""
    if isinstance(v, str):  # a str subclass (an enum): its label
        return _text(ref, str(v))
    return _text(ref, str(v))


class _Sink:
    """A write-only file for ZipFile whose bytes are taken away in chunks."""

    def __init__(self):
        self.buf = bytearray()

    def write(self, b) -> int:
        self.buf += b
        return len(b)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = bytes(self.buf)
        self.buf.clear()
        return out


def stream_xlsx(
    headers: Sequence[str],
    rows: Iterable[Sequence],
    sheet_title: str = "导出",
    widths: Sequence[int] | None = None,
    chunk_rows: int = 2000,
) -> Iterator[bytes]:
    """The .xlsx of `headers` + `rows`, yielded in chunks while `rows` is consumed."""
    sink = _Sink()
    letters = [_column_letter(i) for i in range(max(len(headers), 1))]
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        parts = _static_parts(sheet_title)
        parts["xl/styles.xml"] = _XML + _STYLES
        for name, text in parts.items():
            z.writestr(name, text)
        yield sink.take()
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            cols = "".join(
                f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>'
                for i, w in enumerate(widths or [16] * len(headers), start=1)
            )
            head = "".join(_text(f"{letters[i]}1", str(h), ' s="4"') for i, h in enumerate(headers))
            f.write(
                (
                    _XML + '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                    '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" state="frozen"/>'
                    f"</sheetView></sheetViews><cols>{cols}</cols><sheetData>"
                    f'<row r="1">{head}</row>'
                ).encode()
            )
            out: list[str] = []
            n = 1
            for values in rows:
                n += 1
                r = str(n)
                out.append(f'<row r="{r}">' + "".join(cell(letters[i] + r, v) for i, v in enumerate(values)) + "</row>")
                if len(out) >= chunk_rows:
                    f.write("".join(out).encode())
                    out.clear()
                    yield sink.take()
            f.write(("".join(out) + "</sheetData></worksheet>").encode())
    yield sink.take()


def stream_csv(headers: Sequence[str], rows: Iterable[Sequence], chunk_rows: int = 2000) -> Iterator[bytes]:
    """UTF-8 CSV with a BOM (Excel reads the Chinese), formula cells escaped, streamed."""
    buf = io.StringIO()
    w = csv.writer(buf)
    buf.write("\ufeff")
    w.writerow(headers)
    n = 0
    for values in rows:
        w.writerow(["" if v is None else safe(_plain(v)) for v in values])
        n += 1
        if n % chunk_rows == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def _plain(v):
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, date):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, Decimal):
        return f"{v:.2f}"
    return str(v)

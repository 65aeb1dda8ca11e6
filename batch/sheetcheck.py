"""What reading an uploaded workbook would cost, found out before anything is read into memory.

python-calamine turns a sheet into one dense rows × columns array (about 30 bytes a cell, empty
ones included) and reads an .xlsx's shared strings whole.  So one cell at XFD1048576 in a 1.6 KB
file asks it for 512 GiB (the process aborts), one at GR100000 costs 900 MB, and a 5 MB zip
whose sheet inflates to 2 GB holds gigabytes.  The `<dimension>` a sheet declares does not
matter to calamine (it places each cell where the cell says), nor can the sizes in a zip's
directory be trusted.  Hence, before calamine sees a file:

- .xlsx: every part of the zip is inflated here, chunk by chunk, counting what comes out: a part
  larger than it says, or over the size limit, or inflating far beyond what a spreadsheet does,
  is refused as soon as it shows; only stored and deflated parts are accepted;
- the first sheet's real extent (the highest row and column any cell names) is found while its
  XML inflates, and the first cell beyond the limits stops the check;
- .xls: the first sheet's cell records are read from the OLE2 container the same way.

Memory stays at one chunk whatever the file claims.  Everything refused raises `BatchFileError`
with the clerk's message: what is wrong and what to do.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from xml.parsers import expat

from .errors import BatchFileError

MB = 1024 * 1024
CHUNK = 1 * MB
EXCEL_MAX_ROW = 1_048_576
EXCEL_MAX_COL = 16_384


@dataclass(frozen=True)
class Limits:
    """How big an upload may be once unpacked (app config: UPLOAD_MAX_ROWS and friends)."""

    rows: int = 100_000  # data rows
    columns: int = 100  # columns of the sheet (the template has 4 or 5)
    cells: int = 4_000_000  # rows × columns of the sheet's area (~120 MB in calamine)
    blank_rows: int = 10_000  # empty rows a sheet may have between or above its data
    part_bytes: int = 200 * MB  # one part of an .xlsx, inflated
    total_bytes: int = 300 * MB  # all parts together, inflated
    ratio: int = 200  # inflated ÷ compressed, for parts over 10 MB (spreadsheets: 5-20)

    @property
    def sheet_rows(self) -> int:
        return self.rows + self.blank_rows + 20  # + the rows above and including the header

    @property
    def area(self) -> int:
        # a sheet of at most 26 columns (A-Z) is never refused for its area alone
        return max(self.cells, 26 * self.sheet_rows)


def column_letters(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ch - 64)
    return n


class _Extent:
    """The highest row and column seen so far, refused as soon as either passes the limits."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.rows = 0
        self.cols = 0

    def cell(self, row: int, col: int) -> None:
        if row > self.rows:
            self.rows = row
            if row > self.limits.sheet_rows:
                raise BatchFileError(
                    f"工作表中第 {row} 行还有内容，超过每个文件 {self.limits.rows} 行数据的上限。"
                    "请删除多余的行（包括看似空白、但有内容或格式的行），或把数据拆分为几个文件分别上传"
                )
        if col > self.cols:
            self.cols = col
            if col > self.limits.columns:
                raise BatchFileError(
                    f"工作表的 {column_letters(col)} 列（第 {col} 列）还有内容，超过每行 {self.limits.columns} 列的上限。"
                    "请只保留模板中的列（姓名、身份证号等），删除其余的列后另存再上传"
                )

    def finish(self) -> None:
        if self.rows * self.cols > self.limits.area:
            raise BatchFileError(
                f"工作表的使用范围达到 {self.rows} 行 × {self.cols} 列，超过上限。"
                "请只保留模板中的列、删除多余的行列后另存再上传，数据较多时请拆分为几个文件"
            )


# --- .xlsx -------------------------------------------------------------------------------------

NOT_EXCEL = "不是有效的 Excel 文件（可能已损坏、加密，或是改了扩展名的其他文件）。请用 Excel 打开后另存为 .xlsx 再上传"
BOMB = (
    "解压后的内容异常庞大（超过 {mb} MB，或压缩比远超正常表格），可能已损坏或是恶意构造的文件。"
    "请用 Excel 打开后另存为新的 .xlsx 再上传；数据较多时请拆分为几个文件"
)
LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile.structFileHeader


def check_xlsx(data: bytes, limits: Limits) -> None:
    """Refuse an .xlsx (or .xlsm) that calamine could not read within the limits."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, struct.error):
        raise BatchFileError(NOT_EXCEL) from None
    names = {i.filename for i in infos}
    if "xl/workbook.bin" in names:
        raise BatchFileError("不支持 Excel 二进制工作簿（.xlsb），请用 Excel 另存为 .xlsx 后上传")
    if "xl/workbook.xml" not in names:
        raise BatchFileError(NOT_EXCEL)  # an OpenDocument or any other zip: not what the templates are
    total = sum(i.file_size for i in infos)
    for i in infos:
        if i.flag_bits & 0x1:
            raise BatchFileError("文件已加密（设置了打开密码），请在 Excel 中取消密码后另存再上传")
        if i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BatchFileError(NOT_EXCEL)
        if i.file_size > limits.part_bytes or total > limits.total_bytes or _ratio_too_high(i, limits):
            raise BatchFileError(BOMB.format(mb=limits.part_bytes // MB))
    sheet = _first_sheet(data, zf, names, limits)
    for i in infos:
        if i.filename == sheet or (sheet is None and i.filename.startswith("xl/worksheets/")):
            _scan_sheet(data, i, limits)
        else:
            for _ in _inflate(data, i, limits):
                pass


def _ratio_too_high(info: zipfile.ZipInfo, limits: Limits) -> bool:
    return info.file_size > 10 * MB and info.file_size > limits.ratio * max(info.compress_size, 1)


def _inflate(data: bytes, info: zipfile.ZipInfo, limits: Limits):
    """The part's bytes as they inflate, chunk by chunk, from its compressed bytes as the zip's
    directory delimits them (as calamine's reader does): more than the declared size, or than the
    limit, is refused on the spot; less is a damaged file."""
    off = info.header_offset
    head = data[off : off + LOCAL_HEADER.size]
    if len(head) < LOCAL_HEADER.size or head[:4] != b"PK\x03\x04":
        raise BatchFileError(NOT_EXCEL)
    fields = LOCAL_HEADER.unpack(head)
    start = off + LOCAL_HEADER.size + fields[-2] + fields[-1]
    raw = memoryview(data)[start : start + info.compress_size]
    if len(raw) < info.compress_size:
        raise BatchFileError(NOT_EXCEL)
    cap = min(info.file_size, limits.part_bytes)
    out = 0
    if info.compress_type == zipfile.ZIP_STORED:
        pieces = (bytes(raw[i : i + CHUNK]) for i in range(0, len(raw), CHUNK))
    else:
        pieces = _deflated(raw)
    for piece in pieces:
        out += len(piece)
        if out > cap:
            raise BatchFileError(BOMB.format(mb=limits.part_bytes // MB))
        yield piece
    if out != info.file_size:
        raise BatchFileError(NOT_EXCEL)


def _deflated(raw: memoryview):
    d = zlib.decompressobj(-15)
    try:
        for i in range(0, len(raw), CHUNK):
            piece = raw[i : i + CHUNK]
            while piece:
                got = d.decompress(piece, CHUNK)
                if got:
                    yield got
                piece = d.unconsumed_tail
        rest = d.flush()
        if rest:
            yield rest
    except zlib.error:
        raise BatchFileError(NOT_EXCEL) from None


_SHEET_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?sheet\b([^>]*)>")
_RID = re.compile(rb'\b(?:[A-Za-z_][\w.-]*:)?id="([^"]*)"')
_REL = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?Relationship\b([^>]*)>")
_ATTR = re.compile(rb'\b(Id|Target)="([^"]*)"')


def _first_sheet(data: bytes, zf: zipfile.ZipFile, names: set, limits: Limits) -> str | None:
    """The part calamine reads as the first sheet (workbook order, through the workbook's rels);
    None when it cannot be told, and then every worksheet part is checked as a sheet."""
    try:
        wb = b"".join(_inflate(data, zf.getinfo("xl/workbook.xml"), limits))
        rels = b"".join(_inflate(data, zf.getinfo("xl/_rels/workbook.xml.rels"), limits))
    except KeyError:
        return None
    first = _SHEET_TAG.search(wb)
    rid = _RID.search(first.group(1)) if first else None
    if rid is None:
        return None
    for rel in _REL.finditer(rels):
        attrs = dict(_ATTR.findall(rel.group(1)))
        if attrs.get(b"Id") == rid.group(1):
            target = attrs.get(b"Target", b"").decode("utf-8", "replace")
            path = target.lstrip("/") if target.startswith("/") else "xl/" + target
            parts = []
            for p in path.split("/"):
                if p == "..":
                    parts = parts[:-1]
                elif p not in ("", "."):
                    parts.append(p)
            path = "/".join(parts)
            return path if path in names else None
    return None


def _suspect_re(limits: Limits) -> re.Pattern:
    """A cell start tag other than `<c r="B1234"` with one column letter and a row number short
    enough to be within the limits for sure: only those are looked at one by one."""
    digits = max(len(str(limits.sheet_rows)) - 1, 1)
    return re.compile(rb'<c(?! r="[A-Z]\d{1,%d}")[\s>/]' % digits)


_PREFIXED_CELL = re.compile(rb":c[\s>/]")
_REF = re.compile(rb'\sr="([A-Z]{1,3})([0-9]{1,7})"')
_FIRST_REF = re.compile(rb'<c r="([A-Z]{1,3})([0-9]{1,7})"')
_ANY_CELL = re.compile(rb"<c[\s>/]")


def _scan_sheet(data: bytes, info: zipfile.ZipInfo, limits: Limits) -> None:
    """Refuse a sheet with a cell beyond the limits.  Sheets written by Excel, WPS, LibreOffice
    and openpyxl start every cell with `<c r="…"`: in one of at most 26 columns, with a row number
    short enough, a cell cannot be beyond the limits, and a byte search per chunk finds the
    others.  A sheet with more than 26 columns is measured cell by cell from its references, and
    any other sheet (cells without a reference, a namespace prefix) is parsed."""
    suspect = _suspect_re(limits)
    extent = _Extent(limits)
    tail = b""
    for chunk in _inflate(data, info, limits):
        buf = tail + chunk
        cut = buf.rfind(b">") + 1
        block, tail = buf[:cut], buf[cut:]
        if _PREFIXED_CELL.search(block):
            return _parse_sheet(data, info, limits)
        for m in suspect.finditer(block):
            ref = _REF.search(block, m.start(), block.find(b">", m.start()))
            if ref is None:  # a cell without its reference, or with another attribute first
                return _parse_sheet(data, info, limits)
            col = _column_number(ref.group(1))
            if col > 26:
                return _measure_wide_sheet(data, info, limits)
            extent.cell(int(ref.group(2)), col)
    # every cell is in A-Z and within the row limit: the area is within its limit too


def _measure_wide_sheet(data: bytes, info: zipfile.ZipInfo, limits: Limits) -> None:
    """Every cell reference of a sheet with more than 26 columns: the highest row and column."""
    extent = _Extent(limits)
    tail = b""
    for chunk in _inflate(data, info, limits):
        buf = tail + chunk
        cut = buf.rfind(b">") + 1
        block, tail = buf[:cut], buf[cut:]
        refs = _FIRST_REF.findall(block)
        if len(refs) != len(_ANY_CELL.findall(block)):
            return _parse_sheet(data, info, limits)
        if refs:
            extent.cell(max(map(int, (r for _, r in refs))), 1)
            extent.cell(1, max(_column_number(c) for c in {c for c, _ in refs}))
    extent.finish()


def _parse_sheet(data: bytes, info: zipfile.ZipInfo, limits: Limits) -> None:
    """The exact way, for sheets the byte searches cannot vouch for: every row and cell start tag,
    placed as a reader places cells without a reference (the next row, the next column)."""
    extent = _Extent(limits)
    state = {"row": 0, "col": 0}

    def start(name, attrs):
        local = name.rsplit(":", 1)[-1]
        if local == "row":
            r = attrs.get("r")
            state["row"] = int(r) if r and r.isdigit() else state["row"] + 1
            state["col"] = 0
        elif local == "c":
            ref = attrs.get("r")
            m = re.fullmatch(r"([A-Z]{1,3})([0-9]{1,7})", ref or "")
            if m:
                col, row = _column_number(m.group(1).encode()), int(m.group(2))
            else:
                col, row = state["col"] + 1, state["row"] or 1
            state["col"] = col
            extent.cell(row, col)

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    try:
        for chunk in _inflate(data, info, limits):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError:
        raise BatchFileError(NOT_EXCEL) from None
    extent.finish()


# --- .xls (BIFF8 in an OLE2 compound file) ----------------------------------------------------------

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENDOFCHAIN = 0xFFFFFFFE
_CELL_RECORDS = {0x0006, 0x0201, 0x0203, 0x0204, 0x0205, 0x00D6, 0x00FD, 0x027E, 0x0406}
_MULTI_RECORDS = {0x00BD, 0x00BE}  # MULRK, MULBLANK: row, first column, …, last column


def check_xls(data: bytes, limits: Limits) -> None:
    """Refuse an .xls whose first sheet has cells beyond the limits."""
    try:
        stream = _ole_stream(data, ("Workbook", "Book"))
    except (IndexError, struct.error, ValueError):
        stream = None
    if stream is None:
        raise BatchFileError(NOT_EXCEL)
    try:
        pos = _first_sheet_offset(stream)
        extent = _Extent(limits)
        _scan_biff_sheet(stream, pos, extent)
    except (IndexError, struct.error):
        raise BatchFileError(NOT_EXCEL) from None
    extent.finish()


def _ole_stream(data: bytes, names: tuple[str, ...]) -> bytes | None:
    """One stream of an OLE2 compound file, by name (the first of `names` present)."""
    if data[:8] != OLE_MAGIC:
        return None
    sector = 1 << struct.unpack_from("<H", data, 0x1E)[0]
    mini_sector = 1 << struct.unpack_from("<H", data, 0x20)[0]
    if sector not in (512, 4096) or mini_sector != 64:
        return None
    n_fat, first_dir = struct.unpack_from("<LL", data, 0x2C)
    cutoff, first_minifat, n_minifat, first_difat, n_difat = struct.unpack_from("<5L", data, 0x38)
    n_sectors = max((len(data) - sector) // sector, 0)

    def at(sid: int) -> int:
        if sid >= n_sectors:
            raise ValueError("sector out of range")
        return (sid + 1) * sector

    difat = [s for s in struct.unpack_from("<109L", data, 0x4C) if s < n_sectors]
    sid, seen = first_difat, 0
    while sid < n_sectors and seen < n_difat:
        entries = struct.unpack_from(f"<{sector // 4}L", data, at(sid))
        difat += [s for s in entries[:-1] if s < n_sectors]
        sid, seen = entries[-1], seen + 1
    fat: list[int] = []
    for s in difat[:n_fat]:
        fat += struct.unpack_from(f"<{sector // 4}L", data, at(s))

    def chain(start: int, table: list[int], limit: int):
        sid, steps = start, 0
        while sid != _ENDOFCHAIN:
            if sid >= len(table) or steps > limit:
                raise ValueError("broken chain")
            yield sid
            sid, steps = table[sid], steps + 1

    directory = b"".join(data[at(s) : at(s) + sector] for s in chain(first_dir, fat, n_sectors))
    entries = {}
    for off in range(0, len(directory) - 127, 128):
        name_len = struct.unpack_from("<H", directory, off + 64)[0]
        name = directory[off : off + max(name_len - 2, 0)].decode("utf-16-le", "replace")
        kind = directory[off + 66]
        start, size = struct.unpack_from("<LQ", directory, off + 116)
        entries.setdefault(name, (kind, start, size & 0xFFFFFFFF if sector == 512 else size))
    root = next((e for e in entries.values() if e[0] == 5), None)
    name = next((n for n in names if n in entries and entries[n][0] == 2), None)
    if name is None or root is None:
        return None
    _, start, size = entries[name]
    if size > len(data):
        raise ValueError("stream larger than the file")
    if size >= cutoff:
        out = b"".join(data[at(s) : at(s) + sector] for s in chain(start, fat, n_sectors))
        return out[:size]
    minifat: list[int] = []
    for s in chain(first_minifat, fat, n_sectors):
        minifat += struct.unpack_from(f"<{sector // 4}L", data, at(s))
    ministream = b"".join(data[at(s) : at(s) + sector] for s in chain(root[1], fat, n_sectors))
    out = b"".join(ministream[s * mini_sector : (s + 1) * mini_sector] for s in chain(start, minifat, len(minifat)))
    return out[:size]


def _first_sheet_offset(stream: bytes) -> int:
    """Where the first sheet's substream starts: the first BOUNDSHEET record of the globals."""
    pos = 0
    while pos + 4 <= len(stream):
        rtype, length = struct.unpack_from("<HH", stream, pos)
        if rtype == 0x0085:
            return struct.unpack_from("<L", stream, pos + 4)[0]
        if rtype == 0x000A:  # the globals' EOF: no sheet
            break
        pos += 4 + length
    raise IndexError("no sheet")


def _scan_biff_sheet(stream: bytes, pos: int, extent: _Extent) -> None:
    end = len(stream)
    if pos + 4 > end or struct.unpack_from("<H", stream, pos)[0] not in (0x0809, 0x0409, 0x0209, 0x0009):
        raise IndexError("no sheet at its offset")
    while pos + 4 <= end:
        rtype, length = struct.unpack_from("<HH", stream, pos)
        body = pos + 4
        if rtype == 0x000A:
            return
        if rtype in _CELL_RECORDS and length >= 4:
            row, col = struct.unpack_from("<HH", stream, body)
            extent.cell(row + 1, col + 1)
        elif rtype in _MULTI_RECORDS and length >= 6:
            row, _first = struct.unpack_from("<HH", stream, body)
            last = struct.unpack_from("<H", stream, body + length - 2)[0]
            extent.cell(row + 1, last + 1)
        pos = body + length


# --- .csv ------------------------------------------------------------------------------------------

CSV_MAX_FIELD = 131_072  # Python's csv field_size_limit: a longer cell is no name or ID number


def check_csv_line(line_no: int, line: str, delimiter: str, limits: Limits) -> None:
    """One physical line of a CSV: refused before the csv module splits it into a list, when it
    would have more fields than the sheet may have columns."""
    if line.count(delimiter) >= limits.columns * 4:  # quoted delimiters counted too: generous
        raise BatchFileError(
            f"CSV 文件第 {line_no} 行的列数超过每行 {limits.columns} 列的上限，不是正常的名单文件。"
            "请用 Excel 打开，只保留模板中的列后另存为 .xlsx 再上传"
        )

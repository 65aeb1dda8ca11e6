"""Hostile upload files, generated on the spot (never committed as blobs): a cell far away, a zip
bomb, a zip whose directory lies about sizes, an .xls with a far cell, a CSV with a huge cell.

Also runnable: `python tests/hostile.py DIR` writes each of them into DIR (for measuring the
server by hand, e.g. peak RSS of `flask batch check` on each)."""

from __future__ import annotations

import io
import struct
import sys
import zipfile

_CT = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_R}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WB = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="{_R}">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WB_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_R}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)
SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
SHEET_TAIL = b"</sheetData></worksheet>"
HEADER_ROW = (
    '<row r="1"><c r="A1" t="inlineStr"><is><t>姓名</t></is></c>'
    '<c r="B1" t="inlineStr"><is><t>身份证号</t></is></c></row>'
).encode()


def xlsx(sheet_chunks, level: int = 6) -> bytes:
    """A minimal .xlsx whose first sheet's XML is the concatenation of `sheet_chunks` (bytes),
    compressed as it streams (a 2 GB sheet never exists in memory)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        z.writestr("[Content_Types].xml", _CT)
        z.writestr("_rels/.rels", _RELS)
        z.writestr("xl/workbook.xml", _WB)
        z.writestr("xl/_rels/workbook.xml.rels", _WB_RELS)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            for chunk in sheet_chunks:
                f.write(chunk)
    return buf.getvalue()


def sheet(rows: bytes = b"", head: bytes = SHEET_HEAD) -> list[bytes]:
    return [head, HEADER_ROW, rows, SHEET_TAIL]


def far_cell_xlsx(ref: str = "XFD1048576", dimension: str | None = None) -> bytes:
    """The template's header and one cell at `ref` (XFD1048576: the last cell Excel has); the
    sheet may declare any <dimension> (calamine ignores it)."""
    head = SHEET_HEAD
    if dimension:
        head = head.replace(b"<sheetData>", f'<dimension ref="{dimension}"/><sheetData>'.encode())
    row = "".join(ch for ch in ref if ch.isdigit())
    cell = f'<row r="{row}"><c r="{ref}" t="inlineStr"><is><t>x</t></is></c></row>'.encode()
    return xlsx(sheet(cell, head))


def far_cell_without_references_xlsx(columns: int = 3000) -> bytes:
    """Cells without `r` attributes are placed one after another: a long row reaches far columns."""
    row = b"<row>" + b'<c t="inlineStr"><is><t>x</t></is></c>' * columns + b"</row>"
    return xlsx(sheet(row))


def zip_bomb_xlsx(inflated_mb: int = 2048) -> bytes:
    """A small .xlsx whose sheet XML inflates to `inflated_mb` MB: the same valid row, again and
    again (2048 MB: a ~5 MB file, as in issue 15)."""
    row = (
        b'<row><c t="inlineStr"><is><t>\xe5\xbc\xa0\xe4\xbc\x9f</t></is></c>'
        b'<c t="inlineStr"><is><t>110105199001011234</t></is></c></row>'
    )
    block = row * (1024 * 1024 // len(row) + 1)
    block = block[: len(block) - len(block) % len(row)]
    total = inflated_mb * 1024 * 1024

    def chunks():
        yield SHEET_HEAD + HEADER_ROW
        done = 0
        while done < total:
            yield block
            done += len(block)
        yield SHEET_TAIL

    return xlsx(chunks(), level=9)


def with_lying_size(data: bytes, name: str = "xl/worksheets/sheet1.xml", size: int = 4096) -> bytes:
    """The same zip, its directory (central and local) claiming `name` inflates to `size` bytes."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    info = zf.getinfo(name)
    out = bytearray(data)
    # local header: uncompressed size at +22 (0xFFFFFFFF when the zip64 extra holds it)
    local = info.header_offset
    n, e = struct.unpack_from("<HH", out, local + 26)
    _patch_size(out, local + 22, local + 30 + n, e, size)
    # its central directory entry
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        n, e, c = struct.unpack_from("<HHH", out, pos + 28)
        if out[pos + 46 : pos + 46 + n].decode() == name:
            _patch_size(out, pos + 24, pos + 46 + n, e, size)
            break
        pos = data.find(b"PK\x01\x02", pos + 46 + n + e + c)
    return bytes(out)


def _patch_size(out: bytearray, size_at: int, extra_at: int, extra_len: int, size: int):
    if struct.unpack_from("<L", out, size_at)[0] != 0xFFFFFFFF:
        struct.pack_into("<L", out, size_at, size)
        return
    pos, end = extra_at, extra_at + extra_len
    while pos + 4 <= end:
        tag, length = struct.unpack_from("<HH", out, pos)
        if tag == 1:  # zip64: uncompressed size comes first
            struct.pack_into("<Q", out, pos + 4, size)
            return
        pos += 4 + length


# --- .xls: a minimal BIFF8 workbook in a minimal OLE2 compound file ----------------------------------


def _rec(rtype: int, body: bytes) -> bytes:
    return struct.pack("<HH", rtype, len(body)) + body


def xls(cells: list[tuple[int, int, str | float]]) -> bytes:
    """An .xls (BIFF8) with one sheet holding `cells` as (row, column, value), 0-based."""
    strings = [v for _, _, v in cells if isinstance(v, str)]
    sst = struct.pack("<LL", len(strings), len(strings))
    for s in strings:
        sst += struct.pack("<HB", len(s), 1) + s.encode("utf-16-le")
    bof = lambda kind: _rec(0x0809, struct.pack("<HHHHLL", 0x0600, kind, 0x0DBB, 0x07CC, 0, 0x0006))  # noqa: E731
    name = "Sheet1"

    def boundsheet(pos: int) -> bytes:
        return _rec(0x0085, struct.pack("<LBBBB", pos, 0, 0, len(name), 0) + name.encode("latin-1"))

    head = bof(0x0005) + _rec(0x0042, struct.pack("<H", 1200))
    tail = _rec(0x00FC, sst) + _rec(0x000A, b"")
    sheet_pos = len(head) + len(boundsheet(0)) + len(tail)
    globals_ = head + boundsheet(sheet_pos) + tail
    body = bof(0x0010)
    k = 0
    for r, c, v in cells:
        if isinstance(v, str):
            body += _rec(0x00FD, struct.pack("<HHHL", r, c, 0, k))
            k += 1
        else:
            body += _rec(0x0203, struct.pack("<HHHd", r, c, 0, float(v)))
    body += _rec(0x000A, b"")
    return _ole({"Workbook": globals_ + body})


def _ole(streams: dict[str, bytes]) -> bytes:
    """A version-3 compound file (512-byte sectors), every stream padded to at least 4096 bytes so
    that none lives in the mini stream."""
    sec = 512
    chains, body = {}, b""
    next_sid = 0
    for name, stream in streams.items():
        padded = stream + b"\0" * (max(4096, -(-len(stream) // sec) * sec) - len(stream))
        n = len(padded) // sec
        chains[name] = (next_sid, len(padded), n)  # under 4096 bytes it would be in the mini stream
        body += padded
        next_sid += n
    dir_sid = next_sid
    fat_sid = dir_sid + 1
    n_sectors = fat_sid + 1
    fat = [0xFFFFFFFF] * (sec // 4)
    for start, _size, n in chains.values():
        for i in range(n):
            fat[start + i] = start + i + 1 if i < n - 1 else 0xFFFFFFFE
    fat[dir_sid] = 0xFFFFFFFE
    fat[fat_sid] = 0xFFFFFFFD  # FATSECT
    assert n_sectors <= len(fat)

    def entry(name: str, kind: int, start: int, size: int, child: int = 0xFFFFFFFF) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0"
        e = raw.ljust(64, b"\0") + struct.pack("<HBB", len(raw), kind, 1)
        e += struct.pack("<LLL", 0xFFFFFFFF, 0xFFFFFFFF, child) + b"\0" * 16 + b"\0" * 4 + b"\0" * 16
        e += struct.pack("<LQ", start, size)
        return e

    names = list(chains)
    directory = entry("Root Entry", 5, 0xFFFFFFFE, 0, child=1)
    for name in names:
        start, size, _n = chains[name]
        directory += entry(name, 2, start, size)
    directory = directory.ljust(sec, b"\0")
    header = bytearray(512)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9)
    struct.pack_into("<H", header, 0x20, 6)
    struct.pack_into("<LLLL", header, 0x2C, 1, dir_sid, 0, 4096)
    struct.pack_into("<LLLL", header, 0x3C, 0xFFFFFFFE, 0, 0xFFFFFFFE, 0)
    difat = [fat_sid] + [0xFFFFFFFF] * 108
    struct.pack_into("<109L", header, 0x4C, *difat)
    return bytes(header) + body + directory + struct.pack(f"<{sec // 4}L", *fat)


def csv_with_huge_cell(chars: int = 200_000) -> bytes:
    return ("姓名,身份证号\n张伟," + "1" * chars + "\n").encode("utf-8")


def csv_with_many_columns(columns: int = 2_000_000) -> bytes:
    return ("姓名,身份证号\n张伟" + ",ab" * columns + "\n").encode("utf-8")


if __name__ == "__main__":  # pragma: no cover - a tool for measuring by hand
    from pathlib import Path

    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "far_xfd.xlsx": far_cell_xlsx("XFD1048576"),
        "far_gr100000.xlsx": far_cell_xlsx("GR100000"),
        "far_lying_dimension.xlsx": far_cell_xlsx("GR200000", dimension="A1:B2"),
        "no_refs_3000_columns.xlsx": far_cell_without_references_xlsx(),
        "zip_bomb_2gb.xlsx": zip_bomb_xlsx(2048),
        "zip_bomb_lying_size.xlsx": with_lying_size(zip_bomb_xlsx(2048)),
        "far_iv65536.xls": xls([(0, 0, "姓名"), (0, 1, "身份证号"), (65535, 99, "x")]),
        "huge_cell.csv": csv_with_huge_cell(),
        "many_columns.csv": csv_with_many_columns(),
    }
    for name, data in files.items():
        (out / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")

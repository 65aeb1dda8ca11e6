"""The hand-written streaming .xlsx writer of the result files (batch/result.py write_sheet), read
back by openpyxl: whatever cells it writes come back equal, and equal to what openpyxl itself
writes for the same rows."""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch import result as result_module
from batch.result import write_sheet
from rules import worksheet_text

# Text as a cell may hold it: any character but lone surrogates (no UTF-8 for them), blanks at
# the ends, markup characters, error-looking strings and long text too.
TEXT = st.one_of(
    # "=…" never reaches the writer: safe() makes it "'=…" first
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40).filter(lambda s: not s.startswith("=")),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).map(lambda s: f" {s} "),
    st.sampled_from(["#N/A", "#DIV/0!", "&<>\"'", "张伟", "110105199003074510", "'=1+1", "\u00b7", "\t", "\r\n"]),
    st.tuples(st.integers(32760, 32780), st.sampled_from("a张")).map(lambda t: t[1] * t[0]),  # around the cut
)
INTS = st.integers(min_value=-(2**53), max_value=2**53)
# a number as a spreadsheet keeps it: up to 15 significant digits
FLOATS = st.integers(min_value=-(10**13), max_value=10**13).map(lambda n: n / 100)
PLAIN = st.one_of(st.none(), st.booleans(), INTS, FLOATS, TEXT)
# values only openpyxl writes (the writer hands the whole sheet to it)
OTHER = st.one_of(
    st.dates(min_value=date(1900, 3, 1), max_value=date(9999, 12, 31)),
    st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.replace(microsecond=0)
    ),
)
ROWS = st.lists(st.lists(PLAIN, min_size=1, max_size=6), min_size=1, max_size=8)


def _write(rows, streaming_only=True) -> list[list]:
    """`rows` through write_sheet; `streaming_only`: fail if it needs openpyxl's help."""
    path = Path(tempfile.mkdtemp()) / "written.xlsx"
    width = max(len(r) for r in rows)
    if streaming_only:
        result_module._write_fast(path, "处理结果", iter(rows), len(rows), width)
    else:
        write_sheet(path, "处理结果", lambda: iter(rows), len(rows), width)
    return _read(path, len(rows), width)


def _read(path, n_rows, width) -> list[list]:
    ws = openpyxl.load_workbook(path).active
    out = []
    for r in range(1, n_rows + 1):
        out.append([ws.cell(r, c).value for c in range(1, width + 1)])
    return out


def _expected(value):
    """What a cell holding `value` reads back as: text cut at Excel's 32,767 characters, with the
    characters a worksheet cannot hold shown as �, and a carriage return read as a line feed (XML
    reads every line end so, openpyxl's own files too); an empty text is an empty cell."""
    if isinstance(value, str):
        value = worksheet_text(value)[:32767].replace("\r\n", "\n").replace("\r", "\n")
        return value or None
    return value


def _padded(rows):
    width = max(len(r) for r in rows)
    return [[_expected(v) for v in r] + [None] * (width - len(r)) for r in rows]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ROWS)
def test_any_text_number_or_flag_written_is_read_back_equal(rows):
    assert _write(rows) == _padded(rows)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ROWS, st.lists(OTHER, min_size=1, max_size=3))
def test_a_sheet_with_dates_goes_to_openpyxl_and_still_reads_back_equal(rows, others):
    rows = rows + [others]
    got = _write(rows, streaming_only=False)
    want = _padded(rows)
    for got_row, want_row in zip(got, want):
        assert [v.date() if isinstance(v, datetime) and type(w) is date else v for v, w in zip(got_row, want_row)] == (
            want_row
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ROWS)
def test_the_streaming_writer_writes_what_openpyxl_writes(rows):
    ours = _write(rows)
    path = Path(tempfile.mkdtemp()) / "openpyxl.xlsx"
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("处理结果")
    for values in rows:
        ws.append([worksheet_text(v) for v in values])
    wb.save(path)
    assert ours == _read(path, len(rows), max(len(r) for r in rows))


def test_a_control_character_from_an_uploaded_cell_is_shown_not_refused():
    """openpyxl refuses such a cell (IllegalCharacterError): the result file shows it as �."""
    rows = [["张\x01伟", 1, 2.5, True, None, "#N/A", " x "], [date(2026, 1, 1), "\x1f"]]
    got = _write(rows, streaming_only=False)
    assert got[0] == ["张\ufffd伟", 1, 2.5, True, None, "#N/A", " x "]
    assert got[1][1] == "\ufffd" and got[1][0].date() == date(2026, 1, 1)


def test_an_upload_with_a_control_character_is_processed_and_its_result_file_shows_it(app, tmp_path):
    from test_batch_members import fresh_id, process, write_csv

    from models.storage import result_path

    with app.app_context():
        outcome = process(write_csv(tmp_path / "m.csv", [["姓名", "身份证号"], ["张\x01伟", fresh_id()]]))
        path = result_path(outcome.batch)
        assert outcome.results[0].code == "NAME_CHARS"
    ws = openpyxl.load_workbook(path).active
    assert ws.cell(2, 1).value == "张\ufffd伟" and ws.cell(2, 3).value == "失败"

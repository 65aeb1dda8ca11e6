"""The one document renderer: a template of pdf_templates/ → PDF bytes (WeasyPrint).

Every printable document (收据, 打印生效清单, 即将到期清单, 保单提前终止申请表, …) is an HTML
template under pdf_templates/ that extends `base.html` (which links `base.css`: A4, the CJK font
found through fontconfig, page numbers).  Data reaches a page only through Jinja's autoescaping,
and the URL fetcher reads nothing but files under pdf_templates/: a member named
``<img src=file:///etc/passwd>`` prints as those characters, and even markup that got through
could not fetch a file or a web address.

Images made for one document (a QR code per page) are handed to `render_pdf` as `images`:
the template names them `_images/<name>` (under pdf_templates/, where nothing of that name
exists on disk) and the fetcher answers from that dict alone.  A raster image is embedded once
and drawn cheaply; an inline SVG is parsed and drawn per use (~30 ms a QR code), which matters
on a 1,000-page print.
"""

from __future__ import annotations

import io
import unicodedata
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote, urlparse

import jinja2

from rules import format_amount, format_when
from rules.money import amount_in_words

TEMPLATES = Path(__file__).resolve().parent.parent / "pdf_templates"
BASE_URL = TEMPLATES.as_uri() + "/"
IMAGES = TEMPLATES / "_images"  # a virtual folder: the in-memory images of one rendering


class FetchRefused(ValueError):
    pass


def check_url(url: str) -> Path:
    """The file under pdf_templates/ that `url` names, or FetchRefused."""
    parsed = urlparse(url)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise FetchRefused(f"refused to fetch {url!r}: documents read only pdf_templates/")
    path = Path(unquote(parsed.path)).resolve()
    if not path.is_relative_to(TEMPLATES) or not path.is_file():
        raise FetchRefused(f"refused to fetch {url!r}: outside pdf_templates/")
    return path


def _memory_image(url: str, images: dict) -> bytes | None:
    """The bytes of `_images/<name>` when the caller handed in an image of that name."""
    parsed = urlparse(url)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    path = Path(unquote(parsed.path))
    if path.parent != IMAGES:
        return None
    return images.get(path.name)


def _fetcher(images: dict | None = None):
    """WeasyPrint's fetcher, limited to files under pdf_templates/ (stylesheets, images) and the
    in-memory `images` of this rendering.  Fonts come from fontconfig, not through the fetcher."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class TemplateFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            body = _memory_image(url, images or {})
            if body is not None:
                return URLFetcherResponse(url, body, {"Content-Type": "image/png"})
            return super().fetch(check_url(url).as_uri(), headers)

    return TemplateFetcher(allowed_protocols=("file",))


_money = format_amount  # "12.50" (rules/money.py)
_day = format_when  # "2026-03-01", "2026-03-01 08:30" (rules/dates.py)


def _cn_date(value) -> str:
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return f"{value.year}年{value.month}月{value.day}日"


def _words(value) -> str:
    return amount_in_words(Decimal(str(value)).quantize(Decimal("0.01")))


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(money=_money, day=_day, cn_date=_cn_date, words=_words)


def render_html(template: str, **context) -> str:
    return _env.get_template(template).render(**context)


def render_pdf(template: str, images: dict | None = None, **context) -> bytes:
    """Render `template` (a file name under pdf_templates/) with `context` to PDF bytes; the
    template may show `images` (name -> PNG bytes) as `<img src="_images/NAME">`."""
    from weasyprint import HTML

    html = render_html(template, **context)
    return HTML(string=html, base_url=BASE_URL, url_fetcher=_fetcher(images)).write_pdf()


def qr_svg(text: str) -> str:
    """An inline SVG QR code of `text` (no file, no fetch), for a document's verification link."""
    import segno
    from markupsafe import Markup

    return Markup(segno.make(text, error="m").svg_inline(scale=3, border=2, omitsize=False))


def qr_png(text: str, scale: int = 1) -> bytes:
    """A QR code of `text` as PNG bytes (for `render_pdf(images=…)`), one pixel per module: the
    template sizes it with `image-rendering: pixelated`, so it prints sharp at any size and each
    page's image is a few hundred bytes to embed.  Always a full QR code (never a Micro QR, which
    phone cameras do not read) with its 4-module quiet zone.  The mask pattern is fixed:
    segno's search for the best of the eight costs ~8 ms a code, most of a page's time on a
    1,000-page print, and any mask scans."""
    import segno

    buf = io.BytesIO()
    segno.make_qr(text, error="m", mask=0).save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


def text_width(text: str) -> int:
    """Columns `text` takes in a monospaced CJK font: 2 for a wide or ambiguous character (the CJK font draws · and × wide), 1 otherwise."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WFA" else 1 for ch in text)


def clip(text: str, width: int) -> str:
    """`text` cut to `width` columns, ending in … when cut."""
    if text_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = text_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


TAB = 2  # columns a tab advances to (the template's `tab-size: 2`)


def pad(pos: int, target: int) -> str:
    """Blank from column `pos` to column `target`: tabs to the last even column, then a space.
    A tab is one glyph where spaces would be many, and WeasyPrint draws glyph by glyph."""
    if target <= pos:
        return ""
    even = target - target % TAB
    out = ""
    if even > pos:
        out = "\t" * ((even - pos + (pos % TAB)) // TAB)
        pos = even
    return out + " " * (target - pos)


def text_table(header: list[str], rows: list[list[str]], right: frozenset = frozenset(), limits: dict | None = None):
    """Rows as lines of a monospaced table (`white-space: pre; tab-size: 2` in a monospaced CJK
    font): every column as wide as its widest cell (at most `limits[i]` columns, longer cells end
    in …), columns in `right` aligned right, at least two columns between.  One line of text per
    row: WeasyPrint lays out a line, not a table of cells, which is what lets a 1,000-page print
    run at tens of pages a second.  Returns (header line, row lines)."""
    limits = limits or {}
    rows = [[clip(c, limits[i]) if i in limits else c for i, c in enumerate(r)] for r in rows]
    widths = [max(text_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    starts = [0]
    for w in widths[:-1]:
        starts.append(starts[-1] + w + w % TAB + TAB)

    def line(cells):
        out, pos = [], 0
        for i, c in enumerate(cells):
            w = text_width(c)
            begin = starts[i] + (widths[i] - w if i in right else 0)
            if c:
                out.append(pad(pos, begin) + c)
                pos = begin + w
        return "".join(out)

    return line(header), [line(r) for r in rows]

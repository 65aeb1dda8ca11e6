"""The one document renderer: a template of pdf_templates/ → PDF bytes (WeasyPrint).

Every printable document (收据, 打印生效清单, 即将到期清单, 保单提前终止申请表, …) is an HTML
template under pdf_templates/ that extends `base.html` (which links `base.css`: A4, the CJK font
found through fontconfig, page numbers).  Data reaches a page only through Jinja's autoescaping,
and the URL fetcher reads nothing but files under pdf_templates/: a member named
``<img src=file:///etc/passwd>`` prints as those characters, and even markup that got through
could not fetch a file or a web address.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote, urlparse

import jinja2

from rules import format_amount, format_when
from rules.money import amount_in_words

TEMPLATES = Path(__file__).resolve().parent.parent / "pdf_templates"
BASE_URL = TEMPLATES.as_uri() + "/"


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


def _fetcher():
    """WeasyPrint's fetcher, limited to files under pdf_templates/ (stylesheets, images).  Fonts
    come from fontconfig, not through the fetcher."""
    from weasyprint.urls import URLFetcher

    class TemplateFetcher(URLFetcher):
        def fetch(self, url, headers=None):
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


def render_pdf(template: str, **context) -> bytes:
    """Render `template` (a file name under pdf_templates/) with `context` to PDF bytes."""
    from weasyprint import HTML

    html = render_html(template, **context)
    return HTML(string=html, base_url=BASE_URL, url_fetcher=_fetcher()).write_pdf()


def qr_svg(text: str) -> str:
    """An inline SVG QR code of `text` (no file, no fetch), for a document's verification link."""
    import segno
    from markupsafe import Markup

    return Markup(segno.make(text, error="m").svg_inline(scale=3, border=2, omitsize=False))

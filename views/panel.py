"""The search panel of every list (manual: 在【选择状态】下拉表中选择【新建】，点击【搜索】).

A list declares its panel once, as a list of fields:

    search_panel = [
        enum_select("status", "选择状态", Member.status, MemberStatus),
        id_number_text("id_number", "身份证号", Member.id),
        ...
    ]

Each field has a stable URL name (`?status=NEW&product=P03`, never Flask-Admin's positional
`flt0_0`), a Chinese label, a kind (select / text / date / month) and how it narrows the query.
The panel narrows `get_query()` and `get_count_query()` of the view (views/base.py), so the list,
its export and every bulk action (views/bulk.py `current_query`) see one and the same query, and
the bulk confirmation page lists the panel's conditions in Chinese (`describe`).

A value the panel cannot use (an unknown 选择状态, a date that is no date, a link from before the
panel with `flt0_0=…`) never widens the query: the list is empty and the panel says, in Chinese,
what is wrong and what to do.  Nothing here raises on user input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from flask import g, has_request_context, request

from rules import parse_member_no

from .access import current_user

# Flask-Admin's own list arguments (and the record id of edit/details): no panel field may use them
RESERVED = frozenset({"page", "page_size", "sort", "desc", "search", "id", "url", "modal", "export_type"})
MONTH_RE = re.compile(r"^(\d{4})-(\d{1,2})$")
ALL_MONTHS = "all"  # a month drop-down's 全部, where the screen has one (month_select `every`)
OBSOLETE_FILTER = re.compile(r"^flt\d+_\d+$")  # Flask-Admin's positional filter bar, replaced by the panel


class PanelError(ValueError):
    """A value the panel cannot use; the message is shown to the clerk as it is."""


@dataclass(frozen=True)
class PanelField:
    name: str  # the stable URL name, e.g. "status"
    label: str  # the manual's word, e.g. 选择状态
    kind: str  # "select" | "text" | "date" | "month"
    where: Callable  # cleaned value -> SQL condition on the view's model
    parse: Callable = lambda v: v  # raw text (stripped, non-empty) -> cleaned value; raises PanelError
    options: Callable | Sequence | None = None  # select: [(value, label)] or a callable giving them
    placeholder: str = ""
    roles: frozenset | None = None  # who sees the field (None: everyone); a URL value applies to anyone
    blank: str | None = "全部"  # a drop-down's "no condition" choice; None where the screen always has one
    width: str = "9rem"

    def __post_init__(self):
        if self.name in RESERVED or OBSOLETE_FILTER.match(self.name):
            raise ValueError(f"panel field name {self.name!r} is reserved")

    def choices(self) -> list[tuple[str, str]]:
        opts = self.options() if callable(self.options) else self.options
        return [(str(v), str(label)) for v, label in (opts or [])]

    def shown_value(self, raw: str) -> str:
        """The value as the clerk reads it on the confirmation page (a select shows its label)."""
        if self.kind == "select":
            return dict(self.choices()).get(raw, raw)
        if self.kind == "month" and MONTH_RE.match(raw):
            y, m = MONTH_RE.match(raw).groups()
            return f"{int(y)}年{int(m)}月"
        if self.kind == "month":
            return dict(self.choices()).get(raw, raw)
        return raw


@dataclass
class PanelState:
    """The panel as filled in this request: values by name, errors, and the SQL conditions."""

    fields: list
    values: dict = field(default_factory=dict)  # name -> raw text as typed
    conditions: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.values) or bool(self.errors)

    def narrow(self, query):
        if self.errors:  # never widen: a condition we cannot read matches nothing
            return query.filter(sa.false())
        for cond in self.conditions:
            query = query.filter(cond)
        return query

    def describe(self) -> list[str]:
        """The conditions in Chinese, e.g. ["选择状态：新建", "产品名称：职工意外伤害互助保障"]."""
        by_name = {f.name: f for f in self.fields}
        return [f"{by_name[n].label}：{by_name[n].shown_value(v)}" for n, v in self.values.items()]


def read_panel(fields: Sequence[PanelField], args, *, search_supported: bool = False) -> PanelState:
    state = PanelState(list(fields))
    for f in fields:
        raw = (args.get(f.name) or "").strip()
        if not raw:
            continue
        state.values[f.name] = raw
        try:
            if len(raw) > 100:
                raise PanelError(f"{f.label}最多输入100个字，请缩短后再点【搜索】。")
            state.conditions.append(f.where(f.parse(raw)))
        except PanelError as exc:
            state.errors.append(str(exc))
    old = sorted(k for k in args if OBSOLETE_FILTER.match(k) or (k == "search" and not search_supported))
    if old:
        state.errors.append(
            "这个链接里的查询条件是旧格式（" + "、".join(old) + "），系统已不再使用。"
            "请在上方查询栏重新选择条件，再点【搜索】。"
        )
    return state


class SearchPanelMixin:
    """Reads the view's `search_panel` from the request once; views/base.py narrows its queries."""

    search_panel: Sequence[PanelField] = ()

    def panel_fields(self) -> list[PanelField]:
        return list(self.search_panel)

    def panel_state(self) -> PanelState:
        if not has_request_context():
            return PanelState([])
        cache = g.setdefault("_panel_states", {})
        key = self.endpoint
        if key not in cache:
            cache[key] = read_panel(
                self.panel_fields(), request.args, search_supported=getattr(self, "_search_supported", False)
            )
        return cache[key]

    def narrow(self, query):
        return self.panel_state().narrow(query)

    def visible_panel_fields(self) -> list[PanelField]:
        user = current_user()
        return [f for f in self.panel_fields() if f.roles is None or (user is not None and user.role in f.roles)]

    def panel_hidden_args(self) -> dict:
        """List arguments the 【搜索】 keeps (sort order, page size), and panel values of hidden fields."""
        keep = {k: v for k, v in request.args.items() if k in ("sort", "desc", "page_size") and v}
        shown = {f.name for f in self.visible_panel_fields()}
        keep.update({n: v for n, v in self.panel_state().values.items() if n not in shown})
        return keep


# ---- field kinds ---------------------------------------------------------------------------------


def enum_select(name: str, label: str, column, enum_cls, **kw) -> PanelField:
    """A drop-down of the enum's Chinese labels; the URL carries the stored value (NEW)."""

    def parse(raw):
        try:
            return enum_cls(raw)
        except ValueError:
            raise PanelError(f"{label}没有“{raw}”这一项，请在【{label}】下拉表中重新选择，再点【搜索】。") from None

    return PanelField(name, label, "select", lambda v: column == v, parse, options=enum_cls.choices, **kw)


def code_select(name: str, label: str, column, model, option_label, **kw) -> PanelField:
    """A drop-down of catalogue rows by their stable code (`?product=P03`); the condition compares
    the row's id, so an index on the id column serves it.  The catalogue (a few rows) is read once
    per request, for the condition and the drop-down both; `option_label` gets a row of the
    table's columns."""

    def catalogue() -> list:
        from models import db

        cache = g.setdefault("_panel_catalogues", {})
        if model not in cache:
            table = model.__table__  # plain rows (id, code, name, …): no ORM objects for a drop-down
            cache[model] = db.session.connection().execute(sa.select(table).order_by(table.c.code)).all()
        return cache[model]

    def options():
        if not has_request_context():
            return []
        return [(r.code, option_label(r)) for r in catalogue()]

    def parse(raw):
        pk = next((r.id for r in catalogue() if r.code == raw), None)
        if pk is None:
            raise PanelError(f"{label}没有“{raw}”这一项，请在【{label}】下拉表中重新选择，再点【搜索】。")
        return pk

    return PanelField(name, label, "select", lambda v: column == v, parse, options=options, **kw)


def text(name: str, label: str, where, parse=None, **kw) -> PanelField:
    return PanelField(name, label, "text", where, parse or (lambda v: v), **kw)


def code_text(name: str, label: str, where, max_len: int = 20, **kw) -> PanelField:
    """A code of letters and digits (单位编号, 用户名, 收据号); `where` gets it as typed."""

    def parse(raw):
        if len(raw) > max_len or not all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in raw):
            raise PanelError(
                f"{label}只能由字母和数字组成（最多{max_len}位），您输入的是“{raw}”。请核对后再点【搜索】。"
            )
        return raw

    return PanelField(name, label, "text", where, parse, **kw)


def number_text(name: str, label: str, where, **kw) -> PanelField:
    def parse(raw):
        if not raw.isdigit() or len(raw) > 12:
            raise PanelError(f"{label}只能是数字，您输入的是“{raw}”。请核对后再点【搜索】。")
        return int(raw)

    return PanelField(name, label, "text", where, parse, **kw)


def member_no_text(name: str, label: str, where, **kw) -> PanelField:
    """会员编号 with or without its leading zeros; `where` gets the 10-digit number."""

    def parse(raw):
        member_no = parse_member_no(raw)
        if member_no is None:
            raise PanelError(f"{label}只能是数字（最多10位），您输入的是“{raw}”。请核对后再点【搜索】。")
        return member_no

    return PanelField(name, label, "text", where, parse, placeholder="如 0000000123", **kw)


def id_number_text(name: str, label: str, where, **kw) -> PanelField:
    """The whole 身份证号 (spaces trimmed, lowercase x read as X); `where` gets the 18 characters."""

    def parse(raw):
        from rules import normalize_id

        norm = normalize_id(raw)
        value = norm.value if norm.ok else raw
        if len(value) != 18 or not (value[:17].isdigit() and (value[17].isdigit() or value[17] == "X")):
            raise PanelError(
                f"{label}须为完整的18位（17位数字加最后一位数字或X），您输入的是“{raw}”。请核对后再点【搜索】。"
            )
        return value

    return PanelField(name, label, "text", where, parse, width="12rem", **kw)


def starts_with(column):
    """`column LIKE 'value%'`: an index range scan, never `%…%`."""
    return lambda v: column.startswith(v, autoescape=True)


def name_text(name: str, label: str, where, **kw) -> PanelField:
    """A name from its start (`张三` finds 张三 and 张三丰); `where` gets the name without spaces."""

    def parse(raw):
        value = raw.replace(" ", "").replace("\u3000", "")
        if len(value) > 50:
            raise PanelError(f"{label}最多50个字，请缩短后再点【搜索】。")
        return value

    return PanelField(name, label, "text", where, parse, **kw)


def unit_text(name: str, label: str, column, **kw) -> PanelField:
    """A 单位编号 within the user's own scope; a unit outside it is "not found", never revealed.
    An agency's or office's code means its whole subtree.  `column` is the org id column, or a
    function of the subtree's id SELECT giving the condition (e.g. either of two org columns)."""

    def parse(raw):
        from models import Org, db, scoped

        if not raw.isalnum() or len(raw) > 20:
            raise PanelError(f"{label}只能由字母和数字组成，您输入的是“{raw}”。请核对后再点【搜索】。")
        org = db.session.execute(
            scoped(sa.select(Org.id, Org.path), Org, current_user()).where(Org.code == raw)
        ).first()
        if org is None:
            raise PanelError(f"没有{label}为“{raw}”的单位，或该单位不在您的管辖范围内。请核对后再点【搜索】。")
        return org

    def where(org):
        from models import Org

        subtree = sa.select(Org.id).where(Org.path.startswith(org.path, autoescape=True))
        return column(subtree) if callable(column) else column.in_(subtree)

    return PanelField(name, label, "text", where, parse, placeholder="如 010101", **kw)


def member_ref_text(name: str, label: str, where, **kw) -> PanelField:
    """One box for 会员编号 or 身份证号 (manual: 输入证件号或会员号); `where` gets a condition on Member."""

    def parse(raw):
        from models import Member
        from rules import normalize_id

        member_no = parse_member_no(raw)
        if member_no is not None:
            return Member.member_no == member_no
        norm = normalize_id(raw)
        value = norm.value if norm.ok else raw
        if len(value) == 18 and value[:17].isdigit() and (value[17].isdigit() or value[17] == "X"):
            return Member.id_number == value
        raise PanelError(
            f"{label}：请输入会员编号（最多10位数字）或完整的18位身份证号，您输入的是“{raw}”。请核对后再点【搜索】。"
        )

    return PanelField(name, label, "text", where, parse, width="12rem", **kw)


def parse_date(label: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise PanelError(
            f"{label}“{raw}”不是有效的日期，请用日期选择框选择，或按“年-月-日”输入（如 2026-07-01），再点【搜索】。"
        ) from None


def date_from(name: str, label: str, column, **kw) -> PanelField:
    return PanelField(name, label, "date", lambda d: column >= d, lambda raw: parse_date(label, raw), **kw)


def date_to(name: str, label: str, column, *, whole_day: bool = False, **kw) -> PanelField:
    """`column <= d`; for a timestamp column (whole_day) everything before the next day."""
    if whole_day:
        return PanelField(
            name, label, "date", lambda d: column < d + timedelta(days=1), lambda raw: parse_date(label, raw), **kw
        )
    return PanelField(name, label, "date", lambda d: column <= d, lambda raw: parse_date(label, raw), **kw)


def month_options(before: int = 3, after: int = 12) -> list[tuple[str, str]]:
    today = date.today()
    out = []
    for k in range(-before, after + 1):
        y, m = divmod(today.year * 12 + today.month - 1 + k, 12)
        out.append((f"{y:04d}-{m + 1:02d}", f"{y}年{m + 1}月"))
    return out


def month_select(name: str, label: str, column, every: str | None = None, **kw) -> PanelField:
    """A calendar month (`?month=2026-07`): `column` within its first and last day.  With `every`
    (its label, e.g. 全部) a first choice `?month=all`: every month, no condition."""

    def parse(raw):
        if every is not None and raw == ALL_MONTHS:
            return None
        m = MONTH_RE.match(raw)
        if not m or not 1 <= int(m.group(2)) <= 12 or not 1900 <= int(m.group(1)) <= 2200:
            raise PanelError(f"{label}“{raw}”不是有效的月份，请在【{label}】下拉表中选择，再点【搜索】。")
        y, mo = int(m.group(1)), int(m.group(2))
        return date(y, mo, 1), date(y + (mo == 12), mo % 12 + 1, 1)

    def where(r):
        return sa.true() if r is None else sa.and_(column >= r[0], column < r[1])

    if every is not None:
        kw.setdefault("options", lambda: [(ALL_MONTHS, every), *month_options()])
    kw.setdefault("options", month_options)
    return PanelField(name, label, "month", where, parse, **kw)

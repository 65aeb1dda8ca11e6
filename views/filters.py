"""List filters that reach a related table through an indexed subquery (never a join that could
multiply rows), e.g. 投保管理 filtered by the member's 身份证号 or the unit's 单位编号."""

from __future__ import annotations

from flask_admin.contrib.sqla.filters import BaseSQLAFilter


class SubqueryFilter(BaseSQLAFilter):
    """`column IN (subquery(value))`."""

    def __init__(self, column, name, subquery, operation="等于", clean=None):
        super().__init__(column, name)
        self._subquery = subquery
        self._operation = operation
        self._clean = clean

    def clean(self, value):
        value = (value or "").strip()
        return self._clean(value) if self._clean else value

    def apply(self, query, value, alias=None):
        return query.filter(self.column.in_(self._subquery(value)))

    def operation(self):
        return self._operation

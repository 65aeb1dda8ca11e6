"""What the parameter forms of the actions and the views' entry forms share."""

from __future__ import annotations

from datetime import date

from wtforms.validators import ValidationError

from rules import check_effective_date


def not_before_today(form, field) -> None:
    """A WTForms validator: 预期生效时间 today or later (an empty field is InputRequired's concern)."""
    if field.data:
        check = check_effective_date(field.data, date.today())
        if not check.ok:
            raise ValidationError(check.message)

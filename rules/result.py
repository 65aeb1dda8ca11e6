"""``Check``: what every rule returns."""

from __future__ import annotations

from dataclasses import dataclass

from .codes import Code


@dataclass(frozen=True, slots=True)
class Check:
    """Outcome of one rule (immutable; rules may hand out the same instance twice).

    ``ok`` — the value may be used; ``code``/``message`` — the failure (or, with
    ``needs_confirmation``, the question to ask); ``field`` — the form field it belongs to, where
    the rule knows it; ``warnings`` — fixes applied to the value (the row still goes on);
    ``value`` — the cleaned value or extra data (each rule documents what).
    """

    ok: bool
    code: Code | None = None
    message: str = ""
    field: str | None = None
    warnings: tuple[Code, ...] = ()
    value: object = None
    needs_confirmation: bool = False

    # Hand-written: the generated frozen __init__ goes through object.__setattr__ per field,
    # twice as slow, and rules build one of these per cell on the batch hot path.
    def __init__(
        self,
        ok: bool,
        code: Code | None = None,
        message: str = "",
        field: str | None = None,
        warnings: tuple[Code, ...] = (),
        value: object = None,
        needs_confirmation: bool = False,
    ) -> None:
        _set_ok(self, ok)
        _set_code(self, code)
        _set_message(self, message)
        _set_field(self, field)
        _set_warnings(self, warnings)
        _set_value(self, value)
        _set_needs_confirmation(self, needs_confirmation)

    @classmethod
    def success(cls, value: object = None, warnings=(), field: str | None = None) -> Check:
        return cls(True, None, "", field, tuple(warnings), value)

    @classmethod
    def fail(cls, code: Code, field: str | None = None, warnings=(), value: object = None, **fmt) -> Check:
        """A failure whose message comes from the registry (``fmt`` fills its placeholders)."""
        return cls(False, code, code.format(**fmt), field, tuple(warnings), value)

    @property
    def hint(self) -> str:
        """The manual's next step for this failure, or ``""``."""
        return self.code.hint if self.code is not None else ""

    def with_warnings(self, warnings: tuple[Code, ...]) -> Check:
        """This result with ``warnings`` put in front of its own."""
        if not warnings:
            return self
        return Check(
            self.ok,
            self.code,
            self.message,
            self.field,
            warnings + self.warnings,
            self.value,
            self.needs_confirmation,
        )


(
    _set_ok,
    _set_code,
    _set_message,
    _set_field,
    _set_warnings,
    _set_value,
    _set_needs_confirmation,
) = (
    getattr(Check, name).__set__
    for name in ("ok", "code", "message", "field", "warnings", "value", "needs_confirmation")
)

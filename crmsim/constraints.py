"""Declared parameter constraints and the one engine that checks them.

Every configurable number says what it may be, next to where it is defined: the schema's fields
(``crmsim/config.py``), each policy's and each tactic's ``_parameter_constraints`` (as
scikit-learn's estimators declare theirs). ``check_params`` checks a mapping of values against
such a declaration and stops on the first bad one with a ``ConfigError`` that names the key, the
value and what is allowed. Nothing else in crmsim validates parameters by hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


def _is_number(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, int | float)
            and math.isfinite(value))


@dataclass(frozen=True)
class Interval:
    """A finite number in an interval; ``whole`` asks for a whole number (bounds closed)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    whole: bool = False

    def describe(self) -> str:
        lo, hi = self.lo, self.hi
        if self.whole:
            if lo is not None and hi is not None:
                return f"a whole number from {lo:.0f} to {hi:.0f}"
            if lo is not None:
                return f"a whole number >= {lo:.0f}"
            return f"a whole number <= {hi:.0f}" if hi is not None else "a whole number"
        if lo is not None and hi is not None:
            return (f"a number in {'(' if self.lo_open else '['}{lo:g}, "
                    f"{hi:g}{')' if self.hi_open else ']'}")
        if lo is not None:
            return f"a number {'>' if self.lo_open else '>='} {lo:g}"
        if hi is not None:
            return f"a number {'<' if self.hi_open else '<='} {hi:g}"
        return "a finite number"

    def accepts(self, value: Any) -> bool:
        if not _is_number(value):
            return False
        if self.whole and not (isinstance(value, int) or float(value).is_integer()):
            return False
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return False
        return not (self.hi is not None and (value > self.hi or (self.hi_open and value == self.hi)))

    def check(self, key: str, value: Any) -> None:
        if not self.accepts(value):
            raise ConfigError(key, value, self.describe())


@dataclass(frozen=True)
class Options:
    """One of a fixed set of names."""

    values: tuple[str, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(self.values)

    def check(self, key: str, value: Any) -> None:
        if value not in self.values:
            raise ConfigError(key, value, self.describe())


@dataclass(frozen=True)
class Flag:
    """true or false."""

    def describe(self) -> str:
        return "true or false"

    def check(self, key: str, value: Any) -> None:
        if not isinstance(value, bool):
            raise ConfigError(key, value, self.describe())


@dataclass(frozen=True)
class ListOf:
    """A list whose items each satisfy ``item``."""

    item: Options

    def describe(self) -> str:
        return "a list drawn from " + ", ".join(self.item.values)

    def check(self, key: str, value: Any) -> None:
        if not isinstance(value, list | tuple):
            raise ConfigError(key, value, self.describe())
        for v in value:
            if v not in self.item.values:
                raise ConfigError(key, v, self.describe())


@dataclass(frozen=True)
class Each:
    """A mapping with exactly ``keys``, each value satisfying ``item``."""

    keys: tuple[str, ...]
    item: Interval

    def describe(self) -> str:
        return f"{self.item.describe()} for each of " + ", ".join(self.keys)

    def check(self, key: str, value: Any) -> None:
        if not isinstance(value, Mapping) or set(value) != set(self.keys):
            raise ConfigError(key, value, self.describe())
        for k in self.keys:
            self.item.check(f"{key}.{k}", value[k])


Constraint = Interval | Options | Flag | ListOf | Each


def check_params(prefix: str, params: Mapping[str, Any], constraints: Mapping[str, Constraint],
                 owner: str, optional: tuple[str, ...] = ()) -> None:
    """Check ``params`` against ``constraints``: no unknown key, none missing (but those in
    ``optional``), every value allowed. ``owner`` names whose parameters they are."""
    if not isinstance(params, Mapping):
        raise ConfigError(prefix, params, f"a mapping of the parameters of {owner}")
    for key, value in params.items():
        if key not in constraints:
            raise ConfigError(f"{prefix}.{key}", value, f"a parameter of {owner}: "
                              + (", ".join(sorted(constraints)) or "none"))
    for key, constraint in constraints.items():
        if key not in params:
            if key in optional:
                continue
            raise ConfigError(f"{prefix}.{key}", None,
                              f"{constraint.describe()} (the parameter has no value)")
        constraint.check(f"{prefix}.{key}", params[key])

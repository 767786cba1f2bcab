"""A cohort specification (conf/cohorts/*.toml, or built in Python): study period, index event,
inclusion and exclusion criteria with windows relative to the index date, age and sex.
Validated when read: a bad value stops with an error naming the file and the key.

    [cohort]
    name = "antidiabetic_starters"
    period = ["2019-01-01", "2019-12-31"]
    [index]                      # the first matching event in the period
    category = "drug"
    codes = ["3400930000001"]    # a code, or a prefix pattern "E11*"
    [[include]]                  # at least min_count such events in the window
    category = "diagnosis_main"
    codes = ["E11*"]
    window = [-365, 365]
    min_count = 1
    [[exclude]]                  # no such event 365 days before the index
    category = "drug"
    codes = ["A10A*"]
    window = [-365, -1]          # days from the index date, both ends included
    [population]                 # criteria apply in this order: inclusions, exclusions, age, sex
    age = [40, 80]               # at the index date, both ends included
    sex = [1, 2]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pds_spark.errors import SettingsError
from pds_spark.settings import read_toml

CATEGORIES = ("drug", "act", "diagnosis_main", "diagnosis_related", "diagnosis_associated", "diagnosis",
              "long_term_condition", "death")
CODE = re.compile(r"^[A-Za-z0-9.+-]+\*?$")
NAME = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class EventRule:
    """Events of a category whose code is one of `codes` (a trailing `*`: a prefix)."""

    category: str
    codes: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.category} {' '.join(self.codes)}"


@dataclass(frozen=True)
class Criterion:
    rule: EventRule
    window: tuple[int, int]  # days from the index date
    include: bool  # at least `min_count` events in the window; else none
    min_count: int = 1

    def describe(self) -> str:
        what = f"at least {self.min_count} " if self.include else "no "
        return f"{what}{self.rule.describe()} in days {self.window[0]}..{self.window[1]} of the index"


@dataclass(frozen=True)
class CohortSpec:
    name: str
    period: tuple[date, date]
    index: EventRule
    criteria: tuple[Criterion, ...] = ()
    age: tuple[int, int] | None = None
    sex: tuple[int, ...] = ()
    source: str = "(python)"

    @property
    def categories_read(self) -> tuple[str, ...]:
        """The event categories the cohort reads (an events layer reads only these)."""
        return tuple(sorted({self.index.category, *(c.rule.category for c in self.criteria)}))


def rule(where: str, key: str, raw: Any) -> EventRule:
    if not isinstance(raw, dict) or set(raw) - {"category", "codes", "window", "min_count"}:
        raise SettingsError(where, key, "expects category, codes (and window, min_count for a criterion)")
    category = raw.get("category")
    if category not in CATEGORIES:
        raise SettingsError(where, f"{key}.category", f"{category!r} is not one of {', '.join(CATEGORIES)}")
    codes = raw.get("codes")
    if not isinstance(codes, list) or not codes or not all(isinstance(c, str) and CODE.match(c) for c in codes):
        raise SettingsError(where, f"{key}.codes", "expected a non-empty list of codes or prefixes ('E11*')")
    return EventRule(category, tuple(codes))


def _window(where: str, key: str, raw: Any) -> tuple[int, int]:
    if (not isinstance(raw, list) or len(raw) != 2 or not all(isinstance(d, int) and not isinstance(d, bool)
                                                              for d in raw)):
        raise SettingsError(where, key, "expected [first day, last day] relative to the index date")
    if raw[0] > raw[1]:
        raise SettingsError(where, key, f"the window {raw} is empty: no event can fall in it")
    return raw[0], raw[1]


def _criterion(where: str, key: str, raw: Any, include: bool) -> Criterion:
    found = rule(where, key, raw)
    window = _window(where, f"{key}.window", raw.get("window"))
    count = raw.get("min_count", 1)
    if not include and "min_count" in raw:
        raise SettingsError(where, f"{key}.min_count", "an exclusion has no count: any event excludes")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise SettingsError(where, f"{key}.min_count", f"expected a whole number >= 1, got {count!r}")
    return Criterion(found, window, include, count)


def _period(where: str, raw: Any) -> tuple[date, date]:
    try:
        first, last = (date.fromisoformat(d) if isinstance(d, str) else d for d in raw)
    except (TypeError, ValueError):
        raise SettingsError(where, "cohort.period", "expected [first day, last day] as 'YYYY-MM-DD'") from None
    if not isinstance(first, date) or not isinstance(last, date) or first > last:
        raise SettingsError(where, "cohort.period", f"{raw!r} is not a period (first day <= last day)")
    return first, last


def _population(where: str, raw: Any) -> tuple[tuple[int, int] | None, tuple[int, ...]]:
    if not isinstance(raw, dict) or set(raw) - {"age", "sex"}:
        raise SettingsError(where, "population", "expects age = [min, max] and sex = [1, 2]")
    age = raw.get("age")
    if age is not None and (not isinstance(age, list) or len(age) != 2 or not all(isinstance(a, int) for a in age)
                            or not 0 <= age[0] <= age[1] <= 130):
        raise SettingsError(where, "population.age", f"expected [min, max] years within 0..130, got {age!r}")
    sex = raw.get("sex", [])
    if not isinstance(sex, list) or not set(sex) <= {1, 2}:
        raise SettingsError(where, "population.sex", f"expected a list of 1 (men) and 2 (women), got {sex!r}")
    return ((age[0], age[1]) if age else None), tuple(sex)


def from_dict(raw: dict, where: str = "(python)") -> CohortSpec:
    """A spec from its TOML form (already parsed); errors name `where` and the key."""
    head = raw.get("cohort")
    if not isinstance(head, dict) or set(head) - {"name", "period"}:
        raise SettingsError(where, "cohort", "expects name and period")
    name = head.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise SettingsError(where, "cohort.name", f"expected letters, digits and '_', got {name!r}")
    period = _period(where, head.get("period"))
    if "window" in raw.get("index", {}) or "min_count" in raw.get("index", {}):
        raise SettingsError(where, "index", "the index event has no window: it is the first in the period")
    index = rule(where, "index", raw.get("index"))
    criteria = [_criterion(where, f"include[{i}]", c, True) for i, c in enumerate(raw.get("include", []))]
    criteria += [_criterion(where, f"exclude[{i}]", c, False) for i, c in enumerate(raw.get("exclude", []))]
    age, sex = _population(where, raw.get("population", {}))
    return CohortSpec(name, period, index, tuple(criteria), age, sex, where)


def load(path: str | Path) -> CohortSpec:
    """conf/cohorts/<name>.toml, validated."""
    return from_dict(read_toml(path, "cohort specification", ("cohort", "index", "include", "exclude", "population")),
                     str(path))

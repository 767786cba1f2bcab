"""A cohort specification (conf/cohorts/*.toml, or built in Python): study period, index event,
inclusion and exclusion criteria with windows relative to the index date, age and sex.
Validated when read: a bad value stops with an error naming the file and the key.

    [cohort]
    name = "antidiabetic_starters"
    period = ["2019-01-01", "2019-12-31"]
    [index]                      # the first matching event in the period
    category = "drug"            # a CIP13, or an ATC class ("A10B*": category drug_atc)
    codes = ["3400930000001"]    # a code, or a prefix pattern "E11*"
    source = "ER_PHA_F"          # optional: only the events of this table (acts: ER_CAM_F or T_MCOaaA)
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
    birth = "year"               # age from the birth year (default) or "month" (reads BEN_NAI_MOI)
    death = false                # follow-up ends at death (reads BEN_DCD_DTE); always at the
                                 # end of the study period and of the data

Birth month and death date are potentially identifying columns (a project is granted at most
one, usually the care dates a cohort needs): a spec reads them only when it says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pds_spark.cohort.events import CATEGORY_SOURCES
from pds_spark.errors import SettingsError
from pds_spark.settings import read_toml

CATEGORIES = tuple(CATEGORY_SOURCES)
# the shape of a code (or of a prefix before '*') in each category
CIP = re.compile(r"^[0-9]{1,13}\*?$")
ATC = re.compile(r"^[A-Z]([0-9]{1,2}([A-Z]{1,2}([0-9]{1,2})?)?)?\*?$")
ICD10 = re.compile(r"^([A-Z][0-9][0-9A-Z.+-]*\*?|[A-Z]\*)$")
CCAM = re.compile(r"^[A-Z]{1,4}([0-9]{1,3})?\*?$")
CODE_SHAPES = {"drug": (CIP, "a CIP13 (3400930000017) or a prefix"), "drug_atc": (ATC, "an ATC class (A10BA02, A10B*)"),
               "act": (CCAM, "a CCAM act (BLQP010) or a prefix"), "long_term_condition": (ICD10, "an ICD-10 code"),
               **{c: (ICD10, "an ICD-10 code (E11.9, E11*)") for c in CATEGORIES if c.startswith("diagnosis")}}
NAME = re.compile(r"^[A-Za-z0-9_]+$")
RULE_KEYS = {"category", "codes", "source", "window", "min_count"}


@dataclass(frozen=True)
class EventRule:
    """Events of a category whose code is one of `codes` (a trailing `*`: a prefix)."""

    category: str
    codes: tuple[str, ...]  # none: every event of the category (a death)
    source: str | None = None  # only the events of this table

    def describe(self) -> str:
        where = f" in {self.source}" if self.source else ""
        return f"{self.category} {' '.join(self.codes) or '(any)'}{where}".replace("  ", " ")


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
    birth: str = "year"  # the precision of the birth date used for the age: "year" or "month"
    death: bool = False  # follow-up ends at death

    @property
    def rules(self) -> tuple[EventRule, ...]:
        return (self.index, *(c.rule for c in self.criteria))

    @property
    def categories_read(self) -> tuple[str, ...]:
        """The event categories the cohort reads (an events layer reads only these)."""
        return tuple(sorted({r.category for r in self.rules}))

    @property
    def reach(self) -> tuple[date, date]:
        """The days whose events the cohort may read: the period widened by the criteria's windows."""
        low = min([0, *(c.window[0] for c in self.criteria)])
        high = max([0, *(c.window[1] for c in self.criteria)])
        return self.period[0] + timedelta(days=low), self.period[1] + timedelta(days=high)


def rule(where: str, key: str, raw: Any) -> EventRule:
    if not isinstance(raw, dict) or set(raw) - RULE_KEYS:
        raise SettingsError(where, key, "expects category, codes, source (and window, min_count for a criterion)")
    category = raw.get("category")
    if category not in CATEGORIES:
        raise SettingsError(where, f"{key}.category", f"{category!r} is not one of {', '.join(CATEGORIES)}")
    codes = raw.get("codes", [] if category == "death" else None)
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes) or (not codes and category != "death"):
        raise SettingsError(where, f"{key}.codes", "expected a non-empty list of codes or prefixes ('E11*')")
    if category == "drug" and codes and all(ATC.match(c) for c in codes):
        category = "drug_atc"  # drugs named by their ATC class
    shape = CODE_SHAPES.get(category)
    bad = [c for c in codes if shape is None or not shape[0].match(c)]
    if bad:
        what = shape[1] if shape else "no code (every death)"
        raise SettingsError(where, f"{key}.codes", f"{bad[0]!r} is not {what}")
    source = raw.get("source")
    if source is not None and source not in CATEGORY_SOURCES[category]:
        raise SettingsError(where, f"{key}.source", f"{source!r} is not a source of {category} events "
                                                    f"({', '.join(CATEGORY_SOURCES[category])})")
    return EventRule(category, tuple(codes), source)


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


def _population(where: str, raw: Any) -> tuple[tuple[int, int] | None, tuple[int, ...], str, bool]:
    if not isinstance(raw, dict) or set(raw) - {"age", "sex", "birth", "death"}:
        raise SettingsError(where, "population", "expects age = [min, max], sex = [1, 2], birth, death")
    birth, death = raw.get("birth", "year"), raw.get("death", False)
    if birth not in ("year", "month"):
        raise SettingsError(where, "population.birth", f"expected \"year\" or \"month\", got {birth!r}")
    if not isinstance(death, bool):
        raise SettingsError(where, "population.death", f"expected true or false, got {death!r}")
    age = raw.get("age")
    if age is not None and (not isinstance(age, list) or len(age) != 2 or not all(isinstance(a, int) for a in age)
                            or not 0 <= age[0] <= age[1] <= 130):
        raise SettingsError(where, "population.age", f"expected [min, max] years within 0..130, got {age!r}")
    sex = raw.get("sex", [])
    if not isinstance(sex, list) or not set(sex) <= {1, 2}:
        raise SettingsError(where, "population.sex", f"expected a list of 1 (men) and 2 (women), got {sex!r}")
    return ((age[0], age[1]) if age else None), tuple(sex), birth, death


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
    age, sex, birth, death = _population(where, raw.get("population", {}))
    return CohortSpec(name, period, index, tuple(criteria), age, sex, where, birth, death)


@dataclass
class Cohort:
    """A spec built in Python (a notebook), validated as its TOML form is:

        spec = (Cohort("starters", "2019-01-01", "2019-12-31").index("drug", "A10B*")
                .exclude("drug", "A10A*", window=(-365, -1)).population(age=(40, 80)).spec())
    """

    name: str
    first_day: str
    last_day: str
    raw: dict = field(default_factory=dict)

    def _rule(self, category: str, codes: tuple[str, ...], source: str | None, **more: Any) -> dict:
        return {"category": category, "codes": list(codes), **({"source": source} if source else {}), **more}

    def index(self, category: str, *codes: str, source: str | None = None) -> Cohort:
        self.raw["index"] = self._rule(category, codes, source)
        return self

    def include(self, category: str, *codes: str, window: tuple[int, int], min_count: int = 1,
                source: str | None = None) -> Cohort:
        self.raw.setdefault("include", []).append(
            self._rule(category, codes, source, window=list(window), min_count=min_count))
        return self

    def exclude(self, category: str, *codes: str, window: tuple[int, int], source: str | None = None) -> Cohort:
        self.raw.setdefault("exclude", []).append(self._rule(category, codes, source, window=list(window)))
        return self

    def population(self, age: tuple[int, int] | None = None, sex: tuple[int, ...] = (), birth: str = "year",
                   death: bool = False) -> Cohort:
        self.raw["population"] = {**({"age": list(age)} if age else {}), **({"sex": list(sex)} if sex else {}),
                                  "birth": birth, "death": death}
        return self

    def spec(self) -> CohortSpec:
        return from_dict({"cohort": {"name": self.name, "period": [self.first_day, self.last_day]}, **self.raw})


def load(path: str | Path) -> CohortSpec:
    """conf/cohorts/<name>.toml, validated."""
    return from_dict(read_toml(path, "cohort specification", ("cohort", "index", "include", "exclude", "population")),
                     str(path))

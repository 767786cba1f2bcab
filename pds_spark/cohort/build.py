"""A cohort from care events and a specification: the index date of each patient, the
criteria applied in turn, and the attrition flowchart (patients left after each step)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pds_spark.cohort.spec import CohortSpec, Criterion, EventRule

COHORT_COLUMNS = ("patient", "index_date", "follow_up_end", "age", "sex")
POPULATION_COLUMNS = {"year": ("birth_year",), "month": ("birth",)}  # the patients' columns each precision reads


@dataclass(frozen=True)
class Step:
    number: int
    description: str
    patients: int


def matches(rule: EventRule) -> Column:
    """Events of the rule's category ('diagnosis': any role), from its source when it names one,
    whose code is listed or prefixed (no code: any)."""
    category = (F.col("category").startswith("diagnosis") if rule.category == "diagnosis"
                else F.col("category") == rule.category)
    if rule.source:
        category = category & (F.col("source") == rule.source)
    exact = [c for c in rule.codes if not c.endswith("*")]
    tests = [F.col("code").isin(exact)] if exact else []
    tests += [F.col("code").startswith(c[:-1]) for c in rule.codes if c.endswith("*")]
    return category & reduce(lambda a, b: a | b, tests) if tests else category


def index_dates(events: DataFrame, spec: CohortSpec) -> DataFrame:
    """(`patient`, `index_date`): each patient's first index event inside the study period."""
    first, last = spec.period
    inside = events.where(matches(spec.index) & F.col("start").between(F.lit(first), F.lit(last)))
    return inside.groupBy("patient").agg(F.min("start").alias("index_date"))


def apply_criterion(cohort: DataFrame, events: DataFrame, criterion: Criterion) -> DataFrame:
    """The cohort's patients who meet the criterion (at least `min_count` events in the
    window, or none for an exclusion)."""
    low, high = criterion.window
    found = (events.where(matches(criterion.rule)).select("patient", "start")
             .join(cohort.select("patient", "index_date"), "patient")
             .where(F.datediff("start", "index_date").between(low, high))
             .groupBy("patient").count())
    if criterion.include:
        return cohort.join(found.where(F.col("count") >= criterion.min_count).select("patient"), "patient", "left_semi")
    return cohort.join(found.select("patient"), "patient", "left_anti")


def with_population(cohort: DataFrame, people: DataFrame, spec: CohortSpec, data_end: date | None = None) -> DataFrame:
    """Age at the index date (from the birth year, or month when the spec says so), sex, and the
    follow-up end: the end of the study period, of the data (`data_end`), or death if asked."""
    joined = cohort.join(people.select("patient", *POPULATION_COLUMNS[spec.birth], "sex",
                                       *(["death"] if spec.death else [])), "patient")
    age = (F.floor(F.months_between("index_date", "birth") / 12) if spec.birth == "month"
           else F.year("index_date") - F.col("birth_year")).cast("int")
    ends = [F.lit(spec.period[1]), *([F.lit(data_end)] if data_end else []),
            *([F.coalesce(F.col("death"), F.lit(spec.period[1]))] if spec.death else [])]
    end = F.least(*ends) if len(ends) > 1 else ends[0]
    return joined.select("patient", "index_date", end.alias("follow_up_end"), age.alias("age"), "sex")


def build_cohort(events: DataFrame, people: DataFrame, spec: CohortSpec,
                 data_end: date | None = None) -> tuple[DataFrame, list[Step]]:
    """The cohort (`COHORT_COLUMNS`) and its flowchart; one count a step (a number each). Each
    step's patients are checkpointed, so that the next step and its count start from them."""
    steps: list[Step] = []

    def step(frame: DataFrame, description: str) -> DataFrame:
        frame = frame.localCheckpoint()
        steps.append(Step(len(steps) + 1, description, frame.count()))
        return frame

    cohort = step(index_dates(events, spec), f"first {spec.index.describe()} in {spec.period[0]}..{spec.period[1]}")
    for criterion in spec.criteria:
        cohort = step(apply_criterion(cohort, events, criterion), criterion.describe())
    out = step(with_population(cohort, people, spec, data_end), "known in IR_BEN_R (birth, sex)")
    if spec.age is not None:
        out = step(out.where(F.col("age").between(*spec.age)), f"aged {spec.age[0]} to {spec.age[1]} at the index date")
    if spec.sex:
        out = step(out.where(F.col("sex").isin(list(spec.sex))),
                   "sex " + " or ".join({1: "men", 2: "women"}[s] for s in spec.sex))
    return out, steps

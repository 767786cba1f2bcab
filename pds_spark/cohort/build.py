"""A cohort from care events and a specification: the index date of each patient, the
criteria applied in turn, and the attrition flowchart (patients left after each step)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pds_spark.cohort.spec import CohortSpec, Criterion, EventRule

COHORT_COLUMNS = ("patient", "index_date", "follow_up_end", "age", "sex")


@dataclass(frozen=True)
class Step:
    number: int
    description: str
    patients: int


def matches(rule: EventRule) -> Column:
    """Events of the rule's category ('diagnosis': any role) whose code is listed or prefixed."""
    category = (F.col("category").startswith("diagnosis") if rule.category == "diagnosis"
                else F.col("category") == rule.category)
    exact = [c for c in rule.codes if not c.endswith("*")]
    tests = [F.col("code").isin(exact)] if exact else []
    tests += [F.col("code").startswith(c[:-1]) for c in rule.codes if c.endswith("*")]
    return category & reduce(lambda a, b: a | b, tests)


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


def with_population(cohort: DataFrame, people: DataFrame, spec: CohortSpec) -> DataFrame:
    """Age at the index date, sex and follow-up end (death or the end of the study period)."""
    joined = cohort.join(people, "patient")
    age = F.floor(F.months_between("index_date", "birth") / 12).cast("int")
    end = F.least(F.coalesce(F.col("death"), F.lit(spec.period[1])), F.lit(spec.period[1]))
    return joined.select("patient", "index_date", end.alias("follow_up_end"), age.alias("age"), "sex")


def build_cohort(events: DataFrame, people: DataFrame, spec: CohortSpec) -> tuple[DataFrame, list[Step]]:
    """The cohort (`COHORT_COLUMNS`) and its flowchart; one count a step (a number each)."""
    cohort = index_dates(events, spec)
    steps = [Step(1, f"first {spec.index.describe()} in {spec.period[0]}..{spec.period[1]}", cohort.count())]
    for criterion in spec.criteria:
        cohort = apply_criterion(cohort, events, criterion)
        steps.append(Step(len(steps) + 1, criterion.describe(), cohort.count()))
    out = with_population(cohort, people, spec)
    steps.append(Step(len(steps) + 1, "known in IR_BEN_R (birth, sex)", out.count()))
    if spec.age is not None:
        out = out.where(F.col("age").between(*spec.age))
        steps.append(Step(len(steps) + 1, f"aged {spec.age[0]} to {spec.age[1]} at the index date", out.count()))
    if spec.sex:
        out = out.where(F.col("sex").isin(list(spec.sex)))
        steps.append(Step(len(steps) + 1, "sex " + " or ".join({1: "men", 2: "women"}[s] for s in spec.sex),
                          out.count()))
    return out, steps

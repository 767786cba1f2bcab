"""What an analyst looks at next to a cohort or the events layer: grouped counts small enough
to show (a row a month, a code, an age band), computed in Spark."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from pds_spark.cohort.build import matches
from pds_spark.cohort.spec import EventRule

AGE_BANDS = [(0, 17), (18, 29), (30, 39), (40, 49), (50, 59), (60, 69), (70, 79), (80, 130)]


def _band_label(low: int, high: int) -> str:
    return f"{low}-{high}" if high < 130 else f"{low}+"


def age_band(age: Column) -> Column:
    out = F.lit(None).cast("string")
    for low, high in reversed(AGE_BANDS):
        out = F.when(age.between(low, high), F.lit(_band_label(low, high))).otherwise(out)
    return out


def age_sex(cohort: DataFrame) -> list[tuple[str, int, int]]:
    """(age band, men, women) of a cohort, a row a band, the youngest first."""
    counts = {(r.band, r.sex): r["count"]
              for r in cohort.groupBy(age_band(F.col("age")).alias("band"), "sex").count().collect()}
    labels = [_band_label(lo, hi) for lo, hi in AGE_BANDS]
    return [(b, counts.get((b, 1), 0), counts.get((b, 2), 0)) for b in labels]


def per_month(events: DataFrame) -> DataFrame:
    """Events per category and month (`month` as 'yyyy-MM'), in order."""
    return (events.groupBy("category", F.date_format("start", "yyyy-MM").alias("month")).count()
            .orderBy("category", "month"))


def top_codes(events: DataFrame, n: int = 10) -> DataFrame:
    """The `n` most frequent codes of each category, with their events and patients."""
    counts = events.groupBy("category", "code").agg(F.count(F.lit(1)).alias("events"),
                                                   F.countDistinct("patient").alias("patients"))
    rank = F.row_number().over(Window.partitionBy("category").orderBy(F.desc("events"), "code"))
    return counts.withColumn("rank", rank).where(F.col("rank") <= n).orderBy("category", "rank")


def time_to_first(cohort: DataFrame, events: DataFrame, outcome: EventRule) -> DataFrame:
    """(`patient`, `days`): days from the index date to the first outcome event after it and
    before the follow-up end; patients without one are left out."""
    found = (events.where(matches(outcome)).select("patient", "start")
             .join(cohort.select("patient", "index_date", "follow_up_end"), "patient")
             .where(F.col("start").between(F.date_add("index_date", 1), F.col("follow_up_end"))))
    return found.groupBy("patient").agg(F.min(F.datediff("start", "index_date")).alias("days"))


def binned(values: DataFrame, column: str, width: int) -> list[tuple[str, int]]:
    """A histogram of a whole-number column: (bin 'a-b', count), bins of `width`."""
    low = (F.floor(F.col(column) / width) * width).cast("int")
    rows = values.groupBy(low.alias("low")).count().orderBy("low").collect()  # a row a bin
    return [(f"{r.low}-{r.low + width - 1}", r["count"]) for r in rows]


def timeline(events: DataFrame, patient: str) -> DataFrame:
    """One patient's events in date order."""
    return events.where(F.col("patient") == patient).orderBy("start", "category", "code")

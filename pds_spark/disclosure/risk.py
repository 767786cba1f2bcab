"""Re-identification risk of a record-level extract, computed in Spark.

Over a table's quasi-identifiers (the columns an outsider may know: sex, birth year, place, and
the policy's potentially identifying categories), records fall into classes of equal values.
k-anonymity is the smallest class; a unique record is alone in its class; l-diversity is the
smallest number of distinct values of a sensitive column within a class. With `unit` (the
patient's pseudonym) a class counts people, not rows: thirty deliveries of one person are
one person. Two grouped aggregates; only one summary row reaches the driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pds_spark.sqltext import quoted

BANDS = ((1, 1, "1"), (2, 2, "2"), (3, 4, "3-4"), (5, 9, "5-9"), (10, 10**18, "10+"))


@dataclass(frozen=True)
class RiskLimits:
    min_k: int = 5  # every class holds at least this many records (people)
    max_unique_share: float = 0.0  # share of records alone in their class
    min_l: int = 2  # distinct sensitive values in every class (when a sensitive column is named)


@dataclass(frozen=True)
class Risk:
    table: str
    quasi: tuple[str, ...]
    sensitive: str | None
    unit: str | None
    records: int  # rows, or people summed over classes with a unit
    classes: int
    k: int | None  # None: no quasi-identifier in the table
    unique: int
    below_k: int  # records in classes smaller than the limit's k
    l_diversity: int | None
    sizes: dict[str, int] = field(default_factory=dict)  # records by class size band

    @property
    def unique_share(self) -> float:
        return self.unique / self.records if self.records else 0.0

    def failures(self, limits: RiskLimits) -> list[str]:
        """Why the extract may not be used as it is (empty: it passes)."""
        if self.k is None or not self.records:
            return []
        out = []
        who = "people" if self.unit else "records"
        if self.k < limits.min_k:
            out.append(f"{self.table}: k = {self.k} < {limits.min_k} on {', '.join(self.quasi)} "
                       f"({self.below_k:,} {who} in classes below {limits.min_k})")
        if self.unique_share > limits.max_unique_share:
            out.append(f"{self.table}: {self.unique:,} {who} ({self.unique_share:.1%}) unique on "
                       f"{', '.join(self.quasi)}, more than {limits.max_unique_share:.1%}")
        if self.sensitive and self.l_diversity is not None and self.l_diversity < limits.min_l:
            out.append(f"{self.table}: l = {self.l_diversity} < {limits.min_l} for {self.sensitive}")
        return out


def measure(df: DataFrame, quasi: Sequence[str], sensitive: str | None = None, unit: str | None = None,
            table: str = "", min_k: int = 5) -> Risk:
    """k, unique records, records below `min_k`, l-diversity and the class-size histogram."""
    quasi = tuple(quasi)
    if not quasi:
        return Risk(table, quasi, sensitive, unit, 0, 0, None, 0, 0, None)
    aggs = [F.count_distinct(F.col(quoted(unit))).alias("size") if unit else F.count(F.lit(1)).alias("size")]
    if sensitive:
        aggs.append(F.count_distinct(F.col(quoted(sensitive))).alias("l"))
    classes = df.groupBy(*[F.col(quoted(c)) for c in quasi]).agg(*aggs)
    size = F.col("size")
    summary = [F.count(F.lit(1)).alias("classes"), F.min(size).alias("k"), F.sum(size).alias("records"),
               F.count_if(size == 1).alias("unique"), F.sum(F.when(size < min_k, size).otherwise(0)).alias("below"),
               (F.min("l") if sensitive else F.lit(None)).alias("l")]
    summary += [F.sum(F.when(size.between(lo, hi), size).otherwise(0)).alias(f"band{i}")
                for i, (lo, hi, _) in enumerate(BANDS)]
    row = classes.agg(*summary).collect()[0]  # one row
    return Risk(table, quasi, sensitive, unit, int(row["records"] or 0), int(row["classes"]),
                None if row["k"] is None else int(row["k"]), int(row["unique"]), int(row["below"] or 0),
                None if row["l"] is None else int(row["l"]),
                {label: int(row[f"band{i}"] or 0) for i, (_, _, label) in enumerate(BANDS)})

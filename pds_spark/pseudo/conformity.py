"""Conformity validation: no direct identifier left in a dataset before its reuse.

All value checks run in one distributed pass: every column's values are stacked
into (column, value) pairs, counted per distinct value, joined with the name list
and summed per column. Only per-column counts reach the driver, never values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.catalog.names import insee_names
from pds_spark.frames import local_frame
from pds_spark.pseudo.policy import Policy

PSEUDONYM = r"^[0-9a-f]{64}$"
FULL_DATE = r"^([0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{4}|[0-9]{4}-[0-9]{2}-[0-9]{2}([ T].*)?|[0-9]{8})$"
NIR_SHAPE = r"^[1-8][0-9]{4}(2A|2B|[0-9]{2})[0-9]{8}$"
CHECKED_TYPES = (T.StringType, T.IntegralType, T.DecimalType, T.DateType, T.TimestampType, T.TimestampNTZType)


@dataclass(frozen=True)
class Finding:
    table: str
    column: str
    check: str
    count: int
    detail: str

    def line(self) -> str:
        return f"{self.table}.{self.column}: {self.check}: {self.count} value(s) - {self.detail}"


def nir_like(value: Column) -> Column:
    """True when the text is 13 digits (2A/2B allowed for Corsica) plus their valid key."""
    s = F.upper(F.regexp_replace(value, r"[\s.-]", ""))
    dept = F.substring(s, 6, 2)
    digits = F.concat(F.substring(s, 1, 5),
                      F.when(dept == "2A", F.lit("19")).when(dept == "2B", F.lit("18")).otherwise(dept),
                      F.substring(s, 8, 6))
    key = F.lit(97) - F.pmod(digits.cast("decimal(13,0)"), F.lit(97))
    return F.coalesce(s.rlike(NIR_SHAPE) & (key == F.substring(s, 14, 2).cast("int")), F.lit(False))


@lru_cache(maxsize=4)
def _name_rows(names_dir: str, min_length: int, min_count: int) -> tuple[str, ...]:
    lists = insee_names(Path(names_dir))
    return tuple(sorted({n.upper() for part in lists.values() for n, c in part
                         if c >= min_count and len(n) >= min_length}))


def name_frame(spark: SparkSession, names_dir: Path, policy: Policy) -> DataFrame:
    """INSEE first names and surnames (upper case) as a one-column frame `name`."""
    c = policy.conformity
    names = _name_rows(str(names_dir), c.name_min_length, c.name_min_count)
    return local_frame(spark, [(n,) for n in names], "name string")


def _value_stats(df: DataFrame, names: DataFrame, birth: set[str]) -> DataFrame:
    """Per column: non-null values, NIR-shaped, names, full dates (birth columns), non-pseudonyms."""
    checked = [f for f in df.schema.fields if isinstance(f.dataType, CHECKED_TYPES)]
    if not checked:
        return df.sparkSession.createDataFrame([], "column string, total long, nir long, name long, "
                                                   "full_date long, not_pseudonym long, max_length int")
    pairs = df.select(F.inline(F.array(*[
        F.struct(F.lit(f.name).alias("column"), F.col(f"`{f.name}`").cast("string").alias("value"))
        for f in checked]))).where(F.col("value").isNotNull())
    distinct = pairs.groupBy("column", "value").count()
    joined = distinct.join(F.broadcast(names), F.upper(F.trim(F.col("value"))) == F.col("name"), "left")
    birth_col = F.col("column").isin(*birth) if birth else F.lit(False)
    n = F.col("count")
    zero = F.lit(0).cast("long")
    return joined.groupBy("column").agg(
        F.sum(n).alias("total"),
        F.sum(F.when(nir_like(F.col("value")), n).otherwise(zero)).alias("nir"),
        F.sum(F.when(F.col("name").isNotNull(), n).otherwise(zero)).alias("name"),
        F.sum(F.when(birth_col & F.trim(F.col("value")).rlike(FULL_DATE), n).otherwise(zero)).alias("full_date"),
        F.sum(F.when(~F.col("value").rlike(PSEUDONYM), n).otherwise(zero)).alias("not_pseudonym"),
        F.max(F.length("value")).alias("max_length"))


def findings(df: DataFrame, table: str, policy: Policy, names: DataFrame,
             allowed_quasi: Iterable[str] = ()) -> list[Finding]:
    """Everything in `df` that a released dataset must not hold (counts, never values)."""
    c = policy.conformity
    columns = df.columns
    birth = {col for col in columns if c.is_birth_column(col)}
    out: list[Finding] = []
    stats = {r["column"]: r for r in _value_stats(df, names, birth).collect()}  # one row per column

    for col in columns:
        s = stats.get(col)
        total = s["total"] if s else 0
        rule = policy.rule_for(table, col)
        if rule is not None and rule.action == "drop":
            out.append(Finding(table, col, "identifier not removed", total,
                               "the policy drops this column"))
        elif rule is not None and rule.action == "pseudonym" and s and s["not_pseudonym"]:
            out.append(Finding(table, col, "identifier not pseudonymised", s["not_pseudonym"],
                               f"values that are not HMAC-SHA256 pseudonyms (key '{rule.key}')"))
        elif rule is not None and rule.action == "coarsen" and rule.to == "department" and s and s["max_length"] > 3:
            out.append(Finding(table, col, "commune not coarsened", total, "the policy keeps the department only"))
        if not s:
            continue
        if s["nir"]:
            out.append(Finding(table, col, "NIR-shaped values", s["nir"],
                               "13 digits and a valid key: a social security number in clear"))
        if s["name"] and s["name"] >= c.name_share * total:
            out.append(Finding(table, col, "names", s["name"],
                               f"{s['name'] / total:.0%} of the values are first names or surnames"))
        if s["full_date"]:
            out.append(Finding(table, col, "full birth date", s["full_date"],
                               "a birth date with its day, where only year-month is allowed"))

    allowed = set(allowed_quasi)
    present = [col for col in columns if not _coarse_enough(policy.rule_for(table, col), stats.get(col))]
    for category, cols in sorted(policy.quasi_categories(present).items()):
        if category not in allowed:
            out.append(Finding(table, ",".join(cols), "quasi-identifier not granted",
                               sum(stats[x]["total"] for x in cols if x in stats),
                               f"category '{category}' is not in the project's grant"
                               f" ({', '.join(sorted(allowed)) or 'none granted'})"))
    return out


def _coarse_enough(rule, stats) -> bool:
    """A column coarsened beyond its quasi-identifier (commune to department, date to year)."""
    if rule is None or rule.action != "coarsen" or stats is None:
        return False
    return stats["max_length"] <= {"department": 3, "year": 4}.get(rule.to, 0)

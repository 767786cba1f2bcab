"""Quality checks of one loaded table, each a small aggregate computed in Spark.

Only counts, rates and bounds reach the driver (one row per check), never rows.
Severity: an `error` fails the run (duplicate primary keys, orphan foreign keys),
a `warning` is reported (codes outside their list, a period that changed a lot).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.catalog import Catalogue
from pds_spark.catalog.model import Table
from pds_spark.sqltext import quoted

NUMERIC = (T.IntegralType, T.FractionalType, T.DateType, T.TimestampType)


@dataclass(frozen=True)
class Metric:
    table: str
    check: str  # rows | null_rate | min | max | primary_key | foreign_key | code_list | period_rows
    column: str = ""
    period: str = ""
    value: float | None = None
    passed: bool = True
    severity: str = "info"  # info | warning | error
    detail: str = ""


def profile(df: DataFrame, table: Table) -> list[Metric]:
    """Row count, null rate of every column, min and max of numbers and dates: one job."""
    cols = [f for f in df.schema.fields if not f.name.startswith("_")]
    exprs = ["count(1) AS `__rows`"]
    for i, f in enumerate(cols):
        exprs.append(f"count({quoted(f.name)}) AS `n{i}`")
        if isinstance(f.dataType, NUMERIC):
            exprs += [f"CAST(min({quoted(f.name)}) AS STRING) AS `lo{i}`",
                      f"CAST(max({quoted(f.name)}) AS STRING) AS `hi{i}`"]
    row = df.selectExpr(*exprs).first()
    rows = row["__rows"]
    out = [Metric(table.name, "rows", value=float(rows))]
    for i, f in enumerate(cols):
        out.append(Metric(table.name, "null_rate", f.name, value=(1 - row[f"n{i}"] / rows) if rows else 0.0))
        if isinstance(f.dataType, NUMERIC) and row[f"n{i}"]:
            out.append(Metric(table.name, "range", f.name, detail=f"{row[f'lo{i}']} .. {row[f'hi{i}']}"))
    return out


def primary_key(df: DataFrame, table: Table) -> list[Metric]:
    if not table.primary_key or not all(k in df.columns for k in table.primary_key):
        return []
    dup = (df.groupBy(*[F.col(quoted(k)) for k in table.primary_key]).count().where("count > 1")
           .agg(F.count(F.lit(1)).alias("keys"), F.sum("count").alias("rows")).first())
    keys = dup["keys"] or 0
    return [Metric(table.name, "primary_key", ",".join(table.primary_key), value=float(keys), passed=keys == 0,
                   severity="error" if keys else "info",
                   detail=f"{keys} key(s) held by {dup['rows'] or 0} rows" if keys else "unique")]


def foreign_key(child: DataFrame, table: Table, columns: list[str], parent: DataFrame, ref_table: str,
                ref_columns: list[str], where: str | None = None) -> Metric:
    """Child rows (with every key column set) that find no parent row."""
    keyed = child.where(" AND ".join(f"{quoted(c)} IS NOT NULL" for c in columns))
    if where:
        keyed = keyed.where(where)
    left = keyed.select(*[F.col(quoted(c)).alias(f"k{i}") for i, c in enumerate(columns)])
    right = (parent.select(*[F.col(quoted(c)).alias(f"k{i}") for i, c in enumerate(ref_columns)]).distinct()
             .withColumn("_found", F.lit(True)))
    keys = [f"k{i}" for i in range(len(columns))]
    stats = left.join(right, keys, "left").agg(F.count(F.lit(1)).alias("total"),
                                              F.count_if(F.col("_found").isNull()).alias("orphans")).first()
    total, orphans = stats["total"], stats["orphans"]
    return Metric(table.name, "foreign_key", ",".join(columns), value=float(orphans), passed=orphans == 0,
                  severity="error" if orphans else "info",
                  detail=f"{orphans} of {total} rows have no {ref_table}({', '.join(ref_columns)})"
                  + (f" [{where}]" if where else ""))


def code_lists(spark: SparkSession, df: DataFrame, table: Table, codes_of: Callable[[str], tuple[str, ...]]) -> list[Metric]:
    """Values outside their code list, for every field that names one: one job per table."""
    fields = []
    frames = []
    for f in table.fields:
        if not f.nomenclature or f.name not in df.columns or isinstance(f.spark_type, (T.DateType, T.TimestampType)):
            continue  # dates name the date dimension (IR_DTE_V), not a list of codes
        codes = codes_of(f.nomenclature)
        if not codes:
            continue
        numeric = isinstance(f.spark_type, (T.IntegralType, T.DecimalType))
        norm = [str(int(c)) if numeric and c.strip().lstrip("-").isdigit() else c.strip() for c in codes]
        frames.append((f.name, sorted(set(norm))))
        fields.append(f)
    if not fields:
        return []
    import pandas as pd

    codes_df = spark.createDataFrame(pd.DataFrame(
        [(name, c) for name, values in frames for c in values], columns=["column", "code"]), "column string, code string")
    pairs = df.select(F.inline(F.array(*[
        F.struct(F.lit(f.name).alias("column"), F.trim(F.col(quoted(f.name)).cast("string")).alias("value"))
        for f in fields]))).where("value IS NOT NULL")
    counted = pairs.groupBy("column", "value").count()
    unknown = counted.join(F.broadcast(codes_df), (counted.column == codes_df.column) & (counted.value == codes_df.code),
                           "left_anti")
    totals = {r.column: (r.total, r.unknown, r.distinct_unknown) for r in
              counted.join(unknown.select("column", "value", F.lit(True).alias("bad")), ["column", "value"], "left")
              .groupBy("column").agg(F.sum("count").alias("total"),
                                     F.sum(F.when(F.col("bad"), F.col("count")).otherwise(0)).alias("unknown"),
                                     F.count_if(F.col("bad")).alias("distinct_unknown")).collect()}
    out = []
    for f in fields:
        total, bad, distinct = totals.get(f.name, (0, 0, 0))
        out.append(Metric(table.name, "code_list", f.name, value=(bad / total) if total else 0.0, passed=bad == 0,
                          severity="warning" if bad else "info",
                          detail=f"{bad} of {total} values ({distinct} distinct) not in {f.nomenclature}"))
    return out


def period_rows(df: DataFrame, table: Table, previous: dict[str, float], max_change: float) -> list[Metric]:
    """Rows per period, against the previous run's count of the same period."""
    out = []
    for r in df.groupBy("_period").count().orderBy("_period").collect():  # one row per period
        before = previous.get(r._period)
        change = (r["count"] / before - 1) if before else None
        ok = change is None or abs(change) <= max_change
        out.append(Metric(table.name, "period_rows", "", r._period, float(r["count"]), ok,
                          "info" if ok else "warning",
                          "first load" if before is None else f"{change:+.1%} vs {int(before)} before"))
    return out


def check_table(spark: SparkSession, df: DataFrame, table: Table, catalogue: Catalogue,
                load_table: Callable[[str], DataFrame | None], extra_fks: list[dict],
                codes_of: Callable[[str], tuple[str, ...]], previous: dict[str, float],
                max_period_change: float = 0.5) -> list[Metric]:
    metrics = profile(df, table) + primary_key(df, table)
    fks = {(tuple(fk.fields), fk.table): (list(fk.ref_fields), None) for fk in table.foreign_keys}
    for fk in extra_fks:  # conf/ingest.toml adds rules, or narrows the catalogue's with `where`
        if fk["table"] == table.name:
            fks[(tuple(fk["columns"]), fk["references"])] = (fk["ref_columns"], fk.get("where"))
    fks = [(list(cols), ref, ref_cols, where) for (cols, ref), (ref_cols, where) in fks.items()]
    for columns, ref, ref_columns, where in fks:
        if not all(c in df.columns for c in columns):
            continue
        parent = load_table(catalogue.table(ref).name) if ref in catalogue.tables else None
        if parent is None:
            metrics.append(Metric(table.name, "foreign_key", ",".join(columns), passed=True, severity="info",
                                  detail=f"{ref} is not loaded: not checked"))
            continue
        metrics.append(foreign_key(df, table, columns, parent, ref, ref_columns, where))
    metrics += code_lists(spark, df, table, codes_of)
    metrics += period_rows(df, table, previous, max_period_change)
    return metrics

"""Quality checks of loaded tables, each a small aggregate computed in Spark.

Only counts, rates and bounds reach the driver (one row per check), never rows.
Severity: an `error` fails the run (duplicate primary keys, orphan foreign keys, a period
that lost more than a configured share of its rows); a `warning` is reported and never
fails it (codes outside their list, a period that grew a lot, drift).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.catalog import Catalogue
from pds_spark.catalog.codes import CodeList, normal_sql
from pds_spark.catalog.model import Field, Table
from pds_spark.frames import local_frame
from pds_spark.quality.rules import ForeignKeyRule
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


def profile(df: DataFrame, table: Table) -> tuple[list[Metric], dict[str, int]]:
    """Row count, null rate of every column, min and max of numbers and dates, and the rows of
    each period: one job (grouped by `_period`, one row a period reaches the driver)."""
    cols = [f for f in df.schema.fields if not f.name.startswith("_")]
    exprs = [F.count(F.lit(1)).alias("__rows")]
    for i, f in enumerate(cols):
        exprs.append(F.count(F.col(quoted(f.name))).alias(f"n{i}"))
        if isinstance(f.dataType, NUMERIC):
            exprs += [F.min(F.col(quoted(f.name))).alias(f"lo{i}"), F.max(F.col(quoted(f.name))).alias(f"hi{i}")]
    by_period = "_period" in df.columns
    grouped = (df.groupBy("_period") if by_period else df.groupBy()).agg(*exprs).collect()
    rows = sum(r["__rows"] for r in grouped)
    out = [Metric(table.name, "rows", value=float(rows))]
    for i, f in enumerate(cols):
        filled = sum(r[f"n{i}"] for r in grouped)
        out.append(Metric(table.name, "null_rate", f.name, value=(1 - filled / rows) if rows else 0.0))
        if isinstance(f.dataType, NUMERIC) and filled:
            lo = min(r[f"lo{i}"] for r in grouped if r[f"lo{i}"] is not None)
            hi = max(r[f"hi{i}"] for r in grouped if r[f"hi{i}"] is not None)
            out.append(Metric(table.name, "range", f.name, detail=f"{_text(lo)} .. {_text(hi)}"))
    return out, ({r["_period"]: r["__rows"] for r in grouped} if by_period else {})


def _text(value: object) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def primary_key(df: DataFrame, table: Table) -> list[Metric]:
    if not table.primary_key or not all(k in df.columns for k in table.primary_key):
        return []
    dup = (df.groupBy(*[F.col(quoted(k)) for k in table.primary_key]).count().where("count > 1")
           .agg(F.count(F.lit(1)).alias("keys"), F.sum("count").alias("rows")).collect()[0])
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
    # keys of two types (a code as text here, as a number there) are compared as text, trimmed
    same = [child.schema[c].dataType == parent.schema[r].dataType for c, r in zip(columns, ref_columns)]
    key = lambda c, same_type: F.col(quoted(c)) if same_type else F.trim(F.col(quoted(c)).cast("string"))  # noqa: E731
    left = keyed.select(*[key(c, s).alias(f"k{i}") for i, (c, s) in enumerate(zip(columns, same))])
    right = (parent.select(*[key(c, s).alias(f"k{i}") for i, (c, s) in enumerate(zip(ref_columns, same))])
             .distinct().withColumn("_found", F.lit(True)))
    keys = [f"k{i}" for i in range(len(columns))]
    stats = left.join(right, keys, "left").agg(F.count(F.lit(1)).alias("total"),
                                              F.count_if(F.col("_found").isNull()).alias("orphans")).collect()[0]
    total, orphans = stats["total"], stats["orphans"]
    return Metric(table.name, "foreign_key", ",".join(columns), value=float(orphans), passed=orphans == 0,
                  severity="error" if orphans else "info",
                  detail=f"{orphans} of {total} rows have no {ref_table}({', '.join(ref_columns)})"
                  + (f" [{where}]" if where else ""))


def code_lists(tables: Sequence[tuple[DataFrame, Table]], codes_of: Callable[[Field], CodeList | None]
               ) -> dict[str, list[Metric]]:
    """Values outside their code list, for every field of `tables` that names one: one job for
    them all (a job a table costs more to plan and schedule than to run on small tables). Both
    sides in the field's normal form (`pds_spark.catalog.codes`): like with like. Per table,
    one metric a field, in the fields' order."""
    checks: list[tuple[int, Field, int]] = []  # the table's position, the field, its list's index
    index: dict[tuple[str, str, str], int] = {}
    lists: list[CodeList] = []
    for position, (df, table) in enumerate(tables):
        for f in table.fields:
            if not f.nomenclature or f.name not in df.columns or isinstance(f.spark_type, (T.DateType, T.TimestampType)):
                continue  # dates name the date dimension (IR_DTE_V), not a list of codes
            found = codes_of(f)
            if found and found.codes:
                key = (found.reference, found.column, found.kind)
                if key not in index:
                    index[key] = len(lists)
                    lists.append(found)
                checks.append((position, f, index[key]))
    if not checks:
        return {}
    spark = tables[0][0].sparkSession
    by_kind: dict[str, list[tuple[int, str]]] = {}
    for i, cl in enumerate(lists):
        by_kind.setdefault(cl.kind, []).extend((i, c) for c in cl.codes)
    known = reduce(DataFrame.unionByName, [
        local_frame(spark, rows, "list int, code string").selectExpr("list", f"{normal_sql('code', kind)} AS code")
        for kind, rows in sorted(by_kind.items())]).where("code IS NOT NULL").distinct()
    fields: dict[int, list[Column]] = {}  # per table's position, its checks' (check, list, value)
    for i, (position, f, li) in enumerate(checks):
        fields.setdefault(position, []).append(F.struct(
            F.lit(i).alias("check"), F.lit(li).alias("list"),
            F.expr(normal_sql(f"CAST({quoted(f.name)} AS STRING)", lists[li].kind)).alias("value")))
    values = reduce(DataFrame.unionByName, [tables[p][0].select(F.inline(F.array(*structs)))
                                            for p, structs in fields.items()]).where("value IS NOT NULL")
    counted = values.groupBy("check", "list", "value").count()
    known = known.select(F.col("list").alias("_list"), F.col("code").alias("_code"), F.lit(True).alias("_known"))
    flagged = counted.join(F.broadcast(known), (counted.list == known._list) & (counted.value == known._code), "left")
    totals = {r.check: (r.total, r.unknown, r.distinct_unknown) for r in flagged.groupBy("check").agg(
        F.sum("count").alias("total"), F.sum(F.when(F.col("_known").isNull(), F.col("count")).otherwise(0)).alias("unknown"),
        F.count_if(F.col("_known").isNull()).alias("distinct_unknown")).collect()}  # one row a field
    out: dict[str, list[Metric]] = {}
    for i, (position, f, li) in enumerate(checks):
        total, bad, distinct = totals.get(i, (0, 0, 0))
        table = tables[position][1]
        out.setdefault(table.name, []).append(Metric(
            table.name, "code_list", f.name, value=(bad / total) if total else 0.0, passed=bad == 0,
            severity="warning" if bad else "info",
            detail=f"{bad} of {total} values ({distinct} distinct) not in {f.nomenclature} ({lists[li].column})"))
    return out


def period_rows(counts: dict[str, int], table: Table, previous: dict[str, float], max_loss: float,
                max_growth: float) -> list[Metric]:
    """Rows per period (from `profile`), against the previous check of the same period: a period
    that lost more than `max_loss` of its rows is an error, one that grew by more than
    `max_growth` a warning. A period gone since the previous check has lost all its rows."""
    out = []
    for period in sorted(set(counts) | {p for p, n in previous.items() if n}):
        rows, before = counts.get(period, 0), previous.get(period)
        change = (rows / before - 1) if before else None
        lost, grew = change is not None and -change > max_loss, change is not None and change > max_growth
        out.append(Metric(table.name, "period_rows", "", period, float(rows), not (lost or grew),
                          "error" if lost else "warning" if grew else "info",
                          "first load" if before is None else f"{change:+.1%} vs {int(before):,} before"))
    return out


def check_table(df: DataFrame, table: Table, catalogue: Catalogue,
                load_table: Callable[[str], DataFrame | None], extra_fks: Sequence[ForeignKeyRule],
                previous: dict[str, float],
                max_period_loss: float = 0.5, max_period_growth: float = 1.0) -> list[Metric]:
    """Profile, keys and rows per period of one table (its code lists: `code_lists`, with
    other tables)."""
    measured, counts = profile(df, table)
    metrics = measured + primary_key(df, table)
    rules: dict[tuple[tuple[str, ...], str], tuple[list[str], str | None]] = {
        (tuple(fk.fields), fk.table): (list(fk.ref_fields), None) for fk in table.foreign_keys}
    for rule in extra_fks:  # conf/quality.toml adds rules, or narrows the catalogue's with `where`
        if rule.table == table.name:
            rules[(rule.columns, rule.references)] = (list(rule.ref_columns), rule.where)
    fks = [(list(cols), ref, ref_cols, where) for (cols, ref), (ref_cols, where) in rules.items()]
    for columns, ref, ref_columns, where in fks:
        if not all(c in df.columns for c in columns):
            continue
        parent = load_table(catalogue.table(ref).name) if ref in catalogue.tables else None
        if parent is None:
            metrics.append(Metric(table.name, "foreign_key", ",".join(columns), passed=True, severity="info",
                                  detail=f"{ref} is not loaded: not checked"))
            continue
        metrics.append(foreign_key(df, table, columns, parent, ref, ref_columns, where))
    metrics += period_rows(counts, table, previous, max_period_loss, max_period_growth)
    return metrics

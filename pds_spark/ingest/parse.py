"""Text values -> typed values under the catalogue, with a reason for each value refused.

Pure DataFrame -> DataFrame functions: every field becomes its typed column and a
problem column (null when the value is good), all native Spark expressions.
Problems name the field and the kind of fault, never the value (it may be an identifier).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.catalog import CsvDialect, Field, Table


def _missing(raw: Column, table: Table) -> Column:
    return raw.isNull() | raw.isin(*table.missing_values) if table.missing_values else raw.isNull()


def parse_value(field: Field, raw: Column, dialect: CsvDialect) -> tuple[Column, Column]:
    """(typed value, failure kind or null) for one field's raw text (already not missing)."""
    t = field.spark_type
    failed = None
    if isinstance(t, T.StringType):
        value = raw
    elif isinstance(t, (T.IntegerType, T.LongType, T.DecimalType)):
        value = raw.try_cast(t)
        failed = F.when(value.isNull() | ~raw.rlike(r"^\s*[+-]?[0-9]+\s*$"), F.lit("not an integer"))
    elif isinstance(t, T.DoubleType):
        value = raw.try_cast(t)
        failed = F.when(value.isNull() | F.isnan(value), F.lit("not a number"))
    elif isinstance(t, T.BooleanType):
        value = (F.when(raw.isin(*field.true_values), F.lit(True))
                 .when(raw.isin(*field.false_values), F.lit(False)))
        failed = F.when(value.isNull(), F.lit("not a boolean"))
    elif isinstance(t, T.DateType):
        pattern = dialect.date_pattern_for(field.type, field.format, field.pattern)
        value = F.try_to_date(raw, pattern)
        failed = F.when(value.isNull(), F.lit(f"not a date ({pattern})"))
    elif isinstance(t, T.TimestampType):
        pattern = dialect.date_pattern_for(field.type, field.format, field.pattern)
        value = F.try_to_timestamp(raw, F.lit(pattern))
        failed = F.when(value.isNull(), F.lit(f"not a datetime ({pattern})"))
    else:
        raise ValueError(f"{field.name}: no parser for {t}")
    checks = []
    if field.value_regex:
        checks.append((~raw.rlike(field.value_regex), "does not match its format"))
    if field.length and isinstance(t, T.StringType):
        checks.append((F.length(raw) > field.length, f"longer than {field.length}"))
    for condition, kind in checks:
        failed = F.when(condition, F.lit(kind)) if failed is None else F.coalesce(failed, F.when(condition, F.lit(kind)))
    return value.cast(t), (failed if failed is not None else F.lit(None).cast("string"))


def typed(df: DataFrame, table: Table, dialect: CsvDialect, keep: list[str] | None = None) -> DataFrame:
    """String columns named as the table's fields -> typed columns plus `_problems`
    (array of 'FIELD: kind', empty when the row is good). Absent fields become null."""
    present = {c.upper(): c for c in df.columns}
    out, problems = [], []
    for f in table.fields:
        name = present.get(f.name.upper())
        if name is None:
            out.append(F.lit(None).cast(f.spark_type).alias(f.name))
            continue
        raw = F.col(f"`{name}`")
        missing = _missing(raw, table)
        value, failed = parse_value(f, raw, dialect)
        out.append(F.when(missing, F.lit(None).cast(f.spark_type)).otherwise(value).alias(f.name))
        problems.append(F.when(~missing & failed.isNotNull(), F.concat(F.lit(f"{f.name}: "), failed)))
    problem_list = F.filter(F.array(*problems), lambda p: p.isNotNull()) if problems else F.array().cast("array<string>")
    return df.select(*[F.col(k) for k in (keep or [])], *out, problem_list.alias("_problems"))

"""Schema-driven values: any catalogue field, respecting type, length, format, code list."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.catalog import Catalogue, Field, Table
from pds_spark.synth import codes as C
from pds_spark.synth.random import base36_sql, pick_sql, randint_sql, u_sql

MAX_LITERAL_CODES = 64
NULL_SHARE = 0.05


def _number_bounds(field: Field) -> tuple[float, int]:
    """Largest value and decimals a number field can hold (Oracle NUMBER(p,s))."""
    scale = field.scale if field.scale is not None else 2
    if field.precision is not None:
        digits = field.precision - field.scale  # digits before the decimal point (may be < 1)
        top = 10.0 ** digits - 10.0 ** -scale if digits > 0 else 10.0 ** digits * 0.9
    else:
        top = 10_000.0
    if field.maximum is not None:
        top = min(top, float(field.maximum))
    return min(top, 100_000.0), scale


def value_sql(field: Field, seed: int, salt: str, keys: list[str], year: str,
              catalogue: Catalogue, nullable: bool = True) -> str:
    """SQL for a typed value of one field of a generated row."""
    s = f"{salt}.{field.name}"
    spark_type = field.spark_type
    codes: tuple | list = ()
    if field.nomenclature:
        codes = C.fitting_codes(catalogue, field.nomenclature, field.type, field.length)
    if field.enum:
        codes = [c for c in field.enum if C.fits(c, field) or field.type != "string"]
    type_sql = spark_type.simpleString()
    u = u_sql(seed, s, *keys)
    day = f"date_add(make_date({year}, 1, 1), CAST({randint_sql(seed, s, 0, 364, *keys)} AS INT))"

    if codes and isinstance(spark_type, (T.StringType, T.IntegerType, T.LongType)):
        v = pick_sql(seed, s, C.sample(codes, seed, s, MAX_LITERAL_CODES), *keys)
    elif field.value_regex and field.type == "yearmonth":
        v = f"format_string('%04d%02d', {year}, {randint_sql(seed, s, 1, 12, *keys)})"
    elif field.value_regex and field.type == "date":  # month only
        v = f"format_string('%02d', {randint_sql(seed, s, 1, 12, *keys)})"
    elif field.type == "year":
        v = year
    elif isinstance(spark_type, T.StringType):
        v = base36_sql(seed, s, field.length or 8, *keys)
    elif isinstance(spark_type, (T.IntegerType, T.LongType, T.DecimalType)):
        digits = min(field.length or 6, 9)
        lo = int(field.minimum) if field.minimum is not None else 0
        hi = int(field.maximum) if field.maximum is not None else 10 ** digits - 1
        v = randint_sql(seed, s, lo, max(lo, hi), *keys)
    elif isinstance(spark_type, T.DoubleType):
        top, scale = _number_bounds(field)
        v = f"round({u} * {top!r}D, {scale})"
    elif isinstance(spark_type, T.BooleanType):
        v = f"({u} < 0.5D)"
    elif isinstance(spark_type, T.DateType):
        v = day
    elif isinstance(spark_type, T.TimestampType):
        v = f"timestamp_seconds(unix_timestamp(CAST({day} AS TIMESTAMP)) + {randint_sql(seed, s + '.t', 0, 86399, *keys)})"
    else:
        raise ValueError(f"no generator for {field.name} ({spark_type})")
    if nullable and not field.required:
        v = f"CASE WHEN {u_sql(seed, s + '.null', *keys)} < {NULL_SHARE!r}D THEN NULL ELSE {v} END"
    return f"CAST({v} AS {type_sql})"


def complete(df: DataFrame, table: Table, seed: int, keys: list[str], year: str,
             catalogue: Catalogue, default_year: int = 2020) -> DataFrame:
    """Add every catalogue column `df` lacks, then select the table's columns in order."""
    year_sql = f"coalesce({year}, {default_year})"
    have = {c.upper() for c in df.columns}
    no_nulls = {c.upper() for c in table.primary_key}
    for fk in table.foreign_keys:
        no_nulls.update(c.upper() for c in fk.fields)
    out = []
    for f in table.fields:
        if f.name.upper() in have and isinstance(f.spark_type, T.BooleanType) \
                and isinstance(df.schema[f.name].dataType, T.StringType):  # delivered text, e.g. '0'
            c = F.col(f.name)
            out.append(F.when(c.isin(*f.true_values), True).when(c.isin(*f.false_values), False).alias(f.name))
        elif f.name.upper() in have:
            out.append(F.col(f.name).cast(f.spark_type).alias(f.name))
        else:
            out.append(F.expr(value_sql(f, seed, table.name, keys, year_sql, catalogue,
                                        nullable=f.name.upper() not in no_nulls)).alias(f.name))
    extra = [c for c in ("_year", "_sort", "_fault_key") if c in df.columns]
    return df.select(*out, *[F.col(c) for c in extra])


def generic_table(spark, table: Table, rows: int, seed: int, years: list[int | None],
                  catalogue: Catalogue) -> DataFrame:
    """`rows` schema-driven rows of any catalogue table, for each year given."""
    per_year = [spark.range(rows).select(F.col("id").alias("_sort"), F.lit(y).cast("int").alias("_year"))
                for y in years]
    df = per_year[0]
    for more in per_year[1:]:
        df = df.unionByName(more)
    df = df.withColumn("_fault_key", F.col("_sort") * 10_000 + F.coalesce(F.col("_year"), F.lit(0)))
    return complete(df, table, seed, ["_fault_key"], "_year", catalogue)

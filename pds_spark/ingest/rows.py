"""The rows a load writes, as pure `DataFrame -> DataFrame` functions over parsed lines."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.catalog.model import Table
from pds_spark.jvm import select_sql
from pds_spark.sqltext import quoted, sql_text

LINEAGE = [T.StructField("_source_file", T.StringType(), False),
           T.StructField("_delivery_id", T.StringType(), False),
           T.StructField("_loaded_at", T.TimestampType(), False),
           T.StructField("_period", T.StringType(), False)]


def target_schema(table: Table, identifiers: list[str]) -> T.StructType:
    """The catalogue's schema (key columns NOT NULL, pseudonyms as text) plus lineage."""
    fields = [T.StructField(f.name, T.StringType() if f.name in identifiers else f.spark_type,
                            not (f.required or f.name in table.primary_key)) for f in table.fields]
    return T.StructType(fields + LINEAGE)


def marked_rows(parsed: DataFrame, columns: list[str], delivery_id: str,
                computed: dict[str, str] | None = None) -> DataFrame:
    """The table's columns (`computed`: SQL text of some, e.g. pseudonyms) and lineage, in the
    parse's own projection; a refused row (`_bad`) has a null `_period`."""
    computed = computed or {}
    return select_sql(parsed, [
        *(computed.get(c, quoted(c)) for c in columns),
        "_source_file", f"{sql_text(delivery_id)} AS _delivery_id", "_loaded_at",
        "CASE WHEN _bad THEN NULL ELSE _period END AS _period"])


def refused_per_file(files: list[str]) -> Column:
    """An array, in the order of `files`, of each file's refused rows of `marked_rows`."""
    counts = ", ".join(f"count(CASE WHEN _period IS NULL AND _source_file = {sql_text(f)} THEN 1 END)"
                       for f in files)
    return F.expr(f"array({counts})").alias("refused")


def read_per_file(ids: list[int]) -> Column:
    """An array, in the order of `ids`, of each file's lines (`_file_id`)."""
    return F.expr("array(" + ", ".join(f"count(CASE WHEN _file_id = {i} THEN 1 END)" for i in ids) + ")").alias("read")


def quarantine_rows(refused: DataFrame, delivery_id: str, loaded_at: datetime) -> DataFrame:
    """Refused lines (`_source_file`, `_line`, `_period`, `_problems`, `_raw`) as the quarantine
    keeps them, `_raw` still in clear."""
    return refused.select("_source_file", F.col("_line").cast("long"), "_period",
                          F.lit(delivery_id).alias("_delivery_id"),
                          F.lit(loaded_at).cast("timestamp").alias("_loaded_at"),
                          F.col("_problems").alias("_reasons"), "_raw")

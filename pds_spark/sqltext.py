"""Spark SQL text: a string literal, a quoted name (for `selectExpr` and `spark.sql`), and
projections and reads of many texts in few JVM calls."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from pds_spark.jvm import java_strings


def sql_text(value: str) -> str:
    """A Spark SQL string literal (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quoted(name: str) -> str:
    """A column, table or path name between backquotes (backquotes in it doubled)."""
    return "`" + name.replace("`", "``") + "`"


def select_sql(df: DataFrame, exprs: list[str]) -> DataFrame:
    """`df.selectExpr(*exprs)` in two JVM calls however many expressions."""
    array = java_strings(df.sparkSession, exprs)
    return df.selectExpr(*exprs) if array is None else DataFrame(df._jdf.selectExpr(array), df.sparkSession)


def read_text(spark: SparkSession, paths: list[str], wholetext: bool = False) -> DataFrame:
    """`spark.read.text(paths, wholetext=...)` in few JVM calls however many paths."""
    array = java_strings(spark, paths)
    if array is None:
        return spark.read.text(paths, wholetext=wholetext)
    return DataFrame(spark.read.option("wholetext", wholetext)._jreader.text(array), spark)


def read_files(spark: SparkSession, paths: list[str]) -> DataFrame:
    """`spark.read.format("binaryFile").load(paths)` in few JVM calls: the files as Spark's file
    scans list them, their content read only if selected."""
    array = java_strings(spark, paths)
    reader = spark.read.format("binaryFile")
    return reader.load(paths) if array is None else DataFrame(reader._jreader.load(array), spark)

"""The linkage's edges: its inputs read from CSV, Parquet or Delta (the columns it compares
typed as their comparisons need), its links written as a Delta table."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.linkage.comparisons import LinkageError
from pds_spark.linkage.spec import LinkageSpec
from pds_spark.sqltext import quoted

DATE_FORMATS = ("yyyy-MM-dd", "dd/MM/yyyy", "yyyyMMdd")


def read_input(spark: SparkSession, path: Path) -> DataFrame:
    """A Delta table (a folder with _delta_log), Parquet (a file or folder of them) or a CSV
    file with a header (`;` or `,` between values, every value as text)."""
    path = Path(path)
    if not path.exists():
        raise LinkageError(f"{path}: no such file or folder")
    if (path / "_delta_log").is_dir():
        return spark.read.format("delta").load(str(path))
    if path.suffix == ".parquet" or (path.is_dir() and any(path.glob("*.parquet"))):
        return spark.read.parquet(str(path))
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8") as f:
            header = f.readline()
        sep = ";" if header.count(";") > header.count(",") else ","
        return spark.read.option("header", True).option("sep", sep).option("encoding", "UTF-8").csv(str(path))
    raise LinkageError(f"{path}: not a Delta table, Parquet or a .csv file")


def typed(df: DataFrame, spec: LinkageSpec) -> DataFrame:
    """The compared columns as their comparisons need them: dates (read from yyyy-MM-dd,
    dd/MM/yyyy or yyyyMMdd text), numbers; text trimmed, empty text as missing."""
    kinds = {c.column: c.kind for c in spec.comparisons}
    out = df
    for column in [c for c in spec.columns if c in df.columns]:  # a missing one: LinkageSpec.check_inputs
        dtype = df.schema[column].dataType
        col = F.col(quoted(column))
        if kinds.get(column) == "date" and isinstance(dtype, T.StringType):
            col = F.coalesce(*[F.try_to_timestamp(F.trim(col), F.lit(f)).cast("date") for f in DATE_FORMATS])
        elif kinds.get(column) == "numeric" and not isinstance(dtype, T.NumericType):
            col = F.trim(col.cast("string")).try_cast("double")
        elif isinstance(dtype, T.StringType):
            col = F.nullif(F.trim(col), F.lit(""))
        out = out.withColumn(column, col)
    return out


def write_links(links: DataFrame, path: Path) -> int:
    """The links as a Delta table at `path`, replaced in one commit; their count."""
    links.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(str(path))
    return links.sparkSession.read.format("delta").load(str(path)).count()  # from the commit's statistics

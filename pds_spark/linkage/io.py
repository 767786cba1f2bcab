"""The linkage's edges: its inputs read from CSV, Parquet or Delta (the columns it compares
typed as their comparisons need), its links written as a Delta table."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.linkage.comparisons import LinkageError
from pds_spark.linkage.spec import LinkageSpec
from pds_spark.pseudo.datasets import write_table
from pds_spark.sqltext import quoted

DATE_FORMATS = ("yyyy-MM-dd", "dd/MM/yyyy", "yyyyMMdd")
MONTH_FORMATS = (*DATE_FORMATS, "yyyy-MM", "yyyyMM", "MM/yyyy")


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


def _parsed(col: Column, formats: tuple[str, ...]) -> Column:
    return F.coalesce(*[F.try_to_timestamp(F.trim(col), F.lit(f)).cast("date") for f in formats])


def typed(df: DataFrame, spec: LinkageSpec, side: str) -> DataFrame:
    """The `side`'s columns renamed as the spec says, and the compared ones as their
    comparisons need them: dates (read from yyyy-MM-dd, dd/MM/yyyy or yyyyMMdd text), months (the
    first day of theirs, also from yyyy-MM, yyyyMM or MM/yyyy), numbers; text trimmed, empty text
    as missing."""
    renamed = dict(spec.rename_left if side == "left" else spec.rename_right)
    taken = [new for old, new in renamed.items() if old in df.columns and new in df.columns and new not in renamed]
    if taken:
        raise LinkageError(f"linkage {spec.name}: the {side} input already has a column {', '.join(taken)}")
    out = df.select(*[F.col(quoted(c)).alias(renamed.get(c, c)) for c in df.columns])
    kinds = {c.column: c.kind for c in spec.comparisons}
    for column in [c for c in spec.columns if c in out.columns]:  # a missing one: LinkageSpec.check_inputs
        dtype = out.schema[column].dataType
        col = F.col(quoted(column))
        if kinds.get(column) == "month":
            col = F.trunc(_parsed(col, MONTH_FORMATS) if isinstance(dtype, T.StringType) else col.cast("date"), "MM")
        elif kinds.get(column) == "date" and isinstance(dtype, T.StringType):
            col = _parsed(col, DATE_FORMATS)
        elif kinds.get(column) == "numeric" and not isinstance(dtype, T.NumericType):
            col = F.trim(col.cast("string")).try_cast("double")
        elif isinstance(dtype, T.StringType):
            col = F.nullif(F.trim(col), F.lit(""))
        out = out.withColumn(column, col)
    return out


def write_links(links: DataFrame, path: Path, properties: dict[str, str] | None = None) -> int:
    """The links as a Delta table at `path` with these table properties, replaced in one commit;
    their count."""
    write_table(links, Path(path).resolve(), properties or {})
    return links.sparkSession.read.format("delta").load(str(path)).count()  # from the commit's statistics

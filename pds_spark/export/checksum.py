"""Per-column checksums of what an export sends, computed by Spark on the source and by the
database on what arrived (`Dialect.checksum_query`), then compared.

A column's checksum is its non-null count and the sum, over its values, of a hash of the
value's canonical text (CRC-32, or the first 60 bits of the MD5 where the database has no
CRC-32: `dialects.FAMILIES`) (the same text on every side: dates as yyyy-MM-dd,
decimals with their scale, doubles rounded to 6 places, booleans 1/0, empty text as NULL).
Order does not matter; a lost, doubled or changed value changes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pds_spark.export.columns import Column
from pds_spark.export.dialects import MD5_PREFIX
from pds_spark.sqltext import quoted


def canonical(c: Column) -> SparkColumn:
    col = F.col(quoted(c.name))
    if c.kind == "text":
        return F.nullif(col, F.lit(""))
    if c.kind == "integer":
        return col.cast("string")
    if c.kind == "decimal":
        return col.cast(f"decimal({c.precision},{c.scale})").cast("string")
    if c.kind == "float":
        return col.cast("decimal(38,6)").cast("string")
    if c.kind == "date":
        return F.date_format(col, "yyyy-MM-dd")
    if c.kind == "timestamp":
        return F.date_format(col, "yyyy-MM-dd HH:mm:ss")
    if c.kind == "boolean":
        return F.when(col, F.lit("1")).when(~col, F.lit("0"))
    raise ValueError(c.kind)


def hashed(text: SparkColumn, family: str) -> SparkColumn:
    if family == "crc32":  # zlib's CRC-32, as PostgreSQL's crc32(bytea); a string casts to its UTF-8.
        # Summed as a long: exact up to 2^31 rows (beyond, Spark's ANSI sum fails, it never wraps)
        return F.crc32(text.cast("binary"))
    return F.conv(F.substring(F.md5(text), 1, MD5_PREFIX), 16, 10).cast("decimal(20,0)")


@dataclass(frozen=True)
class Checksums:
    rows: int
    columns: dict[str, tuple[int, int]]  # column -> (non-null values, sum of hashes)
    family: str = "md5"

    @classmethod
    def from_row(cls, values: Sequence, columns: Sequence[Column], family: str) -> Checksums:
        it = iter(values)
        rows = int(next(it))
        return cls(rows, {c.name: (int(next(it)), int(next(it) or 0)) for c in columns}, family)

    def __add__(self, other: Checksums) -> Checksums:
        """The checksums of two sets of rows together (counts and sums add up)."""
        return Checksums(self.rows + other.rows,
                         {k: (n + other.columns[k][0], s + other.columns[k][1]) for k, (n, s) in self.columns.items()},
                         self.family)

    def differences(self, other: Checksums) -> list[str]:
        """What differs, `self` being the source: counts and column names, never values."""
        if other.family != self.family:
            raise ValueError(f"checksums of two kinds ({self.family}, {other.family}) cannot be compared")
        out = [f"{other.rows:,} rows arrived, {self.rows:,} were sent"] if other.rows != self.rows else []
        for name, (count, total) in self.columns.items():
            got = other.columns.get(name)
            if got is None:
                out.append(f"{name}: missing")
            elif got[0] != count:
                out.append(f"{name}: {got[0]:,} values arrived, {count:,} were sent")
            elif got[1] != total:
                out.append(f"{name}: values differ (checksum)")
        return out

    def as_json(self) -> dict:
        return {"rows": self.rows, "family": self.family,
                "columns": {k: [n, str(s)] for k, (n, s) in self.columns.items()}}

    @classmethod
    def from_json(cls, data: dict) -> Checksums:
        return cls(int(data["rows"]), {k: (int(n), int(s)) for k, (n, s) in data["columns"].items()},
                   data.get("family", "md5"))


def _aggregates(columns: Sequence[Column], family: str) -> list[SparkColumn]:
    parts = [F.count(F.lit(1))]
    for c in columns:
        text = canonical(c)
        parts += [F.count(text), F.coalesce(F.sum(hashed(text, family)), F.lit(0))]
    return parts


def checksums(df: DataFrame, columns: Sequence[Column], family: str = "md5") -> Checksums:
    """The source's checksums: one aggregation over the frame."""
    row = df.agg(*_aggregates(columns, family)).first()
    assert row is not None  # an aggregation has one row
    return Checksums.from_row(list(row), columns, family)

"""Write generated tables as a delivery: one CSV file per table per year, header row,
the delivery's separator and date formats, injected faults and their manifest.

Lines are formatted by Spark and written in one job for all files (each file in one
task, rows in a fixed order), so two runs with the same seed give the same bytes.
"""

from __future__ import annotations

import csv
import gzip
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.catalog import CsvDialect, Field, Table
from pds_spark.jvm import select_sql
from pds_spark.synth.config import ROW_FAULTS, CorpusConfig
from pds_spark.synth.random import lit, u_sql

TABLES_AT_A_TIME = 4  # a small table's write is mostly planning, on the driver: overlap them

BAD_UTF8_MARK = "\u0001BAD-UTF8\u0001"
BAD_UTF8_BYTES = b"\xff\xfe"


@dataclass(frozen=True)
class DeliveryFile:
    file_id: int
    path: str  # relative to the delivery folder
    table: str
    year: int | None


def file_name(table: Table, year: int | None) -> str:
    """ER_PRS_F + 2019 -> ER_PRS_F_2019; T_MCOaaB + 2019 -> T_MCO19B; referentials as is."""
    if table.is_templated:
        return table.instance_name(year if year is not None else 2020, variant="01")
    return table.name if year is None else f"{table.name}_{year}"


def _folder(table: Table) -> str:
    return (table.product or "AUTRES").strip() or "AUTRES"


def text_sql(field: Field, column: str, dialect: CsvDialect) -> str:
    """SQL for a typed column as the text a delivery writes (null -> empty)."""
    t, c = field.spark_type, f"`{column}`"
    if isinstance(t, (T.DateType, T.TimestampType)):
        v = f"date_format({c}, {lit(dialect.date_pattern_for(field.type, field.format, field.pattern))})"
    elif isinstance(t, T.BooleanType):
        yes = "1" if "1" in field.true_values else field.true_values[0]  # SNDS writes 1/0
        no = "0" if "0" in field.false_values else field.false_values[0]
        v = f"CASE WHEN {c} THEN {lit(yes)} WHEN NOT {c} THEN {lit(no)} END"
    elif isinstance(t, T.DoubleType):
        v = f"CASE WHEN {c} IS NOT NULL THEN format_string('%.{field.scale if field.scale is not None else 2}f', {c}) END"
    else:
        v = f"CAST({c} AS STRING)"
    if isinstance(t, T.StringType):
        sep = lit(dialect.separator)
        v = (f"CASE WHEN contains({v}, {sep}) OR contains({v}, '\"') "
             f"THEN concat('\"', replace({v}, '\"', '\"\"'), '\"') ELSE {v} END")
    return f"coalesce({v}, '')"


def _fault_targets(table: Table) -> dict[str, int]:
    """Which column each row fault damages, where the table has one that fits."""
    targets: dict[str, int] = {}
    for i, f in enumerate(table.fields):
        t = f.spark_type
        if isinstance(t, (T.IntegerType, T.LongType, T.DoubleType)) and f.type != "year":
            targets.setdefault("bad_number", i)
        if isinstance(t, (T.DateType, T.TimestampType)):
            targets.setdefault("bad_date", i)
        if isinstance(t, T.StringType) and not f.value_regex:
            targets.setdefault("unescaped_quote", i)
            targets.setdefault("invalid_utf8", i)
            if f.length:
                targets.setdefault("over_length", i)
    return targets


def lines_of(df: DataFrame, table: Table, dialect: CsvDialect, cfg: CorpusConfig) -> DataFrame:
    """(_year, _sort, fault, line) for every row of a generated table."""
    sep = lit(dialect.separator)
    values = [text_sql(f, f.name, dialect) for f in table.fields]
    if cfg.fault_rate <= 0:
        return select_sql(df, ["_year", "_sort", "CAST(NULL AS STRING) AS fault",
                               f"concat_ws({sep}, {', '.join(values)}) AS line"])
    targets = _fault_targets(table)
    kinds = [k for k in ROW_FAULTS if k in targets or k in ("too_many_fields", "too_few_fields")]
    chosen = f"element_at(array({', '.join(lit(k) for k in kinds)}), " \
             f"CAST(floor({u_sql(cfg.seed, f'fault.kind.{table.name}', '_fault_key')} * {len(kinds)}) + 1 AS INT))"
    df = select_sql(df, ["*", f"CASE WHEN {u_sql(cfg.seed, f'fault.{table.name}', '_fault_key')} "
                              f"< {cfg.fault_rate!r}D THEN {chosen} END AS fault"])
    damage = {
        "bad_number": lambda v: "'12a'",
        "bad_date": lambda v: f"CASE WHEN {v} = '' THEN '99/99/9999' ELSE regexp_replace({v}, '[0-9]', '9') END",
        "unescaped_quote": lambda v: f"concat('\"', replace({v}, '\"', ''), 'X')",
        "invalid_utf8": lambda v: f"concat({v}, {lit(BAD_UTF8_MARK)})",
        "over_length": lambda v: lit("X" * ((table.fields[targets["over_length"]].length or 0) + 1)),
    }
    for kind, i in targets.items():
        values[i] = f"CASE WHEN fault = {lit(kind)} THEN {damage[kind](values[i])} ELSE {values[i]} END"
    line = (f"CASE WHEN fault = 'too_many_fields' THEN concat(concat_ws({sep}, {', '.join(values)}), {sep}, 'EXTRA') "
            f"WHEN fault = 'too_few_fields' THEN concat_ws({sep}, {', '.join(values[:-1])}) "
            f"ELSE concat_ws({sep}, {', '.join(values)}) END")
    return select_sql(df, ["_year", "_sort", "fault", f"{line} AS line"])


def write_delivery(spark: SparkSession, tables: list[tuple[Table, DataFrame | Callable[[], DataFrame]]],
                   out: Path, dialect: CsvDialect, cfg: CorpusConfig, years: dict[str, list[int | None]],
                   manifest_dir: Path, one_task: bool = False) -> list[DeliveryFile]:
    """Write every table's files under `out` (one Spark job per table, TABLES_AT_A_TIME at a
    time: a union of hundreds of wide plans costs more to plan than to run); returns the files written.
    With faults, their (file, line, kind, table) rows go to CSV parts under `manifest_dir`.
    `one_task`: each table written by one task, without a shuffle (small tables: 147 of 5 rows
    64 s -> 49-57 s)."""
    out.mkdir(parents=True, exist_ok=True)
    files: list[DeliveryFile] = []
    tmp = out.parent / (out.name + ".tmp-spark")
    shutil.rmtree(tmp, ignore_errors=True)
    # Wide projections: compiling each into one Java method costs more than it saves
    # (and the widest exceed the JVM's method size); expression code is still generated.
    wholestage = spark.conf.get("spark.sql.codegen.wholeStage")
    spark.conf.set("spark.sql.codegen.wholeStage", "false")

    def write(number: int, table: Table, df: DataFrame | Callable[[], DataFrame], mine: list[DeliveryFile]) -> None:
        # SQL text, not Column calls: a few JVM calls a table (a small table's write is mostly planning)
        lines = lines_of(df() if callable(df) else df, table, dialect, cfg)
        if mine[0].year is None:
            file_id = str(mine[0].file_id)
        else:
            file_id = "CASE " + " ".join(f"WHEN _year = {f.year} THEN {f.file_id}" for f in mine) + " END"
        header = lit(dialect.separator.join(table.column_names))
        headers = _values(spark, [f"{f.file_id}, CAST(-1 AS BIGINT), CAST(NULL AS STRING), {header}" for f in mine],
                          "file_id, _sort, fault, line")
        lines = select_sql(lines, [f"{file_id} AS file_id", "CAST(_sort AS BIGINT) AS _sort", "fault", "line"]) \
            .unionByName(headers).where("file_id IS NOT NULL")
        _write_table(spark, lines, tmp / str(number), manifest_dir / str(number), mine, cfg, one_task)

    jobs = []
    for number, (table, df) in enumerate(tables):
        mine = [DeliveryFile(len(files) + i, os.path.join(_folder(table), file_name(table, year) + ".csv"),
                             table.name, year) for i, year in enumerate(years[table.name])]
        files.extend(mine)
        jobs.append((number, table, df, mine))
    pool = ThreadPoolExecutor(max_workers=TABLES_AT_A_TIME)
    try:
        for future in [pool.submit(write, *job) for job in jobs]:
            future.result()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown()
        spark.conf.set("spark.sql.codegen.wholeStage", wholestage or "true")
    present = _move_parts(tmp, out, files)
    return [f for f in files if f.file_id in present]


def _write_table(spark: SparkSession, lines: DataFrame, tmp: Path, manifest: Path,
                 files: list[DeliveryFile], cfg: CorpusConfig, one_task: bool) -> None:
    n_parts = 0 if one_task else max(1, min(len(files), 4))
    if cfg.fault_rate <= 0:
        _write_text(lines, tmp, n_parts)
        return
    numbered = lines.withColumn(
        "line_no", F.row_number().over(Window.partitionBy("file_id").orderBy("_sort"))).persist()
    try:
        _write_text(numbered, tmp, n_parts)
        paths = _values(spark, [f"{f.file_id}, {lit(f.path)}, {lit(f.table)}" for f in files], "file_id, file, table")
        (numbered.where(F.col("fault").isNotNull()).join(F.broadcast(paths), "file_id")
         .select("file", "line_no", "fault", "table").coalesce(1)
         .write.mode("overwrite").option("header", True).csv(str(manifest)))
    finally:
        numbered.unpersist()


def _values(spark: SparkSession, rows: list[str], columns: str) -> DataFrame:
    """A small frame of literal rows (each SQL text, comma-separated values), in one JVM call."""
    return spark.sql("SELECT * FROM VALUES " + ", ".join(f"({r})" for r in rows) + f" AS t({columns})")


def _write_text(df: DataFrame, tmp: Path, n_parts: int) -> None:
    """A file's lines in order, one part a file: `n_parts` tasks, or 0: one task, no shuffle."""
    parts = df.coalesce(1) if n_parts == 0 else df.repartition(n_parts, "file_id")
    (parts.sortWithinPartitions("file_id", "_sort").select("file_id", "line")
     .write.partitionBy("file_id").option("compression", "none").text(str(tmp)))


def _move_parts(tmp: Path, out: Path, files: list[DeliveryFile]) -> set[int]:
    present = set()
    for f in files:
        parts = sorted(tmp.glob(f"*/file_id={f.file_id}/part-*"))
        if not parts:
            continue
        if len(parts) != 1:
            raise RuntimeError(f"{f.path}: expected one part file, got {len(parts)}")
        target = out / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(parts[0], target)
        present.add(f.file_id)
    shutil.rmtree(tmp, ignore_errors=True)
    return present


def read_manifest(manifest_dir: Path) -> list[dict]:
    rows: list[dict] = []
    for part in sorted(manifest_dir.glob("*/part-*.csv")):
        with part.open(encoding="utf-8", newline="") as fh:
            rows.extend(csv.DictReader(fh))
    return rows


def count_lines(path: Path) -> int:
    n, last = 0, b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (1 if last != b"\n" else 0)


def replace_marks(path: Path) -> None:
    """Turn the invalid-UTF-8 marks into real invalid bytes (streamed, in place)."""
    mark, tmp = BAD_UTF8_MARK.encode("utf-8"), path.with_suffix(path.suffix + ".tmp")
    with path.open("rb") as src, tmp.open("wb") as dst:
        for line in src:
            dst.write(line.replace(mark, BAD_UTF8_BYTES) if mark in line else line)
    os.replace(tmp, path)


def gzip_file(path: Path) -> Path:
    """Compress deterministically (no name, no time in the header) and remove the original."""
    target = path.with_name(path.name + ".gz")
    if path.stat().st_size == 0:  # an empty delivered file stays empty, as a failed transfer would
        os.replace(path, target)
        return target
    with path.open("rb") as src, target.open("wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    path.unlink()
    return target

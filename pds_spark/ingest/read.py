"""A delivery's files read as lines, in one scan, each with its file's id and values.

Two ways: a small table's files read whole and split at their newlines (many files share
a partition), a large table's as Spark splits any file. Numbered lines (`_line`, 1-based)
need one partition a file (`NUMBERED`): a line's number is its place in the partition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession

from pds_spark.errors import PdsError
from pds_spark.ingest.discover import DeliveryFile
from pds_spark.jvm import read_files, read_text, select_sql
from pds_spark.sqltext import sql_text

REPLACEMENT = "\ufffd"  # what decoding puts in place of an invalid byte
LINE_MASK = (1 << 33) - 1  # monotonically_increasing_id: partition << 33 | row in partition
DECODED_PATH = "regexp_replace(url_decode(replace(_metadata.file_path, '+', '%2B')), '^file:', '')"  # a local path
# dates by the java.time patterns alone, whatever the caller's session says: EXCEPTION raises
# on a date only the old parser reads ('2020-1-5'), LEGACY takes it (lenient): both refused here
PARSE = {"spark.sql.legacy.timeParserPolicy": "CORRECTED"}
ONE_SPLIT_A_PARTITION = {"spark.sql.files.openCostInBytes": str(1 << 50)}  # splits never share a partition
NUMBERED = {"spark.sql.files.maxPartitionBytes": str(1 << 50), **ONE_SPLIT_A_PARTITION, **PARSE}

Files = Sequence[tuple[int, DeliveryFile]]
Extra = dict[str, Callable[[DeliveryFile], object]]


def escape_glob(path: str) -> str:
    """Hadoop globbing reads []{}*? as patterns: escape them so any file name works."""
    return "".join("\\" + c if c in "[]{}*?\\" else c for c in path)


def file_lines(spark: SparkSession, files: Files, extra: Extra | None = None, whole: bool = False,
               data_only: bool = False, numbered: bool = True) -> DataFrame:
    """The lines of these files (`value`) with `_file_id` and `_line`, and one column per `extra`
    (its file's value); `data_only`: without their header line.

    `whole`: each file read as one text, split at its newlines. Else line by line: `NUMBERED`
    must be in force in `spark`, or, not `numbered` (no `_line`), `ONE_SPLIT_A_PARTITION` (a
    file's first line is then the first row of its split at byte 0).
    """
    if whole:
        return whole_file_lines(spark, files, extra, data_only)
    return split_file_lines(spark, files, extra, data_only, numbered)


def whole_file_lines(spark: SparkSession, files: Files, extra: Extra | None, data_only: bool) -> DataFrame:
    """A row a file, its lines numbered, then a row a line (a last empty line is none)."""
    paths = [escape_glob(str(f.path)) for _, f in files]
    # SQL text, not Column calls: one JVM round trip per expression however many files
    file_id = f"try_element_at({_sql_map((sql_text(str(f.path)), str(i)) for i, f in files)}, {DECODED_PATH})"
    text = "CASE WHEN endswith(value, '\\n') THEN substr(value, 1, length(value) - 1) ELSE value END"
    # splitting decodes the text, which turns an invalid byte into U+FFFD: in a file that is not
    # valid UTF-8, a U+FFFD is made an invalid byte again, so that its line is refused as such
    line = "regexp_replace(text, '\\r$', '')"
    lines = [f"transform(split({text}, '\\n'), (text, i) -> named_struct("
             f"'value', {v}, '_line', CAST(i + 1 AS BIGINT)))"
             for v in (line, f"replace({line}, {sql_text(REPLACEMENT)}, CAST(X'FF' AS STRING))")]
    numbered_text = f"CASE WHEN is_valid_utf8(value) THEN {lines[0]} ELSE {lines[1]} END"
    kept = f"filter({numbered_text}, x -> x._line > 1)" if data_only else numbered_text
    return select_sql(read_text(spark, paths, wholetext=True),
                      [f"{file_id} AS _file_id", *_columns(files, extra, file_id), f"inline({kept})"])


def split_file_lines(spark: SparkSession, files: Files, extra: Extra | None, data_only: bool,
                     numbered: bool) -> DataFrame:
    """A row a line, read as Spark splits files; a line finds its file by the path Spark's scan
    gives it, listed once by a scan that reads no file (not decoded a line: 2 s of CPU a million)."""
    paths = [escape_glob(str(f.path)) for _, f in files]
    scanned: dict[str, str] = dict(read_files(spark, paths).selectExpr(DECODED_PATH, "_metadata.file_path").collect())
    unlisted = [str(f.path) for _, f in files if str(f.path) not in scanned]
    if unlisted:
        raise PdsError(f"Spark's file listing does not give these files under their own path: {', '.join(unlisted)}")
    file_id = f"try_element_at({_sql_map((sql_text(scanned[str(f.path)]), str(i)) for i, f in files)}, " \
              "_metadata.file_path)"
    row = f"(monotonically_increasing_id() & {LINE_MASK})"  # the row's place in its partition, from 0
    order, header = (f"{row} + 1 AS _line", "_line = 1") if numbered else \
        (f"_metadata.file_block_start = 0 AND {row} = 0 AS _first", "_first")
    lines = read_text(spark, paths).selectExpr("value", f"{file_id} AS _file_id", order)
    if data_only:
        lines = lines.where(f"NOT ({header})")
    if not numbered:
        lines = lines.drop("_first")
    return select_sql(lines, ["*", *_columns(files, extra, "_file_id")]) if extra else lines


def _columns(files: Files, extra: Extra | None, file_id: str) -> list[str]:
    """One column per `extra`, its file's value: an array indexed by the file's id, not a map searched."""
    by_id = dict(files)

    def values(value_of: Callable[[DeliveryFile], object]) -> str:
        return ", ".join(_sql_value(value_of(by_id[i])) if i in by_id else "NULL" for i in range(max(by_id) + 1))

    return [f"try_element_at(array({values(value_of)}), {file_id} + 1) AS {name}"
            for name, value_of in (extra or {}).items()]


def _sql_value(value: object) -> str:
    if isinstance(value, datetime):
        return f"TIMESTAMP {sql_text(value.isoformat(sep=' '))}"
    return sql_text(value) if isinstance(value, str) else str(int(value))  # type: ignore[call-overload]


def _sql_map(pairs) -> str:
    return "map(" + ", ".join(f"{k}, {v}" for k, v in pairs) + ")"

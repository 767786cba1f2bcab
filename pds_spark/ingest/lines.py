"""Raw lines -> catalogue-typed rows, each row good or carrying its reasons.

The delivery is read as text and split here, not by a CSV parser, so that one
unbalanced quote cannot swallow the lines after it: every physical line is one row,
loaded or quarantined. Lines without a quote take a plain split; quoted lines a
quote-aware one. Pure DataFrame -> DataFrame functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyspark.sql import DataFrame

from pds_spark.catalog import CsvDialect, Table
from pds_spark.ingest.parse import field_sql, problems_sql, quoted, sql_text

REPLACEMENT = "\ufffd"  # what the UTF-8 decoder puts in place of an invalid byte


@dataclass(frozen=True)
class Layout:
    """Where each catalogue field sits in a file's lines (from its header)."""

    width: int  # fields per line
    positions: dict[str, int]  # catalogue field -> 0-based position; absent fields are null


def layout(table: Table, header: list[str], aliases: dict[str, tuple[str, ...]]) -> tuple[Layout | None, str | None]:
    """The layout of a header, or the reason it does not fit the catalogue (columns named)."""
    known = {f.name.upper(): f.name for f in table.fields}
    positions, unknown = {}, []
    for i, raw in enumerate(header):
        name = raw.strip().strip('"').upper()
        target = known.get(name)
        if target is None:
            target = next((known[a] for a in aliases.get(name, ()) if a in known), None)
        if target is None or target in positions:
            unknown.append(raw.strip() or f"(empty, column {i + 1})")
            continue
        positions[target] = i
    required = [f.name for f in table.fields
                if (f.required or f.name in table.primary_key) and f.name not in positions]
    problems = []
    if unknown:
        problems.append(f"columns not in the catalogue of {table.name}: {', '.join(unknown)}")
    if required:
        problems.append(f"required or key columns missing: {', '.join(required)}")
    return (None, "; ".join(problems)) if problems else (Layout(len(header), positions), None)


QUOTE_AWARE = '(?=(?:[^"]*"[^"]*")*[^"]*$)'  # a separator outside quotes
UNQUOTE = ("CASE WHEN startswith(x, '\"') AND endswith(x, '\"') AND length(x) >= 2 "
           "THEN replace(substr(x, 2, length(x) - 2), '\"\"', '\"') ELSE x END")


def _fields_sql(sep: str) -> str:
    """The fields of `value`: a plain split, or a quote-aware one for lines with a quote."""
    plain = f"split(value, {sql_text(re.escape(sep))}, -1)"
    quoted_split = f"split(value, {sql_text(re.escape(sep) + QUOTE_AWARE)}, -1)"
    return f"CASE WHEN instr(value, '\"') > 0 THEN transform({quoted_split}, x -> {UNQUOTE}) ELSE {plain} END"


def parse_lines(lines: DataFrame, table: Table, dialect: CsvDialect, lay: Layout,
                truncated_line: str | None = None, keep: tuple[str, ...] = ()) -> DataFrame:
    """Data lines (`value`, plus `keep` columns) -> typed catalogue columns + `_problems`.

    `_problems` is empty for a good row; otherwise it lists line-level reasons
    (encoding, quotes, field count) or one 'FIELD: kind' per refused value.
    `truncated_line` (SQL), when given, is true on the last line of a file without end of line.
    """
    kept = [quoted(k) for k in keep]
    staged = lines.selectExpr(*kept, "value AS _raw", f"{_fields_sql(dialect.separator)} AS _f",
                              f"coalesce({truncated_line or 'false'}, false) AS _truncated")
    line_problem = (
        f"CASE WHEN NOT is_valid_utf8(_raw) OR instr(_raw, {sql_text(REPLACEMENT)}) > 0 "
        "THEN 'line: invalid UTF-8' "
        "WHEN (length(_raw) - length(replace(_raw, '\"', ''))) % 2 = 1 THEN 'line: unbalanced quote' "
        f"WHEN size(_f) != {lay.width} THEN concat('line: ', CAST(size(_f) AS STRING), "
        f"{sql_text(f' fields, expected {lay.width}')}) END")
    out, problems = [], []
    for f in table.fields:
        pos = lay.positions.get(f.name)
        if pos is None:
            out.append(f"CAST(NULL AS {f.spark_type.simpleString()}) AS {quoted(f.name)}")
            if f.required:
                problems.append(sql_text(f"{f.name}: missing (required)"))
            continue
        column, found = field_sql(f, f"try_element_at(_f, {pos + 1})", table, dialect,
                                  required=f.required or f.name in table.primary_key)
        out.append(column)
        problems += found
    found = f"CASE WHEN ({line_problem}) IS NOT NULL THEN array({line_problem}) ELSE {problems_sql(problems)} END"
    # a last line without end of line is only a fault when fields are missing: then it was cut
    all_problems = (f"CASE WHEN _truncated AND size(_f) < {lay.width} THEN "
                    f"concat(array('line: truncated (last line without end of line)'), {found}) ELSE {found} END")
    return staged.selectExpr(*kept, "_raw", *out, f"{all_problems} AS _problems")

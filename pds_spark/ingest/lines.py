"""Raw lines -> catalogue-typed rows, each row good or carrying its reasons.

The delivery is read as text, so that one unbalanced quote cannot swallow the lines
after it: every physical line is one row, loaded or quarantined. Each line is parsed
by Spark's CSV parser (`from_csv`, PERMISSIVE), which converts integers and numbers
natively; dates, booleans and texts are converted and checked here. Only refused
lines are also split here (a plain split, or a quote-aware one for lines with a
quote) to name the field and the fault. Pure DataFrame -> DataFrame functions.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from pds_spark.catalog import CsvDialect, Field, Table
from pds_spark.ingest.parse import bad_sql, field_sql, parse_fields, present_sql, problems_sql
from pds_spark.jvm import select_sql
from pds_spark.sqltext import quoted, sql_text

# tests of the line (`_raw`, its bytes as delivered), shared by the decision (`_bad`) and the
# reasons (`_problems`); a U+FFFD written in valid UTF-8 is a character like another
VALID_UTF8 = "is_valid_utf8(_raw)"
# every byte under 0x80: ISO-8859-1 makes each byte one character, which UTF-8 writes back in
# one byte only under 0x80; the JVM's vectorised copies, not a walk a byte at a time (counting
# characters and validating UTF-8 cost 2.7 s of CPU a million lines of ER_PRS_F, this 1.0 s)
ASCII_BYTES = "octet_length(decode(CAST(_raw AS BINARY), 'ISO-8859-1')) = octet_length(_raw)"
UNBALANCED_QUOTE = "(contains(_raw, '\"') AND (octet_length(_raw) - octet_length(replace(_raw, '\"', ''))) % 2 = 1)"


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


def _fields_sql(sep: str, line: str = "_raw") -> str:
    """The fields of `line`: a plain split, or a quote-aware one for lines with a quote."""
    plain = f"split({line}, {sql_text(re.escape(sep))}, -1)"
    quote_aware = f"split({line}, {sql_text(re.escape(sep) + QUOTE_AWARE)}, -1)"
    return f"CASE WHEN contains({line}, '\"') THEN {quote_aware} ELSE {plain} END"


def _unquoted_sql(x: str) -> str:
    """A field of a line with quotes, its enclosing quotes removed and doubled quotes undone."""
    return (f"CASE WHEN startswith({x}, '\"') AND endswith({x}, '\"') AND length({x}) >= 2 "
            f"THEN replace(substr({x}, 2, length({x}) - 2), '\"\"', '\"') ELSE {x} END")


CSV_TYPES = (T.IntegerType, T.LongType, T.DoubleType)  # converted by the CSV parser itself
OTHER_DIGIT = sql_text("[\\p{Nd}&&[^0-9]]")  # another script's digit: Java's integer parser takes Arabic-Indic ones


def _date_pattern(f: Field, dialect: CsvDialect) -> str | None:
    return dialect.date_pattern_for(f.type, f.format, f.pattern) if isinstance(f.spark_type, T.DateType) else None


def _native_date_pattern(table: Table, dialect: CsvDialect) -> str | None:
    """The date pattern the CSV parser converts itself (the table's most common one): its
    formatter is strict, as the checks are ('2020-1-5', ' 2020-01-05', '2020-02-30' refused;
    a test compares both), and converting there spares a date parse and format a value."""
    patterns = Counter(p for f in table.fields if not f.value_regex and (p := _date_pattern(f, dialect)))
    return patterns.most_common(1)[0][0] if patterns else None


def _csv_schema(table: Table, lay: Layout, native: set[str]) -> str:
    """The CSV parser's schema for a layout: `_c<position>`, native types or text, `_corrupt`."""
    at = {pos: name for name, pos in lay.positions.items()}
    types = {f.name: f.spark_type for f in table.fields}
    columns = [f"_c{p} {types[at[p]].simpleString() if at.get(p) in native else 'string'}"
               for p in range(lay.width)]
    return ", ".join(columns + ["_corrupt string"])


def parse_lines(lines: DataFrame, table: Table, dialect: CsvDialect, lay: Layout,
                truncated_line: str | None = None, keep: tuple[str, ...] = (), explain: bool = True) -> DataFrame:
    """Data lines (`value`, plus `keep` columns) -> `keep`, `_raw`, typed catalogue columns,
    `_bad` and `_problems`.

    `_bad` is true when the row is refused; `_problems` lists line-level reasons
    (encoding, quotes, field count) or one 'FIELD: kind' per refused value, and is
    empty for a good row. `truncated_line` (SQL), when given, is true on the last line
    of a file without end of line. Without `explain`: `keep`, the typed columns and
    `_bad` alone, what writing the good rows needs: Spark analyses every expression of
    a plan, even those it then drops, and planning a small table's load costs more than
    running it. (A table whose empty field is a value, not a missing one, is split field
    by field and always has `_raw` and `_problems`.)
    """
    if "" not in table.missing_values:  # the CSV parser reads an empty field as null
        return _parse_split(lines, table, dialect, lay, truncated_line, keep)
    date_pattern = _native_date_pattern(table, dialect)
    native = {f.name for f in table.fields if f.name in lay.positions and not f.value_regex and (
        isinstance(f.spark_type, CSV_TYPES) or (date_pattern and _date_pattern(f, dialect) == date_pattern))}
    options = {"sep": dialect.separator, "quote": '"', "escape": '"', "mode": "PERMISSIVE",
               "columnNameOfCorruptRecord": "_corrupt", **({"dateFormat": date_pattern} if date_pattern else {})}
    options_sql = ", ".join(f"{sql_text(k)}, {sql_text(v)}" for k, v in options.items())
    staged = select_sql(lines, [*[quoted(k) for k in keep], "value AS _raw",
                                f"from_csv(value, {sql_text(_csv_schema(table, lay, native))}, "
                                f"map({options_sql})) AS _csv",
                                *([f"coalesce({truncated_line or 'false'}, false) AS _truncated"] if explain else [])])
    fields = _fields_sql(dialect.separator)  # inline only where `_f` (refused lines' fields) is not there yet
    columns, checks, reasons, other_digits = _typed_columns(table, dialect, lay, native, date_pattern)
    # the line itself, walked as few times as can be: a line of ASCII bytes is valid UTF-8 and
    # has no other script's digit
    beyond_ascii = [f"NOT {VALID_UTF8}"]
    if other_digits:  # only those lines are searched, and only those split
        beyond_ascii.append(f"(_raw RLIKE {OTHER_DIGIT} AND "
                            f"{_any_field_sql(fields, lay.width, set(other_digits), f'x RLIKE {OTHER_DIGIT}')})")
    line_checks = _line_checks()
    bad = (f"((NOT {ASCII_BYTES} AND ({' OR '.join(beyond_ascii)})) "
           f"OR {UNBALANCED_QUOTE} OR _csv._corrupt IS NOT NULL OR {bad_sql(checks)})")
    if not explain:
        return select_sql(staged, [*[quoted(k) for k in keep], *columns, f"{bad} AS _bad"])
    line_bad, line_problems = _line_problems(lay, line_checks)
    field_problems = problems_sql(reasons, "true")
    problems = (f"CASE WHEN {line_bad} THEN {line_problems} WHEN size({field_problems}) > 0 THEN {field_problems} "
                f"ELSE array('line: not readable as CSV under the catalogue') END")
    # three steps, so that a refused line is split once (`_f`) for all its reasons, and a
    # good one never: Spark drops `_f` and `_problems` where only `_bad` is read
    typed = select_sql(staged, [*[quoted(k) for k in keep], "_raw", "_csv", "_truncated", *columns, f"{bad} AS _bad"])
    split = typed.selectExpr("*", f"CASE WHEN _bad THEN {fields} END AS _f")
    return select_sql(split, [*[quoted(k) for k in keep], "_raw", *[quoted(f.name) for f in table.fields], "_bad",
                              f"CASE WHEN _bad THEN {problems} ELSE CAST(array() AS array<string>) END AS _problems"])


def _typed_columns(table: Table, dialect: CsvDialect, lay: Layout, native: set[str], date_pattern: str | None
                   ) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]], list[int]]:
    """Each catalogue field's typed column (SQL); the checks that refuse a row and the reasons
    that name its faults ((SQL, reason) pairs); the positions searched for other scripts' digits."""
    required = {f.name for f in table.fields if f.required or f.name in table.primary_key}
    columns, checks, reasons, other_digits = [], [], [], []
    for f in table.fields:
        pos = lay.positions.get(f.name)
        if pos is None:
            columns.append(f"CAST(NULL AS {f.spark_type.simpleString()}) AS {quoted(f.name)}")
            if f.name in required:
                checks.append(("true", f"{f.name}: missing (required)"))
                reasons.append(checks[-1])
            continue
        parsed = f"_csv._c{pos}"
        if f.name not in native:
            column, found = field_sql(f, parsed, table, dialect, f.name in required)
            columns.append(column)
            checks += found
            reasons += found
            continue
        # the CSV parser marks a failed conversion `_corrupt`; name it from the text
        columns.append(f"{parsed} AS {quoted(f.name)}")
        text = present_sql(_split_field(pos), table)  # only read for refused lines
        kind = ("not a number" if isinstance(f.spark_type, T.DoubleType) else
                f"not a date ({date_pattern})" if isinstance(f.spark_type, T.DateType) else "not an integer")
        if isinstance(f.spark_type, T.DoubleType):
            checks.append((f"({parsed} IS NOT NULL AND isnan({parsed}))", f"{f.name}: {kind}"))
            reasons.append(checks[-1])
        reasons.append((f"({text} IS NOT NULL AND {parsed} IS NULL)", f"{f.name}: {kind}"))
        if not isinstance(f.spark_type, T.DateType):  # a date pattern takes ASCII digits only
            other_digits.append(pos)
            reasons.append((f"({parsed} IS NOT NULL AND {text} RLIKE {OTHER_DIGIT})", f"{f.name}: {kind}"))
        if f.name in required:
            checks.append((f"{parsed} IS NULL", f"{f.name}: missing (required)"))
            reasons.append((f"{text} IS NULL", f"{f.name}: missing (required)"))
    return columns, checks, reasons, other_digits


def _any_field_sql(fields: str, width: int, positions: set[int], condition: str) -> str:
    """True when `condition` (SQL over `x`, a field's text, quotes kept) holds for a field at
    one of `positions`. A higher-order function: Spark runs it outside generated code, which
    stays small (one inline test a field, 60 in `ER_PRS_F`, cost 0.9 s more a million lines,
    and as many expressions to plan), and it is only reached by the rare lines that need it."""
    mask = "array(" + ", ".join("true" if p in positions else "false" for p in range(width)) + ")"
    return f"exists(zip_with({fields}, {mask}, (x, m) -> coalesce(m, false) AND {condition}), b -> b)"


def _split_field(pos: int, fields: str = "_f") -> str:
    """The raw text of the field at `pos` (0-based), from the line split here (`fields`, SQL)."""
    x = f"try_element_at({fields}, {pos + 1})"
    return f"CASE WHEN contains(_raw, '\"') THEN {_unquoted_sql(x)} ELSE {x} END"


def _line_checks() -> list[tuple[str, str]]:
    return [(f"NOT {VALID_UTF8}", "line: invalid UTF-8"),
            (UNBALANCED_QUOTE, "line: unbalanced quote")]


def _line_problems(lay: Layout, line_checks: list[tuple[str, str]]) -> tuple[str, str]:
    """(SQL true when the line itself is refused, SQL array of its reasons), over `_raw`,
    `_f` (the line split here) and `_truncated`."""
    width = "size(_f)"
    line_problem = ("CASE " + " ".join(f"WHEN {c} THEN {sql_text(t)}" for c, t in line_checks)
                    + f" WHEN {width} != {lay.width} THEN concat('line: ', CAST({width} AS STRING), "
                    f"{sql_text(f' fields, expected {lay.width}')}) END")
    line_bad = "(" + " OR ".join([c for c, _ in line_checks] + [f"{width} != {lay.width}"]) + ")"
    # a last line without end of line is only a fault when fields are missing: then it was cut
    problems = (f"CASE WHEN _truncated AND {width} < {lay.width} THEN "
                f"array('line: truncated (last line without end of line)', {line_problem}) "
                f"ELSE array({line_problem}) END")
    return line_bad, problems


def _parse_split(lines: DataFrame, table: Table, dialect: CsvDialect, lay: Layout,
                 truncated_line: str | None, keep: tuple[str, ...]) -> DataFrame:
    """parse_lines for a table whose empty field is not a missing value: every field split here."""
    staged = select_sql(lines, [*[quoted(k) for k in keep], "value AS _raw",
                                f"{_fields_sql(dialect.separator, 'value')} AS _f",
                                f"coalesce({truncated_line or 'false'}, false) AS _truncated"])
    line_bad, line_problems = _line_problems(lay, _line_checks())
    raw_of = {name: _split_field(pos) for name, pos in lay.positions.items()}
    required = {f.name for f in table.fields if f.required or f.name in table.primary_key}
    parsed = parse_fields(staged, table, dialect, raw_of, [*keep, "_raw", "_f", "_truncated"], required,
                          line_bad, line_problems)
    return parsed.drop("_f", "_truncated")

"""Text values -> typed values under the catalogue, with a reason for each value refused.

Pure DataFrame -> DataFrame functions, all native Spark expressions. They are built
as SQL text and handed to Spark in `selectExpr`: a 120-column table then costs a few
calls to the JVM instead of tens of thousands (building Columns one call at a time took
seconds per table). Problems name the field and the kind of fault, never the value.

`_bad` (booleans only) decides; `_problems` is built for refused rows alone. `_bad` is
a CASE, not an OR: Spark splits a CASE's branches into small compiled methods (one
250-term OR made a method too large for the JVM to compile), and `_problems` is built
without a higher-order function (evaluated row by row outside generated code).
Together these made parsing three times faster. Ingestion parses lines with Spark's
CSV parser and these checks (`pds_spark.ingest.lines`); `typed` types the text columns
of small frames (tests, tables whose empty field is a value), where compiling the
expressions costs more than running them.
"""

from __future__ import annotations

from collections.abc import Set

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from pds_spark.catalog import CsvDialect, Field, Table
from pds_spark.jvm import select_sql
from pds_spark.sqltext import quoted, sql_text

ISO_DATE = "yyyy-MM-dd"
Check = tuple[str, str]  # (SQL true when the value is refused, the problem's text)


def present_sql(raw: str, table: Table) -> str:
    """The raw text, or null when it is one of the table's missing values."""
    values = list(table.missing_values)
    if not values:
        return raw
    if len(values) == 1:
        return f"nullif({raw}, {sql_text(values[0])})"
    return f"CASE WHEN {raw} IN ({', '.join(sql_text(v) for v in values)}) THEN NULL ELSE {raw} END"


def value_sql(field: Field, raw: str, dialect: CsvDialect) -> str:
    """The typed value of a field's raw text (null when the text does not convert)."""
    t = field.spark_type
    if isinstance(t, T.StringType):
        return raw
    if isinstance(t, (T.IntegerType, T.LongType, T.DecimalType, T.DoubleType)):
        return f"try_cast({raw} AS {t.simpleString()})"
    if isinstance(t, T.BooleanType):
        trues = ", ".join(sql_text(v) for v in field.true_values)
        falses = ", ".join(sql_text(v) for v in field.false_values)
        return f"CASE WHEN {raw} IN ({trues}) THEN true WHEN {raw} IN ({falses}) THEN false END"
    if isinstance(t, T.DateType) and dialect.date_pattern_for(field.type, field.format, field.pattern) == ISO_DATE:
        # Spark's own date cast is 4x faster than a pattern; it also takes '2020-1-5' or
        # '2020-01-05 x', so only a text that is the date's own writing is kept
        return f"CASE WHEN CAST(try_cast({raw} AS DATE) AS STRING) = {raw} THEN try_cast({raw} AS DATE) END"
    if isinstance(t, (T.DateType, T.TimestampType)):
        function = "try_to_date" if isinstance(t, T.DateType) else "try_to_timestamp"
        pattern = dialect.date_pattern_for(field.type, field.format, field.pattern)
        if pattern is None:
            raise ValueError(f"{field.name}: no date pattern for {field.type} {field.format!r}")
        return f"{function}({raw}, {sql_text(pattern)})"
    raise ValueError(f"{field.name}: no parser for {t}")


def checks_sql(field: Field, raw: str, value: str, dialect: CsvDialect) -> list[Check]:
    """What refuses a present value: its conversion failing (ANSI `try_cast` refuses
    '1.5' or '12a' as an integer), its format, its length. `raw` is not null."""
    t = field.spark_type
    pattern = dialect.date_pattern_for(field.type, field.format, field.pattern)
    checks: list[Check] = []
    if isinstance(t, (T.IntegerType, T.LongType)):
        checks.append((f"{value} IS NULL", "not an integer"))
    elif isinstance(t, T.DecimalType):  # a decimal cast takes '1.5' and other scripts' digits
        checks.append((f"({value} IS NULL OR NOT ({raw} RLIKE '^\\\\s*[+-]?[0-9]+\\\\s*$'))", "not an integer"))
    elif isinstance(t, T.DoubleType):
        checks.append((f"({value} IS NULL OR isnan({value}))", "not a number"))
    elif isinstance(t, T.BooleanType):
        checks.append((f"{value} IS NULL", "not a boolean"))
    elif isinstance(t, T.DateType):
        checks.append((f"{value} IS NULL", f"not a date ({pattern})"))
    elif isinstance(t, T.TimestampType):
        checks.append((f"{value} IS NULL", f"not a datetime ({pattern})"))
    if field.value_regex:
        checks.append((f"NOT ({raw} RLIKE {sql_text(field.value_regex)})", "does not match its format"))
    if field.length and isinstance(t, T.StringType):
        n = int(field.length)  # bytes first: counting characters walks the text
        checks.append((f"(octet_length({raw}) > {n} AND length({raw}) > {n})", f"longer than {field.length}"))
    return checks


def bad_sql(checks: list[Check]) -> str:
    """True when any check refuses the row. A CASE, not an OR: Spark splits its branches
    into small methods, and it stops at the first refusal."""
    if not checks:
        return "false"
    return "CASE " + " ".join(f"WHEN {c} THEN true" for c, _ in checks) + " ELSE false END"


def problems_sql(checks: list[Check], bad: str) -> str:
    """The texts of the checks that refuse the row, only computed when `bad` (else empty).

    concat_ws and split rather than filter(): a higher-order function is evaluated
    row by row outside generated code, which made parsing six times slower.
    """
    if not checks:
        return "CAST(array() AS array<string>)"
    texts = ", ".join(f"CASE WHEN {c} THEN {sql_text(t)} END" for c, t in checks)
    return (f"CASE WHEN {bad} THEN split(concat_ws(char(1), {texts}), char(1)) "
            "ELSE CAST(array() AS array<string>) END")


def field_sql(field: Field, text: str, table: Table, dialect: CsvDialect,
              required: bool) -> tuple[str, list[Check]]:
    """(typed column, checks naming the field) for a field whose raw text is `text` (SQL)."""
    raw = present_sql(text, table)
    value = f"CAST({value_sql(field, raw, dialect)} AS {field.spark_type.simpleString()})"
    checks = [(f"({raw} IS NOT NULL AND {c})", f"{field.name}: {kind}")
              for c, kind in checks_sql(field, raw, value, dialect)]
    if required:
        checks.append((f"{raw} IS NULL", f"{field.name}: missing (required)"))
    return f"{value} AS {quoted(field.name)}", checks


def parse_fields(df: DataFrame, table: Table, dialect: CsvDialect, raw_of: dict[str, str], keep: list[str],
                 required: Set[str] = frozenset(), line_bad: str | None = None,
                 line_problems: str | None = None) -> DataFrame:
    """`keep` columns + the table's typed fields + `_bad` + `_problems`, in one projection.

    `raw_of` gives each present field's raw text as SQL over `df`; absent fields are
    null. `line_bad` / `line_problems` (SQL over `keep`) are line-level refusals that
    replace the per-value problems when they apply.
    """
    columns, checks = [], []
    for f in table.fields:
        type_sql = f.spark_type.simpleString()
        if f.name not in raw_of:
            columns.append(f"CAST(NULL AS {type_sql}) AS {quoted(f.name)}")
            if f.name in required:
                checks.append(("true", f"{f.name}: missing (required)"))
            continue
        column, found = field_sql(f, raw_of[f.name], table, dialect, f.name in required)
        columns.append(column)
        checks += found
    # filter() runs outside generated code: slow on millions of rows, but nothing to
    # compile, which is what counts for the small frames typed here
    problems = (f"filter(array({', '.join(f'CASE WHEN {c} THEN {sql_text(t)} END' for c, t in checks)}), "
                "p -> p IS NOT NULL)" if checks else "CAST(array() AS array<string>)")
    if line_bad:
        problems = f"CASE WHEN {line_bad} THEN {line_problems} ELSE {problems} END"
    return select_sql(df, [*[quoted(k) for k in keep], *columns, f"{problems} AS _problems"]) \
        .selectExpr("*", "size(_problems) > 0 AS _bad")


def typed(df: DataFrame, table: Table, dialect: CsvDialect, keep: list[str] | None = None) -> DataFrame:
    """String columns named as the table's fields -> typed columns plus `_bad` and `_problems`
    (array of 'FIELD: kind', empty when the row is good). Absent fields become null."""
    present = {c.upper(): c for c in df.columns}
    raw_of = {f.name: quoted(present[f.name.upper()]) for f in table.fields if f.name.upper() in present}
    return parse_fields(df, table, dialect, raw_of, list(keep or []))

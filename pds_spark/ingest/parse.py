"""Text values -> typed values under the catalogue, with a reason for each value refused.

Pure DataFrame -> DataFrame functions, all native Spark expressions. They are built
as SQL text and handed to Spark in one `selectExpr`: a 120-column table then costs one
call to the JVM instead of tens of thousands (building Columns one call at a time took
seconds per table). Problems name the field and the kind of fault, never the value.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from pds_spark.catalog import CsvDialect, Field, Table


def sql_text(value: str) -> str:
    """A Spark SQL string literal (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def missing_sql(raw: str, table: Table) -> str:
    values = [v for v in table.missing_values]
    if not values:
        return f"({raw} IS NULL)"
    return f"({raw} IS NULL OR {raw} IN ({', '.join(sql_text(v) for v in values)}))"


def value_sql(field: Field, raw: str, dialect: CsvDialect) -> tuple[str, str | None]:
    """(typed value, failure kind or NULL) for one field's raw text (already not missing)."""
    t = field.spark_type
    type_sql = t.simpleString()
    failed = None
    if isinstance(t, T.StringType):
        value = raw
    elif isinstance(t, (T.IntegerType, T.LongType, T.DecimalType)):
        value = f"try_cast({raw} AS {type_sql})"
        failed = f"CASE WHEN {value} IS NULL OR NOT ({raw} RLIKE '^\\\\s*[+-]?[0-9]+\\\\s*$') THEN 'not an integer' END"
    elif isinstance(t, T.DoubleType):
        value = f"try_cast({raw} AS DOUBLE)"
        failed = f"CASE WHEN {value} IS NULL OR isnan({value}) THEN 'not a number' END"
    elif isinstance(t, T.BooleanType):
        trues = ", ".join(sql_text(v) for v in field.true_values)
        falses = ", ".join(sql_text(v) for v in field.false_values)
        value = f"CASE WHEN {raw} IN ({trues}) THEN true WHEN {raw} IN ({falses}) THEN false END"
        failed = f"CASE WHEN ({value}) IS NULL THEN 'not a boolean' END"
    elif isinstance(t, T.DateType):
        pattern = dialect.date_pattern_for(field.type, field.format, field.pattern)
        value = f"try_to_date({raw}, {sql_text(pattern)})"
        failed = f"CASE WHEN {value} IS NULL THEN {sql_text(f'not a date ({pattern})')} END"
    elif isinstance(t, T.TimestampType):
        pattern = dialect.date_pattern_for(field.type, field.format, field.pattern)
        value = f"try_to_timestamp({raw}, {sql_text(pattern)})"
        failed = f"CASE WHEN {value} IS NULL THEN {sql_text(f'not a datetime ({pattern})')} END"
    else:
        raise ValueError(f"{field.name}: no parser for {t}")
    checks = []
    if field.value_regex:
        checks.append((f"NOT ({raw} RLIKE {sql_text(field.value_regex)})", "does not match its format"))
    if field.length and isinstance(t, T.StringType):
        checks.append((f"length({raw}) > {int(field.length)}", f"longer than {field.length}"))
    parts = ([failed] if failed else []) + [f"CASE WHEN {c} THEN {sql_text(k)} END" for c, k in checks]
    failure = parts[0] if len(parts) == 1 else (f"coalesce({', '.join(parts)})" if parts else None)
    return f"CAST({value} AS {type_sql})", failure


def field_sql(field: Field, raw: str, table: Table, dialect: CsvDialect,
              required: bool = False) -> tuple[str, list[str]]:
    """(typed column expression, problem expressions) for one field read from `raw`."""
    missing = missing_sql(raw, table)
    value, failed = value_sql(field, raw, dialect)
    column = f"CASE WHEN {missing} THEN NULL ELSE {value} END AS {quoted(field.name)}"
    problems = []
    if failed:
        problems.append(f"CASE WHEN NOT {missing} AND ({failed}) IS NOT NULL "
                        f"THEN concat({sql_text(field.name + ': ')}, {failed}) END")
    if required:
        problems.append(f"CASE WHEN {missing} THEN {sql_text(field.name + ': missing (required)')} END")
    return column, problems


def problems_sql(problems: list[str]) -> str:
    if not problems:
        return "CAST(array() AS array<string>)"
    return f"filter(array({', '.join(problems)}), p -> p IS NOT NULL)"


def typed(df: DataFrame, table: Table, dialect: CsvDialect, keep: list[str] | None = None) -> DataFrame:
    """String columns named as the table's fields -> typed columns plus `_problems`
    (array of 'FIELD: kind', empty when the row is good). Absent fields become null."""
    present = {c.upper(): c for c in df.columns}
    out, problems = [], []
    for f in table.fields:
        name = present.get(f.name.upper())
        if name is None:
            out.append(f"CAST(NULL AS {f.spark_type.simpleString()}) AS {quoted(f.name)}")
            continue
        column, found = field_sql(f, quoted(name), table, dialect)
        out.append(column)
        problems += found
    return df.selectExpr(*[quoted(k) for k in (keep or [])], *out, f"{problems_sql(problems)} AS _problems")

"""Spark SQL text: a string literal and a quoted name (for `selectExpr` and `spark.sql`)."""

from __future__ import annotations


def sql_text(value: str) -> str:
    """A Spark SQL string literal (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quoted(name: str) -> str:
    """A column, table or path name between backquotes (backquotes in it doubled)."""
    return "`" + name.replace("`", "``") + "`"


def in_list(column: str, values) -> str:
    """`column IN ('a', 'b')`, the values as SQL string literals."""
    return f"{column} IN (" + ", ".join(sql_text(v) for v in values) + ")"

"""Deterministic randomness as Spark SQL expressions.

Every value is a hash of (seed, a salt naming what is drawn, the row's own ids), so a
corpus depends only on the seed and the sizes, never on partitioning or task order.
Expressions are built as SQL text and parsed once per column (`F.expr`): building
them call by call through the Python-JVM bridge costs more than generating the data.
Keys and bounds are SQL expressions (column names, or any expression).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from pyspark.sql import Column
from pyspark.sql import functions as F

TWO_53 = 2 ** 53


def lit(value) -> str:
    """A SQL literal for a Python value."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}L" if abs(value) > 2 ** 31 - 1 else str(value)
    if isinstance(value, float):
        return f"{value!r}D"
    if isinstance(value, datetime):
        return f"TIMESTAMP'{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, Decimal):
        return f"{value}BD"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def u_sql(seed: int, salt: str, *keys: str) -> str:
    """SQL for a double in [0, 1), fixed by seed, salt and keys."""
    return f"(pmod(xxhash64({seed}, {lit(salt)}, {', '.join(keys)}), {TWO_53}L) / {float(TWO_53)!r}D)"


def randint_sql(seed: int, salt: str, lo, hi, *keys: str) -> str:
    """SQL for a long in [lo, hi] (bounds are numbers or SQL expressions)."""
    return f"CAST(({lo}) + floor({u_sql(seed, salt, *keys)} * (({hi}) - ({lo}) + 1)) AS BIGINT)"


def pick_sql(seed: int, salt: str, values: Sequence, *keys: str) -> str:
    if not values:
        raise ValueError(f"nothing to pick from for {salt}")
    array = ", ".join(lit(v) for v in values)
    return f"element_at(array({array}), CAST({randint_sql(seed, salt, 1, len(values), *keys)} AS INT))"


def uniform(seed: int, salt: str, *keys: str) -> Column:
    return F.expr(u_sql(seed, salt, *keys))


def randint(seed: int, salt: str, lo, hi, *keys: str) -> Column:
    return F.expr(randint_sql(seed, salt, lo, hi, *keys))


def skewed_index(seed: int, salt: str, n: int, *keys: str, power: float = 3.0) -> Column:
    """An index in [0, n) where low indices are much more frequent (power-law skew)."""
    return F.expr(f"CAST(least(floor(power({u_sql(seed, salt, *keys)}, {power!r}D) * {n}), {n - 1}) AS INT)")


def pick(seed: int, salt: str, values: Sequence, *keys: str) -> Column:
    """One of a short list of literal values, uniformly."""
    return F.expr(pick_sql(seed, salt, values, *keys))


def base36_sql(seed: int, salt: str, length: int, *keys: str) -> str:
    """SQL for an upper-case alphanumeric string of exactly `length` characters."""
    chunks = []
    for i in range((length + 11) // 12):
        h = f"pmod(xxhash64({seed}, {lit(f'{salt}#{i}')}, {', '.join(keys)}), {36 ** 12}L)"
        chunks.append(f"lpad(conv(CAST({h} AS STRING), 10, 36), 12, '0')")
    return f"substring(concat({', '.join(chunks)}), 1, {length})"

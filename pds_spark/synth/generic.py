"""Schema-driven values: any catalogue field, respecting type, length, format, code list."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from pds_spark.catalog import Catalogue, Field, Table
from pds_spark.jvm import select_sql
from pds_spark.sqltext import quoted, sql_text
from pds_spark.synth import codes as C
from pds_spark.synth.random import base36_sql, lit, pick_sql, randint_sql, u_sql

MAX_LITERAL_CODES = 64
NULL_SHARE = 0.05
DEFAULT_YEAR = 2020


KeySample = dict[tuple[str, tuple[str, ...]], list[tuple]]  # (parent, its key columns) -> key tuples


@dataclass(frozen=True)
class Generated:
    """The tables of one corpus generated schema-driven (name -> years, `rows` a year each):
    a foreign key of one of them to another draws a row of its parent, whose key columns it
    computes as the parent computes them (the same SQL at the parent row's key), so the
    child's keys are found in the parent without a join. A foreign key to one of the coherent
    core tables (IR_BEN_R, ER_PRS_F, T_MCOaaB...) draws one of `core_keys`, a sample of that
    table's key tuples taken when it was built."""

    years: dict[str, tuple[int | None, ...]]
    rows: int
    core_keys: KeySample = field(default_factory=dict)

    def sources(self, table: Table, catalogue: Catalogue) -> dict[str, tuple[int, Table, Field]]:
        """child column (upper case) -> (foreign key's index, parent, parent column), for the keys
        to a generated (or core) parent."""
        return _sources(self, table, catalogue) if table.name in self.years else {}

    def sample(self, parent: Table, ref: Field, index: int, table: Table) -> tuple[list[tuple], int] | None:
        """The core parent's key tuples a foreign key draws from, and the column's place in them."""
        fk = table.foreign_keys[index]
        rows = self.core_keys.get((parent.name, tuple(fk.ref_fields)))
        return (rows, [r.upper() for r in fk.ref_fields].index(ref.name.upper())) if rows else None


def core_foreign_keys(catalogue: Catalogue, core: set[str], generic: set[str]) -> set[tuple[str, tuple[str, ...]]]:
    """(core parent, its key columns) of every foreign key from a generic table to a core one."""
    return {(fk.table, tuple(fk.ref_fields)) for name in generic for fk in catalogue.tables[name].foreign_keys
            if fk.table in core and all(catalogue.tables[fk.table].has_field(r) for r in fk.ref_fields)}


def _sources(generated: Generated, table: Table, catalogue: Catalogue) -> dict[str, tuple[int, Table, Field]]:
    out: dict[str, tuple[int, Table, Field]] = {}
    for i, fk in enumerate(table.foreign_keys):
        parent = catalogue.tables.get(fk.table)
        if parent is None or not all(parent.has_field(r) for r in fk.ref_fields) \
                or not all(table.has_field(c) for c in fk.fields):
            continue
        if (parent.name, tuple(fk.ref_fields)) in generated.core_keys:
            for c, r in zip(fk.fields, fk.ref_fields):
                out.setdefault(c.upper(), (i, parent, parent.field(r)))
            continue
        if parent.name not in generated.years:
            continue
        for c, r in zip(fk.fields, fk.ref_fields):
            out.setdefault(c.upper(), (i, parent, parent.field(r)))
    return out


def _nullable(table: Table, field: Field) -> bool:
    """Whether a generated value may be null: not a key, and '' is read as missing in the table."""
    keys = {c.upper() for c in table.primary_key} | {c.upper() for fk in table.foreign_keys for c in fk.fields}
    return field.name.upper() not in keys and "" in table.missing_values


MAX_KEY_DEPTH = 6  # a key drawn from a key drawn from ... this many tables up (a cycle stops there)


def column_sql(field: Field, table: Table, seed: int, keys: list[str], year: str, catalogue: Catalogue,
               generated: Generated | None = None, sort: str = "_sort", depth: int = 0) -> str:
    """SQL for a generated column: a parent's key for a foreign key to a generated table (the
    parent's own SQL for that column at the parent row drawn, itself perhaps a grandparent's
    key), else a schema-driven value (`year`: SQL of the row's year, possibly null; `sort`: of
    its number in its year)."""
    source = generated.sources(table, catalogue).get(field.name.upper()) if generated else None
    if source is None or depth >= MAX_KEY_DEPTH:
        return value_sql(field, seed, table.name, keys, f"coalesce({year}, {DEFAULT_YEAR})", catalogue,
                         nullable=_nullable(table, field))
    assert generated is not None  # a source comes from it
    i, parent, ref = source
    offset = int(hashlib.sha256(f"{seed}|{table.name}.fk{i}".encode()).hexdigest()[:6], 16)  # a fixed shift
    sample = generated.sample(parent, ref, i, table)
    if sample is not None:  # a core parent: one of its key tuples, the same for each of the key's columns
        rows, place = sample  # rows of a year take distinct tuples (a child keyed by its parent's key stays unique)
        which = f"pmod({sort} + coalesce({year}, 0) * 61 + {offset}, {len(rows)}) + 1"
        values = ", ".join(lit(row[place]) for row in rows)
        return f"CAST(element_at(array({values}), CAST({which} AS INT)) AS {field.spark_type.simpleString()})"
    fk = table.foreign_keys[i]
    if table.primary_key and {c.upper() for c in table.primary_key} <= {c.upper() for c in fk.fields}:
        pick = f"pmod({sort} + {offset}, {generated.rows})"  # keyed by its parent's key: a parent row each
    else:
        pick = f"floor({u_sql(seed, f'{table.name}.fk{i}', *keys)} * {generated.rows})"
    parent_years = generated.years[parent.name]
    if parent_years == (None,):
        parent_year = "CAST(NULL AS INT)"
    elif generated.years[table.name] == (None,):
        parent_year = str(parent_years[0])
    else:
        parent_year = year
    key = f"CAST({pick} * 10000 + coalesce({parent_year}, 0) AS BIGINT)"  # the parent row's _fault_key
    parent_value = column_sql(ref, parent, seed, [key], parent_year, catalogue, generated, sort=pick, depth=depth + 1)
    return f"CAST({parent_value} AS {field.spark_type.simpleString()})"


def _number_bounds(field: Field) -> tuple[float, int]:
    """Largest value and decimals a number field can hold (Oracle NUMBER(p,s))."""
    scale = field.scale if field.scale is not None else 2
    if field.precision is not None:
        digits = field.precision - scale  # digits before the decimal point (may be < 1)
        top = 10.0 ** digits - 10.0 ** -scale if digits > 0 else 10.0 ** digits * 0.9
    else:
        top = 10_000.0
    if field.maximum is not None:
        top = min(top, float(field.maximum))
    return min(top, 100_000.0), scale


def value_sql(field: Field, seed: int, salt: str, keys: list[str], year: str,
              catalogue: Catalogue, nullable: bool = True) -> str:
    """SQL for a typed value of one field of a generated row."""
    s = f"{salt}.{field.name}"
    spark_type = field.spark_type
    codes: tuple | list = ()
    if field.nomenclature and field.type not in ("yearmonth", "year", "date", "datetime"):
        codes = C.fitting_codes(catalogue, field)  # the list's column and form that quality compares with
    if field.enum:
        codes = [c for c in field.enum if C.fits(c, field) or field.type != "string"]
    type_sql = spark_type.simpleString()
    u = u_sql(seed, s, *keys)
    day = f"date_add(make_date({year}, 1, 1), CAST({randint_sql(seed, s, 0, 364, *keys)} AS INT))"

    if codes and isinstance(spark_type, (T.StringType, T.IntegerType, T.LongType, T.DoubleType)):
        v = pick_sql(seed, s, C.sample(codes, seed, s, MAX_LITERAL_CODES), *keys)
    elif field.value_regex and field.type == "yearmonth":
        v = f"format_string('%04d%02d', {year}, {randint_sql(seed, s, 1, 12, *keys)})"
    elif field.value_regex and field.type == "date":  # month only
        v = f"format_string('%02d', {randint_sql(seed, s, 1, 12, *keys)})"
    elif field.type == "year":
        v = year
    elif isinstance(spark_type, T.StringType):
        v = base36_sql(seed, s, field.length or 8, *keys)
    elif isinstance(spark_type, (T.IntegerType, T.LongType, T.DecimalType)):
        digits = min(field.length or 6, 9)
        lo = int(field.minimum) if field.minimum is not None else 0
        hi = int(field.maximum) if field.maximum is not None else 10 ** digits - 1
        v = randint_sql(seed, s, lo, max(lo, hi), *keys)
    elif isinstance(spark_type, T.DoubleType):
        top, scale = _number_bounds(field)
        v = f"round({u} * {top!r}D, {scale})"
    elif isinstance(spark_type, T.BooleanType):
        v = f"({u} < 0.5D)"
    elif isinstance(spark_type, T.DateType):
        v = day
    elif isinstance(spark_type, T.TimestampType):
        v = f"timestamp_seconds(unix_timestamp(CAST({day} AS TIMESTAMP)) + {randint_sql(seed, s + '.t', 0, 86399, *keys)})"
    else:
        raise ValueError(f"no generator for {field.name} ({spark_type})")
    if nullable and not field.required:
        v = f"CASE WHEN {u_sql(seed, s + '.null', *keys)} < {NULL_SHARE!r}D THEN NULL ELSE {v} END"
    return f"CAST({v} AS {type_sql})"


def complete(df: DataFrame, table: Table, seed: int, keys: list[str], year: str,
             catalogue: Catalogue, default_year: int = DEFAULT_YEAR, generated: Generated | None = None) -> DataFrame:
    """Add every catalogue column `df` lacks, then select the table's columns in order.
    One SQL projection (two JVM calls): an expression a field cost 0.2 s a table."""
    year_sql = f"coalesce({year}, {default_year})"
    have = {c.upper() for c in df.columns}
    sources = generated.sources(table, catalogue) if generated else {}
    out = []
    for f in table.fields:
        name = quoted(f.name)
        if f.name.upper() in have and isinstance(f.spark_type, T.BooleanType) \
                and isinstance(df.schema[f.name].dataType, T.StringType):  # delivered text, e.g. '0'
            trues, falses = (", ".join(sql_text(v) for v in values) for values in (f.true_values, f.false_values))
            out.append(f"CASE WHEN {name} IN ({trues}) THEN true WHEN {name} IN ({falses}) THEN false END AS {name}")
        elif f.name.upper() in have:
            out.append(f"CAST({name} AS {f.spark_type.simpleString()}) AS {name}")
        elif f.name.upper() in sources:  # a generated parent's key
            out.append(column_sql(f, table, seed, keys, year, catalogue, generated) + f" AS {name}")
        else:
            out.append(value_sql(f, seed, table.name, keys, year_sql, catalogue, nullable=_nullable(table, f))
                       + f" AS {name}")
    extra = [quoted(c) for c in ("_year", "_sort", "_fault_key") if c in df.columns]
    return select_sql(df, [*out, *extra])


def generic_table(spark, table: Table, rows: int, seed: int, years: list[int | None],
                  catalogue: Catalogue, generated: Generated | None = None) -> DataFrame:
    """`rows` schema-driven rows of any catalogue table, for each year given; its foreign keys
    to other `generated` tables drawn from their rows."""
    year_of = "element_at(array(" + ", ".join("CAST(NULL AS INT)" if y is None else str(int(y)) for y in years) \
        + f"), CAST(id DIV {rows} + 1 AS INT))"
    df = select_sql(spark.range(rows * len(years)), [
        f"id % {rows} AS _sort", f"{year_of} AS _year",
        f"(id % {rows}) * 10000 + coalesce({year_of}, 0) AS _fault_key"])
    return complete(df, table, seed, ["_fault_key"], "_year", catalogue, generated=generated)

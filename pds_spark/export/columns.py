"""What an exported column is, whatever the database: its kind and size, from the catalogue
where it knows the column, from the Spark type where it does not (or where the catalogue's
Oracle type cannot hold the values the platform holds)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pyspark.sql import types as T

from pds_spark.catalog.model import Table
from pds_spark.errors import CatalogError, PdsError

KINDS = ("text", "integer", "decimal", "float", "date", "timestamp", "boolean")
PSEUDONYM_LENGTH = 64  # hex HMAC-SHA256 (pds_spark.pseudo.hmac)
MAX_TEXT = 4000  # VARCHAR2's limit under MAX_STRING_SIZE = STANDARD


class ExportError(PdsError):
    """An export cannot be made as asked; nothing was published."""


@dataclass(frozen=True)
class Column:
    name: str  # as in the platform (the frame's column)
    kind: str  # one of KINDS
    length: int | None = None  # text: characters; integer: digits
    precision: int | None = None  # decimal
    scale: int | None = None
    note: str = ""  # why the catalogue's own type was not taken


def _spark_kind(dtype: T.DataType) -> Column | None:
    if isinstance(dtype, T.StringType):
        return Column("", "text")
    if isinstance(dtype, (T.ByteType, T.ShortType, T.IntegerType)):
        return Column("", "integer", length=10)
    if isinstance(dtype, T.LongType):
        return Column("", "integer", length=19)
    if isinstance(dtype, T.DecimalType):
        return (Column("", "integer", length=dtype.precision) if dtype.scale == 0
                else Column("", "decimal", precision=dtype.precision, scale=dtype.scale))
    if isinstance(dtype, (T.DoubleType, T.FloatType)):
        return Column("", "float")
    if isinstance(dtype, T.DateType):
        return Column("", "date")
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        return Column("", "timestamp")
    if isinstance(dtype, T.BooleanType):
        return Column("", "boolean")
    return None


def target_column(name: str, dtype: T.DataType, table: Table | None, pseudonym: bool = False) -> Column:
    """The exported form of one column of type `dtype`."""
    base = _spark_kind(dtype)
    if base is None:
        raise ExportError(f"column {name}: a {dtype.simpleString()} cannot be exported to a database table")
    field = table.field(name) if table is not None and table.has_field(name) else None
    if pseudonym:
        if base.kind != "text":
            raise ExportError(f"column {name}: a pseudonym column must hold text")
        return Column(name, "text", length=PSEUDONYM_LENGTH, note="pseudonym (hex HMAC-SHA256)")
    if field is None:
        return Column(name, base.kind, base.length, base.precision, base.scale, "not in the catalogue: from its type")
    note = ""
    declared = field.oracle_type
    if base.kind == "text":
        length = field.length or field.max_length
        if declared in ("number", "integer", "date", "timestamp"):
            note = f"catalogue type {declared} but the platform holds text"
        if length is None or length > MAX_TEXT:
            return Column(name, "text", MAX_TEXT if length else None, note=note or "no length in the catalogue")
        return Column(name, "text", length, note=note)
    if base.kind in ("integer", "decimal"):
        return Column(name, base.kind, field.length if base.kind == "integer" and field.length else base.length,
                      base.precision, base.scale)
    if base.kind == "float":
        if field.number_digits is not None and (field.scale or 0) <= field.number_digits:
            return Column(name, "decimal", precision=field.number_digits, scale=field.scale or 0)
        return Column(name, "float")
    if base.kind == "boolean":
        return Column(name, "boolean", note="boolean as NUMBER(1) in Oracle" if declared != "number" else "")
    return Column(name, base.kind)


def target_columns(schema: T.StructType, table: Table | None, pseudonyms: Iterable[str] = ()) -> list[Column]:
    """Every column of a frame with `schema`, `table` being the catalogue's (None: unknown)."""
    keyed = set(pseudonyms)
    return [target_column(f.name, f.dataType, table, f.name in keyed) for f in schema.fields]


def frame_columns(catalogue, table: str, schema: T.StructType, pseudonyms: Iterable[str] = ()) -> list[Column]:
    """`target_columns` of a frame holding the catalogue's `table` (or a table it does not know)."""
    try:
        known = catalogue.table(table)
    except (KeyError, CatalogError):
        known = None
    return target_columns(schema, known, pseudonyms)

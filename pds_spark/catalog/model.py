"""What the catalogue knows of a table and its fields."""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from pyspark.sql.types import DataType, DateType, StructField, StructType, TimestampType

# Placeholders of table names published with a period in them (T_MCOaaB, CT_IND_AAAA_GN)
NAME_TOKENS = (
    ("AAAA", r"(?P<year4>[0-9]{4})"),
    ("aa", r"(?P<year2>[0-9]{2})"),
    ("xx", r"(?P<variant>[A-Za-z0-9]{2})"),
)


def name_pattern(name: str) -> re.Pattern:
    """Matches the delivered names of a published table name (T_MCOaaB: T_MCO14B)."""
    rx, rest = "", name
    while rest:
        for token, group in NAME_TOKENS:
            if rest.startswith(token):
                rx += group
                rest = rest[len(token):]
                break
        else:
            rx += re.escape(rest[0])
            rest = rest[1:]
    return re.compile(rx, re.IGNORECASE)


def is_templated(name: str) -> bool:
    return any(token in name for token, _ in NAME_TOKENS)


@dataclass(frozen=True)
class Refusal:
    """A table whose published schema could not be read: the table is unusable, the rest is not."""

    name: str  # the schema's `name`, or its file's stem when even that cannot be read
    source: str  # the schema file
    reason: str
    field: str | None = None

    def describe(self) -> str:
        where = f"{self.source}, field '{self.field}'" if self.field else self.source
        return f"{self.name}: {where}: {self.reason}"


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # Table Schema type as declared
    format: str  # as declared ('default', '%d%m%Y', ...)
    spark_type: DataType
    pattern: str | None = None  # Spark datetime pattern for date/timestamp fields
    value_regex: str | None = None  # shape check for values kept as text
    length: int | None = None  # characters (strings) or digits (integers)
    precision: int | None = None  # numbers declared 'p,s'
    scale: int | None = None
    nomenclature: str | None = None  # code list reference, 'NAME' or 'NAME:COLUMN'
    oracle_type: str = "string"
    required: bool = False
    unique: bool = False
    minimum: Any = None
    maximum: Any = None
    enum: tuple[str, ...] | None = None
    min_length: int | None = None
    max_length: int | None = None
    true_values: tuple[str, ...] = ("true", "True", "TRUE", "1")
    false_values: tuple[str, ...] = ("false", "False", "FALSE", "0")
    description: str = ""
    note: str = ""  # how the reader settled something the published schema leaves unclear

    @property
    def oracle_column_type(self) -> str:
        """Column type for an Oracle export (NUMBER(p,s), VARCHAR2(n CHAR), DATE)."""
        if isinstance(self.spark_type, TimestampType) or self.oracle_type == "timestamp":
            return "TIMESTAMP"
        if self.oracle_type == "date" or isinstance(self.spark_type, DateType):
            return "DATE"
        if self.oracle_type in ("number", "integer"):
            if self.precision is not None:
                return f"NUMBER({self.number_digits},{self.scale or 0})"
            if self.type == "integer" and self.length:
                return f"NUMBER({self.length})"
            return "NUMBER"
        return f"VARCHAR2({self.length or 4000} CHAR)"

    @property
    def number_digits(self) -> int | None:
        """Oracle's precision of a number declared 'a,b'. The SNDS schemas mean a digits before
        the decimal point and b after: the published synthetic files hold 5237.81 in fields
        declared '4,2', and every declared maximum (PRS_ACT_QTE '4,2': 1000) agrees."""
        if self.precision is None:
            return None
        return min(self.precision + (self.scale or 0), 38)

    @property
    def code_list(self) -> tuple[str, str | None] | None:
        """(code list name, column) of the field's nomenclature, if any."""
        if not self.nomenclature:
            return None
        name, _, column = self.nomenclature.partition(":")
        return name, column or None


@dataclass(frozen=True)
class ForeignKey:
    fields: tuple[str, ...]
    table: str
    ref_fields: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    name: str  # as published; may hold a period template (T_MCOaaB)
    fields: tuple[Field, ...]
    source: str = ""  # the schema file
    title: str = ""
    product: str = ""
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    missing_values: tuple[str, ...] = ("",)
    _by_name: dict = dc_field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        self._by_name.update({f.name.upper(): f for f in self.fields})

    @property
    def spark_schema(self) -> StructType:
        return StructType([StructField(f.name, f.spark_type, nullable=True) for f in self.fields])

    @property
    def column_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        return self._by_name[name.upper()]

    def has_field(self, name: str) -> bool:
        return name.upper() in self._by_name

    @property
    def is_templated(self) -> bool:
        return is_templated(self.name)

    @property
    def name_regex(self) -> re.Pattern:
        """Matches the names of this table's delivered instances (T_MCO14B, ER_PRS_F)."""
        return name_pattern(self.name)

    def instance_name(self, year: int | None = None, variant: str | None = None) -> str:
        """The delivered name for a period: T_MCOaaB + 2014 -> T_MCO14B."""
        if not self.is_templated:
            return self.name if year is None else f"{self.name}_{year}"
        if year is None:
            raise ValueError(f"table {self.name} is named by year: give a year")
        name = self.name.replace("AAAA", f"{year:04d}").replace("aa", f"{year % 100:02d}")
        if "xx" in name:
            if variant is None:
                raise ValueError(f"table {self.name} is named by variant: give a variant")
            name = name.replace("xx", variant)
        return name

"""Read SNDS Table Schema JSON exactly as published, refusing what it cannot understand."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from pyspark.sql import types as T

from pds_spark.catalog.formats import DEFAULT_PATTERNS, FormatError, parse_strftime
from pds_spark.catalog.model import Field, ForeignKey, Table
from pds_spark.errors import CatalogError

KNOWN_TYPES = ("string", "integer", "number", "boolean", "date", "datetime", "year", "yearmonth")
ORACLE_TYPES = ("string", "number", "integer", "date")
KNOWN_CONSTRAINTS = ("required", "unique", "minimum", "maximum", "enum", "minLength",
                     "maxLength", "decimals", "description")
YEAR_REGEX = r"^[0-9]{4}$"
YEARMONTH_REGEX = r"^[0-9]{4}(0[1-9]|1[0-2])$"
NO_NOMENCLATURE = ("", "-")


def _names(value: Any, source: str, what: str) -> tuple[str, ...]:
    """primaryKey / foreignKeys fields: a list, or one string (comma-separated allowed)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise CatalogError(source, f"{what} must be a field name or a list of names, got {value!r}")


def _length(raw: Any, source: str, name: str) -> tuple[int | None, int | None, int | None]:
    """'17' -> (17, None, None); '10,2' -> (None, 10, 2); None/'' -> all None."""
    if raw in (None, ""):
        return None, None, None
    text = str(raw).strip()
    if re.fullmatch(r"[0-9]+", text):
        return int(text), None, None
    m = re.fullmatch(r"([0-9]+)\s*,\s*([0-9]+)", text)
    if m:
        return None, int(m.group(1)), int(m.group(2))
    raise CatalogError(source, f"length {raw!r} is neither 'n' nor 'precision,scale'", name)


def _integer_type(digits: int | None) -> T.DataType:
    if digits is not None and digits <= 9:
        return T.IntegerType()
    if digits is None or digits <= 18:
        return T.LongType()
    return T.DecimalType(min(digits, 38), 0)


def parse_field(raw: Any, source: str) -> Field:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise CatalogError(source, f"a field without a name: {str(raw)[:80]}")
    name = raw["name"]
    ftype = raw.get("type", "string")
    fmt = raw.get("format") or "default"
    if ftype not in KNOWN_TYPES:
        raise CatalogError(source, f"unknown type {ftype!r} (known: {', '.join(KNOWN_TYPES)})", name)
    length, precision, scale = _length(raw.get("length"), source, name)
    oracle = raw.get("type_oracle") or {"integer": "number", "number": "number", "date": "date",
                                         "datetime": "date"}.get(ftype, "string")
    if oracle not in ORACLE_TYPES:
        raise CatalogError(source, f"unknown type_oracle {oracle!r}", name)
    constraints = raw.get("constraints") or {}
    if not isinstance(constraints, dict):
        raise CatalogError(source, "constraints must be an object", name)
    unknown = sorted(set(constraints) - set(KNOWN_CONSTRAINTS))
    if unknown:
        raise CatalogError(source, f"unknown constraint(s) {', '.join(unknown)}", name)

    pattern = value_regex = None
    if ftype in ("date", "datetime"):
        if fmt == "default":
            pattern = DEFAULT_PATTERNS[ftype]
            spark_type = T.DateType() if ftype == "date" else T.TimestampType()
        else:
            try:
                parsed = parse_strftime(fmt)
            except FormatError as e:
                raise CatalogError(source, str(e), name) from None
            if parsed.is_full_date:
                pattern = parsed.spark_pattern
                spark_type = T.TimestampType() if (ftype == "datetime" or parsed.has_time) else T.DateType()
            else:  # a partial date (month only...): no Spark date can hold it, keep text
                spark_type, value_regex = T.StringType(), parsed.regex
    elif fmt not in ("default", ""):
        raise CatalogError(source, f"format {fmt!r} is not understood for type {ftype}", name)
    elif ftype == "string":
        spark_type = T.StringType()
    elif ftype == "integer":
        spark_type = _integer_type(length)
    elif ftype == "number":
        spark_type = T.DoubleType()
    elif ftype == "boolean":
        spark_type = T.BooleanType()
    elif ftype == "year":
        spark_type, value_regex = T.IntegerType(), YEAR_REGEX
    else:  # yearmonth: SNDS writes YYYYMM, kept as text and checked
        spark_type, value_regex = T.StringType(), YEARMONTH_REGEX

    def values(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        got = raw.get(key)
        if got is None:
            return default
        if not isinstance(got, list) or not all(isinstance(v, str) for v in got):
            raise CatalogError(source, f"{key} must be a list of strings", name)
        return tuple(got)

    true_values = values("trueValues", Field.true_values)
    false_values = values("falseValues", Field.false_values)
    note = ""
    if ftype == "boolean" and set(true_values) & set(false_values):
        # Published as such (T_MCOaaC.PMS_RET): no reading of it is right, so the text is
        # kept as delivered and the catalogue says why, instead of guessing a meaning.
        spark_type = T.StringType()
        note = (f"trueValues {list(true_values)} and falseValues {list(false_values)} overlap: "
                "kept as text")
    nomenclature = raw.get("nomenclature")
    enum = constraints.get("enum")
    return Field(
        name=name, type=ftype, format=fmt, spark_type=spark_type, pattern=pattern,
        value_regex=value_regex, length=length, precision=precision, scale=scale,
        nomenclature=None if nomenclature in NO_NOMENCLATURE or nomenclature is None else str(nomenclature),
        oracle_type=oracle, required=bool(constraints.get("required", False)),
        unique=bool(constraints.get("unique", False)), minimum=constraints.get("minimum"),
        maximum=constraints.get("maximum"),
        enum=tuple(str(v) for v in enum) if isinstance(enum, list) else None,
        min_length=constraints.get("minLength"),
        true_values=true_values, false_values=false_values,
        description=str(raw.get("description") or ""), note=note,
    )


def parse_table(doc: Any, source: str) -> Table:
    """One Table Schema document -> Table; every problem names the file (and field)."""
    if not isinstance(doc, dict):
        raise CatalogError(source, "a table schema must be a JSON object")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise CatalogError(source, "the table has no 'name'")
    raw_fields = doc.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise CatalogError(source, "the table has no 'fields' list")
    fields = [parse_field(f, source) for f in raw_fields]
    seen: set[str] = set()
    for f in fields:
        if f.name.upper() in seen:
            raise CatalogError(source, "the field is declared twice", f.name)
        seen.add(f.name.upper())

    def check(names: Iterable[str], what: str) -> None:
        for n in names:
            if n.upper() not in seen:
                raise CatalogError(source, f"{what} names a field the table does not have", n)

    primary_key = _names(doc.get("primaryKey"), source, "primaryKey")
    check(primary_key, "primaryKey")
    foreign_keys = []
    for fk in doc.get("foreignKeys") or []:
        ref = fk.get("reference") if isinstance(fk, dict) else None
        if not isinstance(ref, dict) or not isinstance(ref.get("resource"), str):
            raise CatalogError(source, f"foreign key without a reference resource: {fk!r}")
        local = _names(fk.get("fields"), source, "foreignKeys.fields")
        remote = _names(ref.get("fields"), source, "foreignKeys.reference.fields")
        check(local, "foreignKeys")
        if len(local) != len(remote):
            raise CatalogError(source, f"foreign key to {ref['resource']} pairs {len(local)} "
                                       f"field(s) with {len(remote)}")
        foreign_keys.append(ForeignKey(local, ref["resource"], remote))
    missing = doc.get("missingValues", [""])
    if not isinstance(missing, list) or not all(isinstance(v, str) for v in missing):
        raise CatalogError(source, "missingValues must be a list of strings")
    return Table(name=name, fields=tuple(fields), source=source, title=str(doc.get("title") or ""),
                 product=str(doc.get("produit") or ""), primary_key=primary_key,
                 foreign_keys=tuple(foreign_keys), missing_values=tuple(missing))


def read_table(path: Path) -> Table:
    source = str(path)
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CatalogError(source, f"not valid JSON: {e}") from None
    return parse_table(doc, source)


@dataclass(frozen=True)
class Resolved:
    """A delivered name mapped to its catalogue table and period."""

    table: Table
    year: int | None = None
    month: int | None = None
    variant: str | None = None

    @property
    def period(self) -> str | None:
        if self.year is None:
            return None
        return f"{self.year:04d}" + (f"{self.month:02d}" if self.month else "")

"""Read SNDS Table Schema JSON exactly as published, refusing what it cannot understand.

What the Table Schema specification or the SNDS schemas give a clear meaning is read:
the types (`time`, `any`, `object`, `array`, `duration`, `geopoint` and `geojson` are kept
as text), date formats (`default`, a strftime pattern, `any`: kept as text), string formats
(`email`, `uri`, `binary`, `uuid`), the `pattern` constraint, Oracle types as Oracle names
them (`VARCHAR2`, `NUMBER`, `DATE`, `TIMESTAMP`, `datetime`...), lengths written `n`,
`(n)`, `n CHAR`, `p,s`. What is ambiguous or would change how values are read without
this reader applying it (`decimalChar`, `groupChar`, a field's own `missingValues`) is
refused, naming file and field. Overrides (`conf/catalog.toml`) correct a published
schema before it is read, each with its reason.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import types as T

from pds_spark.catalog.formats import DEFAULT_PATTERNS, FormatError, parse_strftime
from pds_spark.catalog.model import Field, ForeignKey, Table
from pds_spark.errors import CatalogError, SettingsError

TIME_REGEX = r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"
UUID_REGEX = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
# Table Schema types kept as text, with the shape checked where the specification fixes one
TEXT_TYPES = {"time": TIME_REGEX, "any": None, "object": None, "array": None, "duration": None,
              "geopoint": None, "geojson": None}
KNOWN_TYPES = ("string", "integer", "number", "boolean", "date", "datetime", "year", "yearmonth", *TEXT_TYPES)
STRING_FORMATS = {"default": None, "email": None, "uri": None, "binary": None, "uuid": UUID_REGEX}
# type_oracle as the SNDS schemas write it, and as Oracle names its types
ORACLE_TYPES = {"string": "string", "varchar2": "string", "varchar": "string", "nvarchar2": "string",
                "char": "string", "nchar": "string", "number": "number", "numeric": "number",
                "decimal": "number", "float": "number", "binary_double": "number", "integer": "integer",
                "int": "integer", "smallint": "integer", "date": "date", "datetime": "date",
                "timestamp": "timestamp"}
KNOWN_CONSTRAINTS = ("required", "unique", "minimum", "maximum", "enum", "minLength",
                     "maxLength", "decimals", "description", "pattern")
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
    """'17', '(17)', '17 CHAR' -> (17, None, None); '10,2', '(10, 2)' -> (None, 10, 2); None/'' -> all None."""
    if raw in (None, ""):
        return None, None, None
    text = re.sub(r"\s+(CHAR|BYTE)$", "", str(raw).strip(), flags=re.IGNORECASE)
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
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


def parse_field(raw: Any, source: str, table_missing: tuple[str, ...] = ("",)) -> Field:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise CatalogError(source, f"a field without a name: {str(raw)[:80]}")
    name = raw["name"]
    ftype = raw.get("type", "string")
    fmt = raw.get("format") or "default"
    if ftype not in KNOWN_TYPES:
        raise CatalogError(source, f"unknown type {ftype!r} (known: {', '.join(KNOWN_TYPES)})", name)
    length, precision, scale = _length(raw.get("length"), source, name)
    declared = raw.get("type_oracle") or {"integer": "number", "number": "number", "date": "date",
                                           "datetime": "date"}.get(ftype, "string")
    oracle = ORACLE_TYPES.get(str(declared).strip().lower())
    if oracle is None:
        raise CatalogError(source, f"unknown type_oracle {declared!r}", name)
    for key in ("decimalChar", "groupChar"):
        if raw.get(key) not in (None, "." if key == "decimalChar" else None):
            raise CatalogError(source, f"{key} {raw[key]!r} is not applied by this reader: refused rather "
                                       "than read wrongly (override the field in conf/catalog.toml)", name)
    if raw.get("bareNumber") is False:
        raise CatalogError(source, "bareNumber false (numbers with text around them) is not applied by this "
                                   "reader", name)
    constraints = raw.get("constraints") or {}
    if not isinstance(constraints, dict):
        raise CatalogError(source, "constraints must be an object", name)
    unknown = sorted(set(constraints) - set(KNOWN_CONSTRAINTS))
    if unknown:
        raise CatalogError(source, f"unknown constraint(s) {', '.join(unknown)}", name)

    pattern = value_regex = None
    spark_type: T.DataType
    note = ""
    if ftype in ("date", "datetime") and fmt == "any":
        spark_type = T.StringType()  # "any format": no pattern can be chosen without guessing
        note = "format 'any': kept as text, its dates not checked"
    elif ftype in TEXT_TYPES:
        if fmt not in ("default", "", "any"):
            raise CatalogError(source, f"format {fmt!r} is not understood for type {ftype}", name)
        spark_type, value_regex = T.StringType(), TEXT_TYPES[ftype]
        note = f"type {ftype}: kept as text"
    elif ftype in ("date", "datetime"):
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
    elif ftype == "string" and fmt in STRING_FORMATS:
        spark_type, value_regex = T.StringType(), STRING_FORMATS[fmt]
    elif fmt not in ("default", ""):
        raise CatalogError(source, f"format {fmt!r} is not understood for type {ftype}", name)
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
    if "missingValues" in raw:
        own = values("missingValues", ())
        if own != table_missing:
            raise CatalogError(source, f"missingValues {list(own)} differ from the table's {list(table_missing)}: "
                                       "a field's own missing values are not applied by this reader", name)
    if "pattern" in constraints:
        if not isinstance(spark_type, T.StringType) or value_regex is not None:
            raise CatalogError(source, "a pattern constraint applies to a text field without another shape", name)
        text = constraints["pattern"]
        if not isinstance(text, str):
            raise CatalogError(source, "the pattern constraint must be a regular expression", name)
        try:
            re.compile(text)
        except re.error as e:
            raise CatalogError(source, f"pattern {text!r} is not a regular expression: {e}", name) from None
        value_regex = f"^(?:{text})$"  # Table Schema: the whole value matches
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
        max_length=constraints.get("maxLength"),
        enum=tuple(str(v) for v in enum) if isinstance(enum, list) else None,
        min_length=constraints.get("minLength"),
        true_values=true_values, false_values=false_values,
        description=str(raw.get("description") or ""), note=note,
    )


def parse_table(doc: Any, source: str, overrides: Overrides | None = None) -> Table:
    """One Table Schema document -> Table; every problem names the file (and field).
    `overrides` correct the document first (see `Overrides`)."""
    if not isinstance(doc, dict):
        raise CatalogError(source, "a table schema must be a JSON object")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise CatalogError(source, "the table has no 'name'")
    if overrides is not None:
        doc = overrides.apply(doc)
    raw_fields = doc.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise CatalogError(source, "the table has no 'fields' list")
    missing = doc.get("missingValues", [""])
    if not isinstance(missing, list) or not all(isinstance(v, str) for v in missing):
        raise CatalogError(source, "missingValues must be a list of strings")
    fields = [parse_field(f, source, tuple(missing)) for f in raw_fields]
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
    return Table(name=name, fields=tuple(fields), source=source, title=str(doc.get("title") or ""),
                 product=str(doc.get("produit") or ""), primary_key=primary_key,
                 foreign_keys=tuple(foreign_keys), missing_values=tuple(missing))


def read_document(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CatalogError(str(path), f"not valid JSON: {e}") from None


def read_table(path: Path, overrides: Overrides | None = None) -> Table:
    return parse_table(read_document(path), str(path), overrides)


@dataclass(frozen=True)
class Override:
    """One correction of a published schema: a table's or one field's attributes set anew."""

    table: str
    field: str | None
    values: dict
    reason: str

    def describe(self) -> str:
        what = f"{self.table}.{self.field}" if self.field else self.table
        return f"{what}: {', '.join(f'{k} = {v!r}' for k, v in sorted(self.values.items()))} ({self.reason})"


@dataclass(frozen=True)
class Referential:
    """A nomenclature's schema (path under the nomenclatures folder) loaded as a warehouse table:
    a referential delivered with the data (IR_PHA_R, the drugs with their ATC class)."""

    schema: str
    reason: str

    def describe(self) -> str:
        return f"referential {self.schema} loaded as a table ({self.reason})"


def _referential(where: str, i: int, entry: Any) -> Referential:
    key = f"referential[{i}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("schema"), str) or not entry["schema"].endswith(".json"):
        raise SettingsError(where, key, "needs schema = \"SOURCE/NAME.json\" (under the nomenclatures folder)")
    if not str(entry.get("reason") or "").strip():
        raise SettingsError(where, key, "needs a reason: why this referential is loaded as a table")
    extra = sorted(set(entry) - {"schema", "reason"})
    if extra:
        raise SettingsError(where, f"{key}.{extra[0]}", "unknown key (known: schema, reason)")
    if Path(entry["schema"]).is_absolute() or ".." in Path(entry["schema"]).parts:
        raise SettingsError(where, f"{key}.schema", "a path under the nomenclatures folder, without '..'")
    return Referential(entry["schema"], entry["reason"].strip())


class Overrides:
    """The corrections of `conf/catalog.toml`, applied to the documents they name; which were
    used is remembered, so that `jobs/catalog.py check` can list them and the unused ones."""

    def __init__(self, entries: Iterable[Override] = (), source: str = "-",
                 referentials: Iterable[Referential] = ()):
        self.entries, self.source = list(entries), source
        self.referentials = list(referentials)
        self.used: set[int] = set()

    @classmethod
    def read(cls, path: str | Path | None) -> Overrides:
        """`[[table]]` and `[[field]]` entries: table, field (for [[field]]), set = {...}, reason;
        `[[referential]]`: schema (a nomenclature's schema loaded as a table), reason."""
        if path is None:
            return cls()
        where = str(path)
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise SettingsError(where, "-", f"not valid TOML: {e}") from None
        unknown = sorted(set(raw) - {"table", "field", "referential"})
        if unknown:
            raise SettingsError(where, unknown[0], "unknown section (known: [[table]], [[field]], [[referential]])")
        entries = []
        for kind in ("table", "field"):
            for i, entry in enumerate(raw.get(kind, []), 1):
                key = f"{kind}[{i}]"
                if not isinstance(entry, dict) or not isinstance(entry.get("table"), str):
                    raise SettingsError(where, key, "needs table = \"NAME\" (as published)")
                if kind == "field" and not isinstance(entry.get("field"), str):
                    raise SettingsError(where, key, "needs field = \"NAME\"")
                if not isinstance(entry.get("set"), dict) or not entry["set"]:
                    raise SettingsError(where, key, "needs set = { attribute = value, ... }")
                if not str(entry.get("reason") or "").strip():
                    raise SettingsError(where, key, "needs a reason: why the published schema is wrong")
                extra = sorted(set(entry) - {"table", "field", "set", "reason"})
                if extra:
                    raise SettingsError(where, f"{key}.{extra[0]}", "unknown key (known: table, field, set, reason)")
                if kind == "table" and {"name", "fields"} & set(entry["set"]):
                    raise SettingsError(where, key, "a table's name and fields are not overridden whole")
                entries.append(Override(entry["table"], entry.get("field"), dict(entry["set"]),
                                        entry["reason"].strip()))
        return cls(entries, where, [_referential(where, i, e) for i, e in enumerate(raw.get("referential", []), 1)])

    def apply(self, doc: dict) -> dict:
        """The document with its overrides applied (a copy; the published file is never changed)."""
        mine = [(i, o) for i, o in enumerate(self.entries) if o.table.upper() == str(doc.get("name")).upper()]
        if not mine:
            return doc
        doc = {**doc, "fields": [dict(f) if isinstance(f, dict) else f for f in doc.get("fields") or []]}
        for i, o in mine:
            if o.field is None:
                doc.update(o.values)
                self.used.add(i)
                continue
            for f in doc["fields"]:
                if isinstance(f, dict) and str(f.get("name", "")).upper() == o.field.upper():
                    f.update(o.values)
                    self.used.add(i)
        return doc

    def unused(self) -> list[Override]:
        return [o for i, o in enumerate(self.entries) if i not in self.used]


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

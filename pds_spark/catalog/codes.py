"""Code lists (the catalogue's nomenclatures), compared like with like.

A field names a code list (`IR_TAU_V`, or `IR_GEO_V:GEO_COM_COD` with its column). Which of
the list's columns holds what the field holds, and in which form, depends on the field:
- the column named in the reference; for a year-month field, the list's column of
  year-months (`IR_DTE_V` is keyed by a SAS datetime but holds `DTE_ANN_MOI`); a column
  of the field's own name (`IR_EPS_V.EXC_EXC_NAT`); the list's column of role `code` when
  its codes fit the field, else the first other column whose codes do (a 3-character
  fund number is `IR_CAI_V.ORG_CAI_NUM`, not its 6-character `ORG_BSE_NUM`);
- the normal form by the field's type: text trimmed, whole numbers without leading zeros
  (`01` = `1`), decimal numbers by value (`5.00` = `5.0`); digit codes longer than the
  field (`NU_UCD_R`'s 13-digit UCD for a 7-character `COD_UCD`) compared without their
  leading zeros on both sides. The same SQL expression
  normalises the list's codes and the table's values, so both sides are compared in one form.
Quality checks and the synthetic generator read the lists here, and so draw and compare alike.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

from pyspark.sql import types as T

from pds_spark.catalog.model import Field

YEARMONTH = re.compile(r"^[0-9]{4}(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class CodeList:
    reference: str  # as the field names it
    column: str  # the list's column compared with the field
    kind: str  # text | padded | integer | number: the normal form of both sides
    codes: tuple[str, ...]  # as written in the list (trimmed, distinct, sorted)


def kind_of(field: Field) -> str:
    """The normal form of a field's values: by its Spark type."""
    t = field.spark_type
    if isinstance(t, T.IntegralType) or (isinstance(t, T.DecimalType) and t.scale == 0):
        return "integer"
    if isinstance(t, (T.FractionalType, T.DecimalType)):
        return "number"
    return "text"


def normal_sql(value: str, kind: str) -> str:
    """SQL: the normal form of `value` (SQL of a string) for a kind; null for a value that has none."""
    text = f"trim({value})"
    if kind == "padded":
        return f"CASE WHEN {text} RLIKE '^[0-9]+$' THEN regexp_replace({text}, '^0+(?=[0-9])', '') ELSE {text} END"
    if kind == "integer":
        return f"CAST(try_cast({text} AS DECIMAL(38, 0)) AS STRING)"
    if kind == "number":
        return f"CAST(try_cast({text} AS DOUBLE) AS STRING)"
    return text


@cache
def _layout(path: Path) -> tuple[list[str], list[str], dict[str, str]]:
    """The list's header, its first data row, and column -> role (from its .json beside it)."""
    meta = path.with_suffix(".json")
    roles = {}
    if meta.is_file():
        for f in json.loads(meta.read_text(encoding="utf-8")).get("fields", []):
            if f.get("role"):
                roles[f["name"]] = f["role"]
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=";")
        header = next(reader, [])
        first = next(reader, [])
    return header, first, roles


@cache
def read_codes(path: Path, column: str | None) -> tuple[str, ...]:
    """The distinct codes of one column of a code list file (`;`-separated, header row)."""
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=";")
        header = next(reader, [])
        idx = header.index(column) if column in header else 0
        codes = {row[idx].strip() for row in reader if len(row) > idx and row[idx].strip()}
    return tuple(sorted(codes))


def key_column(path: Path, reference: str, field: Field | None = None) -> str:
    """The list's column that holds what `field` holds (see the module's docstring)."""
    header, first, roles = _layout(path)
    named = reference.partition(":")[2]
    if named:
        return named
    if field is not None and (field.type == "yearmonth" or field.value_regex == YEARMONTH.pattern):
        months = [c for c, v in zip(header, first) if YEARMONTH.match(v.strip())]
        if months:
            return months[0]
    if field is not None and field.name in header:
        return field.name
    code = next((c for c in header if roles.get(c) == "code"), None) or (header[0] if header else "")
    if field is not None and field.length and field.type == "string" and first:
        sample = dict(zip(header, (v.strip() for v in first)))
        if len(sample.get(code, "")) > field.length and not _padded(sample.get(code, "")):
            fitting = [c for c in header if roles.get(c) != "label" and 0 < len(sample.get(c, "")) <= field.length]
            if fitting:
                return fitting[0]
    return code


def _padded(code: str) -> bool:
    return code.isdigit() and len(code) > 1 and code.startswith("0")


def code_list(catalogue, reference: str, field: Field | None = None) -> CodeList | None:
    """The code list a field names, with the column and normal form it is compared in."""
    path = catalogue.code_list(reference)
    if path is None:
        return None
    column = key_column(path, reference, field)
    codes = read_codes(path, column)
    kind = kind_of(field) if field is not None else "text"
    if kind == "text" and field is not None and field.length and codes and \
            all(c.isdigit() for c in codes[:50]) and max(len(c) for c in codes[:50]) > field.length:
        kind = "padded"  # digit codes written longer than the field: compared without leading zeros
    return CodeList(reference, column, kind, codes)


def normal(code: str, kind: str) -> str | None:
    """A code in its normal form, in Python (what the generator writes); None for a code the
    field's kind cannot hold (`5.50` for a whole number)."""
    code = code.strip()
    if kind == "padded" and code.isdigit():
        return code.lstrip("0") or "0"
    if kind == "integer":
        try:
            value = Decimal(code)
        except InvalidOperation:
            return None
        return str(int(value)) if value == value.to_integral_value() else None
    return code

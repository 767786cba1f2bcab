"""Code lists for generated values, read from the catalogue's nomenclatures folder."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import zipfile
from functools import lru_cache
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from pds_spark.catalog import Catalogue, Field


@lru_cache(maxsize=None)
def _read_codes(path: Path, column: str | None) -> tuple[str, ...]:
    """The distinct codes of a code list file (its `code` column, or the one named)."""
    meta = path.with_suffix(".json")
    if column is None and meta.is_file():
        fields = json.loads(meta.read_text(encoding="utf-8")).get("fields", [])
        column = next((f["name"] for f in fields if f.get("role") == "code"), None)
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=";")
        header = next(reader, [])
        idx = header.index(column) if column in header else 0
        codes = {row[idx].strip() for row in reader if len(row) > idx and row[idx].strip()}
    return tuple(sorted(codes))


def code_list(catalogue: Catalogue, reference: str) -> tuple[str, ...]:
    path = catalogue.code_list(reference)
    if path is None:
        return ()
    return _read_codes(path, reference.partition(":")[2] or None)


def fits(value: str, field: Field) -> bool:
    """Whether a code can be written in the field and read back under its type."""
    if field.length and field.type == "string" and len(value) > field.length:
        return False
    if field.type == "integer":
        return value.isdigit() and (not field.length or len(value) <= field.length) and len(value) <= 18
    return field.type == "string"


def sample(codes, seed: int, salt: str, k: int) -> list[str]:
    """Up to k codes drawn deterministically (a seeded draw, not Python's salted hash)."""
    codes = list(codes)
    return codes if len(codes) <= k else random.Random(f"{seed}|{salt}").sample(codes, k)


@lru_cache(maxsize=None)
def fitting_codes(catalogue: Catalogue, reference: str, field_type: str, length: int | None) -> tuple[str, ...]:
    """The codes of a list that a field of this type and length can hold."""
    probe = Field(name="probe", type=field_type, format="default", spark_type=None, length=length)
    return tuple(c for c in code_list(catalogue, reference) if fits(c, probe))


def shuffled(codes, seed: int, salt: str) -> list[str]:
    """A deterministic order of codes, so that the 'common' codes are not alphabetical."""
    key = lambda c: hashlib.sha256(f"{seed}|{salt}|{c}".encode()).digest()  # noqa: E731
    return sorted(codes, key=key)


def indexed(spark: SparkSession, values, name: str) -> DataFrame:
    """A small (index, value) DataFrame to broadcast-join on a drawn index."""
    return spark.createDataFrame(list(enumerate(values)), T.StructType([
        T.StructField(f"{name}_idx", T.IntegerType(), False),
        T.StructField(name, T.StringType(), False)]))


def weighted_slots(items: list[tuple[str, int]], slots: int) -> list[str]:
    """Items repeated in proportion to their weight over `slots` places (frequent first)."""
    items = sorted(items, key=lambda kv: (-kv[1], kv[0]))
    total = sum(w for _, w in items) or 1
    out: list[str] = []
    carry = 0.0
    for name, weight in items:
        carry += weight * slots / total
        take = int(carry)
        if take:
            out.extend([name] * take)
            carry -= take
        if len(out) >= slots:
            break
    return out[:slots] or [items[0][0]]


@lru_cache(maxsize=None)
def insee_names(names_dir: Path) -> dict[str, list[tuple[str, int]]]:
    """First names by sex ('1' male, '2' female) and surnames, with their frequencies."""
    first: dict[str, dict[str, int]] = {"1": {}, "2": {}}
    with zipfile.ZipFile(names_dir / "insee_nat_2022.csv.zip") as z:
        name = next(n for n in z.namelist() if n.endswith(".csv"))
        with z.open(name) as raw:
            reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace"), delimiter=";")
            next(reader)
            for sex, given, _year, count in reader:
                if given.startswith("_") or sex not in first or not count.isdigit():
                    continue
                first[sex][given] = first[sex].get(given, 0) + int(count)
    surnames: dict[str, int] = {}
    with zipfile.ZipFile(names_dir / "insee_noms_2008.txt.zip") as z:
        name = next(n for n in z.namelist() if n.endswith(".txt"))
        with z.open(name) as raw:
            reader = csv.reader(io.TextIOWrapper(raw, encoding="latin-1"), delimiter="\t")
            next(reader)
            for row in reader:
                if row and row[0] and not row[0].startswith("AUTRES"):
                    surnames[row[0]] = sum(int(x) for x in row[1:] if x.isdigit())
    return {"first_1": sorted(first["1"].items()), "first_2": sorted(first["2"].items()),
            "surname": sorted(surnames.items())}

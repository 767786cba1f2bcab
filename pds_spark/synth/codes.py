"""Code lists for generated values, read from the catalogue's nomenclatures folder."""

from __future__ import annotations

import hashlib
import random
from functools import cache

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from pds_spark.catalog import Catalogue, Field
from pds_spark.catalog import codes as R
from pds_spark.catalog.names import insee_names  # noqa: F401 - the generator's people
from pds_spark.frames import local_frame


def code_list(catalogue: Catalogue, reference: str, field: Field | None = None) -> tuple[str, ...]:
    """The codes a field draws from: the list's column that quality compares it with, in the
    form it is compared in (a padded code without its leading zeros)."""
    found = R.code_list(catalogue, reference, field)
    if not found:
        return ()
    if found.kind not in ("padded", "integer"):
        return found.codes
    return tuple(sorted({n for c in found.codes if (n := R.normal(c, found.kind)) is not None}))


def fits(value: str, field: Field) -> bool:
    """Whether a code can be written in the field and read back under its type."""
    if field.length and field.type == "string" and len(value) > field.length:
        return False
    if field.type == "integer":
        return value.isdigit() and (not field.length or len(value) <= field.length) and len(value) <= 18
    if field.type == "number":
        try:
            float(value)
        except ValueError:
            return False
        return True
    return field.type == "string"


def sample(codes, seed: int, salt: str, k: int) -> list[str]:
    """Up to k codes drawn deterministically (a seeded draw, not Python's salted hash)."""
    codes = list(codes)
    return codes if len(codes) <= k else random.Random(f"{seed}|{salt}").sample(codes, k)


@cache
def fitting_codes(catalogue: Catalogue, field: Field) -> tuple[str, ...]:
    """The codes of the field's list that the field can hold."""
    if not field.nomenclature:
        return ()
    return tuple(c for c in code_list(catalogue, field.nomenclature, field) if fits(c, field))


def shuffled(codes, seed: int, salt: str) -> list[str]:
    """A deterministic order of codes, so that the 'common' codes are not alphabetical."""
    key = lambda c: hashlib.sha256(f"{seed}|{salt}|{c}".encode()).digest()  # noqa: E731
    return sorted(codes, key=key)


def indexed(spark: SparkSession, values, name: str) -> DataFrame:
    """A small (index, value) DataFrame to broadcast-join on a drawn index."""
    return local_frame(spark, list(enumerate(values)), T.StructType([
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

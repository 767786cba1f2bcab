"""HMAC-SHA256 of string columns, computed by Spark's own `sha2` inside the JVM.

HMAC(K, m) = SHA256((K' xor opad) || SHA256((K' xor ipad) || m)), K' the key padded
to 64 bytes (hashed first when longer). The two padded key blocks reach the executors
as the columns of a one-row DataFrame joined to the data, never as literals, so the
key appears in no query plan, event log or UI page (a literal would be printed in all
of them). Output: the lower-case hex digest, null for a null input.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

BLOCK = 64
IPAD_COL, OPAD_COL = "__pds_hmac_ipad", "__pds_hmac_opad"


class SecretKey:
    """Key bytes that never print: repr, str and pickling by accident show no material."""

    __slots__ = ("_material", "key_id")

    def __init__(self, material: bytes, key_id: str = "unnamed"):
        if not isinstance(material, (bytes, bytearray)) or not material:
            raise ValueError("a key must be non-empty bytes")
        self._material, self.key_id = bytes(material), key_id

    def __repr__(self) -> str:
        return f"SecretKey(key_id={self.key_id!r}, material=<redacted>)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a SecretKey is not serialisable")

    def pads(self) -> tuple[bytes, bytes]:
        """(K' xor ipad, K' xor opad)."""
        key = self._material
        if len(key) > BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(BLOCK, b"\0")
        return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def _key_frame(spark: SparkSession, key: SecretKey) -> DataFrame:
    ipad, opad = key.pads()
    schema = T.StructType([T.StructField(IPAD_COL, T.BinaryType(), False),
                           T.StructField(OPAD_COL, T.BinaryType(), False)])
    rdd = spark.sparkContext.parallelize([(bytearray(ipad), bytearray(opad))], 1)
    return spark.createDataFrame(rdd, schema)


def hmac_sha256(column: str):
    """The HMAC expression over `column`; valid on a frame joined with the key frame."""
    inner = F.unhex(F.sha2(F.concat(F.col(IPAD_COL), F.col(column).cast("string").cast("binary")), 256))
    return F.sha2(F.concat(F.col(OPAD_COL), inner), 256)


def pseudonymise(df: DataFrame, columns: Iterable[str], key: SecretKey) -> DataFrame:
    """`df` with each named string column replaced by its keyed pseudonym, in place."""
    columns = list(columns)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"columns to pseudonymise are missing: {', '.join(missing)}")
    keyed = df.crossJoin(F.broadcast(_key_frame(df.sparkSession, key)))
    return keyed.select(*[hmac_sha256(c).alias(c) if c in columns else F.col(c) for c in df.columns])

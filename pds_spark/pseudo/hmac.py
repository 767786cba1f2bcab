"""HMAC-SHA256 of string columns, computed by Spark's own `sha2` inside the JVM.

HMAC(K, m) = SHA256((K' xor opad) || SHA256((K' xor ipad) || m)), K' the key padded
to 64 bytes (hashed first when longer). The two padded key blocks reach the executors
as the columns of a one-row DataFrame joined to the data, never as literals, so the
key appears in no query plan, event log or UI page (a literal would be printed in all
of them). Output: the lower-case hex digest, null for a null input.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.jvm import select_sql
from pds_spark.sqltext import quoted

BLOCK = 64
IPAD_COL, OPAD_COL = "__pds_hmac_ipad", "__pds_hmac_opad"


class KeyFrames:
    """One-row frames of key bytes, built once per session and content, dropped by `forget`.

    A frame is built from an RDD so that no plan holds the bytes; building it runs a Python
    task (seconds), joining it again costs nothing. Its cache key is a digest of the bytes.
    """

    def __init__(self) -> None:
        self._frames: dict[tuple, DataFrame] = {}
        self._lock = threading.Lock()

    def frame(self, spark: SparkSession, columns: dict[str, bytes]) -> DataFrame:
        digest = hashlib.sha256(b"pds-frame|" + b"|".join(k.encode() + b"=" + v for k, v in columns.items())).digest()
        cache_key = (id(spark), spark.sparkContext.applicationId, digest)
        with self._lock:
            frame = self._frames.get(cache_key)
            if frame is None:
                schema = T.StructType([T.StructField(k, T.BinaryType(), False) for k in columns])
                rdd = spark.sparkContext.parallelize([tuple(bytearray(v) for v in columns.values())], 1)
                frame = spark.createDataFrame(rdd, schema).persist()
                frame.count()
                self._frames[cache_key] = frame
            return frame

    def forget(self) -> None:
        """Drop every frame (after a key is destroyed, or before the session stops)."""
        with self._lock:
            for frame in self._frames.values():
                frame.unpersist()
            self._frames.clear()


class SecretKey:
    """Key bytes that never print: repr, str and pickling by accident show no material.

    `frames`: where the frames of this key are cached (the key store's, shared by the keys it
    gives out, so that destroying a key drops them); by default the key's own.
    """

    __slots__ = ("_material", "key_id", "frames")

    def __init__(self, material: bytes, key_id: str = "unnamed", frames: KeyFrames | None = None):
        if not isinstance(material, (bytes, bytearray)) or not material:
            raise ValueError("a key must be non-empty bytes")
        self._material, self.key_id = bytes(material), key_id
        self.frames = frames if frames is not None else KeyFrames()

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

    def frame(self, spark: SparkSession, column: str) -> DataFrame:
        """A one-row frame holding the key's bytes in `column` (for Spark's AES functions)."""
        return self.frames.frame(spark, {column: self._material})


def _key_frame(spark: SparkSession, keys: Sequence[SecretKey]) -> DataFrame:
    columns = {}
    for i, key in enumerate(keys):
        columns[f"{IPAD_COL}{i}"], columns[f"{OPAD_COL}{i}"] = key.pads()
    return keys[0].frames.frame(spark, columns)


def hmac_sha256(value: str, layer: int = 0) -> str:
    """The HMAC of the SQL expression `value` as text, as SQL text (a whole select of them is one
    JVM call), valid on a frame joined with the key frame."""
    inner = f"unhex(sha2(concat(`{IPAD_COL}{layer}`, CAST(CAST({value} AS STRING) AS BINARY)), 256))"
    return f"sha2(concat(`{OPAD_COL}{layer}`, {inner}), 256)"


def _as_chain(keys: SecretKey | Sequence[SecretKey]) -> list[SecretKey]:
    chain = [keys] if isinstance(keys, SecretKey) else list(keys)
    if not chain or not all(isinstance(k, SecretKey) for k in chain):
        raise ValueError("pseudonymise needs a SecretKey or a non-empty sequence of them")
    return chain


def with_keys(df: DataFrame, keys: SecretKey | Sequence[SecretKey]) -> DataFrame:
    """`df` joined with the key frame (one broadcast row). The join copies every row:
    join while the frame is narrow (before a wide table's fields are expanded)."""
    return df.crossJoin(F.broadcast(_key_frame(df.sparkSession, _as_chain(keys))))


def chain_columns(keys: SecretKey | Sequence[SecretKey]) -> list[str]:
    """The columns `with_keys` adds for this key chain."""
    return [f"{pad}{i}" for i in range(len(_as_chain(keys))) for pad in (IPAD_COL, OPAD_COL)]


def pseudonymise(df: DataFrame, columns: Iterable[str], keys: SecretKey | Sequence[SecretKey]) -> DataFrame:
    """`df` with each named column replaced by its keyed pseudonym, in place.

    With several keys (a key's versions), each HMAC is applied over the previous one.
    """
    columns, chain = list(columns), _as_chain(keys)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"columns to pseudonymise are missing: {', '.join(missing)}")
    if not columns:
        return df
    return select_sql(with_keys(df, chain), [pseudonym_sql(c, chain) if c in columns else quoted(c)
                                             for c in df.columns])


def pseudonym_sql(column: str, keys: SecretKey | Sequence[SecretKey]) -> str:
    """`column`'s pseudonym under this key chain, named `column`, as SQL text over a frame
    joined with the chain's keys (`with_keys`)."""
    value = quoted(column)
    for layer in range(len(_as_chain(keys))):
        value = hmac_sha256(value, layer)
    return f"{value} AS {quoted(column)}"

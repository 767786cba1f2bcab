"""A text column sealed with AES-256-GCM (the quarantine's raw lines), and opened again for
an authorised review. The key reaches the executors as a joined one-row frame, never as a
literal: it appears in no plan, log or UI page."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pds_spark.pseudo.hmac import SecretKey

KEY_COLUMN = "__pds_seal_key"


def sealed(df: DataFrame, column: str, key: SecretKey, into: str) -> DataFrame:
    """`column` (text) replaced by its AES-256-GCM encryption, named `into`."""
    keyed = df.crossJoin(F.broadcast(key.frame(df.sparkSession, KEY_COLUMN)))
    value = F.aes_encrypt(F.col(column).cast("binary"), F.col(KEY_COLUMN), F.lit("GCM"))
    return keyed.withColumn(column, value).withColumnRenamed(column, into).drop(KEY_COLUMN)


def opened(df: DataFrame, key: SecretKey, column: str = "_raw_encrypted", into: str = "_raw") -> DataFrame:
    """Sealed lines in clear (`into`), for an authorised review."""
    keyed = df.crossJoin(F.broadcast(key.frame(df.sparkSession, KEY_COLUMN)))
    value = F.aes_decrypt(F.col(column), F.col(KEY_COLUMN), F.lit("GCM")).cast("string")
    return keyed.withColumn(into, value).drop(KEY_COLUMN, column)


"""The audit trail: one record per job run, append-only, hash-chained.

Each record carries the hash of the previous one (`prev_hash`) and its own
(`record_hash` = SHA-256 of the previous hash and its canonical content), so that
an edit, a deletion, an insertion or a reordering of records breaks the chain.
Records are appended with a MERGE on `seq`, so two concurrent writers cannot both
take the same place in the chain: one of them conflicts and retries.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from delta.tables import DeltaTable
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.warehouse import commit_retrying

GENESIS = "0" * 64
SECRET_NAMES = re.compile(r"key|secret|salt|password|passwd|token|credential", re.IGNORECASE)
REDACTED = "<redacted>"

SCHEMA = T.StructType([
    T.StructField("seq", T.LongType(), False),
    T.StructField("run_id", T.StringType(), False),
    T.StructField("job", T.StringType(), False),
    T.StructField("user", T.StringType(), False),
    T.StructField("started_at", T.TimestampType(), False),
    T.StructField("ended_at", T.TimestampType(), False),
    T.StructField("duration_ms", T.LongType(), False),
    T.StructField("parameters", T.StringType(), False),
    T.StructField("inputs", T.ArrayType(T.StringType(), False), False),
    T.StructField("outputs", T.ArrayType(T.StringType(), False), False),
    T.StructField("row_counts", T.MapType(T.StringType(), T.LongType(), False), False),
    T.StructField("outcome", T.StringType(), False),
    T.StructField("message", T.StringType(), True),
    T.StructField("prev_hash", T.StringType(), False),
])
CONTENT_COLUMNS = [f.name for f in SCHEMA.fields if f.name != "prev_hash"]


def redact(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as recorded: any whose name suggests a secret is replaced."""
    return {k: (REDACTED if SECRET_NAMES.search(k) and v not in (None, "") else v)
            for k, v in sorted(parameters.items())}


def canonical(prefix: str = "") -> Column:
    """The text a record's hash covers; the same expression writes and verifies."""
    c = lambda name: F.col(prefix + name)  # noqa: E731
    text = lambda col: F.coalesce(col.cast("string"), F.lit("\u0000"))  # noqa: E731
    parts = [
        text(c("prev_hash")), text(c("seq")), text(c("run_id")), text(c("job")), text(c("user")),
        text(F.unix_micros(c("started_at"))), text(F.unix_micros(c("ended_at"))),
        text(c("duration_ms")), text(c("parameters")), F.to_json(c("inputs")),
        F.to_json(c("outputs")), F.to_json(F.array_sort(F.map_entries(c("row_counts")))),
        text(c("outcome")), text(c("message")),
    ]
    return F.concat_ws("\u001f", *parts)


def record_hash(prefix: str = "") -> Column:
    return F.sha2(canonical(prefix), 256)


def python_hash(r: Mapping[str, Any]) -> str:
    """The same hash as `record_hash`, for one record as a dict (tools, tests, benchmarks)."""
    micros = lambda t: str(round(t.replace(tzinfo=t.tzinfo or UTC).timestamp() * 1_000_000))  # noqa: E731
    text = lambda v: "\u0000" if v is None else str(v)  # noqa: E731
    counts = sorted(dict(r["row_counts"]).items())
    parts = [text(r["prev_hash"]), text(r["seq"]), text(r["run_id"]), text(r["job"]), text(r["user"]),
             micros(r["started_at"]), micros(r["ended_at"]), text(r["duration_ms"]), text(r["parameters"]),
             json.dumps(list(r["inputs"]), separators=(",", ":"), ensure_ascii=False),
             json.dumps(list(r["outputs"]), separators=(",", ":"), ensure_ascii=False),
             json.dumps([{"key": k, "value": v} for k, v in counts], separators=(",", ":"), ensure_ascii=False),
             text(r["outcome"]), text(r["message"])]
    return hashlib.sha256("\u001f".join(parts).encode("utf-8")).hexdigest()


@dataclass
class AuditRecord:
    job: str
    user: str
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    outcome: str = "running"
    message: str | None = None
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None
    _t0: float = field(default_factory=time.monotonic, repr=False)

    def finish(self, outcome: str, message: str | None = None) -> None:
        self.outcome, self.message = outcome, message
        self.ended_at = datetime.now(UTC)

    def row(self, seq: int, prev_hash: str) -> tuple:
        ended = self.ended_at or datetime.now(UTC)
        return (seq, self.run_id, self.job, self.user, self.started_at, ended,
                int((time.monotonic() - self._t0) * 1000),
                json.dumps(redact(self.parameters), sort_keys=True, default=str),
                [str(i) for i in self.inputs], [str(o) for o in self.outputs],
                {k: int(v) for k, v in self.row_counts.items()}, self.outcome, self.message,
                prev_hash)


def read(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.format("delta").load(path)


def _last(spark: SparkSession, path: str) -> tuple[int, str]:
    rows = (read(spark, path).select("seq", "record_hash").orderBy(F.desc("seq")).limit(1).collect())
    return (rows[0]["seq"], rows[0]["record_hash"]) if rows else (0, GENESIS)


def append(spark: SparkSession, path: str, record: AuditRecord, attempts: int = 20) -> int:
    """Append one record at the end of the chain; returns its sequence number."""
    def attempt(exists: bool) -> int | None:
        seq, prev = _last(spark, path) if exists else (0, GENESIS)
        new = (spark.createDataFrame([record.row(seq + 1, prev)], SCHEMA)
               .withColumn("record_hash", record_hash()))
        if not exists:
            new.write.format("delta").mode("errorifexists").option("delta.appendOnly", "true").save(path)
            return seq + 1
        metrics = (DeltaTable.forPath(spark, path).alias("a")
                   .merge(new.alias("n"), "a.seq = n.seq").whenNotMatchedInsertAll().execute())
        inserted = metrics.collect()[0]["num_inserted_rows"] if metrics is not None else 1
        return seq + 1 if inserted == 1 else None  # another writer took this place: read the end again

    return commit_retrying(spark, path, attempt, "audit", attempts)


@dataclass(frozen=True)
class ChainReport:
    records: int
    first_broken_seq: int | None
    reason: str | None
    head: str | None = None  # "SEQ:HASH" of the last record: keep it elsewhere as an anchor

    @property
    def intact(self) -> bool:
        return self.first_broken_seq is None


def head(spark: SparkSession, path: str) -> str | None:
    """The anchor of the trail's end, "SEQ:HASH"; copied to a write-once place, it
    lets a later verify detect a truncated or entirely re-chained trail."""
    seq, digest = _last(spark, path)
    return f"{seq}:{digest}" if seq else None


def verify(spark: SparkSession, path: str, anchors: Sequence[str] = ()) -> ChainReport:
    """Recompute the chain in Spark (a join of each record with its predecessor, no
    driver-side collection of records) and report the first broken link; each anchor
    "SEQ:HASH" must still be in the chain. Files that cannot be read as Delta and the file
    system wrote them (a checksum that no longer matches: edited by hand) break it too."""
    anchor_hash = dict(_anchor(a) for a in anchors)  # a malformed anchor is the caller's error
    try:
        return _verify(spark, path, anchor_hash)
    except (Py4JJavaError, PySparkException) as error:
        text = str(error).strip().splitlines()
        first = next((line for line in text if "Exception" in line or "Error" in line), text[0] if text else "")
        return ChainReport(0, 0, f"the trail's files cannot be read as they were written ({first[:300]}): "
                                 "altered outside the platform")


def _verify(spark: SparkSession, path: str, anchor_hash: dict[int, str]) -> ChainReport:
    records = read(spark, path)
    recomputed = records.withColumn("expected_hash", record_hash())
    previous = records.select((F.col("seq") + 1).alias("seq"), F.col("record_hash").alias("pred_hash"))
    checked = (recomputed.join(previous, "seq", "left")
               .withColumn("expected_prev", F.when(F.col("seq") == 1, F.lit(GENESIS))
                           .otherwise(F.col("pred_hash")))
               .withColumn("problem", F.when(F.col("record_hash") != F.col("expected_hash"),
                                             F.lit("record content does not match its hash"))
                           .when(F.col("expected_prev").isNull(), F.lit("the previous record is missing"))
                           .when(F.col("prev_hash") != F.col("expected_prev"),
                                 F.lit("prev_hash does not match the previous record"))))
    last_hash = F.max_by("record_hash", "seq")
    stats = checked.agg(
        F.count("*").alias("n"), F.countDistinct("seq").alias("distinct"), F.max("seq").alias("last"),
        F.min(F.when(F.col("problem").isNotNull(), F.col("seq"))).alias("broken"), last_hash.alias("head"),
        *[F.max(F.when(F.col("seq") == seq, F.col("record_hash"))).alias(f"anchor_{seq}") for seq in anchor_hash],
    ).collect()[0]  # an aggregate: one row
    n = stats["n"]
    head_ = f"{stats['last']}:{stats['head']}" if n else None
    if stats["broken"] is not None:
        reason = (checked.where((F.col("seq") == stats["broken"]) & F.col("problem").isNotNull())
                  .select("problem").limit(1).collect()[0]["problem"])
        return ChainReport(n, stats["broken"], reason, head_)
    if n and (stats["distinct"] != n or stats["last"] != n):
        twice = records.groupBy("seq").count().where("count > 1").agg(F.min("seq")).collect()[0][0]
        return ChainReport(n, twice or 1, "sequence numbers are duplicated or do not start at 1", head_)
    for seq, digest in sorted(anchor_hash.items()):
        found = stats[f"anchor_{seq}"]
        if found != digest:
            why = "is missing (the trail was truncated)" if found is None else \
                "has another hash (the trail was rewritten from there or before)"
            return ChainReport(n, seq, f"anchor {seq}: the record {why}", head_)
    return ChainReport(n, None, None, head_)


def _anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise ValueError(f"an anchor is SEQ:HASH (as printed by 'audit head'), got {text!r}")
    return int(seq), digest.lower()

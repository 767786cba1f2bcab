"""The ledger: one row a file of a delivery, what became of it, merged once its table is committed."""

from __future__ import annotations

from datetime import datetime

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.ingest.discover import DeliveryFile
from pds_spark.ingest.outcomes import ACCOUNTED, FileOutcome
from pds_spark.warehouse import commit_retrying, delta_exists

LEDGER_SCHEMA = T.StructType([T.StructField(n, t, True) for n, t in [
    ("delivery_id", T.StringType()), ("file", T.StringType()), ("checksum", T.StringType()),
    ("size", T.LongType()), ("table", T.StringType()), ("period", T.StringType()), ("status", T.StringType()),
    ("rows_read", T.LongType()), ("rows_loaded", T.LongType()), ("rows_quarantined", T.LongType()),
    ("delta_version", T.LongType()), ("quarantine_version", T.LongType()), ("reason", T.StringType()),
    ("loaded_at", T.TimestampType())]])
LEDGER_KEY = ("delivery_id", "file", "checksum", "table")  # a file of a delivery, once


class Ledger:
    def __init__(self, spark: SparkSession, path: str, delivery_id: str, loaded_at: datetime):
        self.spark, self.path, self.delivery_id, self.loaded_at = spark, path, delivery_id, loaded_at

    def recorded(self, files: list[DeliveryFile]) -> set[tuple[str, ...]]:
        """(checksum, table) of files the ledger records as loaded, and (checksum, table, file)
        of every file it records (empty and duplicate ones too), among these files."""
        if not files or not delta_exists(self.spark, self.path):
            return set()
        sums = sorted({f.checksum for f in files})
        rows = (self.spark.read.format("delta").load(self.path).where(F.col("checksum").isin(*sums))
                .select("checksum", "table", "file", "status").distinct().collect())  # a few per file at most
        return ({(r.checksum, r.table) for r in rows if r.status in ACCOUNTED}
                | {(r.checksum, r.table, r.file) for r in rows})

    def record(self, outcomes: list[FileOutcome], attempts: int = 20) -> None:
        """The outcomes merged on (delivery, file, checksum, table): concurrent runs of one
        delivery record each file once."""
        rows = [(self.delivery_id, o.file.relative, o.file.checksum, o.file.size, o.table, o.file.period,
                 o.status, o.read, o.loaded, o.quarantined, o.delta_version, o.quarantine_version, o.reason,
                 self.loaded_at) for o in outcomes if o.status != "skipped"]
        if not rows:
            return
        new = self.spark.createDataFrame(rows, LEDGER_SCHEMA)
        on = " AND ".join(f"l.{c} = n.{c}" for c in LEDGER_KEY)

        def attempt(exists: bool) -> bool:  # after a concurrent run's commit: merged again over it
            if not exists:
                new.write.format("delta").mode("errorifexists").save(self.path)
            else:
                (DeltaTable.forPath(self.spark, self.path).alias("l").merge(new.alias("n"), on)
                 .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
            return True

        commit_retrying(self.spark, self.path, attempt, "ledger", attempts)



def loaded_periods(spark: SparkSession, path: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(table, period) -> (the Delta version of the last commit that loaded rows into it, the
    rows that commit loaded there), from the ledger at `path`."""
    if not delta_exists(spark, path):
        return {}
    ledger = (spark.read.format("delta").load(path)
              .where("status = 'loaded' AND delta_version IS NOT NULL AND table IS NOT NULL")
              .withColumn("period", F.coalesce("period", F.lit("-"))))
    rows = (ledger.groupBy("table", "period", "delta_version").agg(F.sum("rows_loaded").alias("rows"))
            .groupBy("table", "period").agg(F.max(F.struct("delta_version", "rows")).alias("last"))
            .collect())  # one row a (table, period)
    return {(r.table, r.period): (r["last"]["delta_version"], r["last"]["rows"] or 0) for r in rows}

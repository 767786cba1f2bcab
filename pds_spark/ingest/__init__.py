"""Ingestion: discover delivery files, parse with quarantine, write Delta, ledger, updates."""

from __future__ import annotations

from pyspark.sql import SparkSession

from pds_spark.ingest.discover import DeliveryFile, discover
from pds_spark.ingest.load import Loader
from pds_spark.ingest.outcomes import FileOutcome, IngestOptions, IngestResult
from pds_spark.pseudo.keystore import KeyStore
from pds_spark.pseudo.policy import Policy
from pds_spark.warehouse import Warehouse


def ingest_delivery(spark: SparkSession, warehouse: Warehouse, policy: Policy, keys: KeyStore,
                    files: list[DeliveryFile], options: IngestOptions, reload: bool = False) -> IngestResult:
    """Load `files` (from `discover`) into the warehouse; returns the per-file outcomes."""
    return Loader(spark, warehouse, policy, keys, options).run(files, reload=reload)


__all__ = ["DeliveryFile", "FileOutcome", "IngestOptions", "IngestResult", "discover", "ingest_delivery"]

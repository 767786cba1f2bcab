"""Ingestion: discover delivery files, parse with quarantine, write Delta, ledger, updates."""

from __future__ import annotations

from pds_spark.ingest.discover import DeliveryFile, discover


def ingest_delivery(spark, settings, catalogue, files, chosen_dialect, delivery_id, reload=False):
    """Load `files` (from `discover`) into the warehouse; returns the per-file outcomes."""
    from pds_spark.ingest.load import IngestOptions, Loader
    from pds_spark.ingest.rules import IngestRules
    from pds_spark.pseudo.keystore import KeyStore
    from pds_spark.pseudo.policy import Policy
    from pds_spark.warehouse import Warehouse

    rules = IngestRules.from_settings(settings)
    loader = Loader(spark, Warehouse(settings.paths.warehouse), Policy.from_settings(settings),
                    KeyStore.from_settings(settings),
                    IngestOptions(delivery_id, chosen_dialect, rules.aliases, settings.ingest.parallel))
    return loader.run(files, reload=reload)


__all__ = ["DeliveryFile", "discover", "ingest_delivery"]

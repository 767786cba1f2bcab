"""A table's quarantine: its refused lines, sealed, with their reasons; a load's periods (or
files) replaced at once, the rows received counted against the rows refused."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from pds_spark.catalog.model import Table
from pds_spark.ingest.discover import UNMAPPED, DeliveryFile
from pds_spark.ingest.outcomes import AccountingError, FileOutcome
from pds_spark.ingest.read import file_lines
from pds_spark.ingest.rows import quarantine_rows
from pds_spark.pseudo.keystore import KeyStore
from pds_spark.pseudo.sealing import sealed
from pds_spark.sqltext import in_list
from pds_spark.warehouse import Warehouse, create_table, delta_exists, replace_rows

QUARANTINE_KEY = "quarantine"
QUARANTINE_SCHEMA = T.StructType([
    T.StructField("_source_file", T.StringType(), False), T.StructField("_line", T.LongType(), False),
    T.StructField("_period", T.StringType(), False), T.StructField("_delivery_id", T.StringType(), False),
    T.StructField("_loaded_at", T.TimestampType(), False),
    T.StructField("_reasons", T.ArrayType(T.StringType(), False), False),
    T.StructField("_raw_encrypted", T.BinaryType(), False)])
REFUSED = "_source_file string, _line long, _period string, _problems array<string>, _raw string"


class Quarantine:
    def __init__(self, warehouse: Warehouse, keys: KeyStore, delivery_id: str, loaded_at: datetime):
        self.warehouse, self.keys, self.delivery_id, self.loaded_at = warehouse, keys, delivery_id, loaded_at

    def write(self, name: str, where: str, refused: DataFrame | None, expected: int,
              spark: SparkSession) -> int | None:
        """Replace the rows matching `where` in table `name`'s quarantine by these refused lines
        (`REFUSED`'s columns): the version written, None when there is nothing and no quarantine."""
        path = self.warehouse.quarantine(name)
        exists = delta_exists(spark, path)
        if refused is None and not exists:
            return None
        self.keys.ensure(QUARANTINE_KEY)
        key = self.keys.chain(QUARANTINE_KEY)[-1]
        refused = refused if refused is not None else spark.createDataFrame([], REFUSED)
        rows = sealed(quarantine_rows(refused, self.delivery_id, self.loaded_at), "_raw", key, "_raw_encrypted")
        created = not exists and create_table(spark, path, QUARANTINE_SCHEMA, [],
                                              {"pds.quarantine.key": QUARANTINE_KEY})
        version, metrics = replace_rows(rows, path, where, empty=created)
        written = int(metrics.get("numOutputRows", "0"))
        if written != expected:
            raise AccountingError(f"{name}: quarantine received {written} rows, {expected} were refused")
        return version

    def whole_files(self, table: Table | None, files: list[DeliveryFile], reasons: dict[str, str],
                    spark: SparkSession, whole: bool) -> list[FileOutcome]:
        """Every data line of these files (an unknown table's, a header that does not fit)."""
        if not files:
            return []
        lines = file_lines(spark, list(enumerate(files)), extra={
            "_reason": lambda f: reasons[f.relative], "_source_file": lambda f: f.relative,
            "_period": lambda f: f.period}, whole=whole, data_only=True)
        refused = lines.selectExpr("_source_file", "_line", "_period", "array(_reason) AS _problems", "value AS _raw")
        where = in_list("_period", sorted({f.period for f in files})) if table else \
            in_list("_source_file", [f.relative for f in files])
        version = self.write(table.name if table else UNMAPPED, where, refused,
                             sum(f.data_lines for f in files), spark)
        status = "unmapped" if table is None else "header_error"
        return [FileOutcome(f, status, 0, f.data_lines, None, version, reasons[f.relative]) for f in files]

    def unreadable(self, files: list[DeliveryFile], spark: SparkSession) -> list[FileOutcome]:
        """Files that cannot be read to their end: one row each in the unmapped quarantine (line
        0, the reason), none of their lines loaded; the ledger says why."""
        rows = [(f.relative, 0, f.period, [f.unreadable], "") for f in files]
        version = self.write(UNMAPPED, in_list("_source_file", [f.relative for f in files]),
                             spark.createDataFrame(rows, REFUSED), len(files), spark)
        return [FileOutcome(f, "unreadable", 0, 0, None, version,
                            f"{f.unreadable}; {f.data_lines:,} complete lines before the break: none loaded, "
                            "the file must be delivered again") for f in files]

"""Load a delivery into Delta: one Spark job per table, every row loaded or quarantined.

Files are sorted first (already recorded, empty, duplicate, unreadable, or to load), then
tables load a few at a time (`TableLoader`), each in the sessions its size calls for,
made once from the caller's settings. The ledger records every file once its table is
committed, so a killed run is finished by running it again.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from pds_spark.ingest.discover import UNMAPPED, DeliveryFile
from pds_spark.ingest.ledger import Ledger
from pds_spark.ingest.outcomes import FileOutcome, IngestOptions, IngestResult
from pds_spark.ingest.quarantine import Quarantine
from pds_spark.ingest.read import NUMBERED, ONE_SPLIT_A_PARTITION, PARSE
from pds_spark.ingest.table import Reading, TableLoader
from pds_spark.pseudo.keystore import KeyStore
from pds_spark.pseudo.policy import Policy
from pds_spark.session import derived_session, runtime_settings
from pds_spark.warehouse import Warehouse

log = logging.getLogger("pds.ingest")

SMALL_TABLE_BYTES = 64 << 20  # a table's files are read whole when they are together under this
WHOLE_FILE_BYTES = 8 << 20  # and none is larger than this
# Settings that earn their place on the benchmark they were made for (bench/RESULTS.md).
# Small tables: interpreted (compiling a wide table's parser costs more than running it on a
# few thousand rows), row counts but no per-column statistics (one file a period: nothing to
# skip), a new table's checksum without its file list (a Spark job a creation).
PACKED = {**PARSE, "spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN",
          "spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols": "0",
          "spark.databricks.delta.allFilesInCrc.enabled": "false"}
# A large table's good rows: the line's parse and its typed, checked columns in one projection
# (`from_csv` computed once a row rather than its fields copied into a row between two).
SPLIT = {**PARSE, **ONE_SPLIT_A_PARTITION, "spark.sql.optimizer.collapseProjectAlwaysInline": "true"}
LEDGER_EVERY = (1000, 60.0)  # the ledger is written after this many files or seconds, and at the end


@dataclass(frozen=True)
class Sessions:
    """The sessions a load reads with, made from the caller's settings (never changed)."""

    packed: SparkSession  # small tables: files read whole, many a partition
    split: SparkSession  # large tables' good rows: files split as Spark splits any file
    numbered: SparkSession  # large tables' refused lines: a file a partition

    @classmethod
    def of(cls, spark: SparkSession) -> Sessions:
        base = runtime_settings(spark)
        return cls(*(derived_session(spark, conf, base) for conf in (PACKED, SPLIT, NUMBERED)))

    def reading(self, files: list[DeliveryFile]) -> Reading:
        small = sum(f.size for f in files) < SMALL_TABLE_BYTES and max(f.size for f in files) <= WHOLE_FILE_BYTES
        return Reading(self.packed, self.packed, True) if small else Reading(self.split, self.numbered, False)


@dataclass
class Plan:
    """A delivery's files sorted: outcomes known without loading, unreadable files, tables to load."""

    outcomes: list[FileOutcome]
    unreadable: list[DeliveryFile]
    tables: list[tuple[str, list[DeliveryFile]]]


def plan(files: list[DeliveryFile], done: set[tuple[str, ...]]) -> Plan:
    """What to do with each file, given what the ledger records (`Ledger.recorded`)."""
    out = Plan([], [], [])
    by_table: dict[str, list[DeliveryFile]] = defaultdict(list)
    seen: dict[str, DeliveryFile] = {}
    for f in files:
        table = f.target
        special = f.size == 0 or f.lines == 0 or f.checksum in seen or f.unreadable
        if special and (f.checksum, table, f.relative) in done:
            out.outcomes.append(FileOutcome(f, "skipped", reason="already recorded"))
        elif f.unreadable and f.size > 0:
            out.unreadable.append(f)
        elif f.size == 0 or f.lines == 0:
            out.outcomes.append(FileOutcome(f, "empty", reason="empty file"))
        elif f.checksum in seen:
            out.outcomes.append(FileOutcome(f, "duplicate", reason=f"same content as {seen[f.checksum].relative}"))
        else:
            seen[f.checksum] = f
            by_table[table].append(f)
    for name, group in sorted(by_table.items()):
        periods: dict[str, list[DeliveryFile]] = defaultdict(list)
        for f in group:
            periods[f.period].append(f)
        todo = []
        for period_files in periods.values():  # a period is loaded again whole, or skipped
            if all((f.checksum, name) in done for f in period_files):
                out.outcomes += [FileOutcome(f, "skipped", reason="already loaded") for f in period_files]
            else:
                todo += period_files
        if todo:
            out.tables.append((name, todo))
    return out


class Loader:
    def __init__(self, spark: SparkSession, warehouse: Warehouse, policy: Policy, keys: KeyStore,
                 options: IngestOptions, progress: Callable[[str], None] = log.info):
        self.spark, self.opt, self.progress = spark, options, progress
        loaded_at = datetime.now(UTC).replace(microsecond=0)  # aware: the same instant in any TZ
        self.sessions = Sessions.of(spark)
        self.ledger = Ledger(spark, warehouse.ledger, options.delivery_id, loaded_at)
        self.quarantine = Quarantine(warehouse, keys, options.delivery_id, loaded_at)
        self.tables = TableLoader(warehouse, policy, keys, self.quarantine, options, loaded_at)

    def run(self, files: list[DeliveryFile], reload: bool = False) -> IngestResult:
        todo = plan(files, set() if reload else self.ledger.recorded(files))
        result = IngestResult(todo.outcomes)
        if todo.unreadable:  # before the tables: their other files load as usual
            result.outcomes += self.quarantine.unreadable(todo.unreadable, self.spark)
        pending = [o for o in result.outcomes if o.status in ("empty", "duplicate", "unreadable")]
        recorded = time.monotonic()
        with ThreadPoolExecutor(max_workers=max(1, self.opt.parallel)) as pool:
            futures = [pool.submit(self.load_table, name, group) for name, group in todo.tables]
            try:
                for i, future in enumerate(futures, start=1):
                    outcomes = future.result()
                    result.outcomes += outcomes
                    pending += outcomes
                    self._report(i, len(futures), todo.tables[i - 1][0], outcomes)
                    if len(pending) >= LEDGER_EVERY[0] or time.monotonic() - recorded > LEDGER_EVERY[1]:
                        self.ledger.record(pending)  # a table loaded but not yet recorded is loaded again by a re-run
                        pending, recorded = [], time.monotonic()
            except BaseException:
                for future in futures:  # tables in flight finish; none start
                    future.cancel()
                raise
        self.ledger.record(pending)
        return result

    def load_table(self, name: str, files: list[DeliveryFile]) -> list[FileOutcome]:
        started, reading = time.monotonic(), self.sessions.reading(files)
        if name == UNMAPPED:
            reasons = {f.relative: f.refused or "file: maps to no catalogue table" for f in files}
            return self.quarantine.whole_files(None, files, reasons, reading.numbered, reading.whole)
        table = files[0].table
        assert table is not None  # a file that maps to no table is UNMAPPED's
        outcomes = self.tables.load(table, files, reading)
        log.debug("%s loaded in %.1f s", name, time.monotonic() - started)
        return outcomes

    def _report(self, i: int, total: int, name: str, outcomes: list[FileOutcome]) -> None:
        self.progress(f"[{i}/{total}] {name}: {len(outcomes)} file(s), {sum(o.read for o in outcomes):,} rows: "
                      f"{sum(o.loaded for o in outcomes):,} loaded, "
                      f"{sum(o.quarantined for o in outcomes):,} quarantined")

"""Table maintenance: small files compacted (Z-ordered by the patient where a table has one),
old files vacuumed after the area's retention, never past a version an extract still records
as its source, quarantined raw lines emptied after their retention; files and bytes before and
after, per table."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pds_spark.errors import ExitCode, PdsError
from pds_spark.warehouse import Warehouse, delta_exists, table_properties

log = logging.getLogger("pds.storage")
PATIENT_COLUMNS = ("BEN_NIR_PSA", "NIR_ANO_17", "patient")
DELTA_SAFE_HOURS = 168  # Delta's own retention check (spark.databricks.delta.retentionDurationCheck)
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
LISTING = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


class RetentionError(PdsError):
    """A retention below Delta's safety check without an administrator's override."""

    exit_code = ExitCode.USAGE


@dataclass
class TableMaintenance:
    area: str
    path: str
    files_before: int = 0
    bytes_before: int = 0
    files_after: int = 0
    bytes_after: int = 0
    retention_hours: float = 0.0
    zorder: str | None = None
    pinned: int | None = None  # the oldest version an extract records as its source
    raw_emptied: int = 0  # quarantined lines whose raw text was removed
    notes: list[str] = field(default_factory=list)


def _detail(spark: SparkSession, path: str) -> tuple[int, int]:
    row = DeltaTable.forPath(spark, path).detail().select("numFiles", "sizeInBytes").first()
    return (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)


def pinned_versions(spark: SparkSession, warehouse: Warehouse) -> dict[str, int]:
    """Source table path -> the oldest version a project's extract records (`pds.extract.source`)."""
    out: dict[str, int] = {}
    projects = Path(warehouse.root) / "projects"
    for table in sorted(projects.glob("*/*")) if projects.is_dir() else []:
        if not (table / "_delta_log").is_dir():
            continue
        source = table_properties(spark, str(table)).get("pds.extract.source", "")
        path, _, version = source.rpartition("@")
        if path and version.isdigit():
            out[path] = min(out.get(path, int(version)), int(version))
    return out


def _hours_since(spark: SparkSession, path: str, version: int) -> float:
    row = DeltaTable.forPath(spark, path).history().where(F.col("version") == version).select("timestamp").first()
    if row is None:  # older than the log keeps: nothing left to protect
        return 0.0
    when = row[0].replace(tzinfo=UTC) if row[0].tzinfo is None else row[0]
    return (datetime.now(UTC) - when).total_seconds() / 3600


@contextmanager
def _session_conf(spark: SparkSession, values: Mapping[str, str]):
    """Session settings for one call, put back after."""
    before: dict[str, str | None] = {k: spark.conf.get(k, None) for k in values}
    for k, v in values.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, old in before.items():
            if old is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, old)


def _vacuum_conf(spark: SparkSession, check: bool) -> dict[str, str]:
    # VACUUM lists files with as many tasks as this setting (default 10,000): 30 s of empty
    # tasks for a small table on two cores; the cluster's cores are enough
    return {RETENTION_CHECK: "true" if check else "false",
            LISTING: str(max(spark.sparkContext.defaultParallelism, 1) * 2)}


def maintain_table(spark: SparkSession, area: str, path: str, retention_hours: float, *, pinned: int | None = None,
                   raw_days: float | None = None, short_retention: bool = False,
                   own_conf: bool = True) -> TableMaintenance:
    """Compact, expire quarantined raw lines (quarantine only), vacuum. Idempotent."""
    if retention_hours < DELTA_SAFE_HOURS and not short_retention:
        raise RetentionError(f"{area}: a retention of {retention_hours:g} h is below Delta's safety check "
                             f"({DELTA_SAFE_HOURS} h): an administrator's --allow-short-retention is needed")
    done = TableMaintenance(area, path)
    done.files_before, done.bytes_before = _detail(spark, path)
    table = DeltaTable.forPath(spark, path)
    columns = set(table.toDF().columns)
    zorder = next((c for c in PATIENT_COLUMNS if c in columns), None)
    if zorder:
        try:
            table.optimize().executeZOrderBy(zorder)
            done.zorder = zorder
        except Exception as e:  # noqa: BLE001 - Delta refuses a column without statistics: compact only
            done.notes.append(f"Z-order by {zorder} refused ({type(e).__name__}): compacted only")
            table.optimize().executeCompaction()
    else:
        table.optimize().executeCompaction()
    if raw_days is not None and "_raw_encrypted" in columns:
        cutoff = datetime.now(UTC) - timedelta(days=raw_days)
        expired = (F.col("_loaded_at") < F.lit(cutoff.replace(tzinfo=None))) & (F.length("_raw_encrypted") > 0)
        done.raw_emptied = table.toDF().where(expired).count()
        if done.raw_emptied:
            table.update(expired, {"_raw_encrypted": F.lit(bytearray())})
    hours = retention_hours
    if pinned is not None:
        done.pinned = pinned
        hours = max(hours, _hours_since(spark, path, pinned) + 1)
    done.retention_hours = round(hours, 2)
    if own_conf:  # (else `maintain` set them once for all its threads)
        with _session_conf(spark, _vacuum_conf(spark, not short_retention)):
            table.vacuum(hours)
    else:
        table.vacuum(hours)
    done.files_after, done.bytes_after = _detail(spark, path)
    return done


def tables_of(warehouse: Warehouse, areas: Iterable[str]) -> list[tuple[str, str]]:
    """(area, path) of every Delta table of these areas ('projects': every project's tables)."""
    root = Path(warehouse.root)
    out = []
    for area in areas:
        folders = root.glob("projects/*/*") if area == "projects" else (root / area).glob("*")
        out += [(area, str(p)) for p in sorted(folders) if (p / "_delta_log").is_dir()]
    return out


def maintain(spark: SparkSession, warehouse: Warehouse, retention: Mapping[str, float], raw_days: float,
             short_retention: bool = False, parallel: int = 1,
             progress: Callable[[str], None] = log.info) -> list[TableMaintenance]:
    """Every table of the areas `retention` names (area -> hours), `parallel` at a time (each is
    its own Spark jobs); a table done is done: a run stopped half-way is resumed by running it
    again (a compact table is left as it is)."""
    pins = pinned_versions(spark, warehouse)
    tables = [(a, p) for a, p in tables_of(warehouse, retention) if delta_exists(spark, p)]

    def one(area_path: tuple[str, str]) -> TableMaintenance:
        area, path = area_path
        return maintain_table(spark, area, path, retention[area], pinned=pins.get(path),
                              raw_days=raw_days if area == "quarantine" else None, short_retention=short_retention,
                              own_conf=False)

    done = []
    with _session_conf(spark, _vacuum_conf(spark, not short_retention)), \
            ThreadPoolExecutor(max_workers=max(parallel, 1)) as pool:
        for i, t in enumerate(pool.map(one, tables), 1):
            done.append(t)
            progress(f"maintenance [{i}/{len(tables)}] {t.area}/{Path(t.path).name}: {t.files_before} -> "
                     f"{t.files_after} files, {t.bytes_before:,} -> {t.bytes_after:,} bytes")
    return done

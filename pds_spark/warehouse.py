"""Where each Delta table lives under the warehouse folder (path-based tables), and the few
Delta operations every writer shares, through Delta's public API."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from delta import exceptions as dx
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from pds_spark.errors import PdsError
from pds_spark.jvm import list_hadoop_names, read_hadoop_text
from pds_spark.sqltext import quoted

log = logging.getLogger("pds.warehouse")

SAFE_NAME = re.compile(r"^[A-Za-z0-9_]+$")
T_result = TypeVar("T_result")


@dataclass(frozen=True)
class Warehouse:
    root: Path

    def _under(self, *parts: str) -> str:
        for part in parts:
            if not SAFE_NAME.match(part):
                raise ValueError(f"not a safe table or project name: {part!r}")
        return str(Path(self.root, *parts))

    @property
    def audit(self) -> str:
        return self._under("audit")

    @property
    def ledger(self) -> str:
        return self._under("ledger")

    @property
    def quality_metrics(self) -> str:
        return self._under("quality_metrics")

    def snds(self, table: str) -> str:
        return self._under("snds", table)

    def events(self, name: str) -> str:
        """The events layer's tables (care_events, patients, built)."""
        return self._under("events", name)

    def quarantine(self, table: str) -> str:
        return self._under("quarantine", table)

    def project(self, project_id: str, table: str) -> str:
        return self._under("projects", project_id, table)

    @property
    def governance(self) -> Path:
        """The governance store's folder (users, projects, entitlements, requests, staging)."""
        return Path(self._under("governance"))

    @property
    def snds_root(self) -> Path:
        return Path(self._under("snds"))

    def snds_tables(self) -> list[str]:
        """The SNDS tables loaded here (folders holding a Delta log)."""
        root = self.snds_root
        return sorted(p.name for p in root.iterdir() if (p / "_delta_log").is_dir()) if root.is_dir() else []

    def governance_table(self, name: str) -> str:
        return self._under("governance", name)

    @property
    def staging(self) -> Path:
        """Where requests' files wait for their review."""
        return Path(self._under("governance", "staging"))

    def imports(self, project_id: str) -> Path:
        """Where a project's reviewed imports arrive."""
        return Path(self._under("projects", project_id, "imports"))


def delta_conflicts() -> tuple[type[Exception], ...]:
    """Delta's exceptions for a commit that lost to a concurrent one: read again and retry."""
    return (dx.DeltaConcurrentModificationException, dx.ConcurrentAppendException, dx.ConcurrentWriteException,
            dx.ConcurrentTransactionException, dx.ConcurrentDeleteReadException, dx.ConcurrentDeleteDeleteException,
            dx.MetadataChangedException, dx.ProtocolChangedException)


def commit_retrying(spark: SparkSession, path: str, attempt: Callable[[bool], T_result | None], what: str,
                    attempts: int = 20) -> T_result:
    """`attempt(exists)` until it returns a result (not None): run again, after a pause, when its
    commit lost to a concurrent writer's, or when the table it was creating was created
    meanwhile. For writers that may run at once: the audit trail, the ledger."""
    for i in range(attempts):
        exists = delta_exists(spark, path)
        try:
            result = attempt(exists)
            if result is not None:
                return result
        except delta_conflicts():
            pass  # another writer committed first: read again
        except Exception:  # noqa: BLE001 - the table was created by a concurrent writer
            if exists or not delta_exists(spark, path):
                raise
        time.sleep(min(0.05 * (i + 1), 1.0))
    raise RuntimeError(f"{what}: could not commit to {path} after {attempts} attempts")


def delta_exists(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def table_properties(spark: SparkSession, path: str) -> dict[str, str]:
    """A Delta table's properties (SHOW TBLPROPERTIES reads the log's metadata only)."""
    return {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES delta.{quoted(str(path))}").collect()}


COMMIT_FILE = re.compile(r"^(\d{20})\.json$")


def latest_version(spark: SparkSession, path: str) -> int:
    """The table's latest version: its log's last commit file (Delta's protocol), no Spark job."""
    versions = [int(m.group(1)) for m in map(COMMIT_FILE.match, list_hadoop_names(spark, f"{path}/_delta_log")) if m]
    if not versions:
        raise PdsError(f"{path} is not a Delta table (no commit in its log)")
    return max(versions)


def added_rows(spark: SparkSession, path: str, version: int, partition: str) -> dict[str, int] | None:
    """Rows a commit added, by the value of a partition column, from its add actions' statistics
    (Delta's protocol); None when a file of it has no row count."""
    text = read_hadoop_text(spark, f"{path}/_delta_log/{version:020d}.json") or ""
    out: dict[str, int] = {}
    for action in map(json.loads, text.splitlines()):
        add = action.get("add")
        if add is None or not add.get("dataChange", True):
            continue
        records = json.loads(add.get("stats") or "{}").get("numRecords")
        if records is None:
            return None
        key = str((add.get("partitionValues") or {}).get(partition))
        out[key] = out.get(key, 0) + int(records)
    return out


def written_commit(spark: SparkSession, path: str, token: str, before: int) -> tuple[int, dict[str, str]]:
    """(version, operationMetrics) of the commit after version `before` whose `userMetadata`
    is `token`, read from the table's log (Delta's published JSON protocol), the commits after
    `before` in turn: no Spark job, where `history()` runs one. (`before`, {}) when there is none."""
    version = before + 1
    while (text := read_hadoop_text(spark, f"{path}/_delta_log/{version:020d}.json")) is not None:
        info: dict = next((a["commitInfo"] for a in map(json.loads, text.splitlines()) if "commitInfo" in a), {})
        if info.get("userMetadata") == token:
            return version, info.get("operationMetrics", {})
        version += 1
    return before, {}


def create_table(spark: SparkSession, path: str, schema: T.StructType, partition_by: list[str],
                 properties: dict[str, str]) -> bool:
    """A new Delta table made by Delta's own builder; False when another writer created it first."""
    builder = DeltaTable.create(spark).location(path).addColumns(schema)
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    for name, value in properties.items():
        builder = builder.property(name, value)
    try:
        builder.execute()
        return True
    except Exception:  # noqa: BLE001 - created by a concurrent writer first
        if not delta_exists(spark, path):
            raise
        return False


def replace_rows(rows: DataFrame, path: str, where: str, empty: bool,
                 attempts: int = 10) -> tuple[int, dict[str, str]]:
    """The rows matching `where` replaced by these, in one commit: its (version, operationMetrics),
    or the version before and no metrics when Delta had nothing to commit. A table just created
    (`empty`, at version 0) is appended to: the same commit without replaceWhere's search. A
    concurrent writer (another run of the same delivery) makes it write again with replaceWhere,
    after a conflict or when the append was not the commit right after the creation: the rows
    are the same, so the matching rows end up there once."""
    spark = rows.sparkSession
    for attempt in range(attempts):
        token = f"pds {uuid.uuid4()}"
        before = 0 if empty else latest_version(spark, path)
        writer = rows.write.format("delta").option("userMetadata", token)
        try:
            if empty:
                writer.mode("append").save(path)
            else:
                writer.mode("overwrite").option("replaceWhere", where).save(path)
        except delta_conflicts():
            log.info("%s: a concurrent writer committed first; writing again", path)
            empty = False
            time.sleep(min(0.1 * (attempt + 1), 2.0))
            continue
        version, metrics = written_commit(spark, path, token, before)
        if empty and version != 1:
            log.info("%s: another writer committed since the creation; replacing its rows", path)
            empty = False
            continue
        return version, metrics
    raise PdsError(f"{path}: could not write after {attempts} attempts: too many concurrent writers")

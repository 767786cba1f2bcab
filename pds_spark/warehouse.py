"""Where each Delta table lives under the warehouse folder (path-based tables)."""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from pds_spark.jvm import java_class
from pds_spark.sqltext import quoted

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

    def imports(self, project_id: str) -> Path:
        """Where a project's reviewed imports arrive."""
        return Path(self._under("projects", project_id, "imports"))


def delta_conflicts() -> tuple[type, ...]:
    """Delta's exceptions for a commit that lost to a concurrent one: read again and retry."""
    from delta import exceptions as dx

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
    """`DeltaTable.isDeltaTable`, its class looked up once."""
    return java_class(spark, "io.delta.tables.DeltaTable").isDeltaTable(spark._jsparkSession, path)


def table_properties(spark: SparkSession, path: str) -> dict[str, str]:
    """A Delta table's properties (SHOW TBLPROPERTIES reads the log's metadata only)."""
    return {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES delta.{quoted(str(path))}").collect()}


def latest_version(spark: SparkSession, path: str) -> int:
    """The table's latest version (a listing of its log, no Spark job)."""
    log = java_class(spark, "org.apache.spark.sql.delta.DeltaLog")
    return log.forTableWithSnapshot(spark._jsparkSession, path)._2().version()


def written_commit(spark: SparkSession, path: str, token: str, before: int) -> tuple[int, dict[str, str]]:
    """(version, operationMetrics) of the commit after version `before` whose `userMetadata`
    is `token`, read from the table's log (Delta's public JSON format), the commits after
    `before` in turn: no Spark job, where `history()` runs one (0.1 s a table), nor a listing
    of the log. (`before`, {}) when there is none."""
    conf = spark._jsc.hadoopConfiguration()
    hadoop_path = java_class(spark, "org.apache.hadoop.fs.Path")
    version = before + 1
    while True:
        file = hadoop_path(f"{path}/_delta_log/{version:020d}.json")
        try:
            stream = file.getFileSystem(conf).open(file)
        except Py4JJavaError as error:
            if _java_error(error) == "FileNotFoundException":
                return before, {}
            raise
        try:
            text = java_class(spark, "org.apache.commons.io.IOUtils").toString(stream, "UTF-8")
        finally:
            stream.close()
        info = next((a["commitInfo"] for a in map(json.loads, text.splitlines()) if "commitInfo" in a), {})
        if info.get("userMetadata") == token:
            return version, info.get("operationMetrics", {})
        version += 1


# what Delta writes for a new table with NOT NULL columns and no other table feature
NEW_TABLE_PROTOCOL = {"minReaderVersion": 1, "minWriterVersion": 2}
DEFAULTS_PREFIX = "spark.databricks.delta.properties.defaults."
# Delta's session defaults (`<DEFAULTS_PREFIX><name>`) a table created by `create_table` can
# carry as `delta.<name>`: plain properties, no table feature nor protocol change
PLAIN_DEFAULTS = {"dataSkippingNumIndexedCols", "dataSkippingStatsColumns", "checkpointInterval",
                  "logRetentionDuration", "deletedFileRetentionDuration"}


def new_table_defaults(spark: SparkSession) -> dict[str, str] | None:
    """The table properties Delta's session defaults give a new table in this session, or None
    when they name more than plain properties (a table feature, a protocol version): then
    only Delta's own CREATE TABLE makes the table they ask for, not `create_table`."""
    defaults = {k[len(DEFAULTS_PREFIX):]: v for k, v in spark.conf.getAll.items() if k.startswith(DEFAULTS_PREFIX)}
    return None if set(defaults) - PLAIN_DEFAULTS else {f"delta.{k}": v for k, v in defaults.items()}


def create_table(spark: SparkSession, path: str, schema: T.StructType, partition_by: list[str],
                 properties: dict[str, str]) -> bool:
    """A new Delta table, False when another writer created it first.

    Its first commit (commitInfo, metaData, protocol) is the one Delta's CREATE TABLE writes
    (the log's format is Delta's public protocol), put by Delta's own LogStore, which never
    overwrites a commit; then its checksum file, as Delta writes it, so that readers and the
    first write take the table's protocol and metadata from it rather than a Spark job over
    the log. Delta's command, planned and run like a query, was a fifth of a small table's
    load. `properties` is the whole configuration: Delta's session defaults are not read.
    """
    now, txn = int(time.time() * 1000), str(uuid.uuid4())
    metadata = {"id": str(uuid.uuid4()), "format": {"provider": "parquet", "options": {}},
                "schemaString": java_class(spark, "org.apache.spark.sql.types.DataType").fromJson(schema.json()).json(),
                "partitionColumns": list(partition_by),
                "configuration": dict(properties), "createdTime": now}
    info = {"timestamp": now, "operation": "CREATE TABLE",
            "operationParameters": {"partitionBy": _json(list(partition_by)), "clusterBy": "[]",
                                    "description": None, "isManaged": "false", "properties": _json(properties)},
            "isolationLevel": "Serializable", "isBlindAppend": True, "operationMetrics": {},
            "engineInfo": f"Apache-Spark/{spark.version} pds-spark", "txnId": txn}
    checksum = {"txnId": txn, "tableSizeBytes": 0, "numFiles": 0, "numMetadata": 1, "numProtocol": 1,
                "setTransactions": [], "domainMetadata": [], "metadata": metadata,
                "protocol": NEW_TABLE_PROTOCOL, "allFiles": []}
    delta_log = java_class(spark, "org.apache.spark.sql.delta.DeltaLog").forTable(spark._jsparkSession, path)
    hadoop_path = java_class(spark, "org.apache.hadoop.fs.Path")
    log_dir, conf = hadoop_path(f"{path}/_delta_log"), delta_log.newDeltaHadoopConf()
    fs = log_dir.getFileSystem(conf)
    fs.mkdirs(log_dir)
    lines = java_class(spark, "java.util.ArrayList")()
    for action in ({"commitInfo": info}, {"metaData": metadata}, {"protocol": NEW_TABLE_PROTOCOL}):
        lines.add(_json(action))
    try:
        delta_log.store().write(hadoop_path(log_dir, f"{0:020d}.json"), java_class(
            spark, "scala.jdk.javaapi.CollectionConverters").asScala(lines.iterator()), False, conf)
    except Py4JJavaError as error:
        if _java_error(error) == "FileAlreadyExistsException":
            return False
        raise
    # written aside, then renamed: a reader finds the whole file or none (then reads the log)
    staged = hadoop_path(log_dir, f".{0:020d}.crc.{txn}.tmp")
    stream = fs.create(staged, False)
    try:
        stream.write(bytearray(_json(checksum).encode()))
    finally:
        stream.close()
    if not fs.rename(staged, hadoop_path(log_dir, f"{0:020d}.crc")):
        fs.delete(staged, False)
    return True


def _java_error(error: Py4JJavaError) -> str:
    """The simple name of the Java exception behind a py4j error."""
    return error.java_exception.getClass().getSimpleName()


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))

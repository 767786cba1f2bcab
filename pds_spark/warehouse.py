"""Where each Delta table lives under the warehouse folder (path-based tables)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from pds_spark.jvm import java_class
from pds_spark.sqltext import quoted

SAFE_NAME = re.compile(r"^[A-Za-z0-9_]+$")


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
    is `token`, read from the table's log (Delta's public JSON format): no Spark job, where
    `history()` runs one (0.1 s a table). (`before`, {}) when there is none."""
    conf = spark._jsc.hadoopConfiguration()
    for v in range(latest_version(spark, path), before, -1):
        file = java_class(spark, "org.apache.hadoop.fs.Path")(f"{path}/_delta_log/{v:020d}.json")
        stream = file.getFileSystem(conf).open(file)
        try:
            text = java_class(spark, "org.apache.commons.io.IOUtils").toString(stream, "UTF-8")
        finally:
            stream.close()
        info = next((a["commitInfo"] for a in map(json.loads, text.splitlines()) if "commitInfo" in a), {})
        if info.get("userMetadata") == token:
            return v, info.get("operationMetrics", {})
    return before, {}

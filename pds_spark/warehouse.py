"""Where each Delta table lives under the warehouse folder (path-based tables)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

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
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, path)


def table_properties(spark: SparkSession, path: str) -> dict[str, str]:
    """A Delta table's properties (SHOW TBLPROPERTIES reads the log's metadata only)."""
    quoted = str(path).replace("`", "``")
    return {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES delta.`{quoted}`").collect()}

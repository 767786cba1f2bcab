"""Run the quality checks over loaded tables, store the metrics, write the report."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark import report
from pds_spark.catalog import Catalogue
from pds_spark.catalog.codes import code_list
from pds_spark.quality import drift
from pds_spark.quality.checks import Metric, check_table, code_lists
from pds_spark.quality.rules import ForeignKeyRule
from pds_spark.settings import QualitySettings
from pds_spark.warehouse import Warehouse, delta_exists

log = logging.getLogger("pds.quality")
CODE_LIST_TABLES = 25  # tables whose code lists one job checks
METRICS_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType(), False), T.StructField("run_at", T.TimestampType(), False),
    T.StructField("table", T.StringType(), False), T.StructField("check", T.StringType(), False),
    T.StructField("column", T.StringType(), True), T.StructField("period", T.StringType(), True),
    T.StructField("value", T.DoubleType(), True), T.StructField("passed", T.BooleanType(), False),
    T.StructField("severity", T.StringType(), False), T.StructField("detail", T.StringType(), True)])


def _previous_period_rows(spark: SparkSession, warehouse: Warehouse, tables: list[str]) -> dict[str, dict[str, float]]:
    """table -> period -> rows, from the latest earlier run that measured each table."""
    if not delta_exists(spark, warehouse.quality_metrics):
        return {}
    m = spark.read.format("delta").load(warehouse.quality_metrics).where(
        (F.col("check") == "period_rows") & F.col("table").isin(*tables))
    latest = m.groupBy("table").agg(F.max("run_at").alias("run_at"))
    rows = m.join(latest, ["table", "run_at"]).select("table", "period", "value").collect()  # one per period
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        out.setdefault(r.table, {})[r.period] = r.value
    return out


def run_quality(spark: SparkSession, warehouse: Warehouse, catalogue: Catalogue, tables: list[str],
                extra_fks: Sequence[ForeignKeyRule], report_path: Path, progress: Callable[[str], None] = log.info,
                quality: QualitySettings | None = None) -> tuple[list[Metric], Path]:
    """Check each table, append the metrics to the quality-metrics table, compare them with the
    previous checks (drift), write the HTML report with its charts."""
    quality = quality or QualitySettings()
    tables = list(dict.fromkeys(tables))  # a table named twice is checked once
    run_id, run_at = uuid.uuid4().hex[:12], datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    previous = _previous_period_rows(spark, warehouse, tables)
    cache: dict[str, DataFrame | None] = {}
    lock = threading.Lock()
    done = iter(range(1, len(tables) + 1))

    def load(name: str) -> DataFrame | None:
        with lock:
            if name not in cache:
                path = warehouse.snds(name)
                cache[name] = spark.read.format("delta").load(path) if delta_exists(spark, path) else None
            return cache[name]

    def check(name: str) -> list[Metric]:
        df = load(name)
        if df is None:
            return []
        found = check_table(df, catalogue.table(name), catalogue, load, extra_fks, previous.get(name, {}),
                            quality.max_period_loss, quality.max_period_growth)
        failed = [m for m in found if not m.passed]
        with lock:
            progress(f"quality [{next(done)}/{len(tables)}] {name}: {len(found)} metrics, "
                     f"{sum(m.severity == 'error' for m in failed)} errors, "
                     f"{sum(m.severity == 'warning' for m in failed)} warnings")
        return found

    batches = [tables[i:i + CODE_LIST_TABLES] for i in range(0, len(tables), CODE_LIST_TABLES)]
    batches_done = iter(range(1, len(batches) + 1))

    def check_codes(names: list[str]) -> dict[str, list[Metric]]:
        frames = [(df, catalogue.table(name)) for name in names if (df := load(name)) is not None]
        found = code_lists(frames, lambda f: code_list(catalogue, f.nomenclature, f) if f.nomenclature else None)
        with lock:
            progress(f"quality: code lists [{next(batches_done)}/{len(batches)}] ({len(names)} tables): "
                     f"{sum(not m.passed for ms in found.values() for m in ms)} columns with unknown codes")
        return found

    with ThreadPoolExecutor(quality.parallel) as pool:  # tables at a time; metrics in the tables' order
        checked = list(pool.map(check, tables))
        coded: dict[str, list[Metric]] = {}
        for batch in pool.map(check_codes, batches):
            coded |= batch
    metrics: list[Metric] = []
    for name, own in zip(tables, checked):  # a table's code lists before its rows per period
        cut = next((i for i, m in enumerate(own) if m.check == "period_rows"), len(own))
        metrics += own[:cut] + coded.get(name, []) + own[cut:]
    rows = [(run_id, run_at, m.table, m.check, m.column, m.period, m.value, m.passed, m.severity, m.detail)
            for m in metrics]
    drawn: list[drift.Series] = []
    if rows:
        spark.createDataFrame(rows, METRICS_SCHEMA).write.format("delta").mode("append").save(warehouse.quality_metrics)
        drawn = drift.series(spark, warehouse.quality_metrics, run_id, sorted({m.table for m in metrics}), quality)
        metrics += drift.findings(drawn)
    return metrics, write_report(report_path, run_id, metrics, drawn)


def write_report(path: Path, run_id: str, metrics: list[Metric], drawn: Sequence[drift.Series] = ()) -> Path:
    errors = [m for m in metrics if not m.passed and m.severity == "error"]
    warnings = [m for m in metrics if not m.passed and m.severity == "warning"]
    tables = sorted({m.table for m in metrics})
    summary = []
    for t in tables:
        mine = [m for m in metrics if m.table == t]
        rows = next((int(m.value or 0) for m in mine if m.check == "rows"), 0)
        summary.append((t, rows, sum(not m.passed and m.severity == "error" for m in mine),
                        sum(not m.passed and m.severity == "warning" for m in mine)))
    nulls = [(m.table, m.column, m.value) for m in metrics if m.check == "null_rate" and m.value and m.value > 0.5]
    ok = not errors
    verdict = (f"{len(tables)} tables checked: {len(errors)} errors, {len(warnings)} warnings"
               + ("" if ok else " - see below"))
    sections = [
        report.Section("Tables", [f"run {run_id}"], ["table", "rows", "errors", "warnings"], summary),
        report.Section("Errors (primary keys, foreign keys)", [], ["table", "check", "columns", "detail"],
                       [(m.table, m.check, m.column, m.detail) for m in errors]),
        report.Section("Warnings (code lists, rows per period, drift)", [],
                       ["table", "check", "column", "period", "detail"],
                       [(m.table, m.check, m.column, m.period, m.detail) for m in warnings]),
        report.Section("Rows per period over the checks", [
            "Each line is a period's rows at each quality check, oldest first; the shaded band is what "
            "its previous checks allow; the last point is this check, red when outside the band."],
            ["table", "period", "rows", "compared with the previous check", "over the checks"],
            [(m.table, m.period, int(m.value or 0), m.detail, _chart(drawn, m))
             for m in metrics if m.check == "period_rows"]),
        report.Section("Drift of null rates and code-list misses", [
            "Measures further from their previous checks than the band allows (none when all are steady)."],
            ["table", "check", "column", "latest", "over the checks"],
            [(s.table, s.check, s.column, f"{s.values[-1]:.1%}", report.Markup(drift.sparkline(s)))
             for s in drawn if s.check != "period_rows" and s.out_of_band]),
        report.Section("Mostly empty columns (over 50 % null)", [], ["table", "column", "null rate"], nulls),
    ]
    return report.write(path, "Quality of loaded tables", verdict, ok, sections,
                        {"run_id": run_id, "metrics": [asdict(m) for m in metrics]})


@dataclass(frozen=True)
class QualityOutcome:
    tables: list[str]
    metrics: list[Metric]
    report: Path

    @property
    def errors(self) -> list[Metric]:
        return [m for m in self.metrics if not m.passed and m.severity == "error"]

    @property
    def warnings(self) -> list[Metric]:
        return [m for m in self.metrics if not m.passed and m.severity == "warning"]

    def summary(self, most: int = 20) -> list[str]:
        """Lines for a job's summary: the counts and the report, then the first errors."""
        return [f"quality: {len(self.tables)} tables, {len(self.errors)} errors, {len(self.warnings)} warnings: "
                f"{self.report}",
                *(f"  error: {m.table} {m.check} ({m.column or m.period}): {m.detail}" for m in self.errors[:most])]


def check_tables(spark: SparkSession, warehouse: Warehouse, catalogue: Catalogue, tables: list[str],
                 rules: Sequence[ForeignKeyRule], quality: QualitySettings, report_folder: Path,
                 report_path: Path | None = None) -> QualityOutcome:
    """`run_quality` with its report in `report_path`, or in `report_folder` named by the time."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = report_path or report_folder / f"quality-{stamp}.html"
    metrics, written = run_quality(spark, warehouse, catalogue, tables, rules, path, quality=quality)
    return QualityOutcome(tables, metrics, written)


def _chart(drawn: Sequence[drift.Series], m: Metric) -> report.Markup | str:
    s = next((s for s in drawn if (s.table, s.check, s.period) == (m.table, "period_rows", m.period)), None)
    return report.Markup(drift.sparkline(s)) if s else ""

"""Drift over deliveries: each measure compared with its previous checks, and drawn.

A series is one measure of one table over the quality runs: rows of a period, the null
rate of a column, the share of a column's values outside its code list. Its latest value
is out of band when it lies further than `drift_sigmas` standard deviations from the
mean of its previous `drift_runs` values (at least `drift_min_runs` of them), and by
`drift_min_change` at least (rates) or `max_period_growth` (rows). The decision is made in
Spark over the metrics table; only the series drawn reach the driver (a table's rows per
period, and the series out of band), each at most `drift_runs + 1` points.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from pds_spark.quality.checks import Metric

SERIES_CHECKS = ("period_rows", "null_rate", "code_list")
CHARTED_TABLES = 50  # above this many tables, only the series out of band are drawn


@dataclass(frozen=True)
class Series:
    table: str
    check: str
    column: str
    period: str
    values: tuple[float, ...]  # oldest first; the last is this run's
    low: float | None  # the band around the previous values (None: too few to judge)
    high: float | None

    @property
    def out_of_band(self) -> bool:
        latest = self.values[-1]
        return self.low is not None and self.high is not None and not (self.low <= latest <= self.high)


def series(spark: SparkSession, metrics_path: str, run_id: str, tables: list[str], q) -> list[Series]:
    """The series of this run's tables, with their band; those drawn only (see module)."""
    m = (spark.read.format("delta").load(metrics_path)
         .where(F.col("table").isin(*tables) & F.col("check").isin(*SERIES_CHECKS) & F.col("value").isNotNull())
         .select("run_id", "run_at", "table", "check", F.coalesce("column", F.lit("")).alias("column"),
                 F.coalesce("period", F.lit("")).alias("period"), "value"))
    key = ["table", "check", "column", "period"]
    current = m.where(F.col("run_id") == run_id).select(*key, F.col("value").alias("latest"))
    ranked = m.where(F.col("run_id") != run_id).withColumn(
        "age", F.row_number().over(Window.partitionBy(*key).orderBy(F.col("run_at").desc())))
    previous = ranked.where(F.col("age") <= q.drift_runs).groupBy(*key).agg(
        F.count(F.lit(1)).alias("n"), F.avg("value").alias("mean"), F.stddev_pop("value").alias("sd"),
        F.sort_array(F.collect_list(F.struct("run_at", "value"))).alias("history"))
    floor = F.when(F.col("check") == "period_rows", F.col("mean") * F.lit(q.max_period_growth)) \
        .otherwise(F.lit(q.drift_min_change))
    width = F.greatest(F.col("sd") * F.lit(q.drift_sigmas), floor)
    judged = current.join(previous, key, "left").select(
        *key, "latest", "history",
        F.when(F.col("n") >= q.drift_min_runs, F.col("mean") - width).alias("low"),
        F.when(F.col("n") >= q.drift_min_runs, F.col("mean") + width).alias("high"))
    out_of_band = (F.col("latest") < F.col("low")) | (F.col("latest") > F.col("high"))
    drawn = out_of_band | (F.col("check") == "period_rows") if len(tables) <= CHARTED_TABLES else out_of_band
    rows = judged.where(drawn).collect()  # a table's periods, and the series out of band
    return sorted((Series(r.table, r.check, r.column, r.period,
                          tuple(h.value for h in (r.history or [])) + (r.latest,), r.low, r.high) for r in rows),
                  key=lambda s: (s.table, s.check, s.column, s.period))


def findings(drawn: list[Series]) -> list[Metric]:
    """A warning for each series out of band (a period's loss is judged by `period_rows` itself)."""
    out = []
    for s in drawn:
        if not s.out_of_band or s.check == "period_rows":  # rows are judged by `period_rows` itself
            continue
        assert s.low is not None and s.high is not None  # out of band: a band
        shown = (lambda v: f"{v:,.0f}") if s.check == "period_rows" else (lambda v: f"{v:.1%}")
        out.append(Metric(s.table, "drift", s.column, s.period, s.values[-1], False, "warning",
                          f"{s.check} {shown(s.values[-1])} outside {shown(max(s.low, 0))} .. {shown(s.high)} "
                          f"of its last {len(s.values) - 1} checks"))
    return out


def sparkline(s: Series, width: int = 180, height: int = 44) -> str:
    """An inline SVG: the series as a line, its band shaded, the latest point red when out of band."""
    values = s.values
    lo = min([*values, *([s.low] if s.low is not None else [])])
    hi = max([*values, *([s.high] if s.high is not None else [])])
    span = (hi - lo) or abs(hi) or 1.0
    pad = 5

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / (len(values) - 1) if len(values) > 1 else 0.5)

    def y(v: float) -> float:
        return height - pad - (height - 2 * pad) * (v - lo) / span

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">',
             f"<title>{html.escape(f'{s.table} {s.check} {s.column} {s.period}'.strip())}</title>"]
    if s.low is not None and s.high is not None:
        top, bottom = y(s.high), y(max(s.low, lo))
        parts.append(f'<rect class="band" x="{pad}" y="{top:.1f}" width="{width - 2 * pad}" '
                     f'height="{max(bottom - top, 1):.1f}" fill="#e3ecfb"/>')
    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    parts.append(f'<polyline points="{points}" fill="none" stroke="#5b8def" stroke-width="1.5"/>')
    colour = "#c62828" if s.out_of_band else "#222"
    parts.append(f'<circle class="{"out" if s.out_of_band else "latest"}" cx="{x(len(values) - 1):.1f}" '
                 f'cy="{y(values[-1]):.1f}" r="3" fill="{colour}"/>')
    return "".join(parts) + "</svg>"

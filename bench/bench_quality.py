"""Benchmark: the quality checks over many small tables (a delivery of ~150 tables, as the
platform's 2,000), against a plain Spark baseline measured in the same run.

  .venv/bin/python bench/bench_quality.py --rows 5 --repeats 3

data:     a generated corpus of every catalogue table (--rows rows a table beside the core
          tables), loaded into a Delta warehouse once.
baseline: one plain Spark job a table (`count()` of its Delta table), tables one at a time: the
          least a check of each table costs in jobs.
ours:     `quality.run.run_quality` over every loaded table at `[quality] parallel` = --parallel,
          with the code lists of CODE_LIST_TABLES tables a job (the default), and with one
          table a job (what it was before: `--batches 1 25`).
Medians of --repeats after a warm-up run; the ratios against the baseline are printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

from common import median, record, session

os.environ.setdefault("PDS_KEYSTORE_SECRET", "bench-only-passphrase-not-a-secret")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5, help="rows of each table beside the core ones")
    parser.add_argument("--parallel", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[25, 1], help="tables whose code lists a job checks")
    parser.add_argument("--repeats", type=int, default=3)
    a = parser.parse_args()
    from bench_ingest import loader

    from pds_spark.catalog import Catalogue
    from pds_spark.ingest import discover
    from pds_spark.quality import run as quality_run
    from pds_spark.quality.rules import foreign_key_rules
    from pds_spark.synth import CorpusConfig
    from pds_spark.synth.corpus import generate_corpus
    from pds_spark.warehouse import Warehouse

    settings, spark = session("bench-quality", {"spark.sql.shuffle.partitions": "2", "spark.driver.memory": "4g"})
    catalogue = Catalogue.from_settings(settings)
    root = Path(tempfile.mkdtemp(prefix="bench-quality-", dir=settings.paths.work))
    cfg = CorpusConfig(patients=50, years=1, seed=3, prestations_per_patient_year=2, other_tables=True,
                       rows_per_other_table=a.rows)
    generate_corpus(spark, catalogue, root / "corpus", cfg, settings.paths.names)
    loaded = loader(spark, settings, root / "wh", "schema", True, 4).run(discover(root / "corpus" / "delivery", catalogue))
    tables = sorted({o.file.table.name for o in loaded.outcomes if o.status == "loaded"})
    warehouse = Warehouse(root / "wh")
    rules = foreign_key_rules(settings.quality.rules)
    quality = dataclasses.replace(settings.quality, parallel=a.parallel)
    print(f"{len(tables)} tables loaded", flush=True)

    def baseline() -> float:
        t0 = time.perf_counter()
        for name in tables:
            spark.read.format("delta").load(warehouse.snds(name)).count()
        return time.perf_counter() - t0

    def ours(batch: int) -> tuple[float, int]:
        quality_run.CODE_LIST_TABLES = batch
        t0 = time.perf_counter()
        metrics, _ = quality_run.run_quality(spark, warehouse, catalogue, tables, rules, root / "q.html",
                                             progress=lambda _: None, quality=quality)
        return time.perf_counter() - t0, len(metrics)

    baseline(), [ours(b) for b in a.batches]  # warm-up
    runs: dict[str, list[float]] = {"baseline": [], **{f"ours, {b} a job": [] for b in a.batches}}
    metrics = {}
    for _ in range(a.repeats):  # alternating
        runs["baseline"].append(baseline())
        for b in a.batches:
            seconds, metrics[b] = ours(b)
            runs[f"ours, {b} a job"].append(seconds)
    quality_run.CODE_LIST_TABLES = a.batches[0]
    base = median(runs["baseline"])
    result = {"tables": len(tables), "rows a table": a.rows, "parallel": a.parallel,
              "seconds": {k: round(median(v), 1) for k, v in runs.items()},
              "ratio to baseline": {k: round(median(v) / base, 2) for k, v in runs.items() if k != "baseline"},
              "metrics": {str(b): n for b, n in metrics.items()}}
    for k, v in result["seconds"].items():
        print(f"{k}: {v} s" + (f" ({result['ratio to baseline'][k]}x the baseline)" if k != "baseline" else ""))
    assert len(set(metrics.values())) == 1, metrics  # the same metrics whatever the batches
    record("quality", result)


if __name__ == "__main__":
    main()

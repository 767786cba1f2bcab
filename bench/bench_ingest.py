"""Benchmark: ingestion against a plain Spark baseline measured in the same run.

  .venv/bin/python bench/bench_ingest.py big --patients 7000 70000 --repeats 2
  .venv/bin/python bench/bench_ingest.py small --tables 100 --parts 20 --repeats 3 --warm-up 10

big:   the ER_PRS_F files of a generated corpus at each --patients scale (70000: 10 M rows):
       baseline `spark.read.csv(schema=...).write.parquet(...)`; ours with enforcement,
       quarantine split, lineage and pseudonymisation; ours without pseudonymisation
       (the pseudonymisation overhead). At each scale, the driver's heap: its raw peak, the
       peak of what survives each collection, and what it retains after a full one.
small: a delivery of many small files (each table's file split into --parts files in
       folders part01..): baseline one `read.csv` + `write.parquet` per table; ours the
       whole delivery, per-file accounting included.
Every variant first runs --warm-up times to warm the JVM (big: on the smallest scale; small:
on the whole delivery), then --repeats times, alternating; medians are recorded, with the
driver's JIT compile time during each (how far from warm the JVM still is).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from common import (
    HeapAfterGc,
    driver_peak_mb,
    jit_seconds,
    median,
    python_peak_mb,
    record,
    reset_driver_peak,
    retained_heap_mb,
    session,
    timed,
)

os.environ.setdefault("PDS_KEYSTORE_SECRET", "bench-only-passphrase-not-a-secret")


def loader(spark, settings, warehouse: Path, the_dialect: str, pseudonymise: bool, parallel: int):
    from pds_spark.catalog import dialect
    from pds_spark.ingest.load import Loader
    from pds_spark.ingest.outcomes import IngestOptions
    from pds_spark.ingest.rules import IngestRules
    from pds_spark.pseudo.keystore import KeyStore
    from pds_spark.pseudo.policy import Policy
    from pds_spark.warehouse import Warehouse

    policy = Policy.from_settings(settings)
    if not pseudonymise:
        policy = Policy(policy.source, tuple(r for r in policy.identifiers if r.action != "pseudonym"),
                        policy.quasi_identifiers, policy.conformity)
    return Loader(spark, Warehouse(warehouse), policy, KeyStore(warehouse.parent / "keys"),
                  IngestOptions("bench", dialect(the_dialect), IngestRules.load(settings.ingest.rules).aliases, parallel),
                  progress=lambda _msg: None)


def baseline(spark, catalogue, files, out: Path, sep: str):
    """One read.csv per table over its files, with the catalogue's schema, to Parquet."""
    by_table: dict[str, list[str]] = {}
    for f in files:
        if f.table is not None and f.size:
            by_table.setdefault(f.table.name, []).append(str(f.path))
    for name, paths in sorted(by_table.items()):
        schema = catalogue.table(name).spark_schema
        (spark.read.csv(paths, schema=schema, header=True, sep=sep, dateFormat="yyyy-MM-dd")
         .write.mode("overwrite").parquet(str(out / name)))


def generate(spark, settings, catalogue, out: Path, **cfg):
    from pds_spark.synth import CorpusConfig, generate_corpus

    if not (out / "delivery").is_dir():
        generate_corpus(spark, catalogue, out, CorpusConfig(**cfg), settings.paths.names)
    return out / "delivery"


def measure(spark, variants: dict, repeats: int, warm_up: int = 1,
            runs: dict | None = None, jit: dict | None = None) -> dict[str, float]:
    """Median time of each variant, after `warm_up` runs of each; `runs` and `jit`, when
    given, receive every time measured and the driver's JIT compile seconds in each."""
    for _ in range(warm_up):
        for run in variants.values():
            run()
    times = {name: [] for name in variants}
    compiled = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            before = jit_seconds(spark)
            times[name].append(timed(run))
            compiled[name].append(round(jit_seconds(spark) - before, 1))
    if runs is not None:
        runs.update({name: [round(t, 1) for t in ts] for name, ts in times.items()})
    if jit is not None:
        jit.update(compiled)
    return {name: median(ts) for name, ts in times.items()}


def big(args, settings, spark, catalogue, work: Path):
    from pds_spark.ingest import discover

    results = {}
    warmed = False
    for patients in sorted(set(args.patients)):
        corpus = generate(spark, settings, catalogue, Path(args.corpus) / f"big-{patients}", patients=patients,
                          years=2, first_year=2019, prestations_per_patient_year=args.prestations)
        files = [f for f in discover(corpus, catalogue) if f.table and f.table.name == "ER_PRS_F"]
        rows = sum(f.data_lines for f in files)

        def ours(pseudo: bool, chosen=files):
            wh = work / f"wh-{pseudo}"
            shutil.rmtree(wh, ignore_errors=True)
            loader(spark, settings, wh, "schema", pseudo, 1).run(chosen)

        variants = {"baseline": lambda: baseline(spark, catalogue, files, work / "parquet", ","),
                    "ingest": lambda: ours(True), "ingest_without_pseudonyms": lambda: ours(False)}
        reset_driver_peak(spark)
        runs, jit = {}, {}
        with HeapAfterGc(spark) as after_gc:
            med = measure(spark, variants, args.repeats, 0 if warmed else args.warm_up, runs=runs, jit=jit)
        warmed = True
        results[rows] = {"rows": rows, "files": len(files), **{f"{k}_s": round(v, 1) for k, v in med.items()},
                         "runs_s": runs, "jit_s": jit,
                         "ratio_vs_baseline": round(med["baseline"] / med["ingest"], 3),
                         "pseudonymisation_overhead": round(med["ingest"] / med["ingest_without_pseudonyms"] - 1, 3),
                         "driver_heap_peak_mb": round(driver_peak_mb(spark)),
                         "driver_heap_after_gc_peak_mb": round(after_gc.peak),
                         "driver_heap_retained_mb": round(retained_heap_mb(spark)), "python_peak_mb": round(python_peak_mb())}
        print(results[rows], flush=True)
    out = record("ingest_big", {"repeats": args.repeats, "scales": list(results.values())})
    print(f"recorded in {out}")


def small(args, settings, spark, catalogue, work: Path):
    from pds_spark.ingest import discover

    corpus = generate(spark, settings, catalogue, Path(args.corpus) / "small-source", patients=100, years=1,
                      first_year=2020, prestations_per_patient_year=3, other_tables=True,
                      rows_per_other_table=args.rows_per_part * args.parts)
    delivery = Path(args.corpus) / f"small-{args.tables}x{args.parts}"
    if not delivery.is_dir():
        sources = sorted(p for p in corpus.rglob("*.csv"))
        chosen = {}
        for p in sources:
            resolved = catalogue.resolve(p.name)
            if resolved and len(chosen) < args.tables and resolved.table.name not in chosen:
                chosen[resolved.table.name] = p
        for path in chosen.values():
            lines = path.read_text(encoding="utf-8").splitlines(True)
            header, body = lines[0], lines[1:]
            step = max(1, -(-len(body) // args.parts))
            for i in range(args.parts):
                part = delivery / f"part{i + 1:02d}" / path.name
                part.parent.mkdir(parents=True, exist_ok=True)
                part.write_text(header + "".join(body[i * step:(i + 1) * step]), encoding="utf-8")
    files = discover(delivery, catalogue)
    tables = len({f.table.name for f in files if f.table})

    def ours():
        wh = work / "wh-small"
        shutil.rmtree(wh, ignore_errors=True)
        loader(spark, settings, wh, "schema", True, args.parallel).run(files)

    # warmed on the whole delivery: planning a table's load is most of its cost, and the
    # JVM compiles Spark's planner for a table shape only once it has seen it
    runs, jit = {}, {}
    med = measure(spark, {"baseline": lambda: baseline(spark, catalogue, files, work / "parquet-small", ","),
                          "ingest": ours}, args.repeats, args.warm_up, runs=runs, jit=jit)
    result = {"files": len(files), "tables": tables, "rows": sum(f.data_lines for f in files),
              "parallel": args.parallel, "repeats": args.repeats, **{f"{k}_s": round(v, 1) for k, v in med.items()},
              "ratio_vs_baseline": round(med["baseline"] / med["ingest"], 3),
              "warm_up": args.warm_up, "driver_heap_peak_mb": round(driver_peak_mb(spark)),
              "runs_s": runs, "jit_s": jit}
    print(result, f"recorded in {record('ingest_small_files', result)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["big", "small"])
    parser.add_argument("--patients", type=int, nargs="+", default=[7_000, 70_000])
    parser.add_argument("--prestations", type=float, default=72.0, help="ER_PRS_F rows per patient and year")
    parser.add_argument("--tables", type=int, default=147)
    parser.add_argument("--parts", type=int, default=14)
    parser.add_argument("--rows-per-part", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warm-up", type=int, default=1, help="runs of each variant before those measured")
    parser.add_argument("--corpus", default=str(Path(tempfile.gettempdir()) / "pds-bench-ingest"))
    args = parser.parse_args()

    from pds_spark.catalog import Catalogue

    settings, spark = session(f"bench-ingest-{args.which}", {"spark.databricks.delta.snapshotPartitions": "2"})
    catalogue = Catalogue.from_settings(settings)
    work = Path(args.corpus) / "work"
    work.mkdir(parents=True, exist_ok=True)
    (big if args.which == "big" else small)(args, settings, spark, catalogue, work)


if __name__ == "__main__":
    main()

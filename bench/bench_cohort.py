"""Benchmark: the events layer and a cohort built from it, against plain Spark in the same run.

  .venv/bin/python bench/bench_cohort.py --patients 250000 1000000 --repeats 3

At each scale a corpus (2 years, --prestations ER_PRS_F rows a patient and year) is generated
and ingested (pseudonymised) once, then:
  events:  ours `build_layer(full=True)` (every extractor with its filters, one Delta commit,
           partitioned by category and year) against a plain read-join-write of the same
           tables and columns (the same joins, no filter, no netting, written as Delta);
  cohort:  an index event and three criteria (an exclusion and two inclusions) plus age, from
           the events layer (partitions pruned), against the same builder over events computed
           with plain Spark joins from the raw tables (what a program over DCIR and PMSI does).
Medians after a warm-up; the driver's heap (peak after each collection) per scale.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from functools import reduce
from pathlib import Path

from bench_ingest import generate, loader, measure
from common import HeapAfterGc, median, python_peak_mb, record, reset_driver_peak, retained_heap_mb, session

os.environ.setdefault("PDS_KEYSTORE_SECRET", "bench-only-passphrase-not-a-secret")

SPEC = {
    "cohort": {"name": "bench", "period": ["2020-01-01", "2020-12-31"]},
    "index": {"category": "drug", "codes": ["A10B*"]},
    "exclude": [{"category": "drug", "codes": ["A10A*"], "window": [-365, -1]}],
    "include": [{"category": "diagnosis", "codes": ["I*", "J*", "K*"], "window": [-365, 365]},
                {"category": "act", "codes": ["A*", "B*", "D*", "E*"], "window": [-180, 180]}],
    "population": {"age": [40, 80]},
}


def raw_events(spark, wh, catalogue, categories):
    """The spec's events computed from the raw tables with plain joins (no layer)."""
    from pds_spark.cohort.layer import extractors_of

    tables = {}

    def table(name):
        if name not in tables:
            tables[name] = spark.read.format("delta").load(wh.snds(name))
        return tables[name]

    frames = [x.make({t: table(t) for t in x.tables}, catalogue) for x in extractors_of(categories)]
    return reduce(lambda a, b: a.unionByName(b), frames)


def plain_read_join_write(spark, wh, out: Path):
    """The layer's joins over the same tables and columns, nothing else, written as Delta."""
    from pyspark.sql import functions as F

    from pds_spark.cohort.events import DCIR_KEYS
    from pds_spark.cohort.layer import EXTRACTORS, PATIENTS

    def read(x, t):
        df = spark.read.format("delta").load(wh.snds(t))
        return df.select(*[c for c in x.tables[t] if c in df.columns])

    stay = ["ETA_NUM", "RSA_NUM"]
    keys = list(DCIR_KEYS)
    for x in [*EXTRACTORS, PATIENTS]:
        names = list(x.tables)
        if "ER_PRS_F" in names:
            df = read(x, "ER_PRS_F").join(read(x, names[1]), keys)
            if "IR_PHA_R" in names:
                df = df.join(read(x, "IR_PHA_R"), F.col("PHA_PRS_C13") == F.col("PHA_CIP_C13"))
        elif "T_MCOaaC" in names:
            others = [t for t in names if t != "T_MCOaaC"]
            df = reduce(lambda a, t: a.join(read(x, t), stay), others, read(x, "T_MCOaaC"))
        else:
            df = read(x, names[0])
        df.write.format("delta").mode("overwrite").save(str(out / x.name))


def scale(args, settings, spark, catalogue, work: Path, patients: int, warm_up: int) -> dict:
    from pds_spark.cohort.build import build_cohort
    from pds_spark.cohort.events import patients as patients_of
    from pds_spark.cohort.layer import build_layer, read_events, read_patients
    from pds_spark.cohort.spec import from_dict
    from pds_spark.ingest import discover
    from pds_spark.warehouse import Warehouse

    corpus = generate(spark, settings, catalogue, Path(args.corpus) / f"cohort-{patients}", patients=patients,
                      years=2, first_year=2019, prestations_per_patient_year=args.prestations)
    root = Path(args.corpus) / f"cohort-{patients}-wh"
    wh = Warehouse(root / "wh")
    if not (root / "wh" / "ledger").is_dir():
        shutil.rmtree(root, ignore_errors=True)
        loader(spark, settings, root / "wh", "schema", True, 2).run(discover(corpus, catalogue))
    build_layer(spark, wh, catalogue)
    rows = {t: spark.read.format("delta").load(wh.snds(t)).count() for t in wh.snds_tables()}
    spec = from_dict(SPEC)
    counts = {}

    def from_layer():
        _, steps = build_cohort(read_events(spark, wh, spec.categories_read, spec.reach), read_patients(spark, wh), spec)
        counts["layer"] = [s.patients for s in steps]

    def from_raw():
        raw_ben = spark.read.format("delta").load(wh.snds("IR_BEN_R"))
        _, steps = build_cohort(raw_events(spark, wh, catalogue, spec.categories_read), patients_of(raw_ben), spec)
        counts["raw"] = [s.patients for s in steps]

    reset_driver_peak(spark)
    runs_e, runs_c = {}, {}
    with HeapAfterGc(spark) as after_gc:
        events = measure(spark, {"plain_read_join_write": lambda: plain_read_join_write(spark, wh, work / "plain"),
                                 "events_layer": lambda: build_layer(spark, wh, catalogue, full=True)},
                         args.repeats, warm_up, runs=runs_e)
        cohort = measure(spark, {"raw_joins": from_raw, "events_layer": from_layer}, args.repeats, warm_up, runs=runs_c)
    assert counts["layer"] == counts["raw"], counts  # the same cohort both ways
    layer_rows = spark.read.format("delta").load(wh.events("care_events")).count()
    return {"patients": patients, "table_rows": rows, "events": layer_rows, "flowchart": counts["layer"],
            "events_build_s": {k: round(v, 1) for k, v in events.items()}, "events_runs_s": runs_e,
            "events_ratio_vs_plain": round(events["plain_read_join_write"] / events["events_layer"], 3),
            "cohort_s": {k: round(v, 2) for k, v in cohort.items()}, "cohort_runs_s": runs_c,
            "cohort_layer_over_raw": round(cohort["events_layer"] / cohort["raw_joins"], 3),
            "driver_heap_after_gc_peak_mb": round(after_gc.peak), "driver_heap_retained_mb": round(retained_heap_mb(spark)),
            "python_peak_mb": round(python_peak_mb())}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--prestations", type=float, default=2.0, help="ER_PRS_F rows per patient and year")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warm-up", type=int, default=1, help="runs of each variant before those measured")
    parser.add_argument("--corpus", default=str(Path(tempfile.gettempdir()) / "pds-bench-cohort"))
    args = parser.parse_args()
    settings, spark = session("bench-cohort")
    from pds_spark.catalog import Catalogue

    catalogue = Catalogue.from_settings(settings)
    work = Path(tempfile.mkdtemp(prefix="pds-bench-cohort-"))
    scales = []
    for i, patients in enumerate(sorted(set(args.patients))):
        scales.append(scale(args, settings, spark, catalogue, work, patients, args.warm_up if i == 0 else 0))
        print(scales[-1], flush=True)
    heaps = [s["driver_heap_after_gc_peak_mb"] for s in scales]
    out = record("cohort", {"repeats": args.repeats, "prestations": args.prestations, "spec": SPEC, "scales": scales,
                            "driver_heap_growth": round(heaps[-1] / heaps[0], 2) if len(heaps) > 1 else None,
                            "median_events_ratio": median([s["events_ratio_vs_plain"] for s in scales])})
    print(f"recorded in {out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

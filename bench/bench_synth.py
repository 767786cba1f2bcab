"""Benchmark: synthetic corpus generation against plain Spark writing CSV.

  .venv/bin/python bench/bench_synth.py --prs-rows 10000000 --repeats 1

Both are measured in the same run on a warm JVM: the baseline writes as many rows as
the generated ER_PRS_F, with as many columns, as CSV (`spark.range` + hashes). The
generator writes the whole corpus (ER_PRS_F, its satellites, PMSI, referentials).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from common import median, record, session, timed


def baseline(spark, rows: int, columns: int, out: str):
    from pyspark.sql import functions as F

    df = spark.range(rows).select(*[(F.xxhash64("id", F.lit(i)) % 100000).cast("string").alias(f"c{i}")
                                    for i in range(columns)])
    df.write.mode("overwrite").option("header", True).csv(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prs-rows", type=int, default=10_000_000, help="ER_PRS_F rows to generate")
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--scratch", default=None, help="folder for the files (deleted after each run)")
    args = parser.parse_args()

    from pds_spark.catalog import Catalogue
    from pds_spark.synth import CorpusConfig, generate_corpus, rows_by_table

    settings, spark = session("bench-synth")
    catalogue = Catalogue.from_settings(settings)
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="pds-bench-synth-"))
    per_year = 12.0
    patients = max(10, int(args.prs_rows / (args.years * per_year)))
    cfg = CorpusConfig(patients=patients, years=args.years, prestations_per_patient_year=per_year)
    columns = len(catalogue.table("ER_PRS_F").fields)

    # warm-up: compile both paths once on small data (the generator's compiled path, as measured)
    generate_corpus(spark, catalogue, scratch / "warm", CorpusConfig(patients=200), settings.paths.names,
                    interpreted=False)
    baseline(spark, 10_000, columns, str(scratch / "warm-base"))
    shutil.rmtree(scratch / "warm"), shutil.rmtree(scratch / "warm-base")

    gen_times, base_times, rows = [], [], {}
    for _ in range(args.repeats):
        base_times.append(timed(baseline, spark, cfg.prestation_rows, columns, str(scratch / "base")))
        shutil.rmtree(scratch / "base")
        summary = {}
        gen_times.append(timed(lambda: summary.update(
            generate_corpus(spark, catalogue, scratch / "gen", cfg, settings.paths.names))))
        rows = rows_by_table(summary)
        shutil.rmtree(scratch / "gen")
    prs, total = rows["ER_PRS_F"], sum(rows.values())
    g, b = median(gen_times), median(base_times)
    result = {
        "er_prs_f_rows": prs, "all_rows": total, "patients": patients, "years": args.years,
        "repeats": args.repeats, "generator_s": round(g, 1), "baseline_s": round(b, 1),
        "generator_prs_rows_per_s": round(prs / g), "generator_all_rows_per_s": round(total / g),
        "baseline_rows_per_s": round(cfg.prestation_rows / b),
        "ratio_prs_rows_vs_baseline": round((prs / g) / (cfg.prestation_rows / b), 3),
    }
    for k, v in result.items():
        print(f"{k:>28}: {v}")
    print("recorded in", record("synth", result))
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

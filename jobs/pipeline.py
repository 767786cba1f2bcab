"""The main pipeline, end to end, on whatever the settings point at.

  spark-submit.sh jobs/pipeline.py                      embedded default: generated corpus
  spark-submit.sh jobs/pipeline.py --patients 20000 --years 3

Steps today: check the catalogue, generate a synthetic delivery with its ground truth.
Ingestion, pseudonymisation and quality join this job as they land.
"""

import sys
from pathlib import Path

from pds_spark.catalog import Catalogue
from pds_spark.jobrunner import JobRun, run_job
from pds_spark.synth import CorpusConfig, generate_corpus, rows_by_table


def add_arguments(parser):
    parser.add_argument("--patients", type=int, default=2_000, help="patients in the generated corpus")
    parser.add_argument("--first-year", type=int, default=2019, help="first year of care")
    parser.add_argument("--years", type=int, default=2, help="number of years")
    parser.add_argument("--seed", type=int, default=1, help="random seed")


def body(run: JobRun):
    a, paths = run.args, run.settings.paths
    catalogue = Catalogue.from_settings(run.settings)
    run.input(paths.catalog)
    catalogue.check_in_spark(run.spark)
    run.summary.append(f"[1/2] catalogue: {len(catalogue)} tables from {paths.catalog}")
    for note in catalogue.notes():
        run.summary.append(f"      note: {note}")

    out = Path(paths.work) / "corpus"
    cfg = CorpusConfig(patients=a.patients, first_year=a.first_year, years=a.years, seed=a.seed)
    summary = generate_corpus(run.spark, catalogue, out, cfg, paths.names)
    run.output(out)
    run.count("corpus_rows", summary["rows"])
    run.summary.append(f"[2/2] synthetic delivery: {len(summary['files'])} files, {summary['rows']:,} rows")
    for table, rows in rows_by_table(summary).items():
        run.summary.append(f"      {table:<12} {rows:>10,} rows")
    run.summary.append(f"      files: {out / 'delivery'}")
    run.summary.append(f"      ground truth: {out / 'truth'}  external cohort: {out / 'external'}")
    run.summary.append(f"audit trail: {run.warehouse.audit} (Delta)")
    return 0


if __name__ == "__main__":
    sys.exit(run_job("pipeline", __doc__, body, add_arguments))

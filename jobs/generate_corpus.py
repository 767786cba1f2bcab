"""Generate a synthetic SNDS delivery (files shaped like CNAM's) with its ground truth.

  spark-submit.sh jobs/generate_corpus.py --patients 10000 --first-year 2019 --years 3
  spark-submit.sh jobs/generate_corpus.py --dialect cnam --gzip --fault-rate 0.001 --out var/work/$USER/corpus

Same seed and sizes give byte-identical files, whatever the cluster.
"""

import sys
from pathlib import Path

from pds_spark.jobrunner import JobRun, run_job
from pds_spark.synth import CorpusConfig, generate_corpus, rows_by_table


def add_arguments(parser):
    parser.add_argument("--out", help="output folder (default: <paths.work>/<you>/corpus)")
    parser.add_argument("--patients", type=int, default=2_000, help="number of patients (default 2000)")
    parser.add_argument("--first-year", type=int, default=2019, help="first year of care (default 2019)")
    parser.add_argument("--years", type=int, default=2, help="number of years (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--prestations", type=float, default=12.0,
                        help="ER_PRS_F rows per patient and year (default 12)")
    parser.add_argument("--stays", type=float, default=0.15, help="PMSI MCO stays per patient and year")
    parser.add_argument("--dialect", choices=["schema", "cnam"], default="schema",
                        help="'schema': ',' and catalogue formats; 'cnam': ';' and dd/MM/yyyy")
    parser.add_argument("--gzip", action="store_true", help="compress every file (.csv.gz)")
    parser.add_argument("--all-tables", action="store_true",
                        help="also every other catalogue table, schema-driven")
    parser.add_argument("--rows-per-table", type=int, default=50,
                        help="rows per file of the other tables (default 50)")
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="share of data lines with an injected fault, listed in truth/faults.csv")


def body(run: JobRun):
    a = run.args
    try:
        cfg = CorpusConfig(patients=a.patients, first_year=a.first_year, years=a.years, seed=a.seed,
                           prestations_per_patient_year=a.prestations, stays_per_patient_year=a.stays,
                           dialect=a.dialect, compress=a.gzip, other_tables=a.all_tables,
                           rows_per_other_table=a.rows_per_table, fault_rate=a.fault_rate)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(a.out) if a.out else run.work / "corpus"
    run.place(out, "write")
    catalogue = run.catalogue
    run.input(run.settings.paths.catalog)
    summary = generate_corpus(run.spark, catalogue, out, cfg, run.settings.paths.names)
    run.output(out)
    by_table = rows_by_table(summary)
    for table, rows in by_table.items():
        run.count(table, rows)
    run.summary.append(f"corpus written to {out}: {len(summary['files'])} files, {summary['rows']:,} rows, "
                       f"{summary['faults']} injected faults")
    for table, rows in by_table.items():
        run.summary.append(f"  {table:<14} {rows:>12,} rows")
    return 0


if __name__ == "__main__":
    sys.exit(run_job("generate_corpus", __doc__, body, add_arguments))

"""The main pipeline, end to end, on whatever the settings point at.

  spark-submit.sh jobs/pipeline.py                      embedded default: generated corpus
  spark-submit.sh jobs/pipeline.py --patients 20000 --years 3

Steps: check the catalogue; generate a synthetic delivery with its ground truth; ingest
it into the Delta warehouse (identifiers pseudonymised in the same pass, bad rows
quarantined, every file in the ledger); check the quality of the loaded tables; build the
events layer (what changed) and a demonstration cohort (conf/cohorts/planted_diabetes.toml)
with its flowchart; pseudonymise the research team's external file and validate its conformity.
"""

import sys
from pathlib import Path

from pds_spark.catalog import dialect
from pds_spark.cohort import spec as cohort_spec
from pds_spark.cohort.layer import build_layer
from pds_spark.cohort.run import write_cohort
from pds_spark.ingest import IngestOptions, discover, ingest_delivery
from pds_spark.jobrunner import JobRun, run_job
from pds_spark.pseudo.conformity import findings, name_frame
from pds_spark.pseudo.datasets import pseudonymise_frame, read_dataset, write_table
from pds_spark.quality.run import check_tables
from pds_spark.synth import CorpusConfig, generate_corpus, rows_by_table

DEMO_COHORT = Path(__file__).resolve().parent.parent / "conf" / "cohorts" / "planted_diabetes.toml"


def add_arguments(parser):
    parser.add_argument("--patients", type=int, default=2_000, help="patients in the generated corpus")
    parser.add_argument("--first-year", type=int, default=2019, help="first year of care")
    parser.add_argument("--years", type=int, default=2, help="number of years")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument("--cohort", type=Path, default=DEMO_COHORT, help="the demonstration cohort's spec")


def body(run: JobRun):
    run.authorize("pipeline")
    a, paths = run.args, run.settings.paths
    catalogue = run.catalogue
    run.input(paths.catalog)
    catalogue.check_in_spark(run.spark)
    run.summary.append(f"[1/7] catalogue: {len(catalogue)} tables from {paths.catalog}")
    for problem in catalogue.problems():
        run.summary.append(f"      {problem}")
    for note in catalogue.notes():
        run.summary.append(f"      note: {note}")

    out = run.work / "corpus"
    cfg = CorpusConfig(patients=a.patients, first_year=a.first_year, years=a.years, seed=a.seed)
    summary = generate_corpus(run.spark, catalogue, out, cfg, paths.names)
    run.output(out)
    run.count("corpus_rows", summary["rows"])
    run.summary.append(f"[2/7] synthetic delivery: {len(summary['files'])} files, {summary['rows']:,} rows")
    for table, rows in rows_by_table(summary).items():
        run.summary.append(f"      {table:<12} {rows:>10,} rows")
    run.summary.append(f"      files: {out / 'delivery'}")
    run.summary.append(f"      ground truth: {out / 'truth'}  external cohort: {out / 'external'}")

    files = discover(out / "delivery", catalogue)
    options = IngestOptions("demo", dialect("schema"), run.ingest_rules.aliases, run.settings.ingest.parallel)
    result = ingest_delivery(run.spark, run.warehouse, run.policy, run.keys, files, options)
    for key in ("read", "loaded", "quarantined"):
        run.count(f"rows {key}", result.total(key))
    run.summary.append(f"[3/7] ingested into {run.warehouse.root}/snds: {result.total('read'):,} rows read = "
                       f"{result.total('loaded'):,} loaded + {result.total('quarantined'):,} quarantined; "
                       f"ledger {run.warehouse.ledger}")
    loaded = sorted({o.file.table.name for o in result.outcomes if o.status == "loaded"})
    checked = check_tables(run.spark, run.warehouse, catalogue, loaded, run.quality_rules, run.settings.quality,
                           run.work / "reports")
    run.output(checked.report)
    summary = checked.summary()
    run.summary += ["[4/7] " + summary[0], *summary[1:]]
    errors = checked.errors

    layer = build_layer(run.spark, run.warehouse, catalogue)
    run.output(run.warehouse.events("care_events"))
    lines = layer.summary()
    run.summary += ["[5/7] " + lines[0], *lines[1:]]
    spec = cohort_spec.load(a.cohort)
    cohorts = run.work / "cohorts"
    built = write_cohort(run.spark, run.warehouse, spec, str((cohorts / spec.name).resolve()),
                         str((cohorts / f"{spec.name}_flowchart").resolve()),
                         run.work / "reports" / f"cohort_{spec.name}.html",
                         small_cell=run.settings.disclosure.small_cell)
    run.output(built.report)
    lines = built.summary()
    run.summary += [f"[6/7] demonstration {lines[0]}", *lines[1:]]

    policy, keys = run.policy, run.keys
    source = out / "external" / "cohorte_externe.csv"
    raw = read_dataset(run.spark, source)
    names = name_frame(run.spark, paths.names, policy)
    before = findings(raw, "cohorte_externe", policy, names, ["birth_year_month"])
    target = run.work / "pseudonymised" / "cohorte_externe"
    outcome = pseudonymise_frame(raw, "cohorte_externe", policy, keys)
    write_table(outcome.frame, target.resolve(), outcome.properties)
    after = findings(run.spark.read.format("delta").load(str(target.resolve())), "cohorte_externe", policy, names,
                     ["birth_year_month"])
    run.output(target)
    run.summary.append(f"[7/7] external cohort: {len(before)} conformity findings before pseudonymisation, "
                       f"{len(after)} after -> {target}")
    run.summary.append(f"audit trail: {run.warehouse.audit} (Delta)")
    run.summary.append(f"demonstration cohort's flowchart: {built.report}")
    return 3 if errors or after else 0


if __name__ == "__main__":
    sys.exit(run_job("pipeline", __doc__, body, add_arguments))

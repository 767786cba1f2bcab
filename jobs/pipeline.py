"""The main pipeline, end to end, on whatever the settings point at.

  spark-submit.sh jobs/pipeline.py                      embedded default: generated corpus
  spark-submit.sh jobs/pipeline.py --patients 20000 --years 3

Steps: check the catalogue; generate a synthetic delivery with its ground truth; ingest
it into the Delta warehouse (identifiers pseudonymised in the same pass, bad rows
quarantined, every file in the ledger) and, when [mirror] target names one, mirror what changed
into that database (jobs/mirror.py); check the quality of the loaded tables; build the
events layer (what changed) and a demonstration cohort (conf/cohorts/planted_diabetes.toml)
with its flowchart; pseudonymise the research team's external file and validate its conformity.
With --demo-export (bin/demo), an eighth step shows a project's way out: project `demo` (two
demonstration people, demo-analyst and demo-reviewer, registered as such and audited under
their names), its extract of ER_PRS_F, an export request, its review by the other person, the
Parquet export to the default workspace and its verification at arrival.
"""

import sys
from pathlib import Path

from pds_spark.catalog import dialect
from pds_spark.cohort import spec as cohort_spec
from pds_spark.cohort.layer import build_layer
from pds_spark.cohort.run import write_cohort
from pds_spark.errors import SettingsError
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
    parser.add_argument("--demo-export", action="store_true",
                        help="end with a demonstration project's extract exported and verified (step 8)")


def body(run: JobRun):
    run.authorize("pipeline")
    a, paths = run.args, run.settings.paths
    catalogue = run.catalogue
    run.input(paths.catalog)
    catalogue.check_in_spark(run.spark)
    steps = 8 if a.demo_export else 7
    run.summary.append(f"[1/{steps}] catalogue: {len(catalogue)} tables from {paths.catalog}")
    for problem in catalogue.problems():
        run.summary.append(f"      {problem}")
    for note in catalogue.notes():
        run.summary.append(f"      note: {note}")

    out = run.work / "corpus"
    cfg = CorpusConfig(patients=a.patients, first_year=a.first_year, years=a.years, seed=a.seed)
    summary = generate_corpus(run.spark, catalogue, out, cfg, paths.names)
    run.output(out)
    run.count("corpus_rows", summary["rows"])
    run.summary.append(f"[2/{steps}] synthetic delivery: {len(summary['files'])} files, {summary['rows']:,} rows")
    for table, rows in rows_by_table(summary).items():
        run.summary.append(f"      {table:<12} {rows:>10,} rows")
    run.summary.append(f"      files: {out / 'delivery'}")
    run.summary.append(f"      ground truth: {out / 'truth'}  external cohort: {out / 'external'}")

    files = discover(out / "delivery", catalogue)
    options = IngestOptions("demo", dialect("schema"), run.ingest_rules.aliases, run.settings.ingest.parallel)
    result = ingest_delivery(run.spark, run.warehouse, run.policy, run.keys, files, options)
    for key in ("read", "loaded", "quarantined"):
        run.count(f"rows {key}", result.total(key))
    run.summary.append(f"[3/{steps}] ingested into {run.warehouse.root}/snds: {result.total('read'):,} rows read = "
                       f"{result.total('loaded'):,} loaded + {result.total('quarantined'):,} quarantined; "
                       f"ledger {run.warehouse.ledger}")
    mirrored = mirror_step(run)
    run.summary += mirrored
    loaded = sorted({o.file.table.name for o in result.outcomes if o.status == "loaded"})
    checked = check_tables(run.spark, run.warehouse, catalogue, loaded, run.quality_rules, run.settings.quality,
                           run.work / "reports")
    run.output(checked.report)
    summary = checked.summary()
    run.summary += [f"[4/{steps}] " + summary[0], *summary[1:]]
    errors = checked.errors

    layer = build_layer(run.spark, run.warehouse, catalogue)
    run.output(run.warehouse.events("care_events"))
    lines = layer.summary()
    run.summary += [f"[5/{steps}] " + lines[0], *lines[1:]]
    spec = cohort_spec.load(a.cohort)
    cohorts = run.work / "cohorts"
    built = write_cohort(run.spark, run.warehouse, spec, str((cohorts / spec.name).resolve()),
                         str((cohorts / f"{spec.name}_flowchart").resolve()),
                         run.work / "reports" / f"cohort_{spec.name}.html",
                         small_cell=run.settings.disclosure.small_cell)
    run.output(built.report)
    lines = built.summary()
    run.summary += [f"[6/{steps}] demonstration {lines[0]}", *lines[1:]]

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
    run.summary.append(f"[7/{steps}] external cohort: {len(before)} conformity findings before pseudonymisation, "
                       f"{len(after)} after -> {target}")
    if a.demo_export:
        run.summary += demonstration_export(run, (a.first_year, a.first_year + a.years - 1))
    run.summary.append(f"audit trail: {run.warehouse.audit} (Delta)")
    run.summary.append(f"demonstration cohort's flowchart: {built.report}")
    return 3 if errors or after else 1 if any("FAILED" in line for line in mirrored) else 0


def mirror_step(run: JobRun) -> list[str]:
    """The warehouse mirrored into [mirror] target, when one is configured (what changed only)."""
    from pds_spark.export.workspaces import load_workspaces
    from pds_spark.mirror.run import mirror

    name = run.settings.mirror.target
    if name == "none":
        return [f"      mirror: skipped, no target configured ([mirror] target = \"none\" in {run.settings.source}; "
                f"targets in {run.settings.mirror.targets})"]
    targets = load_workspaces(run.settings.mirror.targets)
    if name not in targets:
        raise SettingsError(run.settings.source, "mirror.target", f"{name} is not in {run.settings.mirror.targets}")
    done = mirror(run.spark, run.warehouse, run.catalogue, targets[name], lineage=run.settings.mirror.lineage,
                  parallel=run.settings.mirror.parallel)
    run.output(f"{targets[name].url} schema {targets[name].schema}")
    return [f"      {line.strip()}" for line in done.summary()]


DEMO_COLUMNS = ["ER_PRS_F.BEN_NIR_PSA", "ER_PRS_F.PRS_NAT_REF", "ER_PRS_F.PRS_ACT_QTE", "ER_PRS_F.PRS_PAI_MNT"]


def demonstration_export(run: JobRun, years: tuple[int, int]) -> list[str]:
    """Project `demo`: an extract, its export requested by demo-analyst, approved by
    demo-reviewer, sent to the default workspace and verified (done once; re-runs send again)."""
    from datetime import date, timedelta

    from pyspark.sql import functions as F

    from pds_spark.access import Requests
    from pds_spark.disclosure.risk import RiskLimits
    from pds_spark.export.transfer import approved, request, send, verify
    from pds_spark.export.workspaces import load_workspaces
    from pds_spark.extract.plan import plan_extract
    from pds_spark.extract.run import run_extract

    gov, me, analyst, reviewer = run.governance(), run.caller, "demo-analyst", "demo-reviewer"
    if not gov.grants("demo"):
        for user, role in ((analyst, "analyst"), (reviewer, "reviewer")):
            if not gov.table("users").where(F.col("user") == user).count():
                gov.add_user(me, user, f"Demonstration {role}", [role])
        today = date.today()
        gov.create_project(me, "demo", "Demonstration", "demonstration only, no legal basis needed",
                           today, today + timedelta(days=365), [analyst, reviewer])
        gov.grant(me, "demo", DEMO_COLUMNS, (date(years[0], 1, 1), date(years[1], 12, 31)))
    plan = plan_extract("demo", gov.grants("demo"), ["ER_PRS_F"], [], None, None, [])
    gov.authorize(analyst, "read", plan.resource())
    d = run.settings.disclosure
    names = name_frame(run.spark, run.settings.paths.names, run.policy)
    extracted = run_extract(run.spark, run.warehouse, plan, run.policy, run.keys, names,
                            RiskLimits(d.min_k, d.max_unique_share, d.min_l), d.quasi_columns,
                            Path(run.warehouse.project("demo", "reports")) / "extract-demo.html",
                            progress=lambda _: None)
    lines = [f"[8/8] demonstration export: project demo, {extracted.summary()[0]}"]
    if not extracted.usable:
        return lines + ["      not exported: the extract is not usable"]
    requests = Requests(gov, run.settings.access.outbox)
    workspaces = load_workspaces(run.settings.export.workspaces)
    workspace = workspaces[run.settings.export.default_workspace]
    rid = request(gov, requests, analyst, "demo", ["ER_PRS_F"], workspace)
    requests.review(reviewer, rid, True, "demonstration: the extract matches the project's grant")
    sent = send(run.spark, gov, analyst, rid, approved(gov, requests, analyst, rid), workspace, run.catalogue,
                progress=lambda _: None)
    problems, where = verify(gov, rid, None, workspaces)
    run.output(sent.location)
    lines += [f"      requested by {analyst}, approved by {reviewer}: {sent.summary()[0]}",
              f"      manifest SHA-256 {sent.proof}",
              f"      verified at arrival: {'intact' if not problems else '; '.join(problems)} ({where})"]
    return lines


if __name__ == "__main__":
    sys.exit(run_job("pipeline", __doc__, body, add_arguments))

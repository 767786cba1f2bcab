"""Load a delivery of SNDS CSV files into Delta tables under the catalogue's schemas.

  spark-submit.sh jobs/ingest.py --source /data/deliveries/2026-11
  spark-submit.sh jobs/ingest.py --source DIR --tables ER_PRS_F IR_BEN_R --dialect cnam
  spark-submit.sh jobs/ingest.py --source DIR --catalog DIR --warehouse DIR

Every file under --source (any depth, .csv/.txt, gzipped or not) is mapped to its table
and period by its name (ER_PRS_F_2014.csv, T_MCO14B.csv). Each data line is loaded or
quarantined with its reasons; the ledger records every file. A file already loaded
(same SHA-256) is skipped; a re-delivered period replaces exactly that period.
Identifier columns are pseudonymised before anything is written.
A file of a table whose schema the catalogue refused goes whole to the unmapped quarantine
with the refusal as its reason; the rest of the delivery loads, and the job exits 3.
A compressed file that cannot be read to its end (truncated or corrupt) is recorded as
unreadable (ledger and unmapped quarantine, with the reason); the rest of its table loads.
Exit code 3 when the share of quarantined rows exceeds [ingest] max_quarantine_ratio, when
the quality checks find an error (keys, foreign keys, a period that lost rows), or when a
file is unreadable or belongs to a table whose schema was refused.
"""

import sys
from pathlib import Path

from pds_spark.access import Resource
from pds_spark.catalog import dialect
from pds_spark.errors import ExitCode
from pds_spark.ingest import IngestOptions, discover, ingest_delivery
from pds_spark.jobrunner import JobRun, run_job
from pds_spark.quality.run import check_tables


def add_arguments(parser):
    parser.add_argument("--source", required=True, type=Path, help="the delivery's folder")
    parser.add_argument("--catalog", type=Path,
                        help="catalogue folder (default: [paths] catalog; another: administrators only)")
    parser.add_argument("--warehouse", type=Path,
                        help="Delta warehouse (default: [paths] warehouse; another: administrators only)")
    parser.add_argument("--tables", nargs="+", metavar="TABLE", help="load only these catalogue tables")
    parser.add_argument("--dialect", choices=["auto", "schema", "cnam"], default="auto",
                        help="'schema': ',' and catalogue formats; 'cnam': ';' and dd/MM/yyyy (default: guessed)")
    parser.add_argument("--delivery-id", help="recorded on every row (default: the source folder's name)")
    parser.add_argument("--mode", choices=["update", "reload"], default="update",
                        help="update: skip files already loaded (default); reload: load every file again")
    parser.add_argument("--no-quality", action="store_true", help="skip the quality checks after the load")


def body(run: JobRun):
    a = run.args
    overrides = {}
    if a.catalog:
        overrides["paths.catalog"] = str(a.catalog.resolve())
    if a.warehouse:
        overrides["paths.warehouse"] = str(a.warehouse.resolve())
    if overrides:  # platform settings: administrators only, audited
        run.override(overrides, {k: "--" + k.split(".")[1] for k in overrides})
    run.authorize("ingest", Resource.of(columns=a.tables or ()))
    run.place(a.source, "read")
    if not a.source.is_dir():
        print(f"error: --source is not a folder: {a.source}", file=sys.stderr)
        return ExitCode.USAGE
    catalogue = run.catalogue
    files = discover(a.source, catalogue, set(a.tables) if a.tables else None, run.settings.ingest.parallel * 2)
    chosen = dialect(guess_dialect(files) if a.dialect == "auto" else a.dialect)
    run.input(a.source)
    options = IngestOptions(a.delivery_id or a.source.resolve().name, chosen, run.ingest_rules.aliases,
                            run.settings.ingest.parallel)
    result = ingest_delivery(run.spark, run.warehouse, run.policy, run.keys, files, options, reload=a.mode == "reload")
    run.output(run.warehouse.root)
    for key in ("read", "loaded", "quarantined"):
        run.count(f"rows {key}", result.total(key))
    by_status = {}
    for o in result.outcomes:
        by_status.setdefault(o.status, []).append(o)
    run.summary.append(f"delivery {a.source}: {len(files)} files ({chosen.name} dialect), "
                       + ", ".join(f"{len(v)} {k}" for k, v in sorted(by_status.items())))
    run.summary.append(f"rows: {result.total('read'):,} read = {result.total('loaded'):,} loaded "
                       f"+ {result.total('quarantined'):,} quarantined ({result.quarantine_ratio:.3%})")
    for status in ("unreadable", "unmapped", "header_error", "duplicate", "empty"):
        for o in by_status.get(status, []):
            run.summary.append(f"  {status}: {o.file.relative}: {o.reason}")
    loaded = sorted({o.file.table.name for o in result.outcomes if o.status == "loaded"})
    code = ExitCode.OK
    if loaded and not a.no_quality:
        checked = check_tables(run.spark, run.warehouse, catalogue, loaded, run.quality_rules, run.settings.quality,
                               run.work / "reports")
        run.output(checked.report)
        run.summary += checked.summary()
        if checked.errors:
            code = ExitCode.THRESHOLD  # quality errors (keys, foreign keys, a period that lost rows)
    if result.quarantine_ratio > run.settings.ingest.max_quarantine_ratio:
        run.summary.append(f"quarantine above the threshold of {run.settings.ingest.max_quarantine_ratio:.3%}")
        code = ExitCode.THRESHOLD
    refused = sorted({o.file.refused for o in result.outcomes if o.file.refused})
    if refused:
        run.summary.append(f"{len(refused)} table(s) of the delivery not loaded, their schema refused "
                           "(files in quarantine/_UNMAPPED; fix or override the schema in the catalogue "
                           "settings, then run the delivery again: what loaded is skipped):")
        run.summary += [f"  {r}" for r in refused]
        code = ExitCode.THRESHOLD
    if by_status.get("unreadable"):
        run.summary.append(f"{len(by_status['unreadable'])} file(s) could not be read to their end: "
                           "the delivery is incomplete until they are delivered again")
        code = ExitCode.THRESHOLD
    return code


def guess_dialect(files) -> str:
    semicolons = sum(1 for f in files if f.header and f.header.count(";") > f.header.count(","))
    return "cnam" if semicolons * 2 > len([f for f in files if f.header]) else "schema"


if __name__ == "__main__":
    sys.exit(run_job("ingest", __doc__, body, add_arguments))

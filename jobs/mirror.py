"""Mirror the warehouse's SNDS tables into a relational schema, and reconcile it.

  spark-submit.sh jobs/mirror.py --target portal                 what changed since the last run
  spark-submit.sh jobs/mirror.py --target portal --full          every table again
  spark-submit.sh jobs/mirror.py --target portal --reconcile [--checksums]

Targets are named in the [mirror] targets file (conf/mirrors.toml: PostgreSQL or Oracle, their
credentials from the environment or a file, never an argument). Names are the portal's: a table
named by year (T_MCOaaB) becomes one table a year (T_MCO14B), the others stay one table with a
PDS_PERIOD column; types come from the catalogue. Only the (table, period) the ledger shows
loaded since the last run are sent: a per-year table is swapped whole, a period of another
table has its rows replaced, in one transaction with the row of the target's PDS_MIRROR table
that records the Delta version mirrored (so a stopped run resumes where it was). [mirror]
parallel tables at a time; each loaded by the target's `connections`, checked by per-column
checksums before it is published. --reconcile compares, per table and period, the ledger's rows,
the warehouse's and the database's (and per-column checksums with --checksums).
Reports (HTML + JSON) in the caller's work area. Exit 0: done, or everything up to date; 1: a
table failed (the others are sent; a re-run retries it); 3: reconciliation found a table behind,
missing or different; 4: refused; 2: bad arguments or settings.
"""

import sys
from datetime import UTC, datetime

from pds_spark.errors import ExitCode, SettingsError
from pds_spark.export.workspaces import load_workspaces
from pds_spark.jobrunner import JobRun, run_job
from pds_spark.mirror.report import reconcile_report, run_report
from pds_spark.mirror.run import mirror, reconcile


def add_arguments(parser):
    parser.add_argument("--target", help="a target of the [mirror] targets file (default: [mirror] target)")
    parser.add_argument("--full", action="store_true", help="send every table again")
    parser.add_argument("--tables", nargs="+", metavar="TABLE", help="only these warehouse tables (sent or reconciled)")
    parser.add_argument("--reconcile", action="store_true", help="compare the target with the warehouse, send nothing")
    parser.add_argument("--checksums", action="store_true", help="with --reconcile: per-column checksums too")


def body(run: JobRun):
    a, settings = run.args, run.settings.mirror
    run.authorize("mirror")
    if a.checksums and not a.reconcile:
        raise SettingsError("--checksums", "checksums", "only with --reconcile")
    targets = load_workspaces(settings.targets)
    name = a.target or settings.target
    if name not in targets or not targets[name].is_database:
        known = ", ".join(sorted(t for t, w in targets.items() if w.is_database)) or "none"
        raise SettingsError(str(settings.targets), name, f"no such database target (known: {known})")
    target = targets[name]
    unknown = sorted(set(a.tables or ()) - set(run.warehouse.snds_tables()))
    if unknown:
        raise SettingsError("--tables", "tables", f"not in the warehouse: {', '.join(unknown)}")
    run.record.parameters["target"] = name
    run.output(f"{target.url} schema {target.schema}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    if a.reconcile:
        states = reconcile(run.spark, run.warehouse, run.catalogue, target, lineage=settings.lineage,
                           with_checksums=a.checksums, tables=a.tables)
        path = reconcile_report(run.work / "reports" / f"mirror-reconcile-{name}-{stamp}.html", name, states,
                                a.checksums)
        bad = [s for s in states if s.status != "up to date"]
        for s in states:
            run.count(f"periods {s.status}", 1)
        run.summary.append(f"reconciliation of {name}: {len(states) - len(bad)} of {len(states)} (table, period) "
                           f"up to date; report {path}")
        run.summary += [f"  {s.status.upper()} {s.target} {s.period}: {s.detail}" for s in bad[:20]]
        return ExitCode.THRESHOLD if bad else ExitCode.OK
    done = mirror(run.spark, run.warehouse, run.catalogue, target, lineage=settings.lineage,
                  parallel=settings.parallel, full=a.full, tables=a.tables)
    path = run_report(run.work / "reports" / f"mirror-{name}-{stamp}.html", done)
    for o in done.outcomes:
        if o.rows is not None:
            run.count("rows sent", o.rows)
    run.count("tables sent", len(done.outcomes) - len(done.failed))
    run.count("tables failed", len(done.failed))
    run.summary += done.summary() + [f"  report {path}"]
    return ExitCode.FAILED if done.failed else ExitCode.OK


if __name__ == "__main__":
    sys.exit(run_job("mirror", __doc__, body, add_arguments))

"""Check that datasets hold no direct identifier before they are released for reuse.

  spark-submit.sh jobs/validate_conformity.py --input var/work/$USER/pseudo/cohorte_externe \
      --allow birth_year_month --report var/work/$USER/reports/conformity.html

Findings: identifier columns of the policy not pseudonymised (or not dropped or
coarsened), values shaped like a NIR (13 digits and a valid key), columns of first
names or surnames, full birth dates, and quasi-identifiers beyond the project's grant.
The report names table, column and count, never a value. Exit code 3 on any finding.
"""

import sys
from datetime import UTC, datetime
from pathlib import Path

from pds_spark import report
from pds_spark.access import Resource
from pds_spark.errors import ExitCode
from pds_spark.jobrunner import JobRun, run_job
from pds_spark.pseudo.conformity import findings, name_frame
from pds_spark.pseudo.datasets import FORMATS, read_dataset


def add_arguments(parser):
    parser.add_argument("--input", required=True, action="append", type=Path,
                        help="dataset to check (CSV, Parquet or Delta); repeatable")
    parser.add_argument("--format", choices=FORMATS, help="input format (default: guessed)")
    parser.add_argument("--sep", help="CSV separator (default: guessed)")
    parser.add_argument("--allow", action="append", default=[], metavar="CATEGORY",
                        help="quasi-identifier category the project's grant allows (e.g. birth_year_month)")
    parser.add_argument("--report", type=Path, help="HTML report (default: <paths.work>/<you>/reports/conformity-<time>.html)")


def body(run: JobRun):
    a = run.args
    run.authorize("validate_conformity", Resource(columns={p.name: ("*",) for p in a.input}))
    policy = run.policy
    unknown = [c for c in a.allow if c not in policy.quasi_identifiers]
    if unknown:
        print(f"error: unknown quasi-identifier category {unknown[0]!r} "
              f"(known: {', '.join(policy.quasi_identifiers)})", file=sys.stderr)
        return ExitCode.USAGE
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = a.report or run.work / "reports" / f"conformity-{stamp}.html"
    run.place(path, "write")
    for source in a.input:
        run.place(source, "inspect")
    names = name_frame(run.spark, run.settings.paths.names, policy).cache()
    all_findings, checked = [], []
    for source in a.input:
        df = read_dataset(run.spark, source, a.format, a.sep)
        table = source.name.split(".")[0]
        found = findings(df, table, policy, names, a.allow)
        run.input(source)
        checked.append((table, str(source), len(df.columns), not found))
        all_findings += found
    names.unpersist()
    ok = not all_findings
    verdict = ("conform: no direct identifier found" if ok
               else f"NOT conform: {len(all_findings)} finding(s); nothing may be released")
    report.write(path, "Conformity validation", verdict, ok, [
        report.Section("Datasets", [f"allowed quasi-identifiers: {', '.join(a.allow) or 'none'}"],
                       ["table", "path", "columns", "conform"], checked),
        report.Section("Findings", ["counts only: values are never shown"],
                       ["table", "column", "check", "values", "detail"],
                       [(f.table, f.column, f.check, f.count, f.detail) for f in all_findings]),
    ], {"conform": ok, "allowed": a.allow, "datasets": checked,
        "findings": [f.__dict__ for f in all_findings]})
    run.output(path)
    run.count("findings", len(all_findings))
    run.summary.append(verdict)
    run.summary += [f"  {f.line()}" for f in all_findings]
    run.summary.append(f"report: {path}")
    return ExitCode.OK if ok else ExitCode.THRESHOLD


if __name__ == "__main__":
    sys.exit(run_job("validate_conformity", __doc__, body, add_arguments))

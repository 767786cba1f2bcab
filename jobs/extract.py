"""Extract a project's data from the SNDS tables into its own area.

  spark-submit.sh jobs/extract.py --project p042 --cohort planted_diabetes --tables ER_PRS_F IR_BEN_R
  spark-submit.sh jobs/extract.py --project p042 --columns ER_PRS_F.BEN_NIR_PSA ER_PRS_F.PRS_NAT_REF \
      --period 2020-01-01 2020-12-31 --sensitive ER_PRS_F.PRS_NAT_REF

Writes projects/<P>/<TABLE> for each table: only the columns the project is granted (a table
named alone: all its granted columns), only the periods inside the granted period (or
--period), only the patients of --cohort (projects/<P>/cohort_<C>, from jobs/build_cohort.py),
every pseudonym keyed again with the project's key, the source's Delta version recorded in
the table's properties. Conformity validation and the re-identification risk gate
([disclosure] settings: k, unique share, l of --sensitive) then run on what was written; the
table's `pds.extract.status` becomes usable or blocked, and the report (HTML + JSON) in
projects/<P>/reports/ says why. Exit 0: usable; 3: written but blocked; 4: refused by the grant
(a table, column or period outside it, a second potentially identifying category, an expired
grant), audited; 2: bad arguments.
"""

import sys
from datetime import UTC, date, datetime
from pathlib import Path

from pds_spark.disclosure.risk import RiskLimits
from pds_spark.errors import ExitCode
from pds_spark.extract.plan import plan_extract
from pds_spark.extract.run import run_extract
from pds_spark.jobrunner import JobRun, run_job
from pds_spark.pseudo.conformity import name_frame


def add_arguments(parser):
    parser.add_argument("--project", required=True, help="the project the extract is for")
    parser.add_argument("--tables", nargs="*", default=[], help="tables, each with all its granted columns")
    parser.add_argument("--columns", nargs="*", default=[], help="TABLE.COLUMN, to extract fewer columns")
    parser.add_argument("--cohort", help="keep only this project cohort's patients (cohort_<name>)")
    parser.add_argument("--period", nargs=2, type=date.fromisoformat, metavar=("FROM", "TO"),
                        help="narrower than the grant (default: the grant's period)")
    parser.add_argument("--sensitive", nargs="*", default=[], help="TABLE.COLUMN whose l-diversity is gated")


def body(run: JobRun):
    a = run.args
    plan = plan_extract(a.project, run.governance().grants(a.project), a.tables, a.columns,
                        tuple(a.period) if a.period else None, a.cohort, a.sensitive)
    run.authorize("read", plan.resource())
    wh = run.warehouse
    d = run.settings.disclosure
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    report_path = Path(wh.project(a.project, "reports")) / f"extract-{stamp}.html"
    names = name_frame(run.spark, run.settings.paths.names, run.policy).cache()
    try:
        outcome = run_extract(run.spark, wh, plan, run.policy, run.keys, names,
                              RiskLimits(d.min_k, d.max_unique_share, d.min_l), d.quasi_columns, report_path)
    finally:
        names.unpersist()
    for t in outcome.tables:
        run.output(t.path)
        run.count(f"rows {t.table}", t.rows)
    run.output(str(outcome.report))
    run.summary += outcome.summary()
    return ExitCode.OK if outcome.usable else ExitCode.THRESHOLD


if __name__ == "__main__":
    sys.exit(run_job("extract", __doc__, body, add_arguments))

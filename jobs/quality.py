"""Check the quality of loaded tables and write a report a person can read.

  spark-submit.sh jobs/quality.py                       every table of the warehouse
  spark-submit.sh jobs/quality.py --tables ER_PRS_F ER_PHA_F --report var/work/reports/quality.html

Checks (rules from the catalogue, plus conf/ingest.toml): primary-key uniqueness,
foreign keys across tables (ER_PHA_F -> ER_PRS_F on the 9 keys, PMSI NIR_ANO_17 ->
IR_BEN_R), codes outside their code list, null rates and value ranges per column,
rows per period against the previous load. Metrics go to the quality-metrics table.
Exit code 3 when a primary or foreign key check fails.
"""

import sys
from pathlib import Path

from pds_spark.access import Resource
from pds_spark.errors import ExitCode
from pds_spark.jobrunner import JobRun, run_job
from pds_spark.quality.run import check_tables


def add_arguments(parser):
    parser.add_argument("--tables", nargs="+", metavar="TABLE", help="tables to check (default: all loaded)")
    parser.add_argument("--report", type=Path, help="HTML report (default: <paths.work>/<you>/reports/quality-<time>.html)")


def body(run: JobRun):
    run.authorize("quality", Resource.of(columns=run.args.tables or ()))
    if run.args.report:
        run.place(run.args.report, "write")
    catalogue = run.catalogue
    tables = [catalogue.table(t).name for t in run.args.tables] if run.args.tables else run.warehouse.snds_tables()
    if not tables:
        print("error: no loaded table to check", file=sys.stderr)
        return ExitCode.USAGE
    checked = check_tables(run.spark, run.warehouse, catalogue, tables, run.quality_rules, run.settings.quality,
                           run.work / "reports", run.args.report)
    run.output(checked.report)
    run.summary += checked.summary()
    return ExitCode.THRESHOLD if checked.errors else ExitCode.OK


if __name__ == "__main__":
    sys.exit(run_job("quality", __doc__, body, add_arguments))

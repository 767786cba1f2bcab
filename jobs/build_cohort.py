"""Build a project's cohort from a specification (conf/cohorts/*.toml) over the events layer.

  spark-submit.sh jobs/build_cohort.py --spec conf/cohorts/planted_diabetes.toml --project p042

Reads only what the project's grant allows: the source tables and columns of the spec's
event categories and of the population (IR_BEN_R), over the study period widened by the
criteria's windows; otherwise refused (exit 4) and audited. Writes, under the project:
cohort_<name> (patient, index_date, follow_up_end, age, sex; `patient` under the project's own
key) and cohort_<name>_flowchart (Delta), and reports/cohort_<name>.html with .json (the
attrition flowchart and the age-sex pyramid as pictures, cells of 1 to disclosure.small_cell
patients suppressed, and as many others as keep them from being recomputed).
A malformed spec exits 2 naming its file and key.
"""

import sys
from pathlib import Path

from pds_spark.cohort import spec as cohort_spec
from pds_spark.cohort.run import cohort_resource, write_cohort
from pds_spark.jobrunner import JobRun, run_job


def add_arguments(parser):
    parser.add_argument("--spec", type=Path, required=True, help="the cohort specification (TOML)")
    parser.add_argument("--project", required=True, help="the project the cohort is built for")


def body(run: JobRun):
    spec = cohort_spec.load(run.args.spec)
    run.input(str(run.args.spec))
    project = run.args.project
    run.authorize("read", cohort_resource(project, spec))
    wh = run.warehouse
    outcome = write_cohort(run.spark, wh, spec, wh.project(project, f"cohort_{spec.name}"),
                           wh.project(project, f"cohort_{spec.name}_flowchart"),
                           Path(wh.project(project, "reports")) / f"cohort_{spec.name}.html",
                           project=project, keys=run.keys, small_cell=run.settings.disclosure.small_cell)
    for path in (outcome.cohort, outcome.flowchart, outcome.report):
        run.output(str(path))
    run.count("patients", outcome.patients)
    run.summary += outcome.summary()
    return 0


if __name__ == "__main__":
    sys.exit(run_job("build_cohort", __doc__, body, add_arguments))

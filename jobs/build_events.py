"""Build the events layer: every care event of the warehouse (drugs and their ATC class,
acts, hospital diagnoses, long-term conditions, deaths) in one Delta table partitioned by
category and year, and the patients (birth, sex, death). Run after ingestion (the pipeline
does); only the parts whose source tables changed since the last build are rebuilt.

  spark-submit.sh jobs/build_events.py            what changed since the last build
  spark-submit.sh jobs/build_events.py --full     everything again

Writes <warehouse>/events/{care_events,patients,built}. Needs the engineer role (exit 4).
"""

import sys

from pds_spark.cohort.layer import build_layer
from pds_spark.jobrunner import JobRun, run_job


def add_arguments(parser):
    parser.add_argument("--full", action="store_true", help="rebuild every part, changed or not")


def body(run: JobRun):
    run.authorize("build_events")
    built = build_layer(run.spark, run.warehouse, run.catalogue, full=run.args.full)
    run.output(run.warehouse.events("care_events"))
    run.count("events", built.events)
    run.summary += built.summary()
    return 0


if __name__ == "__main__":
    sys.exit(run_job("build_events", __doc__, body, add_arguments))

"""Maintain the warehouse's tables and end the projects whose authorisation has ended.

  spark-submit.sh jobs/maintenance.py                        every area
  spark-submit.sh jobs/maintenance.py --areas snds quarantine
  spark-submit.sh jobs/maintenance.py --allow-short-retention --set storage.projects_retention_hours=0

Per Delta table: small files compacted (OPTIMIZE, Z-ordered by the patient's pseudonym where the
table has one), quarantined raw lines emptied after [storage] quarantine_raw_days, then VACUUM
after the area's retention ([storage] *_retention_hours); a source version a project's extract
records is kept whatever the retention. A retention below Delta's safety check (168 h) needs
--allow-short-retention, for administrators only, and is audited. Projects whose end date has
passed are closed first (their data and key destroyed: jobs/admin.py project close). A report
(HTML + JSON) in the caller's work area gives files and bytes before and after, per table.
[storage] parallel tables at a time. Re-running is harmless and resumes a stopped run (a
table already compact stays as it is). Exit 0; 4: refused; 2: a
retention below the safety check without the override.
"""

import sys
from dataclasses import asdict
from datetime import UTC, datetime

from pyspark.sql import functions as F

from pds_spark import report
from pds_spark.access import Requests
from pds_spark.errors import ExitCode
from pds_spark.jobrunner import JobRun, run_job
from pds_spark.storage.close import close_project
from pds_spark.storage.maintain import DELTA_SAFE_HOURS, RetentionError, maintain

AREAS = ("snds", "events", "quarantine", "projects")


def add_arguments(parser):
    parser.add_argument("--areas", nargs="+", choices=AREAS, default=list(AREAS))
    parser.add_argument("--allow-short-retention", action="store_true",
                        help=f"administrators: vacuum below Delta's {DELTA_SAFE_HOURS} h safety check (audited)")
    parser.add_argument("--no-close", action="store_true", help="do not close projects whose end date has passed")


def body(run: JobRun):
    a = run.args
    run.authorize("pipeline")  # an engineer's job
    storage = run.settings.storage
    retention = {k: v for k, v in storage.retention().items() if k in a.areas}
    short = [f"{k} {v:g} h" for k, v in retention.items() if v < DELTA_SAFE_HOURS]
    if short:
        if not a.allow_short_retention:
            raise RetentionError(f"retention below Delta's {DELTA_SAFE_HOURS} h safety check ({', '.join(short)}): "
                                 "an administrator's --allow-short-retention is needed")
        run.authorize("admin")
        run.record.parameters["short_retention"] = short
    gov = run.governance()
    if not a.no_close:
        today = datetime.now(UTC).date()
        ended = [r.project for r in gov.table("projects").where(F.col("ends") < F.lit(today)).collect()]
        live = {r.project for r in gov.table("entitlements").where(F.col("status") != "revoked")
                .where(F.col("project").isNotNull()).select("project").distinct().collect()}
        for project in sorted(p for p in ended if p in live or (run.warehouse.root / "projects" / p).exists()):
            closed = close_project(gov, Requests(gov, run.settings.access.outbox), run.keys, run.caller, project,
                                   "its end date has passed", ended_only=True)
            run.summary += closed.summary()
    done = maintain(run.spark, run.warehouse, retention, storage.quarantine_raw_days, bool(short), storage.parallel)
    for t in done:
        run.count(f"files before {t.area}", t.files_before)
        run.count(f"files after {t.area}", t.files_after)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = run.work / "reports" / f"maintenance-{stamp}.html"
    rows = [(t.area, t.path.rsplit("/", 1)[-1], f"{t.files_before:,} -> {t.files_after:,}",
             f"{t.bytes_before:,} -> {t.bytes_after:,}", t.zorder or "-", f"{t.retention_hours:g} h",
             "-" if t.pinned is None else t.pinned, t.raw_emptied, "; ".join(t.notes)) for t in done]
    report.write(path, "Warehouse maintenance", f"{len(done)} table(s) maintained", True,
                 [report.Section("Tables", [f"areas {', '.join(a.areas)}"],
                                 ["area", "table", "files", "bytes", "Z-order", "retention", "kept version",
                                  "raw lines emptied", "notes"], rows)],
                 {"tables": [asdict(t) for t in done]})
    run.output(str(path))
    before, after = sum(t.bytes_before for t in done), sum(t.bytes_after for t in done)
    run.summary.append(f"maintenance: {len(done)} table(s), {sum(t.files_before for t in done):,} -> "
                       f"{sum(t.files_after for t in done):,} files, {before:,} -> {after:,} bytes; report {path}")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(run_job("maintenance", __doc__, body, add_arguments))

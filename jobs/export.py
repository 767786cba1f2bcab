"""Export a project's extract to its workspace, after review, and verify it arrived intact.

  spark-submit.sh jobs/export.py request --project p042 --tables ER_PRS_F IR_BEN_R [--workspace NAME]
  spark-submit.sh jobs/admin.py request review ID --approve --reason "..."     (another person, a reviewer)
  spark-submit.sh jobs/export.py send --request ID
  spark-submit.sh jobs/export.py verify --request ID        (or: verify --path FOLDER, at arrival)

`request` submits what would leave (tables, Delta versions, columns) for review; only tables
jobs/extract.py marked usable may be asked for. `send` needs the request approved, its
description unchanged and every table still at its approved version and usable; it writes
Parquet files with a manifest (files, sizes, SHA-256, rows, schemas, source versions), moved
into place whole, or loads database tables (PostgreSQL, Oracle) with the catalogue's types,
checks their row counts and per-column checksums, then swaps them in at once. Workspaces are
named in the [export] workspaces file (conf/workspaces.toml); database credentials come from
the environment or a file it names, never from an argument. Exit 0: done (or intact); 3:
verify found a difference; 4: refused (no approved request, an extract not usable, no grant),
audited; 1: the export failed and nothing was published (a re-run starts again); 2: bad
arguments or settings.
"""

import sys
from pathlib import Path

from pds_spark.access import Requests, Resource
from pds_spark.errors import ExitCode, SettingsError
from pds_spark.export.transfer import VerifyError, approved, request, send, verify
from pds_spark.export.workspaces import load_workspaces
from pds_spark.jobrunner import JobRun, run_job


def add_arguments(parser):
    sub = parser.add_subparsers(dest="op", required=True, metavar="COMMAND")
    ask = sub.add_parser("request", help="submit an export of usable extract tables for review")
    ask.add_argument("--project", required=True)
    ask.add_argument("--tables", nargs="+", required=True, help="the project's extract tables")
    ask.add_argument("--workspace", help="a workspace of the settings (default: [export] default_workspace)")
    go = sub.add_parser("send", help="send an approved request to its workspace")
    go.add_argument("--request", required=True, metavar="ID")
    check = sub.add_parser("verify", help="check that an export arrived intact")
    which = check.add_mutually_exclusive_group(required=True)
    which.add_argument("--request", metavar="ID", help="what the platform sent for this request")
    which.add_argument("--path", type=Path, help="a Parquet export's folder, against its manifest")


def _workspaces(run: JobRun):
    return load_workspaces(run.settings.export.workspaces)


def body(run: JobRun):
    a = run.args
    gov = run.governance()
    requests = Requests(gov, run.settings.access.outbox)
    workspaces = _workspaces(run)
    if a.op == "request":
        name = a.workspace or run.settings.export.default_workspace
        if name not in workspaces:
            raise SettingsError(str(run.settings.export.workspaces), name,
                                f"no such workspace (known: {', '.join(sorted(workspaces))})")
        rid = request(gov, requests, run.caller, a.project, a.tables, workspaces[name])
        run.summary.append(f"export request {rid} submitted for review (jobs/admin.py request review {rid} ...)")
        return ExitCode.OK
    if a.op == "send":
        description = approved(gov, requests, run.caller, a.request)
        name = description["workspace"]
        if name not in workspaces:
            raise SettingsError(str(run.settings.export.workspaces), name, "the request's workspace is not configured")
        sent = send(run.spark, gov, run.caller, a.request, description, workspaces[name], run.catalogue)
        for table, n in sent.tables.items():
            run.count(f"rows {table}", n)
        run.output(sent.location)
        run.summary += sent.summary()
        return ExitCode.OK
    if a.request:
        run.authorize("transfer", Resource(requests.get(a.request)["project"]))
    else:
        run.place(a.path, "read")
    problems, what = verify(gov, a.request, a.path, workspaces)
    run.input(what)
    if problems:
        run.summary += [f"export NOT intact: {what}"] + [f"  {p}" for p in problems]
        raise VerifyError(f"{len(problems)} difference(s) in {what}: {'; '.join(problems[:3])}")
    run.summary.append(f"export intact: {what}")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(run_job("export", __doc__, body, add_arguments))

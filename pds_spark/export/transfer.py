"""A project's extract moved to its workspace: asked for, reviewed, sent, checked at arrival.

1. `request`: a member names usable extract tables and a workspace; what would leave (tables,
   Delta versions, rows, columns) is written as `export-request.json` and submitted through the
   review flow (`access.requests`), which stages and hashes it.
2. A reviewer who is not the requester approves it (`jobs/admin.py request review`).
3. `send`: only an approved request whose description is unchanged, and only while each table
   is still at the approved version and usable; Parquet files with their manifest, or database
   tables loaded, checked and swapped in. Each table sent is recorded in the `exports` ledger.
4. `verify`: the files against their manifest, or the database's checksums against the
   source's recorded at sending.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from pds_spark.access.model import Resource
from pds_spark.access.requests import Requests, sha256
from pds_spark.access.store import Governance, now
from pds_spark.catalog import Catalogue
from pds_spark.errors import ExitCode, PdsError
from pds_spark.export.checksum import Checksums
from pds_spark.export.columns import Column, ExportError, frame_columns
from pds_spark.export.jdbc import arrived, export_table, reason
from pds_spark.export.parquet import export_parquet, verify_parquet
from pds_spark.export.workspaces import Workspace
from pds_spark.extract.run import STATUS
from pds_spark.pseudo.apply import pseudonym_columns
from pds_spark.warehouse import Warehouse, delta_exists, latest_version, table_properties

log = logging.getLogger("pds.export")
DESCRIPTION = "export-request.json"
LEDGER = T.StructType([
    T.StructField("request_id", T.StringType(), False),
    T.StructField("project", T.StringType(), False),
    T.StructField("workspace", T.StringType(), False),
    T.StructField("kind", T.StringType(), False),
    T.StructField("table", T.StringType(), False),
    T.StructField("source", T.StringType(), False),  # the extract, path@version
    T.StructField("location", T.StringType(), False),  # folder or schema.table
    T.StructField("rows", T.LongType(), False),
    T.StructField("proof", T.StringType(), False),  # manifest SHA-256, or the checksums (JSON)
    T.StructField("columns", T.StringType(), False),  # the exported columns' types (JSON)
    T.StructField("exported_by", T.StringType(), False),
    T.StructField("exported_at", T.TimestampType(), False),
])


class NothingToExport(ExportError):
    """The request names nothing that can be exported."""

    exit_code = ExitCode.USAGE


class VerifyError(PdsError):
    """What arrived is not what was sent."""

    exit_code = ExitCode.THRESHOLD


@dataclass
class Sent:
    request_id: str
    workspace: Workspace
    location: str
    tables: dict[str, int] = field(default_factory=dict)  # table -> rows
    proof: str = ""

    def summary(self) -> list[str]:
        lines = [f"export {self.request_id} to workspace {self.workspace.name} ({self.workspace.kind}): "
                 f"{len(self.tables)} table(s) -> {self.location}"]
        lines += [f"  {t:<16} {n:>12,} rows" for t, n in sorted(self.tables.items())]
        if self.proof:
            lines.append(f"  manifest SHA-256 {self.proof}")
        return lines


def describe(spark: SparkSession, warehouse: Warehouse, project: str, tables: Sequence[str],
             workspace: Workspace) -> dict:
    """What an export of these extract tables would send, as of now."""
    out = {}
    for table in tables:
        path = warehouse.project(project, table)
        if not delta_exists(spark, path):
            raise NothingToExport(f"project {project} has no extract {table} (jobs/extract.py writes it)")
        props = table_properties(spark, path)
        df = spark.read.format("delta").load(path)
        out[table] = {"path": path, "version": latest_version(spark, path), "status": props.get(STATUS, "none"),
                      "source": props.get("pds.extract.source", ""), "columns": df.columns,
                      "pseudonyms": pseudonym_columns(props)}
    return {"project": project, "workspace": workspace.name, "kind": workspace.kind, "tables": out}


def _unusable(description: dict) -> list[str]:
    return [f"{t} is {d['status']}, not usable (jobs/extract.py decides)" for t, d in description["tables"].items()
            if d["status"] != "usable"]


def _resource(description: dict) -> Resource:
    return Resource(description["project"], {t: tuple(d["columns"]) for t, d in description["tables"].items()})


def request(gov: Governance, requests: Requests, caller: str, project: str, tables: Sequence[str],
            workspace: Workspace) -> str:
    """Submit an export of usable extract tables for review; refused (audited) otherwise."""
    if not tables:
        raise NothingToExport("name the extract tables to export (--tables)")
    gov.authorize(caller, "transfer", Resource(project))  # before saying what the project holds
    description = describe(gov.spark, gov.warehouse, project, tables, workspace)
    bad = _unusable(description)
    if bad:
        gov.refuse(caller, "request the export of", _resource(description), "; ".join(bad))
    with tempfile.TemporaryDirectory(prefix="pds-export-") as tmp:
        path = Path(tmp) / DESCRIPTION
        path.write_text(json.dumps(description, indent=1, sort_keys=True), encoding="utf-8")
        return requests.submit(caller, project, "export", "data", path, _resource(description))


def approved(gov: Governance, requests: Requests, caller: str, request_id: str) -> dict:
    """The description of an approved export request, checked unchanged and still true of the
    extract (each table at the approved version, usable); refused and audited otherwise."""
    req = requests.get(request_id)
    resource = Resource(req["project"])
    if req["direction"] != "export" or req["kind"] != "data" or set(req["files"]) != {DESCRIPTION}:
        gov.refuse(caller, f"send {request_id} of", resource, "it is not a request to export an extract")
    if req["status"] != "approved":
        gov.refuse(caller, f"send {request_id} of", resource, f"the request is {req['status']}, not approved")
    delivered = Path(req["delivered_to"] or "") / DESCRIPTION
    if not delivered.is_file() or sha256(delivered) != req["files"][DESCRIPTION]:
        gov.refuse(caller, f"send {request_id} of", resource, "its approved description was changed or removed")
    description = json.loads(delivered.read_text(encoding="utf-8"))
    gov.authorize(caller, "transfer", _resource(description))
    for table, d in description["tables"].items():
        if not delta_exists(gov.spark, d["path"]) or latest_version(gov.spark, d["path"]) != d["version"]:
            gov.refuse(caller, f"send {request_id} of", resource, f"{table} changed since the request was approved "
                                                                   "(request the export again)")
        status = table_properties(gov.spark, d["path"]).get(STATUS, "none")
        if status != "usable":
            gov.refuse(caller, f"send {request_id} of", resource, f"{table} is {status}, not usable")
    return description


def send(spark: SparkSession, gov: Governance, caller: str, request_id: str, description: dict,
         workspace: Workspace, catalogue: Catalogue, progress: Callable[[str], None] = log.info) -> Sent:
    """Send an approved description's tables (read at their approved versions) to the workspace."""
    if workspace.name != description["workspace"] or workspace.kind != description["kind"]:
        raise ExportError(f"request {request_id} was approved for workspace {description['workspace']}")
    project = description["project"]
    frames, columns = {}, {}
    for table, d in sorted(description["tables"].items()):
        frames[table] = spark.read.format("delta").option("versionAsOf", d["version"]).load(d["path"])
        columns[table] = frame_columns(catalogue, table, frames[table].schema, d["pseudonyms"])
    rows = []
    if workspace.kind == "parquet":
        assert workspace.path is not None  # a parquet workspace has one (load_workspaces)
        destination = workspace.path / project / request_id
        about = {"project": project, "request": request_id, "workspace": workspace.name,
                 "tables": {t: {"source": f"{d['path']}@{d['version']}", "extracted_from": d["source"]}
                            for t, d in description["tables"].items()}}
        done = export_parquet(frames, destination, about, progress)
        sent = Sent(request_id, workspace, str(destination), done.rows, done.manifest_sha256)
        for table, n in done.rows.items():
            rows.append((table, str(destination / table), n, done.manifest_sha256))
    else:
        login = workspace.login()
        sent = Sent(request_id, workspace, f"{workspace.url} schema {workspace.schema}")
        for i, (table, df) in enumerate(sorted(frames.items()), 1):
            loaded = export_table(df, table, columns[table], workspace, login, progress)
            sent.tables[table] = loaded.rows
            rows.append((table, loaded.table, loaded.rows, json.dumps(loaded.checksums.as_json())))
            progress(f"export [{i}/{len(frames)}] {table}: {loaded.rows:,} rows published as {loaded.table}")
    when = now()
    ledger = [(request_id, project, workspace.name, workspace.kind, table, f"{description['tables'][table]['path']}@"
               f"{description['tables'][table]['version']}", location, n, proof,
               json.dumps([c.__dict__ for c in columns[table]]), caller, when) for table, location, n, proof in rows]
    spark.createDataFrame(ledger, LEDGER).write.format("delta").mode("append").save(
        gov.warehouse.governance_table("exports"))
    gov.audit_change(caller, "export.send", {"request": request_id, "project": project, "workspace": workspace.name,
                                             "kind": workspace.kind, "rows": sent.tables, "proof": sent.proof},
                     outputs=[sent.location])
    return sent


def last_sent(gov: Governance, request_id: str) -> list[dict]:
    """The ledger's rows of the request's last sending."""
    path = gov.warehouse.governance_table("exports")
    if not delta_exists(gov.spark, path):
        return []
    rows = [r.asDict() for r in gov.spark.read.format("delta").load(path).where(f"request_id = '{request_id}'")
            .collect()]  # a few rows
    if not rows:
        return []
    last = max(r["exported_at"] for r in rows)
    return [r for r in rows if r["exported_at"] == last]


def verify(gov: Governance | None, request_id: str | None, path: Path | None,
           workspaces: dict[str, Workspace]) -> tuple[list[str], str]:
    """(problems, what was checked): an export's arrival, from the ledger's record of the request,
    or a Parquet folder alone against its own manifest."""
    if path is not None:
        return verify_parquet(path), str(path)
    assert gov is not None and request_id is not None
    sent = last_sent(gov, request_id)
    if not sent:
        raise ExportError(f"request {request_id} has not been sent (jobs/export.py send)")
    kind, name = sent[0]["kind"], sent[0]["workspace"]
    if kind == "parquet":
        folder = Path(sent[0]["location"]).parent
        return verify_parquet(folder, sent[0]["proof"]), str(folder)
    workspace = workspaces.get(name)
    if workspace is None:
        raise ExportError(f"workspace {name} of request {request_id} is no longer in the settings")
    login = workspace.login()
    problems = []
    for r in sorted(sent, key=lambda r: r["table"]):
        columns = [Column(**c) for c in json.loads(r["columns"])]
        table = r["location"].rpartition(".")[2]
        sent_sums = Checksums.from_json(json.loads(r["proof"]))
        try:
            got = arrived(workspace, login, table, columns, sent_sums.family)
        except ExportError:
            raise
        except Exception as e:  # noqa: BLE001 - a table dropped or altered behind the platform's back
            problems.append(f"{r['location']}: cannot be read ({reason(e)})")
            continue
        problems += [f"{r['location']}: {p}" for p in sent_sums.differences(got)]
    return problems, f"{workspace.name} ({workspace.kind}): {', '.join(r['location'] for r in sent)}"

"""Imports and exports of data or code: a member asks, a reviewer who is not the
requester decides, and only approved content moves.

Submitting copies the file or folder to a staging area under the governance store and
records the SHA-256 of every file; approval checks the hashes again (what moves is what
was reviewed) and copies the content to the project space (import) or to the outbox
(export); rejection deletes the staged copy. Every step is audited.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.access.model import Resource
from pds_spark.access.store import Governance, GovernanceError, now
from pds_spark.errors import ExitCode, PdsError
from pds_spark.warehouse import delta_exists

REQUESTS = T.StructType([
    T.StructField("request_id", T.StringType(), False),
    T.StructField("project", T.StringType(), False),
    T.StructField("direction", T.StringType(), False),  # import | export
    T.StructField("kind", T.StringType(), False),  # data | code
    T.StructField("name", T.StringType(), False),  # the submitted file or folder's name
    T.StructField("files", T.MapType(T.StringType(), T.StringType(), False), False),  # path -> sha256
    T.StructField("bytes", T.LongType(), False),
    T.StructField("requested_by", T.StringType(), False),
    T.StructField("requested_at", T.TimestampType(), False),
    T.StructField("status", T.StringType(), False),  # pending | approved | rejected | tampered
    T.StructField("reviewed_by", T.StringType(), True),
    T.StructField("reviewed_at", T.TimestampType(), True),
    T.StructField("reason", T.StringType(), True),
    T.StructField("delivered_to", T.StringType(), True),
])
CHUNK = 1 << 20


class TamperedError(PdsError):
    """A staged request no longer holds exactly what was submitted: nothing is delivered."""

    exit_code = ExitCode.THRESHOLD


def staged_entries(root: Path) -> tuple[set[str], list[str]]:
    """The regular files under `root` (relative, '/'), and whatever else is there (links, devices)."""
    files, odd = set(), []
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                odd.append(rel)
            elif name in names:
                (files.add(rel) if path.is_file() else odd.append(rel))
    return files, odd


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path) -> list[tuple[str, Path]]:
    if root.is_file():
        return [(root.name, root)]
    return sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())


class Requests:
    """Import and export requests of one governance store."""

    def __init__(self, governance: Governance, outbox: str | Path):
        self.gov = governance
        self.outbox = Path(outbox)
        self.path = governance.warehouse.governance_table("requests")
        self.staging = governance.warehouse.staging

    def list(self, project: str | None = None):
        df = self.gov.spark.read.format("delta").load(self.path) if self._exists() else \
            self.gov.spark.createDataFrame([], REQUESTS)
        return df.where(F.col("project") == project) if project else df

    def _exists(self) -> bool:
        return delta_exists(self.gov.spark, self.path)

    def get(self, request_id: str) -> dict:
        rows = self.list().where(F.col("request_id") == request_id).collect()
        if not rows:
            raise GovernanceError(f"no request {request_id}")
        return rows[0].asDict(recursive=True)

    def submit(self, caller: str, project: str, direction: str, kind: str, source: str | Path,
               resource: Resource | None = None) -> str:
        """Stage a copy of `source` with its hashes; the caller must be a member of a project with
        a current grant (covering `resource`'s tables, columns and period when it names them)."""
        if direction not in ("import", "export") or kind not in ("data", "code"):
            raise GovernanceError("a request is an import or an export, of data or of code")
        source = Path(source)
        if not source.exists():
            raise GovernanceError(f"nothing to submit at {source}")
        wanted = resource or Resource(project=project)
        self.gov.authorize(caller, "transfer", Resource(project, wanted.columns, wanted.period))
        request_id = f"req-{uuid.uuid4().hex[:12]}"
        staged = self.staging / request_id
        files, total = {}, 0
        for rel, path in _files(source):
            target = staged / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            files[rel] = sha256(target)
            total += target.stat().st_size
        row = (request_id, project, direction, kind, source.name, files, total, caller, now(),
               "pending", None, None, None, None)
        self.gov.spark.createDataFrame([row], REQUESTS).write.format("delta").mode("append").save(self.path)
        self.gov.audit_change(caller, f"access.{direction}.submit",
                        {"request": request_id, "project": project, "kind": kind, "name": source.name,
                         "files": len(files), "bytes": total, "sha256": files})
        return request_id

    def review(self, caller: str, request_id: str, approve: bool, reason: str) -> Path | None:
        """Approve (the content moves) or reject (the staged copy is deleted)."""
        request = self.get(request_id)
        resource = Resource(project=request["project"])
        if not reason or not reason.strip():
            raise GovernanceError("a review needs a reason")
        self.gov.authorize(caller, "review", resource)
        if request["requested_by"] == caller:
            self.gov.refuse(caller, "review", resource, "a requester cannot review their own request")
        if request["status"] != "pending":
            raise GovernanceError(f"request {request_id} is already {request['status']}")
        staged = self.staging / request_id
        delivered = None
        if approve:
            why = self.gov.allowed(request["requested_by"], "transfer", resource)
            if why is not None:  # the grant expired or was revoked since submission
                self.gov.refuse(caller, f"approve {request_id} of", resource, f"for {request['requested_by']}: {why}")
            self._untampered(caller, request, staged)
            delivered = self._destination(request)
            tmp = delivered.with_name(delivered.name + ".partial")
            shutil.rmtree(tmp, ignore_errors=True)
            for rel in sorted(request["files"]):  # exactly what was recorded, and hashed again just now
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(staged / rel, tmp / rel)
            os.replace(tmp, delivered)  # the content appears whole or not at all
        self._set(request_id, "approved" if approve else "rejected", caller, reason, delivered)
        shutil.rmtree(staged, ignore_errors=True)
        self.gov.audit_change(caller, f"access.{request['direction']}.{'approve' if approve else 'reject'}",
                        {"request": request_id, "project": request["project"], "reason": reason},
                        outputs=[str(delivered)] if delivered else [])
        return delivered

    def _untampered(self, caller: str, request: dict, staged: Path) -> None:
        """The staged copy holds exactly the files recorded at submission, with their hashes;
        otherwise the request is marked tampered, audited, and nothing moves."""
        files, odd = staged_entries(staged) if staged.is_dir() else (set(), [])
        recorded = set(request["files"])
        problems = [f"{rel}: added after submission" for rel in sorted(files - recorded)]
        problems += [f"{rel}: not a regular file" for rel in sorted(odd)]
        problems += [f"{rel}: missing" for rel in sorted(recorded - files)]
        problems += [f"{rel}: changed since submission" for rel in sorted(recorded & files)
                     if sha256(staged / rel) != request["files"][rel]]
        if problems:
            rid = request["request_id"]
            self._set(rid, "tampered", caller, "; ".join(problems)[:2000], None)
            self.gov.audit_change(caller, f"access.{request['direction']}.tampered",
                                  {"request": rid, "project": request["project"], "problems": problems},
                                  outcome="tampered", message=f"request {rid} was tampered with")
            raise TamperedError(f"request {rid} was tampered with, nothing delivered: {'; '.join(problems[:5])}"
                                + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))

    def _destination(self, request: dict) -> Path:
        if request["direction"] == "import":
            base = self.gov.warehouse.imports(request["project"])
        else:
            base = self.outbox / request["project"]
        base.mkdir(parents=True, exist_ok=True)
        return base / request["request_id"]

    def _set(self, request_id: str, status: str, reviewer: str, reason: str, delivered: Path | None) -> None:
        DeltaTable.forPath(self.gov.spark, self.path).update(
            (F.col("request_id") == request_id) & (F.col("status") == "pending"),
            {"status": F.lit(status), "reviewed_by": F.lit(reviewer), "reviewed_at": F.lit(now()),
             "reason": F.lit(reason), "delivered_to": F.lit(str(delivered) if delivered else None)})

"""A project's end: its data destroyed, its key destroyed, its access ended, the record kept.

Everything under `projects/<P>/` (extracts, cohorts, links, reports, imports) is removed from
the file system (Delta's history with it: no version can be read back), with the project's
pending requests' staged copies and its outbox; the project key is destroyed, so its
pseudonyms left in any copy can no longer be computed or linked; every membership and grant
of the project is revoked. The audit records what existed: tables, versions, rows, bytes —
never data.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from pds_spark.access.requests import Requests
from pds_spark.access.store import Governance, GovernanceError, now
from pds_spark.pseudo.keystore import KeyStore
from pds_spark.storage.usage import _versions, _walk


@dataclass
class Closed:
    project: str
    tables: dict[str, dict] = field(default_factory=dict)  # name -> {versions, rows, files, bytes}
    requests_withdrawn: list[str] = field(default_factory=list)
    entitlements_revoked: int = 0
    key_destroyed: bool = False

    def summary(self) -> list[str]:
        lines = [f"project {self.project} closed: {len(self.tables)} table(s) destroyed, key "
                 + ("destroyed" if self.key_destroyed else "(none)"),
                 f"  {self.entitlements_revoked} membership(s) and grant(s) revoked, "
                 f"{len(self.requests_withdrawn)} pending request(s) withdrawn"]
        lines += [f"  {t:<24} {d['versions']:>4} versions {d['rows'] if d['rows'] is not None else '-':>10} rows "
                  f"{d['bytes']:>12,} bytes" for t, d in sorted(self.tables.items())]
        return lines


def _inventory(gov: Governance, area: Path) -> dict[str, dict]:
    out = {}
    for entry in sorted(area.iterdir()) if area.is_dir() else []:
        files, size = _walk(entry) if entry.is_dir() else (1, entry.stat().st_size)
        rows = None
        if (entry / "_delta_log").is_dir():
            rows = gov.spark.read.format("delta").load(str(entry)).count()
        out[entry.name] = {"versions": _versions(entry) if entry.is_dir() else 0, "rows": rows, "files": files,
                           "bytes": size}
    return out


def close_project(gov: Governance, requests: Requests, keys: KeyStore, caller: str, project: str,
                  reason: str, ended_only: bool = False) -> Closed:
    """Destroy a project's data and key and end its access (audited). An administrator closes
    any project; with `ended_only` (the maintenance job, an engineer's) only a project whose
    end date has passed: the date decides, not the caller."""
    rows = gov.table("projects").where(F.col("project") == project).collect()  # one row
    if not rows:
        raise GovernanceError(f"no project {project}")
    if not ended_only:
        gov.authorize(caller, "admin")
    elif rows[0].ends >= now().date():
        raise GovernanceError(f"project {project} ends on {rows[0].ends}: only an administrator closes it before")
    area = Path(gov.warehouse.project(project, "x")).parent
    done = Closed(project, _inventory(gov, area))
    pending = [r.request_id for r in requests.list(project).where(F.col("status") == "pending").collect()]
    for rid in pending:
        shutil.rmtree(requests.staging / rid, ignore_errors=True)
    if pending:
        DeltaTable.forPath(gov.spark, requests.path).update(
            (F.col("project") == project) & (F.col("status") == "pending"),
            {"status": F.lit("withdrawn"), "reviewed_by": F.lit(caller), "reviewed_at": F.lit(now()),
             "reason": F.lit(f"project closed: {reason}")})
    done.requests_withdrawn = pending
    if area.exists():
        shutil.rmtree(area)
    shutil.rmtree(requests.outbox / project, ignore_errors=True)
    key = f"project-{project.lower()}"
    if keys.exists(key):  # (false once destroyed)
        keys.destroy(key)
        done.key_destroyed = True
    live = (F.col("project") == project) & (F.col("status") != "revoked")
    done.entitlements_revoked = gov.table("entitlements").where(live).count()
    if done.entitlements_revoked:
        DeltaTable.forPath(gov.spark, gov.path("entitlements")).update(
            live, {"status": F.lit("revoked"), "revoked_by": F.lit(caller), "revoked_at": F.lit(now())})
    gov.audit_change(caller, "storage.project.close",
                     {"project": project, "reason": reason, "automatic": ended_only, "tables": done.tables, "key": key,
                      "key_destroyed": done.key_destroyed, "requests_withdrawn": pending,
                      "entitlements_revoked": done.entitlements_revoked})
    return done

"""Where a job may read and write: one decision for every job's inputs and outputs.

A path is resolved (symbolic links included) and placed in one area:

| area | read | inspect (counts only) | write |
| --- | --- | --- | --- |
| `<warehouse>/snds/<TABLE>` | a grant-checked read for a project | any role-holding job | never |
| `<warehouse>/projects/<P>/...` | members of P | members of P | members of P (not `imports/`) |
| `<paths.work>/<caller>/...` (the caller's work area) | yes | yes | yes |
| the rest of the warehouse (governance, audit, ledger, quarantine, metrics), the key store, the outbox, | never | never | never |
| another user's work area, the platform's settings files | never | never | never |
| anywhere else (a delivery, a file brought in) | yes | yes | never |

`maintain` (the key job's re-keying, administrators only) reaches every table but those of
the governance store, the audit trail and the ledger, and the closed places above.
A refusal is audited and exits 4, like every other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from pds_spark.access.model import Resource
from pds_spark.warehouse import delta_exists

USES = ("read", "inspect", "write", "maintain")  # maintain: an administrator's re-keying of tables
PLATFORM_COLUMNS = ("_source_file", "_delivery_id", "_loaded_at", "_period")  # lineage, not data


@dataclass(frozen=True)
class Place:
    area: str  # snds | project | work | outside
    path: Path
    project: str | None = None
    table: str | None = None


def resolved(path: str | os.PathLike) -> Path:
    """The real path: symbolic links followed, as far as the path exists."""
    return Path(os.path.realpath(os.path.abspath(path)))


def _under(path: Path, root: Path) -> tuple[str, ...] | None:
    """The parts of `path` below `root`, or None when it is not inside it."""
    try:
        return resolved(path).relative_to(resolved(root)).parts
    except ValueError:
        return None


def period_span(periods: list[str]) -> tuple[date, date] | None:
    """The dates a table's `_period` values cover ('2019', '201905'; '-' for a table without)."""
    spans = []
    for p in periods:
        if p.isdigit() and len(p) == 4:
            spans.append((date(int(p), 1, 1), date(int(p), 12, 31)))
        elif p.isdigit() and len(p) == 6:
            y, m = int(p[:4]), int(p[4:])
            spans.append((date(y, m, 1), date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1)))
    return (min(s for s, _ in spans), max(e for _, e in spans)) if spans else None


class Places:
    """The platform's areas for one run, and the one decision on a path."""

    def __init__(self, governance, warehouses: list[Path], work: Path, closed: dict[str, Path]):
        self.gov = governance
        self.warehouses, self.work, self.closed = warehouses, work, closed

    @classmethod
    def of(cls, governance, settings, platform) -> Places:
        """The platform's areas (`platform`: its settings file), and those of the warehouse an
        administrator chose for this run (`settings`: the run's)."""
        closed = {"the key store": platform.pseudonymisation.keystore, "the outbox": platform.access.outbox,
                  "the platform's settings": Path(platform.source),
                  "the pseudonymisation policy": platform.pseudonymisation.policy,
                  "the ingestion rules": platform.ingest.rules, "the quality rules": platform.quality.rules,
                  "the Spark defaults": platform.spark.defaults,
                  "the catalogue's corrections": platform.paths.catalog_overrides}
        warehouses = list(dict.fromkeys([Path(settings.paths.warehouse), Path(platform.paths.warehouse)]))
        return cls(governance, warehouses, Path(platform.paths.work), closed)

    def work_area(self, caller: str) -> Path:
        return self.work / caller

    def check(self, caller: str, path: Path, use: str, project: str | None = None) -> Place:
        """The place of `path`, if `caller` may `use` it; otherwise the refusal is audited and raised."""
        if use not in USES:
            raise ValueError(f"use is one of {USES}")
        real = resolved(path)
        place, why = self._decide(caller, real, use, project)
        if why is not None:
            self.gov.refuse(caller, f"{use} {path}", Resource(project), why)
        assert place is not None  # refuse raises
        return place

    def _decide(self, caller: str, real: Path, use: str, project: str | None) -> tuple[Place | None, str | None]:
        for name, root in self.closed.items():
            if _under(real, root) is not None:
                return None, f"{real} is in {name}, which no job reads or writes"
        for warehouse in self.warehouses:
            parts = _under(real, warehouse)
            if parts is not None:
                return self._warehouse(caller, real, parts, use, project)
        parts = _under(real, self.work)
        if parts is not None:  # every user's work area is re-keyed; each reads and writes only their own
            if use == "maintain" or parts[:1] == (caller,):
                return Place("work", real), None
            return None, f"{real} is not in {caller}'s work area ({self.work_area(caller)})"
        if use in ("write", "maintain"):
            return None, (f"{real} is outside the platform: a job writes only to a project area of its caller "
                          f"(<warehouse>/projects/<project>/) or to {caller}'s work area "
                          f"({self.work_area(caller)})")
        return Place("outside", real), None

    def _warehouse(self, caller: str, real: Path, parts: tuple[str, ...], use: str,
                   project: str | None) -> tuple[Place | None, str | None]:
        area = parts[0] if parts else ""
        if use == "maintain":
            if area in ("governance", "audit", "ledger"):
                return None, f"{real} is in the warehouse's {area} area, which holds no pseudonym to re-key"
            return Place(area or "warehouse", real), None
        if area == "projects" and len(parts) >= 2:
            owner = parts[1]
            if project and project != owner:
                return None, f"{real} belongs to project {owner}, not {project}: projects do not share data"
            if use == "write" and len(parts) >= 3 and parts[2] == "imports":
                return None, f"{real}: a project's imports arrive only through a reviewed request"
            why = self.gov.allowed(caller, "use", Resource(owner))
            return (Place("project", real, owner), None) if why is None else (None, why)
        if area == "snds" and len(parts) == 2:
            if use == "write":
                return None, f"{real}: only ingestion writes the SNDS tables"
            if use == "inspect":
                return Place("snds", real, table=parts[1]), None
            if not project:
                return None, (f"{real}: reading an SNDS table needs a project (--project P) whose grant "
                              "covers its columns and periods")
            return self._granted_read(caller, real, parts[1], project)
        what = f"the warehouse's {area} area" if area else "the warehouse's root"
        return None, f"{real} is in {what}, which only the platform itself writes or reads"

    def _granted_read(self, caller: str, real: Path, table: str, project: str) -> tuple[Place | None, str | None]:
        spark = self.gov.spark
        if not delta_exists(spark, str(real)):
            return None, f"{real}: no SNDS table there"
        df = spark.read.format("delta").load(str(real))
        columns = tuple(c for c in df.columns if c not in PLATFORM_COLUMNS)
        periods = ([r[0] for r in df.select("_period").distinct().collect()]  # a few values a table
                   if "_period" in df.columns else [])
        why = self.gov.allowed(caller, "read", Resource(project, {table: columns}, period_span(periods)))
        return (Place("snds", real, project, table), None) if why is None else (None, why)

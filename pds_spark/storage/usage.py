"""What the warehouse holds on disk: bytes, files and Delta versions per area, table and
project, read from the file system (no Spark job), so operators see what grows."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

COMMIT = re.compile(r"^[0-9]{20}\.json$")
AREAS = ("snds", "events", "quarantine", "projects", "governance", "audit", "ledger", "quality_metrics")


@dataclass(frozen=True)
class Usage:
    area: str
    project: str | None  # projects/<P>/...
    table: str  # a Delta table's folder name ('' for loose files)
    files: int
    bytes: int
    versions: int  # commits in its Delta log (0: not a Delta table)


def _walk(folder: Path) -> tuple[int, int]:
    files = size = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                size += os.lstat(os.path.join(root, name)).st_size
                files += 1
            except OSError:
                pass
    return files, size


def _versions(table: Path) -> int:
    log = table / "_delta_log"
    return sum(1 for n in os.listdir(log) if COMMIT.match(n)) if log.is_dir() else 0


def _tables(area: str, folder: Path, project: str | None = None) -> list[Usage]:
    out = []
    if (folder / "_delta_log").is_dir():  # the area is one table (audit, ledger, quality_metrics)
        files, size = _walk(folder)
        return [Usage(area, project, folder.name, files, size, _versions(folder))]
    for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
        if entry.is_dir():
            files, size = _walk(entry)
            out.append(Usage(area, project, entry.name, files, size, _versions(entry)))
        elif entry.is_file():
            out.append(Usage(area, project, "", 1, entry.stat().st_size, 0))
    return out


def storage_usage(root: str | Path) -> list[Usage]:
    """Every table of the warehouse at `root` (a project's tables under area 'projects')."""
    root = Path(root)
    out: list[Usage] = []
    for area in AREAS:
        folder = root / area
        if area == "projects":
            for project in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
                out += _tables(area, project, project.name)
        else:
            out += _tables(area, folder)
    known = set(AREAS)
    for other in sorted(p for p in root.iterdir() if p.name not in known) if root.is_dir() else []:
        files, size = _walk(other) if other.is_dir() else (1, other.stat().st_size)
        out.append(Usage("other", None, other.name, files, size, _versions(other) if other.is_dir() else 0))
    return out


def totals(rows: list[Usage]) -> dict[tuple[str, str | None], tuple[int, int, int]]:
    """(area, project) -> (files, bytes, versions)."""
    out: dict[tuple[str, str | None], tuple[int, int, int]] = {}
    for r in rows:
        f, b, v = out.get((r.area, r.project), (0, 0, 0))
        out[(r.area, r.project)] = (f + r.files, b + r.bytes, v + r.versions)
    return out

"""A mirror run's and a reconciliation's reports (HTML + JSON)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path

from pds_spark import report
from pds_spark.mirror.run import STATUSES, MirrorRun, PeriodState


def run_report(path: Path, done: MirrorRun) -> Path:
    rows = [(o.unit.target, o.unit.source, ", ".join(o.unit.periods), "replace periods" if o.unit.replace else "whole",
             "-" if o.rows is None else o.rows, f"{o.seconds:.1f} s", o.error or "sent") for o in done.outcomes]
    sections = [report.Section("Tables sent", [f"{done.current} (table, period) were already up to date"],
                               ["table", "source", "periods", "how", "rows", "time", "outcome"], rows)]
    if done.orphans:
        sections.append(report.Section("In the target, not in the ledger (left as is)", [],
                                       ["source", "period"], done.orphans))
    data = {"target": done.target, "current": done.current, "orphans": done.orphans,
            "tables": [{**asdict(o.unit), "rows_sent": o.rows, "seconds": round(o.seconds, 2), "error": o.error}
                       for o in done.outcomes]}
    return report.write(path, f"Mirror into {done.target}", done.summary()[0], not done.failed, sections, data)


def reconcile_report(path: Path, target: str, states: list[PeriodState], checksums: bool) -> Path:
    counts = Counter(s.status for s in states)
    verdict = ", ".join(f"{counts[k]} {k}" for k in STATUSES if counts[k]) or "nothing loaded"
    worst = sorted(states, key=lambda s: (s.status == "up to date", s.target, s.period))
    rows = [(s.target, s.source, s.period, s.status, s.ledger_version, s.mirrored_version, s.ledger_rows,
             s.delta_rows, s.database_rows, s.detail) for s in worst]
    text = [f"{len(states)} (table, period); per-column checksums {'compared' if checksums else 'not asked'}"]
    sections = [report.Section("Tables and periods", text,
                               ["table", "source", "period", "state", "ledger version", "mirrored version",
                                "ledger rows", "warehouse rows", "database rows", "detail"], rows)]
    return report.write(path, f"Reconciliation of mirror {target}", verdict,
                        all(s.status == "up to date" for s in states), sections,
                        {"target": target, "checksums": checksums, "states": [asdict(s) for s in states]})

"""What an extract reads, decided before any data is touched (pure: tested without Spark)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from pds_spark.access import Resource
from pds_spark.access.places import period_span
from pds_spark.errors import ExitCode, PdsError

# the patient's pseudonym, by table family (DCIR and referentials, PMSI): what a cohort restricts
PERSON_COLUMNS = ("BEN_NIR_PSA", "NIR_ANO_17")


class ExtractError(PdsError):
    """The extract asked for cannot be made as asked: fix the arguments."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class ExtractPlan:
    project: str
    columns: Mapping[str, tuple[str, ...]]  # table -> columns
    period: tuple[date, date] | None
    cohort: str | None = None
    sensitive: Mapping[str, str] = field(default_factory=dict)  # table -> its sensitive column

    def resource(self) -> Resource:
        """All of it, checked at once: at most one potentially identifying category across tables."""
        return Resource(self.project, dict(self.columns), self.period)


def plan_extract(project: str, grants: Sequence[Mapping], tables: Sequence[str] = (), columns: Sequence[str] = (),
                 period: tuple[date, date] | None = None, cohort: str | None = None,
                 sensitive: Sequence[str] = ()) -> ExtractPlan:
    """The tables and columns asked (a table alone: the columns its grants name), over `period`
    (by default, what the grants of these tables have in common). Whether it is allowed is the
    access decision's (`resource()`), not this function's."""
    by_table: dict[str, list[str]] = {t: [] for t in tables}
    for name in columns:
        table, dot, column = name.partition(".")
        if not dot or not table or not column:
            raise ExtractError(f"--columns: {name!r} is not TABLE.COLUMN")
        by_table.setdefault(table, []).append(column)
    if not by_table:
        raise ExtractError("nothing to extract: name tables (--tables) or columns (--columns)")
    live = [g for g in grants if g["status"] != "revoked"]
    chosen: dict[str, tuple[str, ...]] = {}
    for table, asked in by_table.items():
        granted = sorted({c.partition(".")[2] for g in live for c in g["columns"] or () if c.startswith(f"{table}.")})
        chosen[table] = tuple(dict.fromkeys(asked or granted or ["*"]))  # '*': refused as not granted
    if period is None:
        spans = [(g["period_from"], g["period_to"]) for g in live
                 if any(c.partition(".")[0] in chosen for c in g["columns"] or ())]
        if spans:
            period = (max(lo for lo, _ in spans), min(hi for _, hi in spans))
            if period[0] > period[1]:
                raise ExtractError("the grants of these tables share no period: give --period FROM TO")
    elif period[1] < period[0]:
        raise ExtractError(f"--period ends ({period[1]}) before it starts ({period[0]})")
    chosen_sensitive = {}
    for name in sensitive:
        table, _, column = name.partition(".")
        if column not in chosen.get(table, ()):
            raise ExtractError(f"--sensitive {name}: not a column of the extract")
        chosen_sensitive[table] = column
    return ExtractPlan(project, chosen, period, cohort, chosen_sensitive)


def periods_within(periods: Sequence[str], span: tuple[date, date] | None) -> list[str]:
    """The `_period` values whose dates lie inside `span` (all of them without a span); a value
    without dates ('-': a referential, not split by period) is kept."""
    if span is None:
        return sorted(periods)
    kept = []
    for p in periods:
        covered = period_span([p])
        if covered is None or (span[0] <= covered[0] and covered[1] <= span[1]):
            kept.append(p)
    return sorted(kept)


def person_column(columns: Sequence[str]) -> str | None:
    return next((c for c in PERSON_COLUMNS if c in columns), None)

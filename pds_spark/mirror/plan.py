"""What a mirror run sends, and under which names: pure, tested without Spark or a database.

Names are the portal's: a table whose published name holds a year (T_MCOaaB) becomes one table
a period (T_MCO14B for 2014); the others stay one table, their periods told apart by the
`PDS_PERIOD` column. The unit of work is a (table, period) the ledger shows loaded at a Delta
version the mirror does not hold yet: a per-year table is swapped whole; a period of a
one-table source has its rows replaced in one transaction, unless the table is new to the
mirror or its columns changed (then it is swapped whole).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import types as T

from pds_spark.catalog.model import Table, is_templated
from pds_spark.export.columns import Column, target_columns

NO_PERIOD = "-"  # the ledger's period of a table delivered whole
PERIOD_COLUMN = "PDS_PERIOD"


def target_name(table: str, period: str) -> str:
    """The mirrored table's name: `T_MCOaaB` + 2014 -> T_MCO14B (a variant `xx` left out: the
    warehouse holds a period's variants in one table); other names as they are."""
    if not is_templated(table) or period == NO_PERIOD:
        return table
    year = int(period[:4])
    return table.replace("AAAA", f"{year:04d}").replace("aa", f"{year % 100:02d}").replace("xx", "")


def lineage_name(column: str) -> str:
    """The mirrored name of a platform column: `_source_file` -> PDS_SOURCE_FILE."""
    return "PDS_" + column.lstrip("_").upper()


def layout(schema: T.StructType, known: Table | None, periodic: bool, lineage: str, pseudonyms: Iterable[str] = (),
           ) -> tuple[list[tuple[str, str]], list[Column]]:
    """(warehouse column -> mirrored name, the mirrored columns) of a table with `schema`
    (`pseudonyms`: its columns holding the platform's pseudonyms):
    `_period` as PDS_PERIOD where the table keeps several periods (`periodic`), the other
    platform columns as PDS_* with lineage "keep", left out with "drop"."""
    names = []
    for f in schema.fields:
        if f.name == "_period" and periodic:
            names.append((f.name, PERIOD_COLUMN))
        elif not f.name.startswith("_"):
            names.append((f.name, f.name))
        elif lineage == "keep":
            names.append((f.name, lineage_name(f.name)))
    renamed = T.StructType([T.StructField(new, schema[old].dataType) for old, new in names])
    columns = [Column(PERIOD_COLUMN, "text", 6, note="the delivery's period") if c.name == PERIOD_COLUMN else c
               for c in target_columns(renamed, known, pseudonyms)]
    return names, columns


def signature(columns: Sequence[Column]) -> str:
    """A short digest of the mirrored columns: a change makes the next run swap the table whole."""
    text = json.dumps([[c.name, c.kind, c.length, c.precision, c.scale] for c in columns])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Mirrored:
    """What the target's state table says of one (table, period)."""

    target: str
    version: int
    rows: int
    signature: str


@dataclass(frozen=True)
class Unit:
    """One table sent: `periods` of `source` into `target`, whole or by replacing those periods."""

    source: str
    target: str
    periods: tuple[str, ...]
    versions: tuple[int, ...]  # the ledger's, a period each
    rows: tuple[int, ...]  # the ledger's, a period each
    replace: bool  # only these periods' rows replaced (the table keeps the others)

    @property
    def total(self) -> int:
        return sum(self.rows)


def plan(loaded: Mapping[tuple[str, str], tuple[int, int]], mirrored: Mapping[tuple[str, str], Mirrored],
         signatures: Mapping[str, str], full: bool = False, tables: Iterable[str] | None = None) -> list[Unit]:
    """The units a run sends. `loaded`: the ledger's (table, period) -> (version, rows);
    `mirrored`: the target's state; `signatures`: each source table's mirrored columns now."""
    wanted = set(tables) if tables is not None else None
    by_table: dict[str, list[str]] = {}
    for t, p in loaded:
        if t in signatures and (wanted is None or t in wanted):
            by_table.setdefault(t, []).append(p)
    units = []
    for t, periods in sorted(by_table.items()):
        sig = signatures[t]
        changed = sorted(p for p in periods if full or (t, p) not in mirrored
                         or mirrored[(t, p)].version != loaded[(t, p)][0] or mirrored[(t, p)].signature != sig)
        if is_templated(t):
            units += [Unit(t, target_name(t, p), (p,), (loaded[(t, p)][0],), (loaded[(t, p)][1],), False)
                      for p in changed]
            continue
        if not changed:
            continue
        known = [p for p in periods if (t, p) in mirrored and mirrored[(t, p)].signature == sig]
        whole = full or not known or periods == [NO_PERIOD] or len(changed) == len(periods)
        send = sorted(periods) if whole else changed
        units.append(Unit(t, t, tuple(send), tuple(loaded[(t, p)][0] for p in send),
                          tuple(loaded[(t, p)][1] for p in send), not whole))
    return units


def orphans(loaded: Mapping[tuple[str, str], tuple[int, int]], mirrored: Mapping[tuple[str, str], Mirrored],
            ) -> list[tuple[str, str]]:
    """(table, period) the target holds that the ledger no longer knows: reported, never dropped."""
    return sorted(k for k in mirrored if k not in loaded)

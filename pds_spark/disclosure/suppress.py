"""Small-cell suppression of tables of counts, with the secondary suppression that keeps a
blocked cell from being recomputed from the released cells and totals.

A table is its cells (label -> count, totals included) and its sums (a total and the cells it
adds up). Primary: every cell counting 1 to `threshold` people (10: the rule of the SNDS and
the CASD) is blocked. Secondary: a blocked cell that the released cells and the sums determine
is found by linear algebra (exact fractions: it is determined when its unit vector lies in the
row space of the sums restricted to the blocked cells), and one more cell of one of its sums is
blocked, the smallest positive one (a cell rather than a total), until no blocked cell is
determined. The constraint matrices of one- and two-way tables with totals, hierarchies and
flowcharts move along +-1 cycles, so once no blocked cell is determined and every blocked cell
is positive, each blocked cell has at least two values consistent with what is released.
Counts reach this module already aggregated (a handful of cells): plain Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

Key = tuple[str, ...]
TOTAL = "Total"


@dataclass(frozen=True)
class CountTable:
    """Cells (totals included) and the sums that hold between them."""

    title: str
    cells: Mapping[Key, int]
    sums: tuple[tuple[Key, tuple[Key, ...]], ...] = ()  # (total, the cells it adds up)
    dimensions: tuple[str, ...] = ()  # what each position of a key is (e.g. age band, sex)

    def is_total(self, key: Key) -> bool:
        return any(key == total for total, _ in self.sums)


def one_way(title: str, dimension: str, counts: Mapping[str, int]) -> CountTable:
    """Counts by one variable and their total."""
    cells: dict[Key, int] = {(label,): n for label, n in counts.items()}
    cells[(TOTAL,)] = sum(counts.values())
    return CountTable(title, cells, (((TOTAL,), tuple((label,) for label in counts)),), (dimension,))


def two_way(title: str, dimensions: tuple[str, str], counts: Mapping[tuple[str, str], int],
            rows: Sequence[str] | None = None, columns: Sequence[str] | None = None) -> CountTable:
    """A row variable by a column variable, with row, column and grand totals (absent cells: 0)."""
    rows = list(rows or dict.fromkeys(r for r, _ in counts))
    columns = list(columns or dict.fromkeys(c for _, c in counts))
    cells: dict[Key, int] = {(r, c): int(counts.get((r, c), 0)) for r in rows for c in columns}
    sums: list[tuple[Key, tuple[Key, ...]]] = []
    for r in rows:
        cells[(r, TOTAL)] = sum(cells[(r, c)] for c in columns)
        sums.append(((r, TOTAL), tuple((r, c) for c in columns)))
    for c in [*columns, TOTAL]:
        cells[(TOTAL, c)] = sum(cells[(r, c)] for r in rows)
        sums.append(((TOTAL, c), tuple((r, c) for r in rows)))
    return CountTable(title, cells, tuple(sums), dimensions)


def hierarchy(title: str, dimensions: tuple[str, ...], counts: Mapping[Key, int]) -> CountTable:
    """Counts at the finest level of a hierarchy (e.g. region, department), with a subtotal at
    every level: (region, Total) adds up its departments, (Total, Total) the regions."""
    depth = len(dimensions)
    cells: dict[Key, int] = {}
    children: dict[Key, list[Key]] = {}
    for key, n in counts.items():
        cells[key] = int(n)
        for level in range(depth - 1, -1, -1):
            parent = key[:level] + (TOTAL,) * (depth - level)
            child = key[:level + 1] + (TOTAL,) * (depth - level - 1)
            if child not in children.setdefault(parent, []):
                children[parent].append(child)
    for level in range(depth - 1, -1, -1):
        for parent, kids in children.items():
            if sum(p != TOTAL for p in parent) == level:
                cells[parent] = sum(cells[k] for k in kids)
    return CountTable(title, cells, tuple((p, tuple(k)) for p, k in children.items()), dimensions)


def flowchart(title: str, steps: Sequence[tuple[str, int]]) -> CountTable:
    """An attrition flowchart: each step's count and the people it excluded (step i = step i+1
    + excluded at i+1), so that no count can be recomputed as a difference."""
    cells: dict[Key, int] = {}
    sums = []
    for i, (description, n) in enumerate(steps):
        cells[(f"{i + 1}. {description}",)] = int(n)
        if i:
            excluded = (f"excluded at step {i + 1}",)
            cells[excluded] = int(steps[i - 1][1]) - int(n)
            sums.append(((f"{i}. {steps[i - 1][0]}",), ((f"{i + 1}. {description}",), excluded)))
    return CountTable(title, cells, tuple(sums), ("step",))


@dataclass(frozen=True)
class Suppressed:
    """A table as it may be released: blocked cells are None; `blocked` says why, for the
    project's own report (primary: 1 to threshold people; secondary: it would give one away)."""

    table: CountTable
    threshold: int
    released: Mapping[Key, int | None]
    blocked: Mapping[Key, str] = field(default_factory=dict)
    withheld: bool = False  # some blocked cell stays determined whatever else is blocked: release nothing

    @property
    def primary(self) -> list[Key]:
        return [k for k, why in self.blocked.items() if why == "primary"]

    def rows(self) -> list[tuple[str, str]]:
        """(cell, count or 'suppressed') in the table's order."""
        return [(" x ".join(k), "suppressed" if v is None else str(v)) for k, v in self.released.items()]


def suppress(table: CountTable, threshold: int = 10) -> Suppressed:
    """Block every cell of 1 to `threshold`, then as few more as make none recomputable."""
    if threshold < 1:
        raise ValueError("the small-cell threshold must be at least 1")
    blocked = {k: "primary" for k, n in table.cells.items() if 1 <= n <= threshold}
    exposed = determined(table, blocked)
    while exposed:
        complement = _complement(table, blocked, exposed)
        if complement is None:  # every positive cell is blocked already
            break
        blocked[complement] = "secondary"
        exposed = determined(table, blocked)
    released = {k: (None if k in blocked or exposed else n) for k, n in table.cells.items()}
    return Suppressed(table, threshold, released, blocked, withheld=bool(exposed))


def _complement(table: CountTable, blocked: Mapping[Key, str], exposed: Sequence[Key]) -> Key | None:
    """The cell to block next: among the open positive cells sharing a sum with an exposed cell
    (else any open positive cell), the one that leaves the fewest cells exposed, then a cell
    before a total, then the smallest. Zeros are never blocked (a zero total gives its cells
    away, and a blocked zero can be pinned by the bound >= 0)."""
    open_ = {k for k, n in table.cells.items() if n > 0 and k not in blocked}
    near = {k for total, parts in table.sums if set(exposed) & {total, *parts} for k in (total, *parts)} & open_
    candidates = near or open_
    if not candidates:
        return None
    order = {k: i for i, k in enumerate(table.cells)}  # a stable choice among equals
    return min(candidates, key=lambda k: (len(determined(table, [*blocked, k])), table.is_total(k),
                                          table.cells[k], order[k]))


def determined(table: CountTable, blocked: Iterable[Key]) -> list[Key]:
    """Blocked cells whose value follows from the released cells through the sums."""
    unknown = [k for k in table.cells if k in set(blocked)]
    index = {k: i for i, k in enumerate(unknown)}
    rows: list[list[Fraction]] = []
    for total, parts in table.sums:
        row = [Fraction(0)] * len(unknown)
        for key, sign in ((total, 1), *((p, -1) for p in parts)):
            if key in index:
                row[index[key]] += sign
        if any(row):
            rows.append(row)
    pivots = _reduce(rows, len(unknown))
    found = []
    for col, row in pivots.items():
        if all(v == 0 for j, v in enumerate(row) if j != col and j not in pivots):
            found.append(unknown[col])
    return found


def _reduce(rows: list[list[Fraction]], width: int) -> dict[int, list[Fraction]]:
    """Reduced row echelon form: pivot column -> its row (pivot 1, zeros in other pivot columns)."""
    pivots: dict[int, list[Fraction]] = {}
    remaining = [r[:] for r in rows]
    for col in range(width):
        row = next((r for r in remaining if r[col] != 0), None)
        if row is None:
            continue
        remaining.remove(row)
        p = row[col]
        row = [v / p for v in row]
        for other in (*remaining, *pivots.values()):
            if other[col] != 0:
                f = other[col]
                for j in range(width):
                    other[j] -= f * row[j]
        pivots[col] = row
    return pivots

"""Tables of counts from a frame, released with small cells suppressed.

The counting runs in Spark (one grouped aggregate); only the cells reach the driver, where
`suppress` decides what may be shown. With `unit` a cell counts distinct people; a person in
two cells counts in both, and the totals are the sums of the cells they add up.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pds_spark.disclosure.suppress import Suppressed, one_way, suppress, two_way
from pds_spark.sqltext import quoted


def tabulate(df: DataFrame, row: str, column: str | None = None, unit: str | None = None,
             threshold: int = 10, title: str = "") -> Suppressed:
    """Counts by `row` (and `column`), with totals, cells of 1 to `threshold` suppressed."""
    keys = [row] + ([column] if column else [])
    count = F.count_distinct(F.col(quoted(unit))) if unit else F.count(F.lit(1))
    cells = df.groupBy(*[F.coalesce(F.col(quoted(k)).cast("string"), F.lit("(missing)")).alias(k) for k in keys]) \
        .agg(count.alias("n")).collect()  # one row a cell
    title = title or " by ".join(keys)
    if column:
        counts = {(r[row], r[column]): int(r["n"]) for r in cells}
        return suppress(two_way(title, (row, column), counts, sorted({r[row] for r in cells}),
                                sorted({r[column] for r in cells})), threshold)
    return suppress(one_way(title, row, {r[row]: int(r["n"]) for r in sorted(cells, key=lambda r: r[row])}), threshold)


def as_rows(s: Suppressed) -> tuple[list[str], list[list[str]]]:
    """A released table laid out for reading: a two-way table as rows by columns (totals last),
    a one-way one as label and count; suppressed cells say so."""
    table = s.table
    shown = {k: ("suppressed" if v is None else f"{v:,}") for k, v in s.released.items()}
    if len(table.dimensions) == 2:
        rows = list(dict.fromkeys(k[0] for k in table.cells))
        cols = list(dict.fromkeys(k[1] for k in table.cells))
        return [table.dimensions[0], *cols], [[r, *(shown.get((r, c), "") for c in cols)] for r in rows]
    return [table.dimensions[0] if table.dimensions else "", "count"], [[" x ".join(k), v] for k, v in shown.items()]

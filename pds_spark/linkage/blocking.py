"""Which pairs are compared at all: a union of blocking rules, each an equality on some columns
(a row missing one of them is in no block of that rule). A pair two rules share is built once,
by the first. The pairs each rule will add, and its largest block, are counted from per-key
counts before any pair is built, so a run over its ceiling is refused for the price of a few
aggregations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from itertools import combinations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pds_spark.linkage.comparisons import LinkageError
from pds_spark.sqltext import quoted

DOMINANT_FLOOR = 10_000  # a block under this many pairs never counts as dominating


@dataclass(frozen=True)
class BlockingRule:
    columns: tuple[str, ...]

    def __post_init__(self):
        if not self.columns or len(set(self.columns)) != len(self.columns):
            raise LinkageError(f"a blocking rule needs distinct columns, got {list(self.columns)}")

    @property
    def label(self) -> str:
        return " AND ".join(f"l.{c} = r.{c}" for c in self.columns)

    def holds(self) -> Column:
        """True for a pair of `<column>_l` / `<column>_r` the rule puts in one block (never null)."""
        return F.coalesce(reduce(lambda a, b: a & b, [F.col(f"{c}_l") == F.col(f"{c}_r") for c in self.columns]),
                          F.lit(False))


@dataclass(frozen=True)
class RuleCount:
    rule: BlockingRule
    pairs: int  # the pairs this rule adds (those of no earlier rule)
    alone: int  # the pairs it would build alone
    largest_block: int  # the pairs of its largest block


def _on(left: DataFrame, right: DataFrame, columns: frozenset[str]) -> tuple[int, int]:
    """(pairs, largest block) of an equality on `columns`: the sum and max over keys of
    left rows x right rows."""
    keys = sorted(columns)

    def per_key(df: DataFrame, name: str) -> DataFrame:
        present = reduce(lambda a, b: a & b, [F.col(quoted(k)).isNotNull() for k in keys])
        return df.where(present).groupBy(*[F.col(quoted(k)) for k in keys]).agg(F.count(F.lit(1)).alias(name))

    joined = per_key(left, "n_l").join(per_key(right, "n_r"), keys)
    row = joined.agg(F.sum(F.col("n_l") * F.col("n_r")), F.max(F.col("n_l") * F.col("n_r"))).first()
    return (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)


def count_pairs(left: DataFrame, right: DataFrame, rules: Sequence[BlockingRule]) -> list[RuleCount]:
    """Per rule, the pairs it adds: by inclusion-exclusion over the earlier rules (a pair of
    rules `a` and `b` is an equality on the columns of both), from per-key counts only."""
    if len(rules) > 8:
        raise LinkageError(f"{len(rules)} blocking rules: at most 8 (their overlaps are counted exactly)")
    seen: dict[frozenset[str], tuple[int, int]] = {}

    def on(columns: frozenset[str]) -> tuple[int, int]:
        if columns not in seen:
            seen[columns] = _on(left, right, columns)
        return seen[columns]

    out = []
    for i, rule in enumerate(rules):
        own = frozenset(rule.columns)
        added = 0
        for size in range(i + 1):
            for earlier in combinations(rules[:i], size):
                columns = own.union(*[r.columns for r in earlier])
                added += (-1) ** size * on(columns)[0]
        alone, largest = on(own)
        out.append(RuleCount(rule, added, alone, largest))
    return out


def check_budget(counts: Sequence[RuleCount], max_pairs: int, max_block_share: float) -> int:
    """The pairs to build; refused over `max_pairs`, or when one block would make more than
    `max_block_share` of them (a key such as an empty name or 01/01 birth dates)."""
    total = sum(c.pairs for c in counts)
    if total > max_pairs:
        worst = max(counts, key=lambda c: c.pairs)
        raise LinkageError(f"the blocking rules would build {total:,} pairs, over the ceiling of {max_pairs:,}: "
                           f"rule [{worst.rule.label}] adds {worst.pairs:,}; make the rules stricter or raise "
                           "max_pairs")
    for c in counts:
        if c.largest_block >= DOMINANT_FLOOR and c.largest_block > max_block_share * total:
            raise LinkageError(f"rule [{c.rule.label}]: one block makes {c.largest_block:,} of the {total:,} pairs "
                               f"(over {max_block_share:.0%}): a value shared by too many rows; add a column to "
                               "the rule or clean that value")
    return total


def candidate_pairs(left: DataFrame, right: DataFrame, left_id: str, right_id: str,
                    rules: Sequence[BlockingRule], columns: Sequence[str]) -> DataFrame:
    """The pairs of the rules' union, each once: `id_l`, `id_r`, `blocking_rule` (its index)
    and `<column>_l`, `<column>_r` for `columns` and the rules' columns."""
    carried = sorted(set(columns).union(*[r.columns for r in rules]))
    lhs = left.select(F.col(quoted(left_id)).alias("id_l"), *[F.col(quoted(c)).alias(f"{c}_l") for c in carried])
    rhs = right.select(F.col(quoted(right_id)).alias("id_r"), *[F.col(quoted(c)).alias(f"{c}_r") for c in carried])
    parts = []
    for i, rule in enumerate(rules):
        pairs = lhs.join(rhs, reduce(lambda a, b: a & b, [lhs[f"{c}_l"] == rhs[f"{c}_r"] for c in rule.columns]))
        for earlier in rules[:i]:
            pairs = pairs.where(~earlier.holds())
        parts.append(pairs.withColumn("blocking_rule", F.lit(i)))
    if not parts:
        raise LinkageError("no blocking rule: every pair of the two files would be compared")
    return reduce(DataFrame.unionByName, parts)

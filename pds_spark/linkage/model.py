"""Fellegi-Sunter: for each comparison level, m (how often true matches show it) and u (how
often non-matches do); a pair's match weight is log2 of the prior odds plus, per comparison,
log2(m/u) of its level (a missing value weighs nothing).

u comes from a reproducible random sample of pairs (nearly all of them non-matches); m and the
prior from expectation-maximisation over the blocked pairs. EM runs on the pairs' comparison
vectors counted by Spark (one row a distinct vector: bounded by the product of the levels, not by
the pairs), so the driver's memory does not grow with the pairs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import overload

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pds_spark.linkage.comparisons import Comparison, LinkageError, gamma

Vectors = list[tuple[tuple[int, ...], int]]  # (one level a comparison, pairs showing it)
FLOOR = 1e-6  # no probability of a level is taken as exactly 0 (its weight would be infinite)


@dataclass(frozen=True)
class Parameters:
    prior: float  # the share of matches among the blocked pairs
    m: dict[str, tuple[float, ...]]  # per comparison, per level (level 0, missing, unused)
    u: dict[str, tuple[float, ...]]

    def weights(self) -> dict[str, tuple[float, ...]]:
        """log2(m/u) per comparison and level; 0 for a missing value."""
        return {k: (0.0, *(math.log2(max(m, FLOOR) / max(u, FLOOR)) for m, u in zip(ms[1:], self.u[k][1:])))
                for k, ms in self.m.items()}

    @property
    def prior_weight(self) -> float:
        p = min(max(self.prior, FLOOR), 1 - FLOOR)
        return math.log2(p / (1 - p))


@overload
def comparison_vectors(pairs: DataFrame, comparisons: Sequence[Comparison]) -> Vectors: ...
@overload
def comparison_vectors(pairs: DataFrame, comparisons: Sequence[Comparison], by: str) -> dict[int, Vectors]: ...


def comparison_vectors(pairs: DataFrame, comparisons: Sequence[Comparison], by: str | None = None
                       ) -> Vectors | dict[int, Vectors]:
    """The pairs' comparison vectors and how many pairs show each (one aggregation); with `by`
    (an integer column), per value of it."""
    names = [gamma(c.name) for c in comparisons]
    levelled = pairs if set(names) <= set(pairs.columns) else pairs.select(*([by] if by else []),
                                                                           *[c.level() for c in comparisons])
    rows = levelled.groupBy(*([by] if by else []), *names).count().collect()  # at most the product of levels
    if by is None:
        return [(tuple(int(r[n]) for n in names), int(r["count"])) for r in rows]
    out: dict[int, Vectors] = {}
    for r in rows:
        out.setdefault(int(r[by]), []).append((tuple(int(r[n]) for n in names), int(r["count"])))
    return out


def best_levels(pairs: DataFrame, comparisons: Sequence[Comparison]) -> DataFrame:
    """One row a pair of ids (`id_l`, `id_r`) when an id has several rows (a person and each of
    their stays): each comparison at its most alike level over the id's rows, missing only if it
    is missing in all; the left values kept (a left id is one row)."""
    names = [gamma(c.name) for c in comparisons]
    values = sorted({f"{c.column}_l" for c in comparisons} & set(pairs.columns))
    rule = "blocking_rule" in pairs.columns  # the first rule that built one of the id's pairs
    levelled = pairs.select("id_l", "id_r", *values, *(["blocking_rule"] if rule else []),
                            *[c.level() for c in comparisons])
    return levelled.groupBy("id_l", "id_r").agg(
        *[F.first(v).alias(v) for v in values], *([F.min("blocking_rule").alias("blocking_rule")] if rule else []),
        *[F.coalesce(F.min(F.nullif(F.col(n), F.lit(0))), F.lit(0)).alias(n) for n in names])


def level_shares(vectors: Vectors, comparisons: Sequence[Comparison]) -> dict[str, tuple[float, ...]]:
    """Per comparison, each level's share among the pairs where neither value is missing."""
    out = {}
    for k, c in enumerate(comparisons):
        counts = [0] * c.levels
        for vector, n in vectors:
            counts[vector[k]] += n
        seen = sum(counts[1:])
        out[c.name] = (0.0, *((n / seen) if seen else 1 / (c.levels - 1) for n in counts[1:]))
    return out


def random_pairs(left: DataFrame, right: DataFrame, n_left: int, n_right: int, pairs: int, seed: int) -> DataFrame:
    """About `pairs` pairs drawn at random (the same for the same seed and inputs) from `left`
    and `right` (of `n_left` and `n_right` rows): a sample of each side, crossed."""
    if not n_left or not n_right:
        raise LinkageError("an input has no row: nothing to estimate u from")
    side = math.sqrt(pairs)
    lhs = left.sample(fraction=min(1.0, side / n_left), seed=seed)
    rhs = right.sample(fraction=min(1.0, side / n_right), seed=seed + 1)
    return lhs.crossJoin(rhs)


def starting_m(comparisons: Sequence[Comparison]) -> dict[str, tuple[float, ...]]:
    """A start for EM: matches mostly at the most alike level, halving down the levels."""
    out = {}
    for c in comparisons:
        raw = [0.5 ** i for i in range(c.levels - 1)]
        out[c.name] = (0.0, *(x / sum(raw) for x in raw))
    return out


def expectation_maximisation(vectors: Vectors, comparisons: Sequence[Comparison], start: Parameters,
                             fix_u: bool = True, iterations: int = 100,
                             tolerance: float = 1e-7, fix_m: bool = False) -> tuple[Parameters, int]:
    """The prior, m unless `fix_m` and u unless `fix_u`, that best explain the counted vectors;
    returns them with the iterations run."""
    names = [c.name for c in comparisons]
    m = {k: list(v) for k, v in start.m.items()}
    u = {k: list(v) for k, v in start.u.items()}
    prior = start.prior
    total = sum(n for _, n in vectors)
    if not total:
        raise LinkageError("no pair to estimate from")
    iteration = 0
    while iteration < iterations:
        iteration += 1
        m_sum = {k: [0.0] * len(m[k]) for k in names}
        u_sum = {k: [0.0] * len(u[k]) for k in names}
        matched = 0.0
        for vector, n in vectors:
            pm, pu = prior, 1 - prior
            for k, level in zip(names, vector):
                if level:
                    pm *= max(m[k][level], FLOOR)
                    pu *= max(u[k][level], FLOOR)
            p = pm / (pm + pu)
            matched += n * p
            for k, level in zip(names, vector):
                m_sum[k][level] += n * p
                u_sum[k][level] += n * (1 - p)
        change = abs(matched / total - prior)
        prior = matched / total
        for k in names:
            for store, sums in (() if fix_m else ((m, m_sum),)) + (() if fix_u else ((u, u_sum),)):
                seen = sum(sums[k][1:])
                fresh = [0.0, *((s / seen) if seen else store[k][i + 1] for i, s in enumerate(sums[k][1:]))]
                change = max(change, max(abs(a - b) for a, b in zip(fresh, store[k])))
                store[k] = fresh
        if change < tolerance:
            break
    return Parameters(prior, {k: tuple(v) for k, v in m.items()}, {k: tuple(v) for k, v in u.items()}), iteration


def term_frequencies(left: DataFrame, right: DataFrame, column: str) -> DataFrame:
    """Each value of `column` with its share among both inputs' values (`value`, `tf`)."""
    values = left.select(F.col(column).alias("value")).unionAll(right.select(F.col(column).alias("value"))) \
        .where(F.col("value").isNotNull())
    counted = values.groupBy("value").agg(F.count(F.lit(1)).alias("n"))
    return counted.select("value", (F.col("n") / F.sum("n").over(Window.partitionBy())).alias("tf"))


def score(pairs: DataFrame, comparisons: Sequence[Comparison], params: Parameters,
          frequencies: Mapping[str, DataFrame] | None = None) -> DataFrame:
    """The pairs with each comparison's level (`gamma_<name>`) and weight (`weight_<name>`),
    the match weight and the match probability: native expressions only. `frequencies`
    (`term_frequencies` of a comparison's column, by its name): at its exact level the weight is
    log2(m / the value's frequency) instead of log2(m / u), as Splink's adjustment."""
    weights = params.weights()
    levelled = pairs if all(gamma(c.name) in pairs.columns for c in comparisons) else \
        pairs.select("*", *[c.level() for c in comparisons])
    for name, tf in (frequencies or {}).items():
        column = next(c.column for c in comparisons if c.name == name)
        levelled = levelled.join(tf.select(F.col("value").alias(f"{column}_l"), F.col("tf").alias(f"_tf_{name}")),
                                 f"{column}_l", "left")
    parts = []
    for c in comparisons:
        weight = F.element_at(F.array(*[F.lit(w) for w in weights[c.name]]), F.col(gamma(c.name)) + 1)
        if frequencies and c.name in frequencies:
            adjusted = F.log2(F.lit(max(params.m[c.name][1], FLOOR)) / F.greatest(F.col(f"_tf_{c.name}"), F.lit(FLOOR)))
            weight = F.when((F.col(gamma(c.name)) == 1) & F.col(f"_tf_{c.name}").isNotNull(), adjusted).otherwise(weight)
        parts.append(weight.alias(f"weight_{c.name}"))
    weighed = levelled.select("*", *parts).drop(*[f"_tf_{name}" for name in (frequencies or {})])
    total = F.lit(params.prior_weight)
    for c in comparisons:
        total = total + F.col(f"weight_{c.name}")
    return weighed.withColumn("match_weight", total) \
        .withColumn("match_probability", F.lit(1.0) / (F.lit(1.0) + F.pow(F.lit(2.0), -F.col("match_weight"))))

"""A linkage run: its steps in order (direct, deterministic cascade, probabilistic), each on
the records the earlier ones left unlinked, as distributed joins; then, with a truth table,
precision and recall. What reaches the driver is counts, the counted comparison vectors and a
few example pairs, never the records."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pds_spark.linkage.blocking import RuleCount, candidate_pairs, check_budget, count_pairs
from pds_spark.linkage.clusters import with_clusters
from pds_spark.linkage.comparisons import Comparison, LinkageError, gamma, register_functions
from pds_spark.linkage.model import (
    Parameters,
    best_levels,
    comparison_vectors,
    expectation_maximisation,
    level_shares,
    random_pairs,
    score,
    starting_m,
    term_frequencies,
)
from pds_spark.linkage.spec import LinkageSpec
from pds_spark.sqltext import quoted

log = logging.getLogger("pds.linkage")
HISTOGRAM_BIN = 2.0  # match weight units a histogram bar spans


@dataclass(frozen=True)
class StepCount:
    step: str
    linked: int  # pairs linked by this step
    ambiguous: int  # left records with several candidates, none linked by this step
    unlinked: int  # left records still unlinked after it


@dataclass(frozen=True)
class Session:
    """One EM run: the pairs of one blocking rule, the comparisons of other columns."""

    rule: str
    pairs: int
    trained: tuple[str, ...]  # the comparisons whose m it estimated
    prior: float  # the share of matches among its pairs
    iterations: int
    vectors: int  # distinct comparison vectors


@dataclass
class Estimated:
    """The probabilistic step's model and what it was built from."""

    counts: list[RuleCount]
    pairs: int
    u_pairs: int
    params: Parameters  # prior: the probability that two records drawn at random match
    sessions: list[Session]
    matches: float  # the matches found among the blocked pairs, m and u fixed (the prior's numerator)
    matches_whole: float | None = None  # after deterministic steps: the matches among the whole inputs' pairs
    linked_before: int = 0  # the left records those steps linked


@dataclass
class LinkageResult:
    links: DataFrame  # id_l, id_r, step, match_weight, match_probability, gamma_* and weight_* (null if deterministic)
    steps: list[StepCount]
    estimated: Estimated | None = None
    histogram: list[tuple[float, int]] = field(default_factory=list)  # (bin start, pairs) of the scored pairs
    examples: list[dict] = field(default_factory=list)  # pairs near the threshold, their weights
    evaluation: dict[str, float] | None = None


def _unique(pairs: DataFrame) -> DataFrame:
    """The pairs whose left and right records are in no other pair."""
    per_left, per_right = Window.partitionBy("id_l"), Window.partitionBy("id_r")
    return (pairs.withColumn("_n_l", F.count(F.lit(1)).over(per_left))
            .withColumn("_n_r", F.count(F.lit(1)).over(per_right))
            .where("_n_l = 1 AND _n_r = 1").drop("_n_l", "_n_r"))


def _equal_on(lhs: DataFrame, rhs: DataFrame, columns: Sequence[tuple[str, str]]) -> DataFrame:
    condition = reduce(lambda a, b: a & b, [lhs[a] == rhs[b] for a, b in columns])
    return lhs.join(rhs, condition)


def deterministic(left: DataFrame, right: DataFrame, criteria: Sequence[tuple[str, str]], step: str,
                  repeats: bool = False) -> tuple[DataFrame, int]:
    """One deterministic pass: pairs equal (and present) on every criterion, kept when each of
    their records is in no other pair. Returns the links (id_l, id_r, step) and the left
    records left ambiguous (several candidates)."""
    lhs = left.select(F.col("_id").alias("id_l"), *[F.col(quoted(a)).alias(f"_l{i}") for i, (a, _) in enumerate(criteria)])
    rhs = right.select(F.col("_id").alias("id_r"), *[F.col(quoted(b)).alias(f"_r{i}") for i, (_, b) in enumerate(criteria)])
    pairs = _equal_on(lhs, rhs, [(f"_l{i}", f"_r{i}") for i in range(len(criteria))]).select("id_l", "id_r")
    pairs = pairs.distinct() if repeats else pairs  # an id's several rows: one pair of ids
    pairs = pairs.localCheckpoint()  # both the links and the ambiguity count read it
    links = _unique(pairs).withColumn("step", F.lit(step))
    ambiguous = pairs.groupBy("id_l").count().where("count > 1").count()
    return links, ambiguous


def _remaining(df: DataFrame, links: DataFrame, side: str) -> DataFrame:
    return df.join(links.select(F.col(f"id_{side}").alias("_id")), "_id", "left_anti")


def estimate(left: DataFrame, right: DataFrame, spec: LinkageSpec, progress: Callable[[str], None] = log.info,
             whole: tuple[DataFrame, DataFrame] | None = None) -> tuple[Estimated, DataFrame]:
    """Count and check the blocked pairs; u from random pairs; m by EM, one session a training
    rule (the blocking rules unless the spec names others) over that rule's pairs, each
    training only the comparisons of columns the rule does not hold equal (those agree by
    construction there, whatever the pair); then the prior of
    two random records matching. m and u come from `whole` when given (the inputs before the
    deterministic steps: the population, not the few records those steps left, whose EM would
    have too few matches to learn from); the prior from `left` and `right`. Returns the model
    and the blocked pairs of `left` and `right` (not yet built)."""
    counts = count_pairs(left, right, spec.blocking)
    for c in counts:
        progress(f"blocking [{c.rule.label}]: {c.pairs:,} pairs ({c.alone:,} alone, largest block "
                 f"{c.largest_block:,})")
    total = check_budget(counts, spec.max_pairs, spec.max_block_share)
    n_left, n_right = left.count(), right.count()
    right_ids = right.select("_id").distinct().count() if spec.right_id_repeats else n_right
    t_left, t_right = whole or (left, right)
    training, t_n_left, t_n_right = counts, n_left, n_right
    if whole is not None or spec.training:
        if whole is not None:
            t_n_left, t_n_right = t_left.count(), t_right.count()
            progress("the model learns from the whole inputs")
        training = count_pairs(t_left, t_right, spec.training_rules)
    for c in training:  # a session builds all its rule's pairs
        if c.alone > spec.max_pairs:
            raise LinkageError(f"training rule [{c.rule.label}] would build {c.alone:,} pairs, over the ceiling of "
                               f"{spec.max_pairs:,}: make it stricter or raise max_pairs")
    columns = sorted({c.column for c in spec.comparisons})
    sides = [df.select(F.col("_id").alias(f"id_{s}"), *[F.col(quoted(c)).alias(f"{c}_{s}") for c in columns])
             for df, s in ((t_left, "l"), (t_right, "r"))]
    u_vectors = comparison_vectors(random_pairs(sides[0], sides[1], t_n_left, t_n_right, spec.u_sample_pairs,
                                                spec.seed), spec.comparisons)
    u = level_shares(u_vectors, spec.comparisons)
    u_pairs = sum(n for _, n in u_vectors)
    progress(f"u from {u_pairs:,} random pairs")

    def ids(pairs: DataFrame, comparisons: Sequence[Comparison]) -> DataFrame:
        return best_levels(pairs, comparisons) if spec.right_id_repeats else pairs

    trained: dict[str, list[tuple[float, ...]]] = {}
    sessions = []
    for c in training:
        active = [k for k in spec.comparisons if k.column not in c.rule.columns]
        if not active or not c.alone:
            continue
        vectors = comparison_vectors(ids(candidate_pairs(t_left, t_right, "_id", "_id", [c.rule], columns), active),
                                     active)
        start = Parameters(min(max(min(t_n_left, t_n_right) / c.alone / 2, 1e-6), 0.5), starting_m(active),
                           {k.name: u[k.name] for k in active})  # a start near 1 is a fixed point: all matches
        params, iterations = expectation_maximisation(vectors, active, start, iterations=spec.em_iterations)
        for k in active:
            trained.setdefault(k.name, []).append(params.m[k.name])
        sessions.append(Session(c.rule.label, c.alone, tuple(k.name for k in active), params.prior, iterations,
                                len(vectors)))
        progress(f"EM on [{c.rule.label}]: {iterations} iterations over {len(vectors):,} distinct vectors of "
                 f"{c.alone:,} pairs; matches among them {params.prior:.4g}")
    untrainable = [k.name for k in spec.comparisons if all(k.column in c.rule.columns for c in training)]
    if untrainable:
        raise LinkageError(f"comparison(s) {', '.join(untrainable)}: their column is in every "
                           f"{'training' if spec.training else 'blocking'} rule, so no EM session can estimate "
                           "their m; add a rule that does not hold it equal")
    m = {name: tuple(sum(levels) / len(ms) for levels in zip(*ms)) for name, ms in trained.items()}
    untrained = [k for k in spec.comparisons if k.name not in trained]
    if untrained:  # the rules that would train them found no pair
        progress(f"no pair to train {', '.join(k.name for k in untrained)}: their m is a guess (most alike first)")
        m.update(starting_m(untrained))
    pairs = ids(candidate_pairs(left, right, "_id", "_id", spec.blocking, columns), spec.comparisons)
    matches = _blocked_matches(pairs, counts, spec, m, u)
    in_whole, linked = None, 0
    if whole is not None:
        # The deterministic steps took the easiest matches: among what they left, the pairs that
        # show a match (a commune that agrees) are rarer than the matches hidden by a missing
        # value, which EM on the remainder alone would read as rare too. The population's matches
        # (missing values there fall on matches and non-matches alike) less those linked is the
        # remainder's share.
        whole_counts = count_pairs(t_left, t_right, spec.blocking) if spec.training else training
        check_budget(whole_counts, spec.max_pairs, spec.max_block_share)
        whole_pairs = ids(candidate_pairs(t_left, t_right, "_id", "_id", spec.blocking, columns), spec.comparisons)
        in_whole = _blocked_matches(whole_pairs, whole_counts, spec, m, u)
        linked = t_n_left - n_left
        progress(f"about {in_whole:,.0f} matches among the whole inputs' blocked pairs, {linked:,} of them linked")
        matches = max(matches, in_whole - linked)
    matches = max(matches, 1.0)
    prior = min(matches / (n_left * right_ids), 0.5)
    progress(f"about {matches:,.0f} matches among the {total:,} blocked pairs")
    return Estimated(counts, total, u_pairs, Parameters(prior, m, u), sessions, matches, in_whole, linked), pairs


def _blocked_matches(pairs: DataFrame, counts: Sequence[RuleCount], spec: LinkageSpec,
                     m: dict[str, tuple[float, ...]], u: dict[str, tuple[float, ...]]) -> float:
    """The matches among the blocked `pairs`, m and u fixed: per rule, among the pairs it adds,
    from the comparisons of the columns it does not hold equal (those agree by construction
    there, which u, drawn from random pairs, would read as a match)."""
    by_rule = comparison_vectors(pairs, spec.comparisons, by="blocking_rule")
    matches = 0.0
    for i, c in enumerate(counts):
        kept = [j for j, k in enumerate(spec.comparisons) if k.column not in c.rule.columns]
        free = [spec.comparisons[j] for j in kept]
        vectors = by_rule.get(i, [])
        if not vectors or not free:
            continue
        narrowed: dict[tuple[int, ...], int] = {}
        for vector, n in vectors:
            key = tuple(vector[j] for j in kept)
            narrowed[key] = narrowed.get(key, 0) + n
        share, _ = expectation_maximisation(list(narrowed.items()), free,
                                            Parameters(0.5, {k.name: m[k.name] for k in free},
                                                       {k.name: u[k.name] for k in free}),
                                            iterations=spec.em_iterations, fix_m=True)
        matches += share.prior * sum(n for _, n in vectors)
    return matches


def _best(scored: DataFrame) -> DataFrame:
    """Each record's best pair only, where it is also the other record's best (ties: neither)."""
    out = scored
    for side in ("l", "r"):
        by = Window.partitionBy(f"id_{side}")
        out = out.withColumn(f"_top_{side}", F.max("match_weight").over(by)) \
            .withColumn(f"_ties_{side}", F.count(F.when(F.col("match_weight") == F.col(f"_top_{side}"), 1)).over(by))
    return out.where("match_weight = _top_l AND match_weight = _top_r AND _ties_l = 1 AND _ties_r = 1") \
        .drop("_top_l", "_top_r", "_ties_l", "_ties_r")


def _examples(scored: DataFrame, comparisons: Sequence[Comparison], threshold: float, n: int = 3) -> list[dict]:
    """The `n` pairs nearest the threshold, each with its weights (a waterfall's bars)."""
    cut = math.log2(threshold / (1 - threshold))
    near = scored.orderBy(F.abs(F.col("match_weight") - F.lit(cut)), "id_l", "id_r").limit(n)
    rows = near.select("match_weight", "match_probability", *[gamma(c.name) for c in comparisons],
                       *[f"weight_{c.name}" for c in comparisons]).collect()  # n rows, no identifier
    return [{"match_weight": r["match_weight"], "match_probability": r["match_probability"],
             "bars": [(c.name, c.labels[r[gamma(c.name)]], r[f"weight_{c.name}"]) for c in comparisons]}
            for r in rows]


def link(spark: SparkSession, left: DataFrame, right: DataFrame, spec: LinkageSpec,
         truth: DataFrame | None = None, progress: Callable[[str], None] = log.info) -> LinkageResult:
    """Run the spec's steps; `truth` (id_l, id_r: the true pairs) adds precision, recall, F1."""
    spec.check_inputs(left, right)
    if spec.comparisons:
        register_functions(spark)
    lhs = left.withColumn("_id", F.col(quoted(spec.left_id)))
    rhs = right.withColumn("_id", F.col(quoted(spec.right_id)))
    whole = (lhs, rhs)
    parts: list[DataFrame] = []
    steps: list[StepCount] = []
    n_left = lhs.count()
    linked_so_far = 0

    def done(step: str, links: DataFrame, ambiguous: int) -> None:
        nonlocal lhs, rhs, linked_so_far
        links = links.localCheckpoint()
        n = links.count()
        linked_so_far += n
        parts.append(links)
        lhs, rhs = _remaining(lhs, links, "l").localCheckpoint(), _remaining(rhs, links, "r").localCheckpoint()
        steps.append(StepCount(step, n, ambiguous, n_left - linked_so_far))
        progress(f"{step}: {n:,} linked, {ambiguous:,} ambiguous, {n_left - linked_so_far:,} left unlinked")

    for equal_on in [[spec.direct] if spec.direct else [], *[[(c, c) for c in cs] for cs in spec.cascade]]:
        for a, b in equal_on:
            if lhs.schema[a].dataType != rhs.schema[b].dataType:
                raise LinkageError(f"linkage {spec.name}: {a} is {lhs.schema[a].dataType.simpleString()} on the left, "
                                   f"{b} {rhs.schema[b].dataType.simpleString()} on the right: name it in a "
                                   "comparison (its kind types both sides) or give both sides the same type")
    if spec.direct:
        done("direct", *deterministic(lhs, rhs, [spec.direct], "direct", spec.right_id_repeats))
    for i, criteria in enumerate(spec.cascade, 1):
        done(f"cascade {i}", *deterministic(lhs, rhs, [(c, c) for c in criteria], f"cascade {i}",
                                            spec.right_id_repeats))
    estimated, histogram, examples = None, [], []
    if spec.comparisons:
        estimated, pairs = estimate(lhs, rhs, spec, progress, whole if parts else None)
        frequencies = {c.name: term_frequencies(lhs, rhs, quoted(c.column)) for c in spec.comparisons
                       if c.term_frequency}
        scored = score(pairs, spec.comparisons, estimated.params, frequencies).localCheckpoint()
        histogram = [(float(r["bin"]) * HISTOGRAM_BIN, int(r["count"])) for r in
                     scored.groupBy(F.floor(F.col("match_weight") / HISTOGRAM_BIN).alias("bin")).count()
                     .orderBy("bin").collect()]  # one row a bin
        examples = _examples(scored, spec.comparisons, spec.threshold)
        kept = scored.where(F.col("match_probability") >= spec.threshold)
        if spec.one_to_one:
            kept = _best(kept)
        ambiguous = scored.where(F.col("match_probability") >= spec.threshold).groupBy("id_l").count() \
            .where("count > 1").count()
        done("probabilistic", kept.select("id_l", "id_r", F.lit("probabilistic").alias("step"), "match_weight",
                                          "match_probability", *[gamma(c.name) for c in spec.comparisons],
                                          *[f"weight_{c.name}" for c in spec.comparisons]), ambiguous)
    links = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), parts)
    if spec.clusters:
        links = with_clusters(links, progress).localCheckpoint()
    result = LinkageResult(links, steps, estimated, histogram, examples)
    if truth is not None:
        result.evaluation = evaluate(links, truth)
        progress("against the truth: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v:,}"
                                                    for k, v in result.evaluation.items()))
    return result


def evaluate(links: DataFrame, truth: DataFrame) -> dict[str, float]:
    """Precision, recall and F1 of `links` against the true pairs (id_l, id_r)."""
    true_pairs = truth.select(F.col("id_l").cast("string"), F.col("id_r").cast("string")).distinct()
    found = links.select(F.col("id_l").cast("string"), F.col("id_r").cast("string")).distinct()
    n_found, n_true = found.count(), true_pairs.count()
    hits = found.join(true_pairs, ["id_l", "id_r"]).count()
    if not n_true:
        raise LinkageError("the truth table holds no pair")
    precision = hits / n_found if n_found else 1.0
    recall = hits / n_true
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"links": n_found, "true pairs": n_true, "true links": hits, "precision": precision, "recall": recall,
            "F1": f1}

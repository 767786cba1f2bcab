"""Clusters of linked records: the connected components of the links' graph, found by the
alternating large-star / small-star rounds of Kiveris et al. ("Connected components in MapReduce
and beyond", 2014): O(log^2 n) rounds on any graph, where spreading the smallest label along the
edges needs as many rounds as the longest path (a chain of links), and one hub does not hold
every edge in one task for long."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

log = logging.getLogger("pds.linkage")
MAX_ROUNDS = 100


def _both_ways(edges: DataFrame) -> DataFrame:
    return edges.select("a", "b").unionByName(edges.select(F.col("b").alias("a"), F.col("a").alias("b")))


def _large_star(edges: DataFrame) -> DataFrame:
    """Each node's larger neighbours attached to the smallest of its neighbourhood (itself included)."""
    both = _both_ways(edges)
    smallest = both.groupBy("a").agg(F.least(F.min("b"), F.col("a")).alias("m"))
    return both.join(smallest, "a").where(F.col("b") > F.col("a")) \
        .select(F.col("b").alias("a"), F.col("m").alias("b")).distinct()


def _small_star(edges: DataFrame) -> DataFrame:
    """Each node's smaller neighbours, and itself, attached to the smallest of them."""
    down = edges.select(F.greatest("a", "b").alias("a"), F.least("a", "b").alias("b")).where("a != b")
    smallest = down.groupBy("a").agg(F.min("b").alias("m"))
    moved = down.join(smallest, "a").select(F.col("b").alias("a"), "m")
    own = smallest.select("a", "m")
    return moved.unionByName(own).where("a != m").select("a", F.col("m").alias("b")).distinct()


def components(edges: DataFrame, progress: Callable[[str], None] = log.info) -> DataFrame:
    """`node`, `component` (the smallest node of its component) for every node of `edges`
    (two string columns `a`, `b`); stops when a round changes no edge."""
    current = edges.select(F.col("a").cast("string"), F.col("b").cast("string")).where("a IS NOT NULL AND "
                                                                                       "b IS NOT NULL")
    current = current.select(F.greatest("a", "b").alias("a"), F.least("a", "b").alias("b")).distinct() \
        .localCheckpoint()
    for rounds in range(1, MAX_ROUNDS + 1):
        following = _small_star(_large_star(current)).localCheckpoint()
        if following.exceptAll(current).isEmpty() and current.exceptAll(following).isEmpty():
            progress(f"clusters: {rounds} round(s)")
            break
        current = following
    else:
        raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
    # converged: stars, each edge (node, its component's smallest node)
    members = current.select(F.col("a").alias("node"), F.col("b").alias("component"))
    centres = current.select(F.col("b").alias("node"), F.col("b").alias("component"))
    return members.unionByName(centres).distinct()


def with_clusters(links: DataFrame, progress: Callable[[str], None] = log.info) -> DataFrame:
    """`links` (id_l, id_r) with `cluster`: the same for links of one connected component (its
    smallest record, as `l:<id>` or `r:<id>`)."""
    edges = links.select(F.concat(F.lit("l:"), F.col("id_l").cast("string")).alias("a"),
                         F.concat(F.lit("r:"), F.col("id_r").cast("string")).alias("b"))
    found = components(edges, progress).select(F.col("node").alias("_node"), F.col("component").alias("cluster"))
    return links.join(found, F.concat(F.lit("l:"), F.col("id_l").cast("string")) == F.col("_node"), "left") \
        .drop("_node")

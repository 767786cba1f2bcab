"""Benchmark: file-to-file linkage (names, birth dates, addresses with typos) against Splink's
Spark backend, on the same machine, data, blocking rules and comparison levels.

  .venv/bin/python -m pip install -e '.[bench]'       (Splink: benchmark only, not a platform dependency)
  .venv/bin/python bench/bench_linkage.py --sizes 5000 200000 --repeats 3

data:   `synth.linkage.linkage_files`: N people on the left, a right file holding 80 % of
        them and as many others, each copy with its own noise (typos, shifted or swapped
        dates, moves, missing values), and the truth; cached before timing.
ours:   `linkage.run.link` with conf/linkage/file_to_file.toml, up to its links counted.
Splink: the same three blocking rules and, level for level, the same comparisons (its Scala
        Jaro-Winkler and Damerau-Levenshtein); its usual training: the prior from two
        deterministic rules (recall 0.8), u from 1 M random pairs, EM on the spec's training
        rules (the same sessions as ours);
        then predict() at match probability 0.9, up to its predictions counted.
Both scored against the truth (precision, recall, F1 of the pairs each returns). Targets:
F1 >= 0.98; F1 at least Splink's in at most half its time; the cost of ours grows at most
linearly with the candidate pairs (N and 2N: about 4x the pairs). Medians of --repeats after a
warm-up at the smallest size; one run at sizes over --repeat-below.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import REPO, median, record, session

sys.path.insert(0, str(REPO))
SPEC = REPO / "conf" / "linkage" / "file_to_file.toml"


def splink_settings(spec):
    """Splink's settings with the spec's blocking rules and comparison levels, as SQL."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    def levels(c):
        a, b = f"{c.column}_l", f"{c.column}_r"
        out = [{"sql_condition": f"{a} IS NULL OR {b} IS NULL", "label_for_charts": "missing", "is_null_level": True}]
        if c.kind == "date":
            out.append({"sql_condition": f"{a} = {b}", "label_for_charts": "same day"})
            if c.swapped_day_month:
                out.append({"sql_condition": f"year({a}) = year({b}) AND month({a}) = day({b}) AND day({a}) = month({b})",
                            "label_for_charts": "swapped"})
            out += [{"sql_condition": f"abs(datediff({a}, {b})) <= {int(d)}", "label_for_charts": f"{int(d)} days"}
                    for d in c.thresholds]
        else:
            exact = {"sql_condition": f"{a} = {b}", "label_for_charts": "exact"}
            if c.term_frequency:  # Splink's adjustment: log2(m / the value's frequency) at the exact level
                exact |= {"tf_adjustment_column": c.column, "tf_adjustment_weight": 1.0}
            out.append(exact)
            sql = {"jaro_winkler": "jaro_winkler({a}, {b}) >= {t}", "damerau_levenshtein": "damerau_levenshtein({a}, {b}) <= {t}",
                   "levenshtein": "levenshtein({a}, {b}) <= {t}", "prefix": "substr({a}, 1, {t}) = substr({b}, 1, {t})",
                   "numeric": "abs({a} - {b}) <= {t}"}.get(c.kind)
            out += [{"sql_condition": sql.format(a=a, b=b, t=int(t) if c.kind != "jaro_winkler" else t),
                     "label_for_charts": f"{t}"} for t in c.thresholds] if sql else []
        out.append({"sql_condition": "ELSE", "label_for_charts": "else"})
        return cl.CustomComparison(out, output_column_name=c.name)

    return SettingsCreator(link_type="link_only", unique_id_column_name="record_id",
                           comparisons=[levels(c) for c in spec.comparisons],
                           blocking_rules_to_generate_predictions=[block_on(*r.columns) for r in spec.blocking],
                           retain_intermediate_calculation_columns=False, retain_matching_columns=False)


def run_splink(spark, spec, left, right, truth) -> tuple[float, dict]:
    from pyspark.sql import functions as F
    from splink import Linker, SparkAPI, block_on

    from pds_spark.linkage.run import evaluate

    for view in ("left", "right"):  # the previous run's inputs
        spark.catalog.dropTempView(view)
    t0 = time.perf_counter()
    db = SparkAPI(spark_session=spark)
    linker = Linker([db.register(left, dataset_display_name="left"), db.register(right, dataset_display_name="right")],
                    splink_settings(spec),
                    log_level="WARNING")
    linker.training.estimate_probability_two_random_records_match(
        ["l.surname = r.surname AND l.first_name = r.first_name AND l.birth_date = r.birth_date",
         "l.birth_date = r.birth_date AND l.commune = r.commune AND l.address = r.address"], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=spec.u_sample_pairs, seed=spec.seed)
    for rule in spec.training_rules:  # the same EM sessions as ours
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule.columns))
    predicted = linker.inference.predict(threshold_match_probability=spec.threshold).as_spark_dataframe()
    links = predicted.select(F.when(F.col("source_dataset_l") == "left", F.col("record_id_l"))
                             .otherwise(F.col("record_id_r")).alias("id_l"),
                             F.when(F.col("source_dataset_l") == "left", F.col("record_id_r"))
                             .otherwise(F.col("record_id_l")).alias("id_r")).localCheckpoint()
    links.count()
    seconds = time.perf_counter() - t0
    return seconds, evaluate(links, truth)


def timed_link(spark, spec, left, right, truth):
    """(seconds until the links are counted, their evaluation against `truth`, the result)."""
    from pds_spark.linkage.run import evaluate, link

    t0 = time.perf_counter()
    result = link(spark, left, right, spec, progress=lambda _: None)
    links = result.links.localCheckpoint()
    links.count()
    seconds = time.perf_counter() - t0
    return seconds, evaluate(links, truth), result


def run_ours(spark, spec, left, right, truth) -> tuple[float, dict, int]:
    seconds, evaluation, result = timed_link(spark, spec, left, right, truth)
    assert result.estimated is not None
    return seconds, evaluation, result.estimated.pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 200000])
    parser.add_argument("--scaling", type=int, default=100000, help="ours also at this size (half the largest)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repeat-below", type=int, default=50000, help="sizes above run once")
    parser.add_argument("--no-splink", action="store_true")
    a = parser.parse_args()
    jars = []
    if not a.no_splink:
        from splink.internals.spark.jar_location import similarity_jar_location

        jars = [similarity_jar_location()]
    from pds_spark.session import jar_paths
    from pds_spark.settings import load_settings

    base = [str(j) for j in jar_paths(load_settings())]
    settings, spark = session("bench-linkage", {"spark.jars": ",".join(base + jars),
                                                "spark.sql.shuffle.partitions": "8"})
    spark.sparkContext.setCheckpointDir(str(Path(settings.paths.work) / "bench-linkage-checkpoints"))
    from pds_spark.linkage.spec import load_spec
    from pds_spark.synth.linkage import linkage_files

    spec = load_spec(SPEC)
    result: dict = {"spec": SPEC.name, "sizes": {}}

    def data(n: int):
        files = linkage_files(spark, settings.paths.names, n, seed=11)
        left, right, truth = files.left.cache(), files.right.cache(), files.truth.cache()
        left.count(), right.count(), truth.count()
        return left, right, truth

    warm = data(min(a.sizes))
    run_ours(spark, spec, *warm)
    if not a.no_splink:
        run_splink(spark, spec, *warm)
    for n in sorted(set(a.sizes) | ({a.scaling} if a.scaling else set())):
        left, right, truth = data(n)
        repeats = a.repeats if n <= a.repeat_below else 1
        runs = [run_ours(spark, spec, left, right, truth) for _ in range(repeats)]
        row: dict = {"left": left.count(), "right": right.count(), "true pairs": truth.count(),
                     "pairs compared": runs[0][2], "ours s": round(median([r[0] for r in runs]), 1),
                     "ours": {k: round(v, 4) for k, v in runs[0][1].items()}}
        print(f"N={n:,} ours: {row['ours s']} s, {row['ours']}", flush=True)
        if not a.no_splink and n in a.sizes:
            splinks = [run_splink(spark, spec, left, right, truth) for _ in range(repeats)]
            row["splink s"] = round(median([r[0] for r in splinks]), 1)
            row["splink"] = {k: round(v, 4) for k, v in splinks[0][1].items()}
            row["time ratio (ours / splink)"] = round(row["ours s"] / row["splink s"], 3)
            print(f"N={n:,} splink: {row['splink s']} s, {row['splink']}", flush=True)
        result["sizes"][str(n)] = row
        for df in (left, right, truth):
            df.unpersist()
    big, half = str(max(a.sizes)), str(a.scaling)
    if a.scaling and half in result["sizes"]:
        s = result["sizes"]
        result["scaling"] = {"pairs ratio": round(s[big]["pairs compared"] / s[half]["pairs compared"], 2),
                             "time ratio": round(s[big]["ours s"] / s[half]["ours s"], 2)}
        print(f"scaling {half} -> {big}: {result['scaling']}", flush=True)
    record("linkage", result)


if __name__ == "__main__":
    main()

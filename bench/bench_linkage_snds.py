"""Benchmark: a research cohort linked to the SNDS on quasi-identifiers (the CNAM's indirect
linkage): the deterministic cascade alone, then the cascade followed by the probabilistic step,
on the same data in the same run.

  .venv/bin/python bench/bench_linkage_snds.py --patients 100000 --share 0.05 --stays 0.5

data:   the generator's corpus tables (IR_BEN_R, T_MCOaaB, T_MCOaaC) for --patients people, and its
        external research cohort (--share of them, plus decoys not in the corpus): sex, birth
        date, commune and, for those with a stay, one stay's FINESS and admission date, with noise
        (moves, dates a few days off or with day and month swapped, missing values); truth from
        the generator. The SNDS side: `linkage.snds.people_and_stays` (one row a usable stay).
spec:   conf/linkage/external_to_snds.toml; "cascade" is the same spec without its probabilistic
        step. Targets: >= 90 % of the true matches linked at precision >= 0.99; the cascade then
        the probabilistic step finds more true matches than the cascade alone, at equal or better
        precision. Median of --repeats after a warm-up run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from bench_linkage import timed_link
from common import REPO, median, record, session

sys.path.insert(0, str(REPO))
SPEC = REPO / "conf" / "linkage" / "external_to_snds.toml"


def data(spark, settings, patients: int, share: float, stays: float, seed: int):
    """(the research file, the SNDS side, the truth), cached."""
    from pyspark.sql import functions as F

    from pds_spark.catalog import Catalogue
    from pds_spark.cohort.events import flags_clear
    from pds_spark.linkage.snds import people_and_stays
    from pds_spark.synth import CorpusConfig
    from pds_spark.synth.corpus import core_tables

    catalogue = Catalogue.from_settings(settings)
    cfg = CorpusConfig(patients=patients, first_year=2019, years=2, seed=seed, external_share=share,
                       stays_per_patient_year=stays, other_tables=False)
    tables, _, external, _ = core_tables(spark, catalogue, cfg, settings.paths.names)
    right = people_and_stays(tables["IR_BEN_R"], tables["T_MCOaaB"], tables["T_MCOaaC"],
                             flags_clear(catalogue.table("T_MCOaaC"))).cache()
    left = external.select("id_ext", "sexe", F.date_format(F.to_date("date_naissance", "dd/MM/yyyy"), "dd/MM/yyyy")
                           .alias("date_naissance"), "commune_residence", "finess_sejour",
                           "date_entree_sejour").cache()
    truth = external.where("BEN_NIR_PSA IS NOT NULL").select(F.col("id_ext").alias("id_l"),
                                                             F.col("BEN_NIR_PSA").alias("id_r")).cache()
    for df in (left, right, truth):
        df.count()
    return left, right, truth


def run(spark, spec, left, right, truth) -> tuple[float, dict, list]:
    seconds, evaluation, result = timed_link(spark, spec, left, right, truth)
    return seconds, evaluation, [dataclasses.asdict(s) for s in result.steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100000)
    parser.add_argument("--share", type=float, default=0.05, help="share of the patients in the research cohort")
    parser.add_argument("--stays", type=float, default=0.5, help="hospital stays a patient a year")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    a = parser.parse_args()
    from pds_spark.linkage.spec import load_spec
    from pds_spark.session import jar_paths
    from pds_spark.settings import load_settings

    settings, spark = session("bench-linkage-snds", {"spark.jars": ",".join(str(j) for j in jar_paths(load_settings())),
                                                     "spark.sql.shuffle.partitions": "8"})
    full = load_spec(SPEC)
    cascade = dataclasses.replace(full, blocking=(), comparisons=())
    left, right, truth = data(spark, settings, a.patients, a.share, a.stays, a.seed)
    from pds_spark.linkage.io import typed

    left, right = typed(left, full, "left").cache(), typed(right, full, "right").cache()  # both runs alike
    result: dict = {"spec": SPEC.name, "patients": a.patients, "seed": a.seed, "stays a year": a.stays,
                    "research records": left.count(),
                    "true matches": truth.count(), "SNDS rows": right.count()}
    run(spark, full, left, right, truth)  # warm-up
    for name, spec in (("cascade", cascade), ("cascade + probabilistic", full)):
        runs = [run(spark, spec, left, right, truth) for _ in range(a.repeats)]
        result[name] = {"seconds": round(median([r[0] for r in runs]), 1),
                        **{k: round(v, 4) for k, v in runs[0][1].items()}, "steps": runs[0][2]}
        print(f"{name}: {result[name]}", flush=True)
    c, p = result["cascade"], result["cascade + probabilistic"]
    result["targets"] = {"recall >= 0.9 at precision >= 0.99": p["recall"] >= 0.9 and p["precision"] >= 0.99,
                         "probabilistic finds more at equal or better precision":
                             p["true links"] > c["true links"] and p["precision"] >= c["precision"]}
    print(result["targets"], flush=True)
    record("linkage_snds", result)


if __name__ == "__main__":
    main()

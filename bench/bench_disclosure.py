"""Benchmark: re-identification risk measures and a cohort's extraction, against plain Spark in
the same run.

  .venv/bin/python bench/bench_disclosure.py --rows 10000000 --repeats 3

risk:     `disclosure.risk.measure` over (sex, birth year, department) of an N-row Parquet
          extract (rows, then people through their pseudonym, then with the l-diversity of a
          diagnosis) against one plain `groupBy(...).count()` over the columns each reads (the
          three; with the patient; with the patient and the diagnosis), executed to the end,
          nothing collected but the measures' one row.
extract:  an ER_PRS_F-shaped Delta table of N rows (platform pseudonyms of N/10 patients), a
          cohort of 2 % of them under a project's key; ours = the cohort's platform pseudonyms
          (its sealed column opened), the semi-join, the project's key over the extracted
          pseudonyms and the Delta write (`extract.run`'s steps) against a plain semi-join with a
          Delta table of the cohort's platform pseudonyms and the same write.
Medians after a warm-up run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from common import median, record, session, timed

os.environ.setdefault("PDS_KEYSTORE_SECRET", "bench-only-passphrase-not-a-secret")
QUASI = ["BEN_SEX_COD", "BEN_NAI_ANN", "BEN_RES_DPT"]


def make_extract(spark, rows: int, out: Path) -> None:
    from pyspark.sql import functions as F

    people = max(rows // 10, 1)
    person = F.col("id") % people
    spark.range(rows).select(
        F.sha2(person.cast("string"), 256).alias("BEN_NIR_PSA"),
        (person % 2 + 1).alias("BEN_SEX_COD"),
        (1930 + F.abs(F.hash(person, F.lit(1))) % 70).alias("BEN_NAI_ANN"),
        F.lpad((F.abs(F.hash(person, F.lit(2))) % 95 + 1).cast("string"), 2, "0").alias("BEN_RES_DPT"),
        F.concat(F.lit("E"), (F.abs(F.hash(F.col("id"), F.lit(3))) % 50).cast("string")).alias("DGN"),
        (F.col("id") % 1000).alias("PRS_NAT_REF"),
        F.lit("2020").alias("_period"),
    ).write.mode("overwrite").parquet(str(out))


def bench_risk(spark, path: Path, repeats: int) -> dict:
    from pds_spark.disclosure.risk import measure

    df = spark.read.parquet(str(path))
    def plain(columns):
        return lambda: df.groupBy(*columns).count().write.format("noop").mode("overwrite").save()

    runs = {
        "plain groupBy count": plain(QUASI),
        "plain groupBy count (+ patient)": plain([*QUASI, "BEN_NIR_PSA"]),
        "plain groupBy count (+ patient, diagnosis)": plain([*QUASI, "BEN_NIR_PSA", "DGN"]),
        "risk (rows)": lambda: measure(df, QUASI),
        "risk (people)": lambda: measure(df, QUASI, unit="BEN_NIR_PSA"),
        "risk (people, l of a diagnosis)": lambda: measure(df, QUASI, "DGN", unit="BEN_NIR_PSA"),
    }
    for fn in runs.values():
        fn()  # warm
    times = {name: median([timed(fn) for _ in range(repeats)]) for name, fn in runs.items()}
    return {name: round(t, 2) for name, t in times.items()}


def bench_extract(spark, path: Path, work: Path, repeats: int) -> dict:
    from pyspark.sql import functions as F

    from pds_spark.cohort.run import for_project_cohort
    from pds_spark.extract.run import cohort_members, extract_rows
    from pds_spark.pseudo.datasets import for_project, write_table
    from pds_spark.pseudo.hmac import pseudonymise
    from pds_spark.pseudo.keystore import KeyStore
    from pds_spark.warehouse import Warehouse

    keys = KeyStore(work / "keys")
    keys.ensure("platform")
    wh = Warehouse(work / "wh")
    source = spark.read.parquet(str(path))
    source.write.format("delta").mode("overwrite").save(wh.snds("ER_PRS_F"))
    prs = spark.read.format("delta").load(wh.snds("ER_PRS_F"))
    patients = prs.select(F.col("BEN_NIR_PSA").alias("patient")).distinct()
    patients.write.format("delta").mode("overwrite").save(wh.events("patients"))
    chosen = patients.where(F.abs(F.hash("patient")) % 50 == 0)  # 2 %
    cohort, props = for_project_cohort(chosen, keys, "bench")
    write_table(cohort, Path(wh.project("bench", "cohort_c")), props)
    columns = ["BEN_NIR_PSA", "BEN_SEX_COD", "BEN_NAI_ANN", "DGN", "PRS_NAT_REF"]
    # what plain Spark would semi-join with: the cohort's platform pseudonyms, as a Delta table
    chosen.select("patient").write.format("delta").mode("overwrite").save(str(work / "plain_cohort"))
    platform_members = spark.read.format("delta").load(str(work / "plain_cohort"))

    def ours(out):
        members = cohort_members(spark, wh, wh.project("bench", "cohort_c"), keys, "bench").cache()
        members.count()  # as run_extract does
        rows = extract_rows(prs, columns, ["2020"], "BEN_NIR_PSA", members)
        keyed, p, _ = for_project(rows, {"platform": ["BEN_NIR_PSA"]}, keys, "bench", {"platform": "1"})
        write_table(keyed, out, p)
        members.unpersist()

    def plain(out):
        rows = prs.join(platform_members.withColumnRenamed("patient", "BEN_NIR_PSA"), "BEN_NIR_PSA", "left_semi")
        rows.select(*columns).write.format("delta").mode("overwrite").save(str(out))

    for fn, name in ((ours, "ours"), (plain, "plain")):
        fn(work / f"warm_{name}")
    t_ours = median([timed(ours, work / f"ours{i}") for i in range(repeats)])
    t_plain = median([timed(plain, work / f"plain{i}") for i in range(repeats)])
    extracted = spark.read.format("delta").load(str(work / "ours0")).count()
    expected = spark.read.format("delta").load(str(work / "plain0")).count()
    assert extracted == expected, (extracted, expected)
    # the project's pseudonyms are the cohort's
    check = spark.read.format("delta").load(str(work / "ours0")).select("BEN_NIR_PSA").distinct()
    assert check.subtract(pseudonymise(platform_members, ["patient"], keys.chain("project-bench"))
                          .withColumnRenamed("patient", "BEN_NIR_PSA")).count() == 0
    return {"extracted rows": extracted, "ours": round(t_ours, 2), "plain semi-join and write": round(t_plain, 2),
            "ratio (plain / ours)": round(t_plain / t_ours, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    a = parser.parse_args()
    _, spark = session("bench-disclosure")
    for rows in a.rows:
        work = Path(tempfile.mkdtemp(prefix="bench-disclosure-"))
        try:
            make_extract(spark, rows, work / "extract")
            risk = bench_risk(spark, work / "extract", a.repeats)
            # each measure against the plain grouping over the columns it reads
            against = {"risk (rows)": "plain groupBy count", "risk (people)": "plain groupBy count (+ patient)",
                       "risk (people, l of a diagnosis)": "plain groupBy count (+ patient, diagnosis)"}
            ratios = {k: round(risk[k] / risk[b], 2) for k, b in against.items()}
            print(f"{rows:,} rows, risk measures (s): {risk}; ours / plain: {ratios} (target <= 2)", flush=True)
            extract = bench_extract(spark, work / "extract", work, a.repeats)
            print(f"{rows:,} rows, extraction (s): {extract} (target >= 0.7)", flush=True)
            record("disclosure", {"rows": rows, "repeats": a.repeats, "risk_seconds": risk, "risk_ratio": ratios,
                                  "extract": extract})
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

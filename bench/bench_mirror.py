"""Benchmark: the mirror of a 2,000-table warehouse into PostgreSQL, and of a large ER_PRS_F,
against plain Spark JDBC writes in the same run.

  .venv/bin/python bench/bench_mirror.py --years 22 --large-rows 10000000 --repeats 3

tables: every catalogue table generated (5 rows a table; each per-year table copied over
        --years years, its lines rotated or fewer so that no two files are the same:
        89 x 22 + 59 = 2,017 tables), loaded by the ingest (not timed);
        `mirror.run.mirror` in full into an empty schema (a warm-up run of a few tables first),
        against a plain `write.jdbc(..., mode="overwrite")` of each table's rows (Spark's types,
        driver defaults, as many tables at a time: --parallel) on a sample of --sample tables, per
        table. Then a second delivery re-delivers 5 % of the tables (lines reversed, one less), is loaded, and
        the incremental run (what the ledger shows newer) is timed: target <= 10 % of the full run.
large:  a --large-rows ER_PRS_F (the pseudonym, act, quantity, amount and three dates; one
        period) written into the warehouse with its ledger row; the mirror's load of it
        (checksums, stage, load, checksums by the database, swap, state) against a plain append
        with the driver's defaults into a dropped table: target >= 0.6. Medians of --repeats
        after a warm-up run.
floor:  40 Delta tables of 5 rows read by Spark one by one and as one union (a noop write), and
        the source checksums of each: the per-source cost no incremental run can go under.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, median, record, session, timed

sys.path.insert(0, str(REPO))
os.environ.setdefault("PDS_KEYSTORE_SECRET", "bench-only-passphrase-not-a-secret")
PASSWORD = "bench-only"


def corpus(spark, settings, catalogue, out: Path, years: int) -> Path:
    """Every catalogue table's generated file, the per-year ones copied under `years` years."""
    from pds_spark.catalog.catalogue import strip_file_suffixes
    from pds_spark.synth import CorpusConfig, generate_corpus

    cfg = CorpusConfig(patients=50, years=1, seed=3, prestations_per_patient_year=2, other_tables=True,
                       rows_per_other_table=5)
    generate_corpus(spark, catalogue, out, cfg, settings.paths.names)
    delivery = out / "delivery"
    for f in sorted(delivery.rglob("*.csv")):
        resolved = catalogue.resolve(f.name)
        if resolved is None or not resolved.table.is_templated or resolved.year is None:
            continue
        suffix = f.name[len(strip_file_suffixes(f.name)):]
        header, *data = [line.rstrip("\n") + "\n" for line in f.read_text(encoding="utf-8").splitlines()]
        for k, year in enumerate((y for y in range(2024 - years + 1, 2025) if y != resolved.year), 1):
            # each year's file its own content (the ingest skips a file it has already loaded):
            # the lines rotated, and fewer of them once every rotation is taken
            n = len(data)
            if not n or k // n >= n:
                continue
            rotated = data[k % n:] + data[:k % n]
            name = resolved.table.instance_name(year, resolved.variant or "01") + suffix
            f.with_name(name).write_text(header + "".join(rotated[:n - k // n]), encoding="utf-8")
    return delivery


def load(spark, settings, catalogue, delivery: Path, warehouse: Path, name: str) -> None:
    """The delivery loaded by the ingest as delivery `name` (identifiers pseudonymised)."""
    from pds_spark.catalog import dialect
    from pds_spark.ingest import discover
    from pds_spark.ingest.load import Loader
    from pds_spark.ingest.outcomes import IngestOptions
    from pds_spark.ingest.rules import IngestRules
    from pds_spark.pseudo.keystore import KeyStore
    from pds_spark.pseudo.policy import Policy
    from pds_spark.warehouse import Warehouse

    options = IngestOptions(name, dialect("schema"), IngestRules.load(settings.ingest.rules).aliases, 4)
    ld = Loader(spark, Warehouse(warehouse), Policy.from_settings(settings), KeyStore(warehouse.parent / "keys"),
                options, progress=lambda _msg: None)
    result = ld.run(discover(delivery, catalogue))
    assert result.total("quarantined") == 0, "the generated corpus should load whole"


def target(server, schema: str):
    from pds_spark.export.workspaces import Workspace

    server.sql(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION bench")
    return Workspace("bench", "postgresql", "bench", url=server.jdbc_url, schema=schema, credentials="env:PDS_BENCH_PG")


def bench_tables(spark, settings, catalogue, server, work: Path, years: int, sample: int, parallel: int) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from pyspark.sql import functions as F

    from pds_spark.mirror.plan import target_name
    from pds_spark.mirror.run import mirror
    from pds_spark.warehouse import Warehouse

    t0 = time.perf_counter()
    delivery = corpus(spark, settings, catalogue, work / "corpus", years)
    load(spark, settings, catalogue, delivery, work / "wh", "d1")
    wh = Warehouse(work / "wh")
    print(f"  corpus of {len(list(delivery.rglob('*.csv'))):,} files loaded in {time.perf_counter() - t0:.0f} s",
          flush=True)

    def run(schema: str, **kw):
        return mirror(spark, wh, catalogue, target(server, schema), lineage="drop", parallel=parallel,
                      progress=lambda _: None, **kw)

    warm = run("warm", tables=["ER_PRS_F", "T_MCOaaB", "IR_BEN_R"])
    assert not warm.failed, warm.summary()
    t_full = timed(lambda: setattr(bench_tables, "full", run("snds")))
    full = bench_tables.full  # type: ignore[attr-defined]
    assert not full.failed, full.summary()[:5]
    tables = len(full.outcomes)
    print(f"  full mirror: {tables:,} tables in {t_full:.1f} s", flush=True)

    # plain Spark: each table's rows written by write.jdbc, 2 at a time, on a sample
    units = [o.unit for o in full.outcomes]
    rng = random.Random(7)
    picked = rng.sample(units, min(sample, len(units)))
    server.sql("CREATE SCHEMA IF NOT EXISTS plain AUTHORIZATION bench")
    props = {"user": "bench", "password": PASSWORD, "driver": "org.postgresql.Driver"}

    def plain(unit) -> None:
        df = spark.read.format("delta").load(wh.snds(unit.source))
        if unit.target != unit.source or "_period" in df.columns:
            df = df.where(F.col("_period").isin(*unit.periods))
        df = df.drop(*[c for c in df.columns if c.startswith("_")])
        df.write.jdbc(server.jdbc_url, f"plain.{unit.target.lower()}", mode="overwrite", properties=props)

    def plain_all() -> None:
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(plain, picked))

    t_plain = timed(plain_all)
    per_plain, per_ours = t_plain / len(picked), t_full / tables
    print(f"  plain write.jdbc: {len(picked)} tables in {t_plain:.1f} s", flush=True)

    # a delivery re-delivering 5 % of the tables, one line less each
    second = work / "second"
    second.mkdir()
    files = sorted(delivery.rglob("*.csv"))
    chosen = rng.sample(files, max(1, round(0.05 * tables)))
    for f in chosen:
        lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
        # its data lines reversed, less one: a content no year's file has (rotations of the lines)
        data = lines[1:][::-1]
        (second / f.name).write_text("".join([lines[0], *(data[:-1] if len(data) > 2 else data + data)]),
                                     encoding="utf-8")
    load(spark, settings, catalogue, second, work / "wh", "d2")
    t_incremental = timed(lambda: setattr(bench_tables, "again", run("snds")))
    again = bench_tables.again  # type: ignore[attr-defined]
    assert not again.failed, again.summary()[:5]
    touched = {target_name(r.table.name, r.period or "-") for r in (catalogue.resolve(f.name) for f in chosen)}
    print(f"  incremental: {len(again.outcomes)} tables ({len(touched)} re-delivered) in {t_incremental:.1f} s",
          flush=True)
    return {"tables": tables, "full run": round(t_full, 1), "per table (ours)": round(per_ours, 3),
            "plain sample": len(picked), "per table (plain write.jdbc)": round(per_plain, 3),
            "ratio per table (plain / ours)": round(per_plain / per_ours, 2),
            "re-delivered tables": len(chosen), "tables sent again": len(again.outcomes),
            "incremental run": round(t_incremental, 1),
            "incremental / full": round(t_incremental / t_full, 3)}


def bench_large(spark, settings, catalogue, server, work: Path, rows: int, repeats: int) -> dict:
    from datetime import UTC, datetime

    from pyspark.sql import functions as F

    from pds_spark.ingest.ledger import LEDGER_SCHEMA
    from pds_spark.mirror.run import mirror
    from pds_spark.warehouse import Warehouse

    wh = Warehouse(work / "large")
    person = F.col("id") % max(rows // 10, 1)
    day = F.date_add(F.lit("2019-01-01").cast("date"), (F.col("id") % 365).cast("int"))
    (spark.range(rows).select(
        F.sha2(person.cast("string"), 256).alias("BEN_NIR_PSA"),
        (F.col("id") % 3000).cast("int").alias("PRS_NAT_REF"),
        F.round((F.col("id") % 997) / 7.0, 2).alias("PRS_ACT_QTE"),
        F.round((F.abs(F.hash("id")) % 1_000_000) / 100.0, 2).alias("PRS_PAI_MNT"),
        day.alias("EXE_SOI_DTD"), F.date_add(day, 3).alias("EXE_SOI_DTF"), F.date_add(day, 30).alias("FLX_DIS_DTD"),
        F.lit("ER_PRS_F_2019.csv").alias("_source_file"), F.lit("bench").alias("_delivery_id"),
        F.current_timestamp().alias("_loaded_at"), F.lit("2019").alias("_period"))
     .write.format("delta").partitionBy("_period").save(wh.snds("ER_PRS_F")))
    spark.sql(f"ALTER TABLE delta.`{wh.snds('ER_PRS_F')}` SET TBLPROPERTIES "
              "('pds.pseudonym.snds.columns' = 'BEN_NIR_PSA')")  # as the ingest marks its pseudonyms
    spark.createDataFrame([("bench", "ER_PRS_F_2019.csv", "x", 0, "ER_PRS_F", "2019", "loaded", rows, rows, 0, 0,
                            None, None, datetime.now(UTC).replace(tzinfo=None))], LEDGER_SCHEMA) \
        .write.format("delta").save(wh.ledger)
    df = spark.read.format("delta").load(wh.snds("ER_PRS_F")).drop("_source_file", "_delivery_id", "_loaded_at")
    props = {"user": "bench", "password": PASSWORD, "driver": "org.postgresql.Driver"}

    def ours() -> None:
        done = mirror(spark, wh, catalogue, target(server, "large"), lineage="drop", parallel=2,
                      progress=lambda _: None, full=True)
        assert not done.failed and done.outcomes[0].rows == rows, done.summary()

    def plain() -> None:
        server.sql("DROP TABLE IF EXISTS large.plain")
        df.write.jdbc(server.jdbc_url, "large.plain", mode="append", properties=props)

    ours(), plain()
    t_ours = median([timed(ours) for _ in range(repeats)])
    t_plain = median([timed(plain) for _ in range(repeats)])
    return {"rows": rows, "ours": round(t_ours, 2), "plain append": round(t_plain, 2),
            "ratio (plain / ours)": round(t_plain / t_ours, 2)}


def bench_floor(spark, work: Path, tables: int, repeats: int) -> dict:
    """Spark's cost of reading a small Delta table at all, one by one and as one union: the
    floor under any per-source work of an incremental run."""
    from functools import reduce

    from pyspark.sql import functions as F

    from pds_spark.export.checksum import checksums
    from pds_spark.export.columns import Column

    paths, columns = [], [Column(f"C{i}", "text", 20) for i in range(40)]
    for t in range(tables):
        path = str(work / "floor" / f"t{t}")
        spark.range(5).select(*[F.concat(F.lit(f"v{i}-"), F.col("id")).alias(f"C{i}") for i in range(40)],
                              F.lit("2020").alias("_period")).write.format("delta").save(path)
        paths.append(path)

    def one_by_one() -> None:
        for p in paths:
            spark.read.format("delta").load(p).select("C0").write.format("noop").mode("overwrite").save()

    def as_union() -> None:
        frames = [spark.read.format("delta").load(p).select(F.lit(i).alias("k"), "C0") for i, p in enumerate(paths)]
        reduce(lambda a, b: a.unionAll(b), frames).write.format("noop").mode("overwrite").save()

    def checksummed() -> None:
        for p in paths:
            checksums(spark.read.format("delta").load(p).drop("_period"), columns, "crc32")

    one_by_one(), as_union(), checksummed()
    out = {"tables": tables}
    for name, fn in (("read one by one", one_by_one), ("read as one union", as_union),
                     ("checksums (40 columns)", checksummed)):
        out[f"{name}, s a table"] = round(median([timed(fn) for _ in range(repeats)]) / tables, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", type=int, default=22)
    parser.add_argument("--sample", type=int, default=300, help="tables written by the plain baseline")
    parser.add_argument("--parallel", type=int, default=2, help="tables at a time, ours and plain")
    parser.add_argument("--large-rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", nargs="+", choices=["tables", "large", "floor"],
                        default=["tables", "large", "floor"])
    a = parser.parse_args()
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="xdg-"))
    os.environ["PDS_BENCH_PG_USER"], os.environ["PDS_BENCH_PG_PASSWORD"] = "bench", PASSWORD
    settings, spark = session("bench-mirror")
    from pds_spark.catalog import Catalogue
    from tests.pgserver import PostgresServer

    catalogue = Catalogue.from_settings(settings)
    work = Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    server = PostgresServer(work / "pg").start()
    try:
        server.sql(f"CREATE ROLE bench LOGIN PASSWORD '{PASSWORD}'")
        result: dict = {"years": a.years, "repeats": a.repeats, "parallel": a.parallel}
        if "tables" in a.parts:
            result["tables"] = bench_tables(spark, settings, catalogue, server, work, a.years, a.sample, a.parallel)
            print(f"tables: {result['tables']} (target: incremental / full <= 0.10)", flush=True)
        if "large" in a.parts:
            result["large"] = bench_large(spark, settings, catalogue, server, work, a.large_rows, a.repeats)
            print(f"large ER_PRS_F: {result['large']} (target >= 0.6)", flush=True)
        if "floor" in a.parts:
            result["floor"] = bench_floor(spark, work, 40, a.repeats)
            print(f"floor: {result['floor']}", flush=True)
        record("mirror", result)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

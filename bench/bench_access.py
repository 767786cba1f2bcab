"""Benchmark: what authorisation costs a job, and how `audit verify` scales.

  .venv/bin/python bench/bench_access.py authorize --patients 7000 --repeats 2
  .venv/bin/python bench/bench_access.py verify --records 1000000 4000000 --repeats 3

authorize: a governance store of 500 users, 100 projects and 1,000 grants; the median
           of 15 warm `authorize` calls against the median ingestion of the ER_PRS_F
           files of a generated corpus (7,000 patients: about 1 M rows), same run.
verify:    audit trails of each size (a real hash chain, written as Parquet then
           converted to Delta); the median of --repeats warm runs of `audit.verify`
           at each size and the driver's peak heap during them (peak reset per size).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from common import driver_peak_mb, median, record, reset_driver_peak, session, timed

os.environ.setdefault("PDS_KEYSTORE_SECRET", "bench-only-passphrase-not-a-secret")


def populated_store(spark, settings, root: Path):
    """A store the size of a busy platform, written in a few commits."""
    from pds_spark.access import Governance
    from pds_spark.access.store import _entitlement
    from pds_spark.access.store import now as _now

    gov = Governance.from_settings(spark, settings, warehouse=root)
    if gov.initialised:
        return gov
    gov.init("ada", ["admin", "engineer"])
    today, ends = date.today(), date.today() + timedelta(days=700)
    users = [(f"user{i:03d}", f"User {i}", True, "ada", _now()) for i in range(500)]
    projects = [(f"p{i:03d}", f"Study {i}", f"CNIL DR-{i}", today, ends, "ada", _now()) for i in range(100)]
    ents = [_entitlement("role", u[0], None, role="analyst", starts=today, by="ada") for u in users]
    ents += [_entitlement("member", f"user{(p * 5 + k) % 500:03d}", f"p{p:03d}", starts=today, ends=ends, by="ada")
             for p in range(100) for k in range(5)]
    ents += [_entitlement("grant", None, f"p{g % 100:03d}", columns=[f"ER_PRS_F.C{g}", "ER_PRS_F.BEN_NIR_PSA"],
                          period=(date(2019, 1, 1), date(2020, 12, 31)), starts=today, ends=ends, by="ada")
             for g in range(1000)]
    gov._append("users", users)
    gov._append("projects", projects)
    gov._append("entitlements", ents)
    return gov


def authorize(args, settings, spark, work: Path):
    import bench_ingest

    from pds_spark.access import Resource
    from pds_spark.catalog import Catalogue
    from pds_spark.ingest import discover

    catalogue = Catalogue.from_settings(settings)
    corpus = bench_ingest.generate(spark, settings, catalogue, Path(args.corpus) / f"big-{args.patients}",
                                   patients=args.patients, years=2, first_year=2019,
                                   prestations_per_patient_year=72.0)
    files = [f for f in discover(corpus, catalogue) if f.table and f.table.name == "ER_PRS_F"]
    rows = sum(f.data_lines for f in files)
    gov = populated_store(spark, settings, work / "governed")

    def ingest():
        wh = work / "wh"
        shutil.rmtree(wh, ignore_errors=True)
        bench_ingest.loader(spark, settings, wh, "schema", True, 1).run(files)

    checks = {
        "engineer ingests": lambda: gov.authorize("ada", "ingest", Resource.of(columns=["ER_PRS_F"])),
        "analyst reads a project's grant": lambda: gov.authorize(
            "user005", "read", Resource.of("p001", ["ER_PRS_F.BEN_NIR_PSA"], (date(2019, 1, 1), date(2019, 12, 31)))),
    }
    ingest_s = median([timed(ingest) for _ in range(args.repeats + 1)][1:])
    result = {"rows": rows, "ingest_s": round(ingest_s, 1), "store": "500 users, 100 projects, 1,000 grants"}
    for name, check in checks.items():
        [check() for _ in range(3)]  # warm
        t = median([timed(check) for _ in range(15)])
        result[name] = {"authorize_s": round(t, 3), "share_of_ingest": round(t / ingest_s, 4)}
    print(json.dumps(result, indent=1), f"\nrecorded in {record('access_authorize', result)}")


def write_trail(path: Path, records: int, chunk: int = 250_000) -> None:
    """A hash-chained trail written with pyarrow (the chain is sequential by nature)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pds_spark import audit

    if (path / "_delta_log").is_dir():
        return
    staging = path.with_name(path.name + ".parquet")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    schema = pa.schema([("seq", pa.int64()), ("run_id", pa.string()), ("job", pa.string()), ("user", pa.string()),
                        ("started_at", pa.timestamp("us", "UTC")), ("ended_at", pa.timestamp("us", "UTC")),
                        ("duration_ms", pa.int64()), ("parameters", pa.string()), ("inputs", pa.list_(pa.string())),
                        ("outputs", pa.list_(pa.string())), ("row_counts", pa.map_(pa.string(), pa.int64())),
                        ("outcome", pa.string()), ("message", pa.string()), ("prev_hash", pa.string()),
                        ("record_hash", pa.string())])
    t0, prev = datetime(2026, 1, 1, tzinfo=UTC), audit.GENESIS
    jobs = ["ingest", "quality", "pseudonymise", "admin", "access.authorize"]
    for start in range(0, records, chunk):
        rows = []
        for seq in range(start + 1, min(records, start + chunk) + 1):
            at = t0 + timedelta(seconds=seq)
            r = {"seq": seq, "run_id": str(uuid.UUID(int=seq)), "job": jobs[seq % 5], "user": f"user{seq % 500:03d}",
                 "started_at": at, "ended_at": at + timedelta(seconds=2), "duration_ms": 2000,
                 "parameters": json.dumps({"tables": ["ER_PRS_F"], "n": seq}), "inputs": [f"delivery/{seq % 97}"],
                 "outputs": ["snds/ER_PRS_F"], "row_counts": {"rows read": seq % 1000, "rows loaded": seq % 999},
                 "outcome": "success", "message": None, "prev_hash": prev}
            r["record_hash"] = prev = audit.python_hash(r)
            r["row_counts"] = list(r["row_counts"].items())
            rows.append(r)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), staging / f"part-{start // chunk:05d}.parquet")
        print(f"  {min(records, start + chunk):,} / {records:,} records", flush=True)
    os.replace(staging, path)


def verify(args, settings, spark, work: Path):
    from pds_spark import audit

    trails = {}
    for n in [10_000, *sorted(args.records)]:
        path = Path(args.corpus) / f"trail-{n}"
        if not (path / "_delta_log").is_dir():
            write_trail(path, n)
            spark.sql(f"CONVERT TO DELTA parquet.`{path}`")
        trails[n] = str(path)
    assert audit.verify(spark, trails[10_000]).intact  # warm-up
    result = {"repeats": args.repeats, "scales": []}
    for n in sorted(args.records):
        reset_driver_peak(spark)
        reports, times = [], []
        for _ in range(args.repeats):
            times.append(timed(lambda: reports.append(audit.verify(spark, trails[n]))))
        assert all(r.intact and r.records == n for r in reports), reports
        result["scales"].append({"records": n, "verify_s": round(median(times), 1),
                                 "driver_heap_peak_mb": round(driver_peak_mb(spark))})
        print(result["scales"][-1], flush=True)
    small, large = result["scales"][0], result["scales"][-1]
    result["time_growth"] = round(large["verify_s"] / small["verify_s"], 2)
    result["heap_growth"] = round(large["driver_heap_peak_mb"] / small["driver_heap_peak_mb"], 2)
    print(json.dumps(result, indent=1), f"\nrecorded in {record('access_verify', result)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["authorize", "verify"])
    parser.add_argument("--patients", type=int, default=7_000)
    parser.add_argument("--records", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corpus", default=str(Path(tempfile.gettempdir()) / "pds-bench-ingest"))
    args = parser.parse_args()
    settings, spark = session(f"bench-access-{args.which}", {"spark.databricks.delta.snapshotPartitions": "2",
                                                               "spark.driver.memory": "4g"})
    work = Path(args.corpus) / "work-access"
    work.mkdir(parents=True, exist_ok=True)
    (authorize if args.which == "authorize" else verify)(args, settings, spark, work)


if __name__ == "__main__":
    main()

"""Storage lifecycle: maintenance compacts and vacuums without losing a version an extract
records, quarantined raw lines expire while their counts stay, a closed project leaves no file
and no key, and what the warehouse holds is accounted for."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from pds_spark import audit
from pds_spark.access import Governance, Requests, Resource
from pds_spark.access.store import GovernanceError
from pds_spark.pseudo.keystore import KeyStoreError
from pds_spark.sqltext import quoted
from pds_spark.storage.close import close_project
from pds_spark.storage.maintain import RetentionError, maintain, maintain_table
from pds_spark.storage.usage import storage_usage, totals
from pds_spark.warehouse import Warehouse
from tests.conftest import platform_settings


def _appends(spark, path: str, times: int, rows: int = 5) -> None:
    for i in range(times):
        (spark.range(i * rows, (i + 1) * rows).select(F.sha2(F.col("id").cast("string"), 256).alias("BEN_NIR_PSA"),
                                                       (F.col("id") % 7).alias("PRS_NAT_REF"))
         .write.format("delta").mode("append").save(path))


def _all_parquet_rows(folder: str, column: str) -> list:
    out = []
    for f in Path(folder).rglob("*.parquet"):
        out += pq.read_table(f, columns=[column]).column(column).to_pylist()
    return out


@pytest.fixture
def wh(spark, tmp_path):
    return Warehouse(tmp_path / "wh")


def test_maintenance_compacts_and_keeps_only_what_an_extract_still_needs(spark, wh):
    pinned, free = wh.snds("ER_PRS_F"), wh.snds("IR_BEN_R")
    for path in (pinned, free):
        _appends(spark, path, 3)
        spark.read.format("delta").load(path).where("PRS_NAT_REF > 0").write.format("delta").mode("overwrite") \
            .save(path)  # version 6 replaces every file
    extract = wh.project("p1", "ER_PRS_F")
    spark.range(1).write.format("delta").save(extract)
    spark.sql(f"ALTER TABLE delta.{quoted(extract)} SET TBLPROPERTIES ('pds.extract.source' = '{pinned}@2')")
    with pytest.raises(RetentionError, match="below Delta's safety check"):
        maintain_table(spark, "snds", free, 0)
    done = {Path(t.path).name: t for t in maintain(spark, wh, {"snds": 0, "projects": 0}, 90, short_retention=True)
            if t.area == "snds"}
    assert done["ER_PRS_F"].pinned == 2 and done["IR_BEN_R"].pinned is None
    assert done["IR_BEN_R"].files_after == 1 < done["IR_BEN_R"].files_before and done["IR_BEN_R"].zorder == "BEN_NIR_PSA"
    # the extract's source version still reads; the other table's old versions are physically gone
    assert len(spark.read.format("delta").option("versionAsOf", 2).load(pinned).select("BEN_NIR_PSA").collect()) == 15
    assert len(list(Path(free).glob("*.parquet"))) == 1
    with pytest.raises(Exception, match="(?i)file.*(not|does not) exist|FileNotFound|FAILED_READ_FILE"):
        spark.read.format("delta").option("versionAsOf", 2).load(free).select("BEN_NIR_PSA").collect()  # (a count
        # would be answered from the log's statistics)
    # idempotent: a second run finds nothing more to do
    again = {Path(t.path).name: t for t in maintain(spark, wh, {"snds": 0}, 90, short_retention=True)}
    assert again["IR_BEN_R"].files_before == again["IR_BEN_R"].files_after == 1


def test_quarantined_raw_lines_expire_and_their_counts_remain(spark, wh):
    from pds_spark.ingest.quarantine import QUARANTINE_SCHEMA as QUARANTINE

    path = wh.quarantine("ER_PRS_F")
    old, recent = datetime.now(UTC) - timedelta(days=100), datetime.now(UTC) - timedelta(days=1)
    rows = [("f.csv", i, "2019", "d1", (old if i < 3 else recent).replace(tzinfo=None), ["bad date"],
             bytes([i + 1]) * 16) for i in range(5)]
    spark.createDataFrame(rows, QUARANTINE).write.format("delta").save(path)
    done = maintain(spark, wh, {"quarantine": 0}, 90, short_retention=True)
    assert done[0].raw_emptied == 3
    left = spark.read.format("delta").load(path)
    assert left.count() == 5 and left.where(F.length("_raw_encrypted") == 0).count() == 3
    assert left.where(F.size("_reasons") == 1).count() == 5  # the reasons and line numbers stay
    # on disk, not only through Delta: the expired raw text is in no file any more
    raws = [r for r in _all_parquet_rows(path, "_raw_encrypted") if r]
    assert sorted(raws) == sorted(bytes([i + 1]) * 16 for i in (3, 4))


def test_a_closed_project_leaves_no_file_no_key_and_no_access(spark, tmp_path, keys):
    from pds_spark.pseudo.hmac import pseudonymise

    wh = tmp_path / "wh"
    gov = Governance(spark, wh)
    gov.init("ada")
    gov.add_user("ada", "alice", "Alice", ["analyst"])
    gov.add_user("ada", "bob", "Bob", ["analyst"])
    gov.create_project("ada", "px", "Ending", "CNIL DR-2026-009", date.today(), date.today() + timedelta(days=30),
                       ["alice", "bob"])
    gov.grant("ada", "px", ["IR_BEN_R.BEN_NIR_PSA"], (date(2019, 1, 1), date(2019, 12, 31)))
    keys.ensure("project-px")
    people = spark.range(20).select(F.sha2(F.col("id").cast("string"), 256).alias("BEN_NIR_PSA"))
    keyed = pseudonymise(people, ["BEN_NIR_PSA"], keys.chain("project-px"))
    keyed.write.format("delta").save(str(wh / "projects" / "px" / "IR_BEN_R"))
    copy = tmp_path / "exported"  # a copy that left the platform earlier
    keyed.write.parquet(str(copy))
    requests = Requests(gov, tmp_path / "outbox")
    pending = requests.submit("alice", "px", "export", "data", copy)

    with pytest.raises(GovernanceError, match="only an administrator closes it before"):
        close_project(gov, requests, keys, "bob", "px", "not yet", ended_only=True)  # the maintenance's way
    closed = close_project(gov, requests, keys, "ada", "px", "authorisation ended")
    assert closed.key_destroyed and closed.tables["IR_BEN_R"]["rows"] == 20 and closed.requests_withdrawn == [pending]
    # nothing left on the file system
    assert not (wh / "projects" / "px").exists() and not (wh / "governance" / "staging" / pending).exists()
    assert not [f for _, _, files in os.walk(wh / "projects") for f in files]
    # the key is gone: the exported pseudonyms can no longer be derived from anything
    with pytest.raises(KeyStoreError, match="destroyed"):
        keys.chain("project-px")
    assert spark.read.parquet(str(copy)).count() == 20  # the copy still exists, but links to nothing
    # access ended, the request withdrawn, the record kept (counts and names, never data)
    assert gov.allowed("alice", "use", Resource("px")) is not None
    assert requests.get(pending)["status"] == "withdrawn"
    last = audit.read(spark, str(wh / "audit")).orderBy(F.desc("seq")).first()
    assert last.job == "storage.project.close" and "IR_BEN_R" in last.parameters
    assert not any(r.BEN_NIR_PSA in str(last) for r in keyed.collect())


def test_storage_is_accounted_per_area_project_and_table(spark, wh):
    _appends(spark, wh.snds("ER_PRS_F"), 3)
    spark.range(3).write.format("delta").save(wh.project("p1", "cohort_c"))
    rows = storage_usage(wh.root)
    prs = next(u for u in rows if u.table == "ER_PRS_F")
    assert (prs.area, prs.versions) == ("snds", 3) and prs.files >= 3 and prs.bytes > 0
    assert {(u.area, u.project, u.table) for u in rows} >= {("projects", "p1", "cohort_c")}
    assert totals(rows)[("projects", "p1")][2] == 1


def test_the_maintenance_job_reports_and_refuses_a_short_retention(spark, settings, tmp_path, capsys):
    from pds_spark.jobrunner import run_job
    from tests.test_conformity import job

    wh = tmp_path / "wh"
    gov = Governance(spark, wh)
    me = gov.caller()
    gov.init(me, ["admin", "engineer"])
    _appends(spark, Warehouse(wh).snds("ER_PRS_F"), 2)
    # a project whose authorisation ended yesterday: the maintenance closes it
    for user in ("alice", "bob"):
        gov.add_user(me, user, user.title(), ["analyst"])
    gov.create_project(me, "old", "Ended", "CNIL DR-2020-001", date.today() - timedelta(days=400),
                       date.today() - timedelta(days=1), ["alice", "bob"])
    spark.range(3).write.format("delta").save(Warehouse(wh).project("old", "cohort_c"))
    platform = platform_settings(tmp_path / "conf", paths_warehouse=wh, paths_work=tmp_path / "work",
                                 spark_master="local[2]", pseudonymisation_keystore=settings.pseudonymisation.keystore)
    m = job("maintenance")

    def run(*argv):
        return run_job("maintenance", m.__doc__, m.body, m.add_arguments, list(argv), platform_settings=platform)

    assert run("--set", "storage.snds_retention_hours=0", "--areas", "snds") == 2
    assert run("--areas", "snds") == 0
    out = capsys.readouterr().out
    assert re.search(r"maintenance: 1 table\(s\), ([0-9]+) -> 1 files", out)
    assert "project old closed: 1 table(s) destroyed" in out and not (wh / "projects" / "old").exists()
    report = Path(out.split("report ")[1].split()[0])
    assert report.is_file() and report.with_suffix(".json").is_file()
    admin = job("admin")
    assert run_job("admin", admin.__doc__, admin.body, admin.add_arguments, ["show", "storage"],
                   platform_settings=platform) == 0
    assert "snds" in capsys.readouterr().out

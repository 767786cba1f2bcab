"""The attacks of an adversarial probe, each scripted: the caller cannot choose who they are,
which rules apply to them, or where they read and write; reviewed transfers move exactly
what was reviewed; a bad compressed file stops only itself."""

from __future__ import annotations

import gzip
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from pds_spark import audit
from pds_spark.access import Governance, GovernanceError, Refused, Requests
from pds_spark.access.places import Places, period_span
from pds_spark.access.requests import TamperedError
from pds_spark.access.store import _entitlement
from pds_spark.errors import SettingsError
from pds_spark.identity import IdentityError, authenticated_user, neutralise_environment, os_user
from pds_spark.jobrunner import printable, run_job
from pds_spark.settings import check_platform_file
from tests.conftest import SNDS, platform_settings, work_area
from tests.test_conformity import job, run
from tests.test_jobs_cli import submit

ME = os_user()
TODAY = date.today()
PERIOD = (date(2019, 1, 1), date(2020, 12, 31))


def trail_of(spark, warehouse: Path) -> list:
    return audit.read(spark, str(Path(warehouse) / "audit")).orderBy("seq").collect()


# --- who ------------------------------------------------------------------------------
def test_identity_variables_are_removed_and_never_name_the_caller(spark, monkeypatch):
    env = {"SPARK_USER": "rita", "HADOOP_USER_NAME": "alice", "HADOOP_PROXY_USER": "ada", "PATH": "/bin"}
    assert sorted(neutralise_environment(env)) == ["HADOOP_PROXY_USER", "HADOOP_USER_NAME", "SPARK_USER"]
    assert env == {"PATH": "/bin"}
    monkeypatch.setenv("SPARK_USER", "rita")
    monkeypatch.setenv("HADOOP_USER_NAME", "alice")
    system = spark._jvm.java.lang.System
    system.setProperty("HADOOP_USER_NAME", "alice")
    try:
        assert authenticated_user(spark) == ME
    finally:
        system.clearProperty("HADOOP_USER_NAME")
    monkeypatch.setattr(spark.sparkContext, "sparkUser", lambda: "alice")  # a Spark user someone chose
    with pytest.raises(IdentityError, match="the Spark user 'alice' is not the authenticated user"):
        authenticated_user(spark)


@pytest.mark.parametrize("variable, name", [("HADOOP_USER_NAME", "alice"), ("SPARK_USER", "rita")])
def test_the_front_door_answers_as_the_os_user_whatever_the_environment_says(spark, settings, variable, name):
    done = submit("jobs/admin.py", "whoami", env={variable: name})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"\n{ME}:" in "\n" + done.stdout and f"{name}:" not in done.stdout


# --- which rules ------------------------------------------------------------------------
def test_a_platform_settings_file_someone_else_may_write_is_refused(tmp_path):
    path = platform_settings(tmp_path / "conf")
    check_platform_file(path)
    path.chmod(0o664)
    with pytest.raises(SettingsError, match="must not be writable by group or others"):
        check_platform_file(path)
    path.chmod(0o644)
    if os.geteuid() == 0:
        os.chown(path, 65534, -1)
        with pytest.raises(SettingsError, match="must belong to the installation's owner"):
            check_platform_file(path)


@pytest.fixture(scope="module")
def analyst_home(spark, settings, tmp_path_factory):
    """A platform where the suite's user is an analyst only (ada administers it)."""
    wh = tmp_path_factory.mktemp("analyst-home")
    gov = Governance(spark, wh)
    gov.init("ada")
    gov.add_user("ada", ME, "Suite", ["analyst"])
    conf = platform_settings(tmp_path_factory.mktemp("analyst-conf"), paths_warehouse=wh,
                             paths_work=tmp_path_factory.mktemp("analyst-work"), spark_master="local[2]",
                             pseudonymisation_keystore=settings.pseudonymisation.keystore)
    return wh, conf


def as_analyst(home, name: str, *argv: str) -> int:
    m = job(name)
    return run_job(name, m.__doc__, m.body, m.add_arguments, list(argv), platform_settings=home[1])


def test_per_run_settings_cannot_choose_the_rules(spark, analyst_home, tmp_path):
    wh, _ = analyst_home
    own = tmp_path / "own"
    assert as_analyst(analyst_home, "admin", "init", "--set", f"paths.warehouse={own}") == 2
    assert not own.exists()  # no governance store of one's own
    assert as_analyst(analyst_home, "admin", "whoami", "--set", "access.self_grant=allowed") == 2
    job_file = tmp_path / "job.toml"
    job_file.write_text("[ingest]\nmax_quarantine_ratio = 1.0\n")
    assert as_analyst(analyst_home, "catalog", "check", "--settings", str(job_file)) == 2
    assert as_analyst(analyst_home, "ingest", "--source", str(tmp_path), "--warehouse", str(own)) == 2
    assert as_analyst(analyst_home, "catalog", "check", "--set", "spark.log_level=ERROR") == 0  # a job setting
    rows = trail_of(spark, wh)
    refusals = [r.message for r in rows if r.job == "access.authorize" and "change platform settings" in r.message]
    assert len(refusals) == 4 and all(f"refused: {ME} may not change platform settings" in m for m in refusals)
    assert {"paths.warehouse", "access.self_grant", "ingest.max_quarantine_ratio"} <= \
        {k for m in refusals for k in ("paths.warehouse", "access.self_grant", "ingest.max_quarantine_ratio") if k in m}
    assert {r.job for r in rows if r.outcome == "usage"} >= {"admin", "catalog", "ingest"}


def test_an_administrator_may_change_a_platform_setting_for_one_run_and_it_is_audited(spark, settings):
    assert run("catalog", settings, "check", "--set", "ingest.max_quarantine_ratio=0.5") == 0
    last = [r for r in trail_of(spark, settings.paths.warehouse) if r.job == "catalog"][-1]
    assert "platform_overrides" in last.parameters and "ingest.max_quarantine_ratio" in last.parameters


# --- where ------------------------------------------------------------------------------
def test_outputs_and_inputs_go_only_where_the_caller_may(spark, settings, corpus, tmp_path):
    wh = Path(settings.paths.warehouse)
    entitlements = wh / "governance" / "entitlements"
    before = spark.read.format("delta").load(str(entitlements)).count()
    source = corpus / "external" / "cohorte_externe.csv"
    mine = work_area(settings) / "security"
    mine.mkdir(parents=True, exist_ok=True)
    (mine / "innocent").symlink_to(wh / "governance")
    attempts = [
        (["--input", str(source), "--output", str(entitlements)], "the warehouse's governance area"),
        (["--input", str(source), "--output", str(mine / "innocent" / "entitlements")], "governance area"),
        (["--input", str(source), "--output", str(tmp_path / "anywhere")], "outside the platform"),
        (["--input", str(wh / "snds" / "IR_BEN_R"), "--output", str(mine / "copy")], "needs a project"),
        (["--input", str(wh / "quarantine" / "ER_PRS_F"), "--output", str(mine / "raw")], "quarantine area"),
        (["--input", str(source), "--output", str(Path(settings.paths.work) / "someone-else" / "x")],
         f"not in {ME}'s work area"),
    ]
    for argv, reason in attempts:
        assert run("pseudonymise", settings, *argv) == 4, argv
        last = [r for r in trail_of(spark, wh) if r.job == "pseudonymise"][-1]
        assert last.outcome == "refused" and reason in last.message, (argv, last.message)
    assert spark.read.format("delta").load(str(entitlements)).count() == before
    assert run("validate_conformity", settings, "--input", str(source), "--report", str(tmp_path / "r.html")) == 4
    assert run("pseudonymise", settings, "--input", str(source), "--output", str(mine / "cohort")) == 0


def test_a_period_span_covers_years_and_months():
    assert period_span(["2019", "2020"]) == (date(2019, 1, 1), date(2020, 12, 31))
    assert period_span(["201902", "201912"]) == (date(2019, 2, 1), date(2019, 12, 31))
    assert period_span(["-"]) is None


@pytest.fixture(scope="module")
def governed(spark, policy, catalogue, tmp_path_factory):
    """ada administers; alice and carol are members of p1 (a current grant) and p2 (an
    expired one); rita reviews."""
    wh = tmp_path_factory.mktemp("governed-places")

    def expand(table):
        resolved = catalogue.resolve(table)
        return resolved.table.column_names if resolved else None

    gov = Governance(spark, wh, categories=policy.quasi_categories, expand=expand)
    gov.init("ada")
    for user, roles in [("alice", ["analyst"]), ("carol", ["analyst"]), ("rita", ["reviewer"])]:
        gov.add_user("ada", user, user.title(), roles)
    ends = TODAY + timedelta(days=365)
    for project in ("p1", "p2"):
        gov.create_project("ada", project, "Study", "CNIL DR-1", date(2025, 1, 1), ends, ["alice", "carol"])
    gov.grant("ada", "p1", ["IR_BEN_R.BEN_SEX_COD", "IR_BEN_R.BEN_NAI_ANN", "ER_PRS_F.PRS_NAT_REF"], PERIOD)
    gov._append("entitlements", [_entitlement("grant", None, "p2", columns=["IR_BEN_R.BEN_SEX_COD",
                                                                          "IR_BEN_R.BEN_NAI_ANN"],
                                              period=PERIOD, starts=TODAY - timedelta(days=30),
                                              ends=TODAY - timedelta(days=1), by="ada")])
    return gov


def test_an_snds_table_is_read_only_through_a_grant(spark, governed, tmp_path):
    wh = governed.root.parent
    places = Places(governed, [wh], tmp_path / "work", {})
    ben, prs = wh / "snds" / "IR_BEN_R", wh / "snds" / "ER_PRS_F"
    spark.createDataFrame([("1", 1980, "-")], "BEN_SEX_COD string, BEN_NAI_ANN int, _period string") \
        .write.format("delta").mode("overwrite").save(str(ben))
    spark.createDataFrame([(1111, "2018"), (1111, "2019")], "PRS_NAT_REF int, _period string") \
        .write.format("delta").mode("overwrite").save(str(prs))
    assert places.check("alice", ben, "read", "p1").area == "snds"
    for caller, path, project, why in [
            ("alice", ben, None, "needs a project"),
            ("alice", ben, "p2", "expired on"),
            ("alice", prs, "p1", "period 2018-01-01..2019-12-31 of ER_PRS_F is outside the granted period"),
            ("rita", ben, "p1", "rita is not a member of project p1")]:
        with pytest.raises(Refused, match=why):
            places.check(caller, path, "read", project)
    spark.createDataFrame([("1", 1980, "75056", "-")], "BEN_SEX_COD string, BEN_NAI_ANN int, BEN_RES_COM string, "
                          "_period string").write.format("delta").mode("overwrite") \
        .option("overwriteSchema", "true").save(str(ben))
    with pytest.raises(Refused, match="IR_BEN_R.BEN_RES_COM not granted to project p1"):
        places.check("alice", ben, "read", "p1")
    with pytest.raises(Refused, match="only ingestion writes"):
        places.check("alice", ben, "write", "p1")


# --- reviewed transfers -------------------------------------------------------------------
def test_approval_moves_exactly_what_was_reviewed(spark, governed, tmp_path):
    requests = Requests(governed, tmp_path / "outbox")
    results = tmp_path / "results"
    results.mkdir()
    (results / "table1.csv").write_text("group,n\na,12\n")
    rid = requests.submit("alice", "p1", "export", "data", results)
    (governed.root / "staging" / rid / "extra.csv").write_text("nir\n1840675123456\n")  # slipped in later
    with pytest.raises(TamperedError, match="extra.csv: added after submission"):
        requests.review("rita", rid, True, "counts above 10")
    assert not (tmp_path / "outbox" / "p1" / rid).exists()
    assert requests.get(rid)["status"] == "tampered"
    tampered = [r for r in trail_of(spark, governed.root.parent) if r.job == "access.export.tampered"]
    assert tampered and tampered[-1].outcome == "tampered" and rid in tampered[-1].parameters

    good = requests.submit("alice", "p1", "export", "data", results)
    where = requests.review("rita", good, True, "counts above 10")
    assert sorted(p.name for p in where.iterdir()) == ["table1.csv"]


def test_requests_and_grants_follow_the_grants(spark, governed, settings, tmp_path):
    requests = Requests(governed, tmp_path / "outbox")
    results = tmp_path / "t.csv"
    results.write_text("n\n12\n")
    with pytest.raises(Refused, match="the last grant of project p2 expired on"):
        requests.submit("alice", "p2", "export", "data", results)
    from pds_spark.access.model import Resource

    with pytest.raises(Refused, match="ER_PRS_F.BEN_RES_COM not granted to project p1"):
        requests.submit("alice", "p1", "export", "data", results,
                        Resource.of("p1", ["ER_PRS_F.BEN_RES_COM"], PERIOD))
    with pytest.raises(GovernanceError, match="has no column 'NO_SUCH'"):
        governed.grant("ada", "p1", ["IR_BEN_R.NO_SUCH"], PERIOD)
    with pytest.raises(GovernanceError, match="no table 'NO_TABLE'"):
        governed.grant("ada", "p1", ["NO_TABLE.X"], PERIOD)
    with pytest.raises(GovernanceError, match="before the grant starts"):
        governed.grant("ada", "p1", ["IR_BEN_R.BEN_SEX_COD"], PERIOD, until=TODAY - timedelta(days=3))


# --- bad files --------------------------------------------------------------------------
def test_a_truncated_gzip_stops_only_itself(spark, settings, corpus, tmp_path, capsys):
    delivery = tmp_path / "delivery"
    (delivery / "DCIR").mkdir(parents=True)
    data = (corpus / "delivery" / "DCIR" / "ER_PRS_F_2019.csv").read_bytes()
    packed = gzip.compress(data)
    (delivery / "DCIR" / "ER_PRS_F_2019.csv.gz").write_bytes(packed[: len(packed) // 2])
    shutil.copy(corpus / "delivery" / "DCIR" / "ER_PRS_F_2020.csv", delivery / "DCIR")
    ben = (corpus / "delivery" / "BENEFICIAIRE" / "IR_BEN_R.csv").read_bytes()
    (delivery / "IR_BEN_R.csv").write_bytes(b"\xef\xbb\xbf" + ben)  # a byte-order mark
    (delivery / "notes\x1b[2J.csv").write_text("a,b\n1,2\n")  # a name that would clear a terminal
    wh = tmp_path / "wh"
    capsys.readouterr()
    assert run("ingest", settings, "--source", str(delivery), "--warehouse", str(wh), "--no-quality") == 3
    out = capsys.readouterr().out
    ledger = {r.file: r for r in spark.read.format("delta").load(str(wh / "ledger")).collect()}
    broken = ledger["DCIR/ER_PRS_F_2019.csv.gz"]
    assert broken.status == "unreadable" and "truncated gzip" in broken.reason and broken.rows_loaded == 0
    assert ledger["DCIR/ER_PRS_F_2020.csv"].status == "loaded" and ledger["DCIR/ER_PRS_F_2020.csv"].rows_loaded > 0
    assert ledger["IR_BEN_R.csv"].status == "loaded" and ledger["IR_BEN_R.csv"].rows_quarantined == 0
    marker = (spark.read.format("delta").load(str(wh / "quarantine" / "_UNMAPPED"))
              .where(F.col("_source_file") == "DCIR/ER_PRS_F_2019.csv.gz").collect())
    assert len(marker) == 1 and "truncated gzip" in marker[0]._reasons[0]
    assert "\x1b" not in out and "notes\\x1b[2J.csv" in out
    assert "trail head" in out  # the scheduler's log keeps an anchor of the audit trail


def test_control_characters_are_escaped():
    assert printable("a\x1b[2Jb\nc\td") == "a\\x1b[2Jb\\nc\td"


def test_concurrent_ingests_of_one_delivery_record_each_file_once(spark, settings, catalogue, tmp_path):
    from pds_spark.ingest import discover
    from tests.test_ingest import loader

    sample = tmp_path / "sample"
    (sample / "DCIR").mkdir(parents=True)
    for name in ("ER_PRS_F.csv", "IR_BEN_R.csv"):
        shutil.copy(SNDS / "cnam-delivery-sample" / "DCIR" / name, sample / "DCIR" / name)
    files = discover(sample, catalogue)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: loader(spark, settings, tmp_path, "wh", "cnam").run(files), range(2)))
    ledger = spark.read.format("delta").load(str(tmp_path / "wh" / "ledger")).collect()
    assert sorted(r.file for r in ledger) == ["DCIR/ER_PRS_F.csv", "DCIR/IR_BEN_R.csv"]
    for r in ledger:  # and each row loaded once
        assert spark.read.format("delta").load(str(tmp_path / "wh" / "snds" / r.table)).count() == r.rows_loaded


def test_the_probes_attacks_through_the_front_door(spark, settings, analyst_home, corpus, tmp_path):
    """The two attacks the probe ran through ./spark-submit.sh, run the same way."""
    wh, conf = analyst_home
    own = tmp_path / "own"
    done = submit("jobs/admin.py", "init", "--set", f"paths.warehouse={own}", env={"PDS_SETTINGS": str(conf)})
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "may not change platform settings" in done.stdout + done.stderr and not own.exists()
    last = trail_of(spark, wh)[-1]
    assert (last.job, last.outcome) == ("admin", "usage")

    entitlements = Path(settings.paths.warehouse) / "governance" / "entitlements"
    done = submit("jobs/pseudonymise.py", "--input", str(corpus / "external" / "cohorte_externe.csv"),
                  "--output", str(entitlements))
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    last = [r for r in trail_of(spark, settings.paths.warehouse) if r.job == "pseudonymise"][-1]
    assert last.outcome == "refused" and "governance area" in last.message

"""The cohort jobs as a scheduler and an analyst run them: the events layer built by an
engineer, a project's cohort built within its grant (or refused, exit 4, audited), a
malformed spec refused (exit 2) naming its file and key."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from pyspark.sql import functions as F

from pds_spark import audit
from pds_spark.access import Governance
from pds_spark.cohort.spec import load
from tests.conftest import COHORT_SPEC

SPEC = COHORT_SPEC


@pytest.fixture(scope="module")
def home(project_home):
    return project_home


def run(home, name, *argv):
    from pds_spark.jobrunner import run_job
    from tests.test_conformity import job

    m = job(name)
    return run_job(name, m.__doc__, m.body, m.add_arguments, list(argv), platform_settings=home[1])


def test_the_events_job_finds_the_layer_up_to_date(home, capsys):
    assert run(home, "build_events") == 0
    assert "events layer up to date" in capsys.readouterr().out


def test_a_projects_cohort_with_its_flowchart(spark, home, capsys):
    wh, _ = home
    assert run(home, "build_cohort", "--spec", str(SPEC), "--project", "p1") == 0
    out = capsys.readouterr().out
    cohort = spark.read.format("delta").load(str(wh / "projects" / "p1" / "cohort_planted_diabetes"))
    flow = spark.read.format("delta").load(str(wh / "projects" / "p1" / "cohort_planted_diabetes_flowchart"))
    rows = flow.orderBy("step").collect()
    steps = [r.patients for r in rows]
    assert cohort.columns == ["patient", "index_date", "follow_up_end", "age", "sex", "_sealed_patient"]
    assert steps[-1] == cohort.count() == cohort.select("patient").distinct().count() > 0  # counted another way
    report = wh / "projects" / "p1" / "reports" / "cohort_planted_diabetes.html"
    data = json.loads(report.with_suffix(".json").read_text())
    # released with small cells suppressed: the planted cohort is a handful of patients
    assert [s["patients"] for s in data["steps"]] == [r.released for r in rows]
    assert all((r.released is None) == (1 <= r.patients <= 10 or r.released is None) for r in rows)
    assert data["steps"][-1]["patients"] is None and data["suppressed"]
    assert all(r.released == r.patients for r in rows if r.released is not None)
    assert report.read_text().count("<svg") == 2 and "suppressed" in report.read_text() and str(report) in out
    # the project's pseudonyms: none is the platform's
    platform = spark.read.format("delta").load(str(wh / "events" / "patients")).select("patient")
    assert cohort.join(platform, "patient").count() == 0


def test_a_cohort_reading_outside_the_grant_is_refused_and_audited(spark, home):
    wh, _ = home
    assert run(home, "build_cohort", "--spec", str(SPEC), "--project", "p2") == 4
    rows = audit.read(spark, str(wh / "audit")).orderBy("seq").collect()
    assert [(r.job, r.outcome) for r in rows[-2:]] == [("access.authorize", "refused"), ("build_cohort", "refused")]
    assert "T_MCOaaD" in rows[-1].message
    assert not (wh / "projects" / "p2").exists()
    assert run(home, "build_cohort", "--spec", str(SPEC), "--project", "p3") == 4
    last = audit.read(spark, str(wh / "audit")).orderBy(F.desc("seq")).first()
    assert last.outcome == "refused" and "outside the granted period" in last.message


def test_a_malformed_spec_exits_2_naming_file_and_key(home, tmp_path, caplog):
    bad = tmp_path / "bad.toml"
    bad.write_text(SPEC.read_text().replace("window = [-730, 730]", "window = [730, -730]"))
    assert run(home, "build_cohort", "--spec", str(bad), "--project", "p1") == 2
    assert str(bad) in caplog.text and "include[0].window" in caplog.text


def last_audit(spark, wh):
    return audit.read(spark, str(wh / "audit")).orderBy(F.desc("seq")).first()


def test_a_cohorts_extract_holds_its_patients_under_the_projects_pseudonyms(spark, home, keys, capsys, tmp_path):
    from pds_spark.pseudo.hmac import pseudonymise
    from pds_spark.warehouse import table_properties

    wh, _ = home
    assert run(home, "build_cohort", "--spec", str(SPEC), "--project", "p1") == 0
    asked = ["ER_PRS_F.BEN_NIR_PSA", "ER_PRS_F.PRS_NAT_REF", "ER_PRS_F.PRS_ACT_QTE", "ER_PRS_F.FLX_DIS_DTD"]
    assert run(home, "extract", "--project", "p1", "--cohort", "planted_diabetes", "--columns", *asked) == 0
    out = capsys.readouterr().out
    extract = spark.read.format("delta").load(str(wh / "projects" / "p1" / "ER_PRS_F"))
    assert extract.columns == [c.split(".")[1] for c in asked]
    # exactly the cohort's rows of the granted period, under the project's key
    cohort = spark.read.format("delta").load(str(wh / "projects" / "p1" / "cohort_planted_diabetes"))
    source = spark.read.format("delta").load(str(wh / "snds" / "ER_PRS_F"))
    spec = load(SPEC)
    kept = [r[0] for r in source.select("_period").distinct().collect()
            if spec.reach[0].year <= int(r[0][:4]) <= spec.reach[1].year]
    keyed = pseudonymise(source.where(F.col("_period").isin(*kept)), ["BEN_NIR_PSA"], keys.chain("project-p1"))
    expected = keyed.join(cohort.select(F.col("patient").alias("BEN_NIR_PSA")), "BEN_NIR_PSA", "left_semi")
    assert extract.count() == expected.count() > 0
    assert extract.select("BEN_NIR_PSA").subtract(cohort.select("patient")).count() == 0
    # the cohort's sealed platform pseudonyms give the patients that keying every patient gives
    from pds_spark.extract.run import cohort_members
    from pds_spark.pseudo.datasets import write_table
    from pds_spark.warehouse import Warehouse

    path = wh / "projects" / "p1" / "cohort_planted_diabetes"
    unsealed = tmp_path / "unsealed"
    write_table(cohort.drop("_sealed_patient"), unsealed,
                {k: v for k, v in table_properties(spark, str(path)).items() if k.startswith("pds.pseudonym.")})
    by_seal = cohort_members(spark, Warehouse(wh), str(path), keys, "p1")
    by_keying = cohort_members(spark, Warehouse(wh), str(unsealed), keys, "p1")
    assert sorted(by_seal.collect()) == sorted(by_keying.collect()) and by_seal.count() == cohort.count()
    assert extract.join(source.select("BEN_NIR_PSA"), "BEN_NIR_PSA").count() == 0  # no platform pseudonym
    props = table_properties(spark, str(wh / "projects" / "p1" / "ER_PRS_F"))
    assert props["pds.extract.status"] == "usable" and props["pds.extract.source"].startswith(str(wh / "snds"))
    assert props["pds.pseudonym.project-p1.columns"] == "BEN_NIR_PSA"
    # the risk report: no quasi-identifier among these columns, people counted by their pseudonym
    report = sorted((wh / "projects" / "p1" / "reports").glob("extract-*.json"))[-1]
    data = json.loads(report.read_text())
    risk = data["tables"][0]["risk"]
    assert data["usable"] and risk["quasi"] == [] and risk["unit"] == "BEN_NIR_PSA"
    assert "usable" in out and last_audit(spark, wh).outcome == "success"
    # and the cohort's flowchart, as it may leave the project: its small counts suppressed
    flow = json.loads((wh / "projects" / "p1" / "reports" / "cohort_planted_diabetes.json").read_text())
    assert flow["steps"][-1]["patients"] is None and flow["suppressed"]

    # sex alone is a safe quasi-identifier over every patient; adding the birth year is not
    assert run(home, "extract", "--project", "p1", "--columns", "IR_BEN_R.BEN_NIR_PSA", "IR_BEN_R.BEN_SEX_COD") == 0
    data = json.loads(sorted((wh / "projects" / "p1" / "reports").glob("extract-*.json"))[-1].read_text())
    assert data["tables"][0]["risk"]["quasi"] == ["BEN_SEX_COD"] and data["tables"][0]["risk"]["k"] >= 5
    assert run(home, "extract", "--project", "p1", "--cohort", "planted_diabetes", "--columns",
               "IR_BEN_R.BEN_NIR_PSA", "IR_BEN_R.BEN_SEX_COD", "IR_BEN_R.BEN_NAI_ANN") == 3
    data = json.loads(sorted((wh / "projects" / "p1" / "reports").glob("extract-*.json"))[-1].read_text())
    assert not data["usable"] and any("k = " in why for why in data["tables"][0]["failures"])
    props = table_properties(spark, str(wh / "projects" / "p1" / "IR_BEN_R"))
    assert props["pds.extract.status"] == "blocked"
    assert last_audit(spark, wh).outcome == "threshold"


@pytest.mark.parametrize("project,argv,why", [
    ("p2", ["--tables", "T_MCOaaD"], "T_MCOaaD"),
    ("p1", ["--columns", "IR_BEN_R.BEN_RES_COM"], "not granted"),
    ("p3", ["--tables", "ER_PRS_F", "--period", "2017-01-01", "2019-12-31"], "outside the granted period"),
    ("p1", ["--columns", "ER_PRS_F.EXE_SOI_DTD", "IR_BEN_R.BEN_NAI_MOI"], "at most one potentially identifying"),
])
def test_an_extract_beyond_the_grant_is_refused_and_audited(spark, home, project, argv, why):
    wh, _ = home
    before = {p.name for p in (wh / "projects" / project).glob("*")} if (wh / "projects" / project).exists() else set()
    assert run(home, "extract", "--project", project, *argv) == 4
    last = last_audit(spark, wh)
    assert (last.job, last.outcome) == ("extract", "refused") and why in last.message
    after = {p.name for p in (wh / "projects" / project).glob("*")} if (wh / "projects" / project).exists() else set()
    assert after == before  # nothing written


def test_an_extract_under_an_expired_grant_is_refused(spark, home):
    from delta.tables import DeltaTable

    wh, _ = home
    gov = Governance(spark, wh)
    yesterday = date.today() - timedelta(days=1)
    gov.create_project("ada", "p4", "Expired", "CNIL DR-2026-002", yesterday, date.today() + timedelta(days=30),
                       [gov.caller(), "carol"])
    grant = gov.grant("ada", "p4", ["IR_BEN_R.BEN_NIR_PSA", "IR_BEN_R.BEN_SEX_COD"], (date(2019, 1, 1), date(2020, 12, 31)))
    # time passes: the grant ended yesterday
    DeltaTable.forPath(spark, str(wh / "governance" / "entitlements")).update(
        F.col("id") == grant, {"ends": F.lit(yesterday)})
    assert run(home, "extract", "--project", "p4", "--tables", "IR_BEN_R") == 4
    last = last_audit(spark, wh)
    assert last.outcome == "refused" and "expired" in last.message

"""The cohort jobs as a scheduler and an analyst run them: the events layer built by an
engineer, a project's cohort built within its grant (or refused, exit 4, audited), a
malformed spec refused (exit 2) naming its file and key."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta

import pytest
from pyspark.sql import functions as F

from pds_spark import audit
from pds_spark.access import Governance
from pds_spark.cohort.layer import columns_read
from pds_spark.cohort.spec import load
from tests.conftest import REPO, platform_settings

SPEC = REPO / "conf" / "cohorts" / "planted_diabetes.toml"


@pytest.fixture(scope="module")
def home(spark, settings, events_warehouse, tmp_path_factory):
    """A copy of the events warehouse: ada administers it, the suite's user is an engineer and a
    member of p1 (granted what the planted cohort reads), p2 (no T_MCOaaD) and p3 (a shorter period)."""
    root = tmp_path_factory.mktemp("cohort_jobs")
    wh = root / "wh"
    shutil.copytree(events_warehouse, wh)
    gov = Governance(spark, wh)
    gov.init("ada")
    me = gov.caller()
    gov.add_user("ada", me, "Suite", ["engineer", "analyst"])
    gov.add_user("ada", "carol", "Carol", ["analyst"])
    today = date.today()
    spec = load(SPEC)
    read = columns_read(spec.categories_read)
    narrower = (spec.period[0], spec.reach[1])  # the study year on, not the two years before it
    for project, tables, period in (("p1", read, spec.reach),
                                    ("p2", {t: c for t, c in read.items() if t != "T_MCOaaD"}, spec.reach),
                                    ("p3", read, narrower)):
        gov.create_project("ada", project, "Diabetes", "CNIL DR-2026-001", today - timedelta(days=1),
                           today + timedelta(days=365), [me, "carol"])
        gov.grant("ada", project, [f"{t}.{c}" for t, cs in tables.items() for c in cs], period)
    platform = platform_settings(root / "conf", paths_warehouse=wh, paths_work=root / "work", spark_master="local[2]",
                                 pseudonymisation_keystore=settings.pseudonymisation.keystore)
    return wh, platform


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
    steps = [r.patients for r in flow.orderBy("step").collect()]
    assert cohort.columns == ["patient", "index_date", "follow_up_end", "age", "sex"]
    assert steps[-1] == cohort.count() == cohort.select("patient").distinct().count() > 0  # counted another way
    report = wh / "projects" / "p1" / "reports" / "cohort_planted_diabetes.html"
    data = json.loads(report.with_suffix(".json").read_text())
    assert [s["patients"] for s in data["steps"]] == steps
    assert sum(b["men"] + b["women"] for b in data["age_sex"]) == cohort.count()
    assert report.read_text().count("<svg") == 2 and str(report) in out


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

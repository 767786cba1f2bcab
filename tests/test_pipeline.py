"""The main pipeline end to end, as `bin/demo` runs it (a smaller corpus): every step reports,
and the summary ends with the demonstration cohort's flowchart."""

from __future__ import annotations

import re
from pathlib import Path

from pds_spark.access import Governance
from tests.conftest import platform_settings


def test_the_pipeline_runs_end_to_end_to_the_demonstration_cohort(spark, settings, tmp_path, capsys):
    from pds_spark.jobrunner import run_job
    from tests.test_conformity import job

    wh = tmp_path / "wh"
    gov = Governance(spark, wh)
    gov.init(gov.caller(), ["admin", "engineer"])
    workspaces = tmp_path / "workspaces.toml"
    workspaces.write_text(f'[workspace]\nkind = "parquet"\npath = "{tmp_path / "workspaces"}"\n')
    platform = platform_settings(tmp_path / "conf", paths_warehouse=wh, paths_work=tmp_path / "work",
                                 spark_master="local[2]", pseudonymisation_keystore=settings.pseudonymisation.keystore,
                                 access_outbox=tmp_path / "outbox", export_workspaces=workspaces)
    m = job("pipeline")
    code = run_job("pipeline", m.__doc__, m.body, m.add_arguments,
                   ["--patients", "400", "--seed", "3", "--demo-export"], platform_settings=platform)
    out = capsys.readouterr().out
    assert code == 0, out
    assert all(f"[{i}/8]" in out for i in range(1, 9))
    assert "mirror: skipped, no target configured" in out
    cohort = re.search(r"\[6/8\] demonstration cohort planted_diabetes: (\d+) patients", out)
    assert cohort and int(cohort.group(1)) > 0
    flowchart = Path(re.search(r"^flowchart: (\S+\.html)$", out, re.M).group(1))
    assert flowchart.is_file() and "<svg" in flowchart.read_text()
    assert (wh / "events" / "care_events" / "_delta_log").is_dir()
    # as bin/demo ends: the demonstration project's extract exported, approved by someone else, verified
    assert re.search(r"\[8/8\] demonstration export: project demo, extract for project demo: 1 table\(s\), usable", out)
    assert "requested by demo-analyst, approved by demo-reviewer" in out and "verified at arrival: intact" in out
    manifest = Path(re.search(r"-> (\S+)$", out[out.index("[8/8]"):], re.M).group(1)) / "manifest.json"
    assert manifest.is_file() and "ER_PRS_F" in manifest.read_text()

"""Jobs through the front door: spark-submit.sh, as a scheduler calls them."""

import os
import subprocess

import pytest

from tests.conftest import REPO

JOBS = sorted(p.name for p in (REPO / "jobs").glob("*.py"))


def submit(*args, env=None, timeout=600):
    return subprocess.run([str(REPO / "spark-submit.sh"), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("job", JOBS)
def test_every_job_answers_help(job):
    result = submit(f"jobs/{job}", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and "exit codes:" in result.stdout


def test_a_failing_job_returns_non_zero_through_the_script(warehouse):
    result = submit("jobs/catalog.py", "describe", "NO_SUCH_TABLE", "--set", f"paths.warehouse={warehouse}")
    assert result.returncode == 2
    assert "no table named 'NO_SUCH_TABLE'" in result.stdout + result.stderr  # spark-submit merges them


def test_a_bad_setting_stops_before_spark_with_its_key(warehouse):
    result = submit("jobs/catalog.py", "check", "--set", "ingest.max_quarantine_ratio=7")
    assert result.returncode == 2
    assert "setting 'ingest.max_quarantine_ratio'" in result.stdout + result.stderr


def test_the_script_refuses_what_it_does_not_know():
    assert submit("--bogus", "jobs/catalog.py").returncode == 2
    assert submit("jobs/no_such_job.py").returncode == 2
    assert "jobs/<job>.py" in submit("--help").stdout

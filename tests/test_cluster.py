"""The platform on a real standalone cluster (master + two one-core workers on loopback,
authentication and encryption on): same tables, pseudonyms and quality metrics as local
mode; a driver without the secret is refused; a worker killed mid-job is survived."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from tests.cluster import StandaloneCluster, events
from tests.conftest import work_area
from tests.test_conformity import run

pytestmark = pytest.mark.cluster

TABLES = ["ER_PRS_F", "IR_BEN_R"]  # with the foreign key between them
LINEAGE_THAT_DIFFERS = ["_loaded_at"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with StandaloneCluster(tmp_path_factory.mktemp("cluster")) as c:
        yield c


@pytest.fixture(scope="module")
def refused_driver(cluster, tmp_path_factory):
    """Started early (it waits for the master's answer in the background): a driver with
    a secret of its own."""
    wrong = tmp_path_factory.mktemp("wrong") / "secret"
    wrong.write_text("not-the-cluster-secret\n")
    wrong.chmod(0o600)
    return cluster.submit("jobs/catalog.py", "check", secret_file=wrong, background=True)


def platform_args(settings) -> list[str]:
    return ["--set", f"paths.warehouse={settings.paths.warehouse}", "--set", f"paths.work={settings.paths.work}",
            "--set", f"pseudonymisation.keystore={settings.pseudonymisation.keystore}"]


def same_rows(a, b) -> bool:
    return a.count() == b.count() and a.exceptAll(b).isEmpty() and b.exceptAll(a).isEmpty()


def test_jobs_on_the_cluster_give_the_local_results(cluster, refused_driver, spark, settings, corpus, tmp_path):
    """Ingestion (pseudonymisation and quality included) on the cluster and locally; the
    pseudonymise job is compared the same way by the worker-kill test below."""
    local, remote = tmp_path / "local", tmp_path / "cluster"
    assert run("ingest", settings, "--source", str(corpus / "delivery"), "--warehouse", str(local),
               "--tables", *TABLES) == 0
    done = cluster.submit("jobs/ingest.py", "--source", str(corpus / "delivery"), "--warehouse", str(remote),
                          "--tables", *TABLES, *platform_args(settings))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    read = lambda root, name: spark.read.format("delta").load(str(root / name))  # noqa: E731
    for name in ["snds/" + t for t in TABLES] + ["ledger"]:
        here, there = read(local, name), read(remote, name)
        keep = [c for c in here.columns if c not in (*LINEAGE_THAT_DIFFERS, "loaded_at", "delta_version")]
        assert same_rows(here.select(keep), there.select(keep)), name
    pseudonyms = read(remote, "snds/IR_BEN_R").select("BEN_NIR_PSA").collect()
    assert pseudonyms and all(len(r[0]) == 64 for r in pseudonyms)  # the same as local, compared above
    metrics = lambda root: read(root, "quality_metrics").drop("run_id", "run_at")  # noqa: E731
    assert metrics(local).count() > 0 and same_rows(metrics(local), metrics(remote))

    # the cluster's secret is in no log, event log or executor folder (only in its own files)
    secret = cluster.secret_file.read_text().strip()
    own = {cluster.secret_file, cluster.root / "daemon.properties"}
    leaks = [p for p in cluster.root.rglob("*") if p.is_file() and p not in own and p.suffix != ".zip"
             and secret.encode() in p.read_bytes()]
    assert not leaks, leaks

    # the code reached the executors through spark-submit, on both workers
    shipped = sorted(cluster.root.glob("worker*/app-*/*/pds_spark.zip"))
    assert {p.parts[-4] for p in shipped} == {"worker1", "worker2"}

    # meanwhile, a driver with another secret never got in: the authentication handshake
    # failed on every attempt and the master never registered its application
    out, _ = refused_driver.communicate(timeout=300)
    assert refused_driver.returncode != 0
    assert "Exception while bootstrapping client" in out and "All masters are unresponsive" in out
    state = cluster.state()
    apps = [a["name"] for a in state.get("activeapps", []) + state.get("completedapps", [])]
    assert "pds-ingest" in apps and "pds-catalog" not in apps


def test_a_standalone_submit_without_the_secret_stops_before_spark(cluster, tmp_path):
    done = cluster.submit("jobs/catalog.py", "check", env={"PDS_SPARK_SECRET_FILE": ""})
    assert done.returncode == 2 and "PDS_SPARK_SECRET_FILE" in done.stderr
    loose = tmp_path / "secret"
    loose.write_text(cluster.secret_file.read_text())
    loose.chmod(0o644)
    done = cluster.submit("jobs/catalog.py", "check", secret_file=loose)
    assert done.returncode == 2 and "chmod 600" in done.stderr


def test_a_worker_killed_mid_job_is_survived(cluster, spark, settings, tmp_path):
    source = tmp_path / "people"
    (spark.range(500_000).repartition(6)
     .select(F.format_string("%013d", F.col("id") * 7919 % 10_000_000_000_000).alias("nir"),
             F.concat(F.lit("NOM"), (F.col("id") % 5000).cast("string")).alias("nom"),
             (F.col("id") % 97).alias("age"))
     .write.option("header", True).csv(str(source)))
    local, remote = work_area(settings) / "kill" / "local", work_area(settings) / "kill" / "remote"
    assert run("pseudonymise", settings, "--input", str(source), "--format", "csv", "--sep", ",",
               "--output", str(local)) == 0

    ui = 4040 + (hash(str(tmp_path)) % 500)
    job = cluster.submit("jobs/pseudonymise.py", "--input", str(source), "--format", "csv", "--sep", ",",
                         "--output", str(remote), *platform_args(settings),
                         conf={"spark.ui.enabled": "true", "spark.ui.port": str(ui),
                               "spark.sql.files.maxPartitionBytes": "2m"}, background=True)
    killed = kill_a_busy_worker(cluster, ui, job)
    out, _ = job.communicate(timeout=600)
    assert job.returncode == 0, out[-4000:]
    assert killed is not None, "no executor was seen running a task"
    here = spark.read.format("delta").load(str(local))
    there = spark.read.format("delta").load(str(remote))
    assert same_rows(here, there)

    log = newest_event_log(cluster)
    lost = [e for e in log if e["Event"] == "SparkListenerTaskEnd"
            and e.get("Task End Reason", {}).get("Reason") == "ExecutorLostFailure"]
    assert lost, "the event log shows no task lost with the killed executor"
    retried = {(e["Stage ID"], e["Task Info"]["Index"]) for e in lost}
    succeeded = {(e["Stage ID"], e["Task Info"]["Index"]) for e in log if e["Event"] == "SparkListenerTaskEnd"
                 and e.get("Task End Reason", {}).get("Reason") == "Success"}
    assert retried <= succeeded  # every lost task ran again and succeeded
    assert any(e["Event"] == "SparkListenerExecutorRemoved" for e in log)
    assert all(e["Job Result"]["Result"] == "JobSucceeded" for e in log if e["Event"] == "SparkListenerJobEnd")


def kill_a_busy_worker(cluster: StandaloneCluster, ui: int, job, timeout: float = 300) -> int | None:
    """Watch the driver's REST API; SIGKILL the worker whose executor is running a task."""
    ports = {str(p): i for i, p in enumerate(cluster.worker_ui_ports)}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and job.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/api/v1/applications", timeout=2) as r:
                app = json.load(r)[0]["id"]
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/api/v1/applications/{app}/executors", timeout=2) as r:
                executors = json.load(r)
            jobs_url = f"http://127.0.0.1:{ui}/api/v1/applications/{app}/stages?status=active"
            with urllib.request.urlopen(jobs_url, timeout=2) as r:
                big = [s for s in json.load(r) if s["numTasks"] >= 6]
        except (OSError, ValueError, IndexError, KeyError):
            time.sleep(0.2)
            continue
        for e in executors:
            port = e.get("executorLogs", {}).get("stdout", "").split(":")[-1].split("/")[0]
            if big and e["id"] != "driver" and e["activeTasks"] > 0 and port in ports:
                cluster.kill_worker(ports[port])
                return ports[port]
        time.sleep(0.1)
    return None


def newest_event_log(cluster: StandaloneCluster) -> list[dict]:
    logs = sorted((p for p in cluster.events.iterdir()), key=lambda p: p.stat().st_mtime)
    newest = logs[-1]
    files = sorted(newest.glob("events_*")) if newest.is_dir() else [newest]
    return [e for f in files for e in events(Path(f))]

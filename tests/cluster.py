"""A real Spark standalone cluster on loopback for the tests: one master and two workers
from the installed Spark distribution, each worker with its own folder and one core,
authentication and encryption on; stopped whatever happens.

  with StandaloneCluster(tmp) as cluster:
      cluster.submit("jobs/ingest.py", "--source", ...)   # ./spark-submit.sh --master cluster.url
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pyspark

REPO = Path(__file__).resolve().parent.parent
SPARK_HOME = Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandaloneCluster:
    def __init__(self, root: Path, workers: int = 2, worker_memory: str = "1500m"):
        self.root = Path(root)
        self.workers = workers
        self.worker_memory = worker_memory
        self.port, self.ui_port = free_port(), free_port()
        self.worker_ui_ports = [free_port() for _ in range(workers)]
        self.url = f"spark://127.0.0.1:{self.port}"
        self.secret_file = self.root / "secret"
        self.processes: list[subprocess.Popen] = []
        self.events = self.root / "events"

    # --- life -----------------------------------------------------------------------
    def __enter__(self) -> StandaloneCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "SPARK_", "PYTHONPATH"))}
        env.update(SPARK_HOME=str(SPARK_HOME), SPARK_LOCAL_IP="127.0.0.1", SPARK_NO_DAEMONIZE="1")
        return env

    def _daemon(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([str(SPARK_HOME / "bin" / "spark-class"), *args], cwd=self.root, env=self._env(),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc.log_path = self.root / f"{name}.log"
        self.processes.append(proc)
        return proc

    def start(self, timeout: float = 90) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.events.mkdir(exist_ok=True)
        old = os.umask(0o077)
        try:
            self.secret_file.write_text(secrets.token_urlsafe(32) + "\n")
            props = self.root / "daemon.properties"
            props.write_text("\n".join([
                "spark.authenticate true", "spark.network.crypto.enabled true",
                "spark.network.crypto.saslFallback false", "spark.io.encryption.enabled true",
                f"spark.authenticate.secret {self.secret_file.read_text().strip()}",
                "spark.worker.cleanup.enabled false", ""]))
        finally:
            os.umask(old)
        common = ["--properties-file", str(props)]
        self.master = self._daemon("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                   "--port", str(self.port), "--webui-port", str(self.ui_port), *common)
        self.worker_procs = []
        for i, ui in enumerate(self.worker_ui_ports):
            folder = self.root / f"worker{i + 1}"
            folder.mkdir(exist_ok=True)
            self.worker_procs.append(self._daemon(
                f"worker{i + 1}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1",
                "--memory", self.worker_memory, "--work-dir", str(folder), "--webui-port", str(ui),
                *common, self.url))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.processes:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.log_path.name} exited: {p.log_path.read_text()[-2000:]}")
            try:
                if sum(w["state"] == "ALIVE" for w in self.state()["workers"]) == self.workers:
                    return
            except (OSError, ValueError):  # not listening yet, or its UI up before its /json/ page (HTML)
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the cluster did not start in {timeout}s; see {self.root}/*.log")

    def stop(self) -> None:
        for p in reversed(self.processes):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    # --- what tests use -------------------------------------------------------------
    def state(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as r:
            return json.load(r)

    def kill_worker(self, index: int) -> None:
        """SIGKILL a worker and everything it started (its executors and their Python workers)."""
        os.killpg(self.worker_procs[index].pid, signal.SIGKILL)
        self.worker_procs[index].wait()

    def submit(self, *argv: str, env: dict | None = None, timeout: float = 600,
               secret_file: Path | None = None, conf: dict | None = None, background: bool = False):
        """./spark-submit.sh --master <this cluster> with the event log on; returns the completed process."""
        confs = {"spark.eventLog.enabled": "true", "spark.eventLog.dir": f"file:{self.events}",
                 "spark.eventLog.compress": "false",
                 "spark.executor.memory": "1g", "spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "4",
                 **(conf or {})}
        cmd = [str(REPO / "spark-submit.sh"), "--master", self.url]
        for k, v in confs.items():
            cmd += ["--conf", f"{k}={v}"]
        full_env = {**self._env(), "PDS_SPARK_SECRET_FILE": str(secret_file or self.secret_file), **(env or {})}
        full_env.pop("SPARK_NO_DAEMONIZE", None)
        if background:
            return subprocess.Popen([*cmd, *argv], cwd=REPO, env=full_env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
        return subprocess.run([*cmd, *argv], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)

    def event_logs(self) -> list[Path]:
        return sorted(p for p in self.events.iterdir() if not p.name.endswith(".inprogress"))


def events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

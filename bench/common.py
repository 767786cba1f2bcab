"""Shared by the benchmarks: a warm local session, timing, peak driver memory, results."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def session(app: str, extra: dict | None = None):
    from pds_spark.session import build_session
    from pds_spark.settings import load_settings

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    settings = load_settings()
    conf = {"spark.ui.enabled": "false", "spark.driver.memory": "8g", "spark.sql.shuffle.partitions": "4"}
    conf.update(extra or {})
    return settings, build_session(settings, app, conf)


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def median(xs):
    return statistics.median(xs)


def driver_peak_mb(spark) -> float:
    """Peak JVM heap used by the driver, and this Python process's peak RSS."""
    jvm = spark.sparkContext._jvm
    beans = jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans()
    heap = sum(b.getPeakUsage().getUsed() for b in beans if str(b.getType()) == "Heap memory")
    return heap / 1e6


def reset_driver_peak(spark) -> None:
    """Collect garbage and restart the driver's peak-heap count (one figure per scale)."""
    jvm = spark.sparkContext._jvm
    jvm.java.lang.System.gc()
    for pool in jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans():
        pool.resetPeakUsage()


def retained_heap_mb(spark) -> float:
    """Driver heap still in use after a full collection: what the driver holds, not its garbage."""
    jvm = spark.sparkContext._jvm
    jvm.java.lang.System.gc()
    return jvm.java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed() / 1e6


class HeapAfterGc:
    """Samples, while a block runs, the driver heap left by each garbage collection, and keeps
    the peak: what survives collection (live data and old garbage not yet swept), not the
    garbage a busy heap piles up between collections."""

    def __init__(self, spark, every: float = 0.5):
        self.spark, self.every, self.peak = spark, every, 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        jvm = self.spark.sparkContext._jvm
        factory = jvm.java.lang.management.ManagementFactory
        heap = {str(p.getName()) for p in factory.getMemoryPoolMXBeans() if str(p.getType()) == "Heap memory"}
        while not self._stop.wait(self.every):
            for gc in factory.getGarbageCollectorMXBeans():
                info = gc.getLastGcInfo()
                if info is not None:
                    after = info.getMemoryUsageAfterGc()
                    self.peak = max(self.peak, sum(after[k].getUsed() for k in after.keySet() if str(k) in heap) / 1e6)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def jit_seconds(spark) -> float:
    """Time the driver JVM has spent compiling Java code so far (its JIT): when a run adds
    little, the JVM is warm."""
    return spark.sparkContext._jvm.java.lang.management.ManagementFactory.getCompilationMXBean() \
        .getTotalCompilationTime() / 1e3


def python_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def record(name: str, result: dict) -> Path:
    """Append a run's figures to bench/results/<name>.jsonl (kept in the repo)."""
    out = REPO / "bench" / "results" / f"{name}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()} {os.cpu_count()} cores", **result}
    with out.open("a") as fh:
        fh.write(json.dumps(result) + "\n")
    return out

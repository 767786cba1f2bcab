"""The one SparkSession builder.

Embedded default (plain `python`, notebooks, tests): local master, Delta jars from
the project's jars/ folder, conf/spark-defaults.conf applied, and on a local master
conf/spark-local.conf with jars/local/ on the driver's class path. Under spark-submit
(spark-submit.sh, a cluster): the submitted master, jars and properties win, and
only what the platform needs on top is added.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

from pds_spark.errors import SettingsError
from pds_spark.identity import neutralise_environment
from pds_spark.settings import Settings

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
LOCAL_JAR = "pds-spark-hadoop.jar"  # jvm/, built by bin/bootstrap


def under_spark_submit() -> bool:
    """True when this Python process was started by spark-submit (gateway already up)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def read_spark_defaults(path: Path) -> dict[str, str]:
    """Parse a spark-defaults.conf file (`key value` lines, `#` comments)."""
    props: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        key = parts[0]
        if not key.startswith("spark.") or len(parts) < 2:
            raise SettingsError(f"{path}:{number}", key,
                                "expected 'spark.<property> <value>' on one line")
        props[key] = parts[1].strip()
    return props


def jar_paths(settings: Settings) -> list[Path]:
    jars = sorted(Path(settings.spark.jars).glob("*.jar"))
    if not jars:
        raise SettingsError(settings.source, "spark.jars",
                            f"no jars in {settings.spark.jars}: run bin/bootstrap first")
    return jars


def local_properties(settings: Settings) -> dict[str, str]:
    """conf/spark-local.conf, and jars/local/ on the driver's class path: for a local master."""
    jar = Path(settings.spark.jars) / "local" / LOCAL_JAR
    if not jar.is_file():
        raise SettingsError(settings.source, "spark.jars", f"no {jar}: run bin/bootstrap first")
    local = Path(settings.spark.defaults).with_name("spark-local.conf")
    props = read_spark_defaults(local) if local.is_file() else {}
    return {**props, "spark.driver.extraClassPath": str(jar.resolve())}


def build_session(settings: Settings, app_name: str,
                  extra: Mapping[str, str] | None = None) -> SparkSession:
    """Build (or return the running) SparkSession for a job, notebook or test."""
    active = SparkSession.getActiveSession()
    if active is not None:  # a notebook's or a test's session: use it as it is, do not reconfigure it
        return _checked(active, settings)
    builder = SparkSession.builder.appName(app_name)
    if not under_spark_submit():
        neutralise_environment()  # the JVM started here must not take its user from them
        if settings.spark.master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run this environment
        builder = builder.master(settings.spark.master)
        for key, value in read_spark_defaults(settings.spark.defaults).items():
            builder = builder.config(key, value)
        if settings.spark.master.startswith("local"):
            for key, value in local_properties(settings).items():
                builder = builder.config(key, value)
        builder = builder.config("spark.jars", ",".join(str(j) for j in jar_paths(settings)))
        log4j = Path(settings.spark.defaults).with_name("log4j2.properties")
        if log4j.is_file():
            builder = builder.config("spark.driver.extraJavaOptions",
                                     f"-Dlog4j2.configurationFile=file:{log4j}")
    builder = builder.config("spark.sql.warehouse.dir",
                             str(Path(settings.paths.warehouse) / "spark-warehouse"))
    for key, value in (extra or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.spark.log_level)
    return _checked(spark, settings)


DELTA_TABLE_DEFAULTS = "spark.databricks.delta.properties.defaults."  # a prefix, no registered key


def runtime_settings(spark: SparkSession) -> dict[str, str]:
    """The session's settings that a session of the same application can set (Delta's defaults
    for new tables included)."""
    return {k: v for k, v in spark.conf.getAll.items()
            if spark.conf.isModifiable(k) or k.startswith(DELTA_TABLE_DEFAULTS)}


def derived_session(spark: SparkSession, overrides: Mapping[str, str],
                    base: Mapping[str, str] | None = None) -> SparkSession:
    """A new session of the same application: `base` settings (by default the caller's
    `runtime_settings`: a new session has only the Spark defaults), then `overrides`."""
    if base is None:
        base = runtime_settings(spark)
    child = spark.newSession()
    for key, value in {**base, **overrides}.items():
        child.conf.set(key, value)
    return child


def _checked(spark: SparkSession, settings: Settings) -> SparkSession:
    if DELTA_EXTENSION not in (spark.conf.get("spark.sql.extensions", "") or ""):
        raise SettingsError(str(settings.spark.defaults), "spark.sql.extensions",
                            f"Delta is not enabled: add {DELTA_EXTENSION}")
    return spark

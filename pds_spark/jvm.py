"""Fewer JVM calls from Python: py4j looks a class up a name at a time, and sends a list an
element a time (a wide table's projection is a hundred texts)."""

from __future__ import annotations

import threading

from pyspark.sql import SparkSession

_SEPARATOR = "\x00"  # in no SQL text or path this project writes
_CLASSES: dict[tuple[int, str], tuple[object, object]] = {}  # (id(JVM view), name) -> (the view, the class)
_LOCK = threading.Lock()


def java_class(spark: SparkSession, name: str):
    """The JVM class `name` (fully qualified), looked up once per JVM."""
    jvm = spark._jvm
    with _LOCK:
        view, found = _CLASSES.get((id(jvm), name), (None, None))
        if view is not jvm:
            found = jvm
            for part in name.split("."):
                found = getattr(found, part)
            _CLASSES[(id(jvm), name)] = (jvm, found)
    return found


def java_strings(spark: SparkSession, values: list[str]):
    """These texts as one Java String[] in one JVM call, or None where py4j's own list is as cheap
    (two texts or fewer) or one holds the separator."""
    if len(values) <= 2 or any(_SEPARATOR in v for v in values):
        return None
    return java_class(spark, "org.apache.commons.lang3.StringUtils").splitByWholeSeparatorPreserveAllTokens(
        _SEPARATOR.join(values), _SEPARATOR)

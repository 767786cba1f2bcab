"""Every call this project makes past PySpark's and Delta's public Python API, in one place.

What is here has no public Python equivalent or would cost a JVM call per element:
texts sent as one Java array (a wide table's projection is a hundred texts), a Delta
table's commit files read through Hadoop's file system (the log's JSON is Delta's
published protocol), the caller's Hadoop identity. `tests/test_jvm.py` pins the
PySpark and Delta versions these calls were checked against: an upgrade fails it
until each is checked again.
"""

from __future__ import annotations

import threading

from py4j.protocol import Py4JJavaError
from pyspark.sql import DataFrame, SparkSession

CHECKED_WITH = {"pyspark": "4.2.0", "delta-spark": "4.4.0"}
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


def select_sql(df: DataFrame, exprs: list[str]) -> DataFrame:
    """`df.selectExpr(*exprs)` in two JVM calls however many expressions."""
    array = java_strings(df.sparkSession, exprs)
    return df.selectExpr(*exprs) if array is None else DataFrame(df._jdf.selectExpr(array), df.sparkSession)


def read_text(spark: SparkSession, paths: list[str], wholetext: bool = False) -> DataFrame:
    """`spark.read.text(paths, wholetext=...)` in few JVM calls however many paths."""
    array = java_strings(spark, paths)
    if array is None:
        return spark.read.text(paths, wholetext=wholetext)
    return DataFrame(spark.read.option("wholetext", wholetext)._jreader.text(array), spark)


def read_files(spark: SparkSession, paths: list[str]) -> DataFrame:
    """`spark.read.format("binaryFile").load(paths)` in few JVM calls: the files as Spark's file
    scans list them, their content read only if selected."""
    array = java_strings(spark, paths)
    reader = spark.read.format("binaryFile")
    return reader.load(paths) if array is None else DataFrame(reader._jreader.load(array), spark)


def read_hadoop_text(spark: SparkSession, path: str) -> str | None:
    """A small file's text through Hadoop's file system (any scheme Spark reads), None if absent."""
    hadoop_path = java_class(spark, "org.apache.hadoop.fs.Path")
    file = hadoop_path(path)
    try:
        stream = file.getFileSystem(spark._jsc.hadoopConfiguration()).open(file)
    except Py4JJavaError as error:
        if error.java_exception.getClass().getSimpleName() == "FileNotFoundException":
            return None
        raise
    try:
        return java_class(spark, "org.apache.commons.io.IOUtils").toString(stream, "UTF-8")
    finally:
        stream.close()


def list_hadoop_names(spark: SparkSession, folder: str) -> list[str]:
    """The names in a folder through Hadoop's file system; [] when it does not exist."""
    hadoop_path = java_class(spark, "org.apache.hadoop.fs.Path")
    where = hadoop_path(folder)
    fs = where.getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(where):
        return []
    return [status.getPath().getName() for status in fs.listStatus(where)]


def hadoop_security(spark: SparkSession, names: tuple[str, ...]) -> tuple[bool, list[str]]:
    """Whether Hadoop security is on in the JVM, and which of these Java system properties are set."""
    system = java_class(spark, "java.lang.System")
    return (java_class(spark, "org.apache.hadoop.security.UserGroupInformation").isSecurityEnabled(),
            [n for n in names if system.getProperty(n)])

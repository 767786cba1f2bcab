"""The calls past PySpark's and Delta's public API (pds_spark.jvm), pinned to the versions
they were checked against, and each shown to give what the public call gives."""

from __future__ import annotations

from importlib.metadata import version

from chispa import assert_df_equality

from pds_spark.identity import IDENTITY_VARIABLES
from pds_spark.jvm import CHECKED_WITH, hadoop_security, list_hadoop_names, read_files, read_hadoop_text, read_text, select_sql


def test_the_pinned_versions_are_those_installed():
    # An upgrade fails here on purpose: check every function of pds_spark/jvm.py against the
    # new PySpark and Delta (this file's other tests, the ingestion tests), then update CHECKED_WITH.
    installed = {name: version(name) for name in CHECKED_WITH}
    assert installed == CHECKED_WITH, f"pds_spark/jvm.py was checked with {CHECKED_WITH}, not {installed}"


def test_many_texts_sent_to_the_jvm_at_once_give_what_pyspark_gives(spark, tmp_path):
    # Projections and reads of many texts go to the JVM as one text split there; a text that
    # holds the separator falls back to PySpark's own calls.
    df = spark.range(3)
    exprs = ["id", "id + 1 AS b", "'' AS empty", "'a,b' AS c"]
    assert_df_equality(select_sql(df, exprs), df.selectExpr(*exprs))
    with_separator = [*exprs, "'x\x00y' AS d"]
    assert_df_equality(select_sql(df, with_separator), df.selectExpr(*with_separator))
    paths = []
    for i in range(4):
        (tmp_path / f"f{i}.txt").write_text(f"line {i}\nnext {i}\n")
        paths.append(str(tmp_path / f"f{i}.txt"))
    for some in (paths[:1], paths):
        for whole in (False, True):
            assert_df_equality(read_text(spark, some, wholetext=whole), spark.read.text(some, wholetext=whole),
                               ignore_row_order=True)
        listed = spark.read.format("binaryFile").load(some).select("path", "length")
        assert_df_equality(read_files(spark, some).select("path", "length"), listed, ignore_row_order=True)


def test_files_are_read_and_listed_through_hadoop(spark, tmp_path):
    (tmp_path / "a.json").write_text('{"é": 1}\n', encoding="utf-8")
    assert read_hadoop_text(spark, str(tmp_path / "a.json")) == '{"é": 1}\n'
    assert read_hadoop_text(spark, str(tmp_path / "absent.json")) is None
    assert list_hadoop_names(spark, str(tmp_path)) == ["a.json"]
    assert list_hadoop_names(spark, str(tmp_path / "nowhere")) == []


def test_the_jvms_identity_settings_are_read(spark):
    secure, properties = hadoop_security(spark, IDENTITY_VARIABLES)
    assert secure is False and properties == []

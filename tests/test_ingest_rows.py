"""The rows a load writes, as pure functions over small hand-made frames."""

from __future__ import annotations

from datetime import datetime

from chispa import assert_df_equality
from pyspark.sql import functions as F

from pds_spark.ingest.rows import marked_rows, quarantine_rows, read_per_file, refused_per_file

AT = datetime(2026, 12, 5, 10, 0, 0)


def parsed(spark):
    return spark.createDataFrame(
        [("a", 1, "f1.csv", AT, "2019", False), ("b", None, "f1.csv", AT, "2019", True),
         ("c", 3, "f2.csv", AT, "2020", False), ("d", 4, "f2.csv", AT, "2020", True)],
        "NIR string, QTE int, _source_file string, _loaded_at timestamp, _period string, _bad boolean")


def test_a_refused_row_is_marked_by_a_null_period_and_columns_come_in_catalogue_order(spark):
    out = marked_rows(parsed(spark), ["QTE", "NIR"], "d1", {"NIR": "upper(NIR) AS NIR"})
    expected = spark.createDataFrame(
        [(1, "A", "f1.csv", "d1", AT, "2019"), (None, "B", "f1.csv", "d1", AT, None),
         (3, "C", "f2.csv", "d1", AT, "2020"), (4, "D", "f2.csv", "d1", AT, None)],
        "QTE int, NIR string, _source_file string, _delivery_id string, _loaded_at timestamp, _period string")
    assert_df_equality(out, expected, ignore_nullable=True)


def test_refused_and_read_lines_are_counted_per_file_in_the_order_given(spark):
    rows = marked_rows(parsed(spark), ["NIR", "QTE"], "d1")
    assert rows.select(refused_per_file(["f2.csv", "f1.csv", "absent.csv"])).first()["refused"] == [1, 1, 0]
    lines = spark.createDataFrame([(0,), (0,), (2,)], "_file_id int")
    assert lines.select(read_per_file([2, 0, 1])).first()["read"] == [1, 2, 0]


def test_quarantined_lines_carry_their_lineage_and_reasons(spark):
    refused = spark.createDataFrame([("f1.csv", 7, "2019", ["QTE: not an integer"], "b,x")],
                                    "_source_file string, _line int, _period string, _problems array<string>, "
                                    "_raw string")
    expected = spark.createDataFrame([("f1.csv", 7, "2019", "d1", AT, ["QTE: not an integer"], "b,x")],
                                     "_source_file string, _line long, _period string, _delivery_id string, "
                                     "_loaded_at timestamp, _reasons array<string>, _raw string")
    assert_df_equality(quarantine_rows(refused, "d1", AT), expected, ignore_nullable=True)
    assert quarantine_rows(refused, "d1", AT).where(F.col("_raw").isNull()).count() == 0

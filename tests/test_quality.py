"""Quality findings people can trust: code lists compared like with like, severities a
scheduler can use, drift over the checks drawn as charts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest

from pds_spark.catalog.codes import code_list, key_column
from pds_spark.quality import drift
from pds_spark.quality.checks import code_lists, period_rows
from pds_spark.quality.run import METRICS_SCHEMA, write_report
from pds_spark.settings import QualitySettings

SVG = "{http://www.w3.org/2000/svg}"


def test_a_code_list_is_read_by_the_column_and_form_of_its_field(catalogue):
    prs = catalogue.table("ER_PRS_F")
    month, day, rate = prs.field("EXE_SOI_AMD"), prs.field("EXE_SOI_DTD"), prs.field("RGO_THE_TAU")
    dte = catalogue.code_list("IR_DTE_V")
    assert key_column(dte, "IR_DTE_V", month) == "DTE_ANN_MOI"  # a year-month, not the SAS datetime key
    assert key_column(dte, "IR_DTE_V", day) == "DTE_DTE"
    rates = code_list(catalogue, "IR_TAU_V", rate)
    assert rates.column == "TAU_COD" and rates.kind == "number" and "5.00" in rates.codes
    assert code_list(catalogue, "IR_GEO_V:GEO_COM_COD", None).column == "GEO_COM_COD"
    cam = catalogue.table("ER_CAM_F").field("CAM_RED_MNT")  # an amount published with a list of rate overrides
    assert cam.nomenclature is None
    assert any(o.field == "CAM_RED_MNT" and "amount" in o.reason for o in catalogue.overrides.entries)


def test_values_and_codes_are_compared_in_one_form(spark, catalogue):
    prs = catalogue.table("ER_PRS_F")
    df = spark.createDataFrame([(5.0, "201905", 0), (10.0, "201912", 1), (6.03, "201913", 0)],
                               "RGO_THE_TAU double, EXE_SOI_AMD string, RGO_FTA_COD int")
    ben = catalogue.table("IR_BEN_R")
    people = spark.createDataFrame([(1, 1), (2, 9), (5, 9)], "BEN_SEX_COD int, BEN_RNG_GEM int")
    by_table = code_lists([(df, prs), (people, ben)], lambda f: code_list(catalogue, f.nomenclature, f))  # one job
    found = {m.column: m for m in by_table["ER_PRS_F"]}
    assert found["RGO_THE_TAU"].detail.startswith("1 of 3 values (1 distinct) not in IR_TAU_V (TAU_COD)")
    assert found["EXE_SOI_AMD"].detail.startswith("1 of 3 values (1 distinct) not in IR_DTE_V (DTE_ANN_MOI)")
    assert found["RGO_FTA_COD"].passed  # 0 and 1 are codes of IR_FOR_V
    # the other table's fields, in its fields' order, each against its own list
    assert [m.column for m in by_table["IR_BEN_R"]] == ["BEN_RNG_GEM", "BEN_SEX_COD"]
    sex = by_table["IR_BEN_R"][1]
    assert sex.detail.startswith("1 of 3 values (1 distinct) not in IR_SEX_V") and not sex.passed
    twice = code_lists([(df, prs), (df, prs)], lambda f: code_list(catalogue, f.nomenclature, f))["ER_PRS_F"]
    assert twice == by_table["ER_PRS_F"] * 2  # each counted on its own frame, not on both


def test_a_period_that_lost_rows_is_an_error_and_one_that_grew_a_warning(catalogue):
    counts = {"2019": 40, "2020": 250, "2021": 100}
    found = {m.period: m for m in period_rows(counts, catalogue.table("ER_PRS_F"),
                                              {"2018": 10, "2019": 100, "2020": 100, "2021": 95}, 0.5, 1.0)}
    assert (found["2019"].severity, found["2019"].passed) == ("error", False)  # -60 %
    assert (found["2018"].severity, found["2018"].value) == ("error", 0.0)  # gone
    assert (found["2020"].severity, found["2020"].passed) == ("warning", False)  # +150 %
    assert found["2021"].passed and found["2021"].severity == "info"


@pytest.fixture
def history(spark, tmp_path):
    """Six checks of table T: a null rate steady near 10 % then 60 % at the last, and a period's rows."""
    start = datetime(2026, 1, 1)
    rows = []
    for i, (rate, count) in enumerate([(0.10, 100), (0.11, 104), (0.09, 98), (0.10, 101), (0.12, 99), (0.60, 300)]):
        run_id, at = f"run{i}", start + timedelta(days=7 * i)
        rows += [(run_id, at, "T", "null_rate", "C", "", rate, True, "info", ""),
                 (run_id, at, "T", "period_rows", "", "2019", float(count), True, "info", "")]
    path = str(tmp_path / "quality_metrics")
    spark.createDataFrame(rows, METRICS_SCHEMA).write.format("delta").save(path)
    return path


def test_drift_is_judged_in_spark_and_drawn(spark, history, tmp_path):
    drawn = drift.series(spark, history, "run5", ["T"], QualitySettings())
    by = {(s.check, s.column, s.period): s for s in drawn}
    nulls = by[("null_rate", "C", "")]
    assert nulls.values == (0.10, 0.11, 0.09, 0.10, 0.12, 0.60) and nulls.out_of_band
    rows = by[("period_rows", "", "2019")]
    assert rows.out_of_band and rows.values[-1] == 300.0  # tripled: beyond the band of +100 %
    warnings = drift.findings(drawn)
    assert [(m.table, m.check, m.column, m.severity) for m in warnings] == [("T", "drift", "C", "warning")]
    assert "null_rate 60.0% outside" in warnings[0].detail and "of its last 5 checks" in warnings[0].detail

    for s in drawn:  # every chart is well-formed SVG: a line, a band, the last point marked
        svg = ET.fromstring(drift.sparkline(s))
        assert svg.tag == f"{SVG}svg" and svg.find(f"{SVG}polyline") is not None
        assert svg.find(f"{SVG}rect") is not None
        assert svg.find(f"{SVG}circle").get("class") == "out"
    steady = drift.Series("T", "null_rate", "D", "", (0.1, 0.1, 0.1, 0.1), 0.05, 0.15)
    assert ET.fromstring(drift.sparkline(steady)).find(f"{SVG}circle").get("class") == "latest"

    from pds_spark.quality.checks import Metric

    metrics = [Metric("T", "period_rows", "", "2019", 300.0, False, "warning", "+200.0% vs 99 before"), *warnings]
    page = write_report(tmp_path / "q.html", "run5", metrics, drawn).read_text()
    assert page.count("<svg") == 2 and "Rows per period over the checks" in page and "Drift of null rates" in page


def test_a_first_check_is_drawn_as_one_dot_without_a_band():
    first = drift.Series("ER_PRS_F", "rows", "", "2019", (1200.0,), None, None)
    svg = ET.fromstring(drift.sparkline(first))
    assert len(svg.findall(f"{SVG}circle")) == 1 and svg.find(f"{SVG}rect") is None
    assert len(svg.find(f"{SVG}polyline").get("points").split()) == 1  # no line to draw from one value


def test_each_injected_quality_fault_gives_exactly_its_finding(spark, settings, catalogue, tmp_path):
    # a clean corpus with one loadable fault of each kind: the checks find those, nothing else
    import csv

    from pds_spark.ingest import discover
    from pds_spark.quality.rules import foreign_key_rules
    from pds_spark.quality.run import check_tables
    from pds_spark.synth import CorpusConfig, generate_corpus
    from pds_spark.synth.config import QUALITY_FAULTS
    from pds_spark.warehouse import Warehouse
    from tests.test_ingest import loader

    out = tmp_path / "corpus"
    generate_corpus(spark, catalogue, out, CorpusConfig(patients=200, years=1, seed=11, quality_faults=True),
                    settings.paths.names)
    manifest = list(csv.DictReader((out / "truth" / "faults.csv").open(encoding="utf-8")))
    assert sorted(m["kind"] for m in manifest) == sorted(QUALITY_FAULTS)
    result = loader(spark, settings, tmp_path, "wh").run(discover(out / "delivery", catalogue))
    assert result.total("quarantined") == 0  # they load: only the checks can see them
    loaded = sorted({o.file.table.name for o in result.outcomes if o.status == "loaded"})
    checked = check_tables(spark, Warehouse(tmp_path / "wh"), catalogue, loaded,
                           foreign_key_rules(settings.quality.rules), settings.quality, tmp_path)
    found = {f"{m.table} {m.check} {m.column}" for m in checked.errors + checked.warnings}
    assert found == {m["finding"] for m in manifest}
    assert {m.check for m in checked.errors} == {"primary_key", "foreign_key"}  # a code is a warning

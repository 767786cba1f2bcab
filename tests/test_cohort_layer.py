"""The events layer: what a build rebuilds (decided without Spark), and a re-delivered period
rebuilt alone, giving the events a full extraction gives."""

from __future__ import annotations

import shutil

from chispa import assert_df_equality
from pyspark.sql import functions as F

from pds_spark.cohort.layer import EXTRACTORS, PATIENTS, build_layer, columns_read, extract, loaded_versions, plan_rebuild
from pds_spark.warehouse import Warehouse

DRUGS, ALL = [x for x in EXTRACTORS if x.name in ("dcir_drugs", "dcir_drug_classes")], [*EXTRACTORS, PATIENTS]
LOADED = {("ER_PRS_F", "2019"): 3, ("ER_PRS_F", "2020"): 4, ("ER_PHA_F", "2019"): 5, ("ER_PHA_F", "2020"): 6,
          ("IR_PHA_R", "-"): 7}


def built_from(loaded, extractors):
    return {(x.name, t, p): loaded.get((t, p), loaded.get((t, "-")))
            for x in extractors for t in x.tables for p in ("2019", "2020")}


def test_a_first_build_builds_every_period_and_reports_missing_tables():
    parts, missing = plan_rebuild(ALL, LOADED, {})
    assert parts == {"dcir_drugs": {"2019", "2020"}, "dcir_drug_classes": {"2019", "2020"}}
    assert missing["pmsi_diagnoses"] == ["T_MCOaaB", "T_MCOaaC", "T_MCOaaD"] and missing["patients"] == ["IR_BEN_R"]


def test_only_what_changed_is_rebuilt():
    built = built_from(LOADED, DRUGS)
    assert plan_rebuild(DRUGS, LOADED, built) == ({}, {})
    one_period = {**LOADED, ("ER_PHA_F", "2020"): 9}
    assert plan_rebuild(DRUGS, one_period, built)[0] == {"dcir_drugs": {"2020"}, "dcir_drug_classes": {"2020"}}
    referential = {**LOADED, ("IR_PHA_R", "-"): 8}  # the drug referential: every period of its extractor
    assert plan_rebuild(DRUGS, referential, built)[0] == {"dcir_drug_classes": {"2019", "2020"}}
    new_period = {**LOADED, ("ER_PRS_F", "2021"): 10, ("ER_PHA_F", "2021"): 11}
    assert plan_rebuild(DRUGS, new_period, built)[0] == {"dcir_drugs": {"2021"}, "dcir_drug_classes": {"2021"}}


def test_a_cohort_reads_the_columns_of_its_categories_and_population():
    read = columns_read(["drug_atc"])
    assert set(read) == {"ER_PRS_F", "ER_PHA_F", "IR_PHA_R", "IR_BEN_R"}
    assert "PHA_ATC_C07" in read["IR_PHA_R"] and "BEN_NAI_ANN" in read["IR_BEN_R"]
    assert set(columns_read(["diagnosis"])) == {"T_MCOaaB", "T_MCOaaC", "T_MCOaaD", "IR_BEN_R"}


def test_a_redelivered_period_rebuilds_its_parts_only(spark, settings, catalogue, corpus, events_warehouse, tmp_path):
    from tests.test_ingest import loader

    root = tmp_path / "copy"
    shutil.copytree(events_warehouse, root / "wh")
    wh = Warehouse(root / "wh")
    events = lambda: spark.read.format("delta").load(wh.events("care_events"))  # noqa: E731
    assert build_layer(spark, wh, catalogue).parts == {}  # nothing changed since the fixture's build
    before = {(r.extractor, r.period): r["count"] for r in events().groupBy("extractor", "period").count().collect()}

    redelivery = tmp_path / "d2" / "DCIR"
    redelivery.mkdir(parents=True)
    lines = (corpus / "delivery" / "DCIR" / "ER_PHA_F_2020.csv").read_text(encoding="utf-8").splitlines(True)
    (redelivery / "ER_PHA_F_2020.csv").write_text("".join(lines[:len(lines) // 2]), encoding="utf-8")
    from pds_spark.ingest import discover

    loader(spark, settings, root, "wh", delivery="d2").run(discover(redelivery.parent, catalogue))
    built = build_layer(spark, wh, catalogue)
    assert built.parts == {"dcir_drugs": {"2020"}, "dcir_drug_classes": {"2020"}} and built.patients is None
    after = {(r.extractor, r.period): r["count"] for r in events().groupBy("extractor", "period").count().collect()}
    assert {k: v for k, v in after.items() if k[1] != "2020" or k[0] not in built.parts} == \
        {k: v for k, v in before.items() if k[1] != "2020" or k[0] not in built.parts}
    assert after[("dcir_drugs", "2020")] < before[("dcir_drugs", "2020")]
    loaded = loaded_versions(spark, wh)
    for x in DRUGS:  # what the incremental build wrote is what a full extraction gives
        fresh = extract(spark, wh, catalogue, x, {"2020"}, loaded)
        assert_df_equality(events().where((F.col("extractor") == x.name) & (F.col("period") == "2020"))
                           .select(*fresh.columns), fresh, ignore_row_order=True, ignore_nullable=True)
    assert build_layer(spark, wh, catalogue).parts == {}

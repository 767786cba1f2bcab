"""Care events from the SNDS tables: each extractor and filter on small hand-made frames,
the rows it must drop included."""

from __future__ import annotations

from datetime import date, datetime

from chispa import assert_df_equality

from pds_spark.cohort.events import (
    DCIR_KEYS,
    EVENT_SCHEMA,
    PMSI_RET_FLAGS,
    dcir_acts,
    dcir_paid,
    deaths,
    drug_classes,
    drug_dispensations,
    flags_clear,
    hospital_acts,
    hospital_diagnoses,
    long_term_conditions,
    patients,
    pmsi_stays,
)

D1, D2 = date(2019, 3, 1), date(2019, 3, 9)
KEYS = "DCT_ORD_NUM int, FLX_DIS_DTD date, FLX_EMT_NUM int, FLX_EMT_ORD int, FLX_EMT_TYP int, FLX_TRT_DTD date, " \
       "ORG_CLE_NUM string, PRS_ORD_NUM int, REM_TYP_AFF int"


def key(n: int) -> tuple:
    return (n, D1, 1, n, 1, D1, "01C", 1, 0)


def prs(spark, rows):
    return spark.createDataFrame([(*key(n), *rest) for n, *rest in rows],
                                 f"{KEYS}, BEN_NIR_PSA string, EXE_SOI_DTD date, DPN_QLF int, PRS_NAT_REF int, "
                                 "PRS_ACT_QTE double")


def events(spark, rows):
    return spark.createDataFrame(rows, EVENT_SCHEMA)


def test_dcir_lines_for_information_or_of_nature_zero_are_not_care(spark):
    lines = prs(spark, [(1, "p1", D1, 0, 3111, 1.0), (2, "p1", D1, 71, 3111, 1.0), (3, "p1", D1, None, 0, 1.0),
                        (4, "p2", D1, None, 1111, 1.0)])
    assert sorted(r.DCT_ORD_NUM for r in dcir_paid(lines).collect()) == [1, 4]


def test_drugs_are_joined_on_the_nine_keys_and_netted(spark):
    lines = prs(spark, [(1, "p1", D1, 0, 3317, 1.0), (2, "p1", D1, 0, 3317, -1.0), (3, "p1", D2, 0, 3317, 1.0),
                        (4, "p2", D1, 71, 3317, 1.0), (5, "p2", D2, 0, 3317, 1.0)])
    pha = spark.createDataFrame(
        [(*key(1), 3400930000001, 2), (*key(2), 3400930000001, -2),  # dispensed, then cancelled
         (*key(3), 3400930000001, 1), (*key(3), 3400930000002, 3),   # two drugs on one prestation
         (*key(4), 3400930000001, 1),                                # an information line
         (*key(5), None, 1), (*key(9), 3400930000009, 1)],           # no code; no ER_PRS_F line
        f"{KEYS}, PHA_PRS_C13 long, PHA_ACT_QSN int")
    expected = events(spark, [("p1", "drug", "3400930000001", D2, D2, None, "ER_PHA_F", 1.0),
                              ("p1", "drug", "3400930000002", D2, D2, None, "ER_PHA_F", 3.0)])
    assert_df_equality(drug_dispensations(lines, pha), expected, ignore_row_order=True, ignore_nullable=True)
    assert set(DCIR_KEYS) <= set(pha.columns)


def test_town_acts_are_netted_on_the_prestations_quantity(spark):
    lines = prs(spark, [(1, "p1", D1, 0, 1111, 1.0), (2, "p1", D1, 0, 1111, -1.0), (3, "p2", D2, 0, 1111, 1.0)])
    cam = spark.createDataFrame([(*key(1), "YYYY600"), (*key(2), "YYYY600"), (*key(3), "DEQP003")],
                                f"{KEYS}, CAM_PRS_IDE string")
    expected = events(spark, [("p2", "act", "DEQP003", D2, D2, None, "ER_CAM_F", 1.0)])
    assert_df_equality(dcir_acts(lines, cam), expected, ignore_nullable=True)


def stays(spark):
    b = spark.createDataFrame([(1, 10, "I21.0", "", "05M09T"), (1, 11, "E11", "I10", "90Z00Z"),  # error GHM
                               (1, 12, "J18", "", "04M05Z"), (1, 13, "K35", "", "06C09Z")],
                              "ETA_NUM int, RSA_NUM int, DGN_PAL string, DGN_REL string, GRG_GHM string")
    at = lambda d: datetime(2019, 3, d)  # noqa: E731
    c = spark.createDataFrame([(1, 10, "p1", at(1), at(4), "0", "0"), (1, 11, "p1", at(5), at(6), "0", "0"),
                               (1, 12, "p2", at(2), at(3), "1", "0"),                   # a chaining flag set
                               (1, 13, "p3", at(7), at(8), "0", "0"), (1, 13, "p4", at(7), at(8), "0", "0")],  # twice
                              "ETA_NUM int, RSA_NUM int, NIR_ANO_17 string, EXE_SOI_DTD timestamp, "
                              "EXE_SOI_DTF timestamp, NIR_RET string, SEJ_RET string")
    return b, c


CLEAR = {"NIR_RET": "0", "SEJ_RET": "0"}


def test_a_flag_is_clear_at_what_the_catalogue_reads_0_as(catalogue):
    clear = flags_clear(catalogue.table("T_MCOaaC"))
    assert clear["NIR_RET"] is False and clear["SEJ_RET"] is True  # SEJ_RET: trueValues ['0']
    assert clear["DAT_RET"] == "0" and set(clear) <= set(PMSI_RET_FLAGS)


def test_only_stays_chained_grouped_and_delivered_once_are_usable(spark):
    b, c = stays(spark)
    assert [(r.stay, r.patient) for r in pmsi_stays(b, c, CLEAR).collect()] == [("1|10", "p1")]


def test_hospital_diagnoses_main_related_and_associated(spark):
    b, c = stays(spark)
    d = spark.createDataFrame([("1", "10", "E11.9"), ("1", "10", " "), ("1", "12", "Z00")],
                              "ETA_NUM string, RSA_NUM string, ASS_DGN string")
    expected = events(spark, [("p1", "diagnosis_main", "I21.0", D1, date(2019, 3, 4), "1|10", "T_MCOaaB", 1.0),
                              ("p1", "diagnosis_associated", "E11.9", D1, date(2019, 3, 4), "1|10", "T_MCOaaD", 1.0)])
    assert_df_equality(hospital_diagnoses(b, c, d, CLEAR), expected, ignore_row_order=True, ignore_nullable=True)


def test_hospital_acts_are_dated_from_the_stays_start(spark):
    b, c = stays(spark)
    a = spark.createDataFrame([("1", "10", "DEQP003", 2), ("1", "11", "YYYY600", 0)],
                              "ETA_NUM string, RSA_NUM string, CDC_ACT string, ENT_DAT_DEL int")
    expected = events(spark, [("p1", "act", "DEQP003", date(2019, 3, 3), date(2019, 3, 3), "1|10", "T_MCOaaA", 1.0)])
    assert_df_equality(hospital_acts(a, b, c, CLEAR), expected, ignore_nullable=True)


def test_long_term_conditions_and_deaths(spark):
    imb = spark.createDataFrame([("p1", "E11", D1, date(2024, 1, 1)), ("p2", "", D1, None), ("p2", None, D1, None)],
                                "BEN_NIR_PSA string, MED_MTF_COD string, IMB_ALD_DTD date, IMB_ALD_DTF date")
    expected = events(spark, [("p1", "long_term_condition", "E11", D1, date(2024, 1, 1), None, "IR_IMB_R", 1.0)])
    assert_df_equality(long_term_conditions(imb), expected, ignore_nullable=True)
    ben = spark.createDataFrame([("p1", D2), ("p2", None), ("p3", date(2999, 12, 31))],
                                "BEN_NIR_PSA string, BEN_DCD_DTE date")
    expected = events(spark, [("p1", "death", "death", D2, D2, None, "IR_BEN_R", 1.0)])
    assert_df_equality(deaths(ben), expected, ignore_nullable=True)


def test_a_dispensation_takes_its_atc_class_from_ir_pha_r(spark):
    dispensed = events(spark, [("p1", "drug", "3400930000001", D1, D1, None, "ER_PHA_F", 2.0),
                               ("p1", "drug", "3400930000009", D2, D2, None, "ER_PHA_F", 1.0)])  # unknown drug
    ir_pha_r = spark.createDataFrame([(3400930000001, " A10BA02 "), (3400930000002, "C10AA05"), (3400930000003, "")],
                                     "PHA_CIP_C13 long, PHA_ATC_C07 string")
    expected = events(spark, [("p1", "drug_atc", "A10BA02", D1, D1, None, "IR_PHA_R", 2.0)])
    assert_df_equality(drug_classes(dispensed, ir_pha_r), expected, ignore_nullable=True)


def test_a_patient_is_one_row_with_the_first_known_values(spark):
    ben = spark.createDataFrame([("p1", "1960", "05", 1, None), ("p1", "1960", None, 1, D1),
                                 ("p2", "1970", None, 2, date(2999, 12, 31))],
                                "BEN_NIR_PSA string, BEN_NAI_ANN string, BEN_NAI_MOI string, BEN_SEX_COD int, "
                                "BEN_DCD_DTE date")
    expected = spark.createDataFrame([("p1", 1960, date(1960, 5, 1), 1, D1), ("p2", 1970, date(1970, 1, 1), 2, None)],
                                     "patient string, birth_year int, birth date, sex int, death date")
    assert_df_equality(patients(ben), expected, ignore_row_order=True, ignore_nullable=True)

"""Care events from the loaded SNDS tables, in one shape, with the filters every SNDS analyst
applies. Pure `DataFrame -> DataFrame` functions over the tables as ingestion loads them.

An event: `patient` (the pseudonym chaining DCIR's `BEN_NIR_PSA` and PMSI's `NIR_ANO_17`),
`category`, `code`, `start` and `end` (dates), `group` (what ties events together: a
hospital stay), `source` (the table), `quantity`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.catalog.model import Table

EVENT_COLUMNS = ("patient", "category", "code", "start", "end", "group", "source", "quantity")
EVENT_SCHEMA = ("patient string, category string, code string, start date, end date, group string, "
                "source string, quantity double")
# the nine columns that join a DCIR detail line (ER_PHA_F, ER_CAM_F, ...) to its ER_PRS_F line
DCIR_KEYS = ("DCT_ORD_NUM", "FLX_DIS_DTD", "FLX_EMT_NUM", "FLX_EMT_ORD", "FLX_EMT_TYP", "FLX_TRT_DTD",
             "ORG_CLE_NUM", "PRS_ORD_NUM", "REM_TYP_AFF")
INFORMATION_ONLY = 71  # DPN_QLF: a line sent for information, not a care paid for
# the tables each category's events come from (their `source`)
CATEGORY_SOURCES = {
    "drug": ("ER_PHA_F",), "drug_atc": ("IR_PHA_R",), "act": ("ER_CAM_F", "T_MCOaaA"),
    "diagnosis_main": ("T_MCOaaB",), "diagnosis_related": ("T_MCOaaB",), "diagnosis_associated": ("T_MCOaaD",),
    "diagnosis": ("T_MCOaaB", "T_MCOaaD"), "long_term_condition": ("IR_IMB_R",), "death": ("IR_BEN_R",)}
PMSI_RET_FLAGS = ("NIR_RET", "NAI_RET", "SEX_RET", "SEJ_RET", "FHO_RET", "PMS_RET", "DAT_RET")
ERROR_GHM = "90"  # GRG_GHM of a stay the grouper put in error


def _events(df: DataFrame, patient: Column, category: str, code: Column, start: Column, end: Column,
            group: Column, source: str, quantity: Column) -> DataFrame:
    return df.select(patient.cast("string").alias("patient"), F.lit(category).alias("category"),
                     code.cast("string").alias("code"), start.cast("date").alias("start"),
                     end.cast("date").alias("end"), group.cast("string").alias("group"),
                     F.lit(source).alias("source"), quantity.cast("double").alias("quantity"))


# -- DCIR -------------------------------------------------------------------------------
def dcir_paid(er_prs_f: DataFrame) -> DataFrame:
    """ER_PRS_F lines of care paid for: not for information only (`DPN_QLF` 71), not of nature 0."""
    return er_prs_f.where((F.coalesce(F.col("DPN_QLF"), F.lit(0)) != INFORMATION_ONLY)
                          & (F.coalesce(F.col("PRS_NAT_REF"), F.lit(0)) != 0))


def _netted(lines: DataFrame, quantity: str) -> DataFrame:
    """Lines of one patient, code and day summed: a regularisation or cancellation (a negative
    quantity) cancels the line it corrects; what nets to zero or less is no event."""
    return (lines.groupBy("patient", "code", "start").agg(F.sum(quantity).alias("quantity"))
            .where("quantity > 0"))


def drug_dispensations(er_prs_f: DataFrame, er_pha_f: DataFrame) -> DataFrame:
    """A drug dispensed (`PHA_PRS_C13`, CIP13) on the care date, boxes netted."""
    prs = dcir_paid(er_prs_f).select(*DCIR_KEYS, F.col("BEN_NIR_PSA").alias("patient"),
                                     F.col("EXE_SOI_DTD").cast("date").alias("start"))
    pha = er_pha_f.select(*DCIR_KEYS, F.col("PHA_PRS_C13").cast("string").alias("code"),
                          F.coalesce(F.col("PHA_ACT_QSN"), F.lit(1)).alias("boxes"))
    lines = pha.join(prs, list(DCIR_KEYS)).where("code IS NOT NULL")
    net = _netted(lines, "boxes")
    return _events(net, F.col("patient"), "drug", F.col("code"), F.col("start"), F.col("start"), F.lit(None),
                   "ER_PHA_F", F.col("quantity"))


def drug_classes(dispensations: DataFrame, ir_pha_r: DataFrame) -> DataFrame:
    """The ATC class of each dispensation (category `drug_atc`): its CIP13 looked up in IR_PHA_R
    (`PHA_CIP_C13` -> `PHA_ATC_C07`); a drug IR_PHA_R does not know has no class event."""
    atc = (ir_pha_r.select(F.col("PHA_CIP_C13").cast("string").alias("_cip13"),
                           F.trim(F.col("PHA_ATC_C07")).alias("_atc"))
           .where("_atc IS NOT NULL AND _atc != ''").dropDuplicates(["_cip13"]))
    rows = dispensations.join(F.broadcast(atc), dispensations["code"] == atc["_cip13"])
    return _events(rows, F.col("patient"), "drug_atc", F.col("_atc"), F.col("start"), F.col("end"), F.col("group"),
                   "IR_PHA_R", F.col("quantity"))


def dcir_acts(er_prs_f: DataFrame, er_cam_f: DataFrame) -> DataFrame:
    """A CCAM act billed in town (`CAM_PRS_IDE`), netted on the prestation's quantity."""
    prs = dcir_paid(er_prs_f).select(*DCIR_KEYS, F.col("BEN_NIR_PSA").alias("patient"),
                                     F.col("EXE_SOI_DTD").cast("date").alias("start"),
                                     F.coalesce(F.col("PRS_ACT_QTE"), F.lit(1)).alias("count"))
    cam = er_cam_f.select(*DCIR_KEYS, F.col("CAM_PRS_IDE").alias("code"))
    net = _netted(cam.join(prs, list(DCIR_KEYS)).where("code IS NOT NULL"), "count")
    return _events(net, F.col("patient"), "act", F.col("code"), F.col("start"), F.col("start"), F.lit(None),
                   "ER_CAM_F", F.col("quantity"))


# -- PMSI MCO ---------------------------------------------------------------------------
def _stay_key(df: DataFrame) -> Column:
    return F.concat_ws("|", F.col("ETA_NUM").cast("string"), F.col("RSA_NUM").cast("string"))


def flags_clear(t_mco_c: Table) -> dict[str, bool | str]:
    """The loaded value of each T_MCOaaC chaining flag that means '0' (nothing wrong): the text
    '0', or for a boolean the value the catalogue reads '0' as (`SEJ_RET`: true, `NIR_RET`: false)."""
    out: dict[str, bool | str] = {}
    for name in PMSI_RET_FLAGS:
        if t_mco_c.has_field(name):
            f = t_mco_c.field(name)
            out[name] = ("0" in f.true_values) if isinstance(f.spark_type, T.BooleanType) else "0"
    return out


def pmsi_stays(t_mco_b: DataFrame, t_mco_c: DataFrame, clear: Mapping[str, bool | str]) -> DataFrame:
    """Stays usable for a study (`stay`, `patient`, `start`, `end`): every chaining flag of
    T_MCOaaC at its `clear` value (`flags_clear`), the stay not grouped in error (`GRG_GHM`
    90*), and a stay delivered twice (two T_MCOaaC lines) dropped: its patient is ambiguous."""
    tests = [F.col(c) == F.lit(v) for c, v in clear.items() if c in t_mco_c.columns]
    chained = t_mco_c.where(reduce(lambda x, y: x & y, tests)) if tests else t_mco_c
    patients = (chained.select(_stay_key(chained).alias("stay"), F.col("NIR_ANO_17").alias("patient"),
                               F.col("EXE_SOI_DTD").cast("date").alias("start"),
                               F.col("EXE_SOI_DTF").cast("date").alias("end"))
                .groupBy("stay").agg(F.count(F.lit(1)).alias("_lines"), F.first("patient").alias("patient"),
                                     F.min("start").alias("start"), F.max("end").alias("end"))
                .where("_lines = 1").drop("_lines"))
    grouped = t_mco_b.where(~F.coalesce(F.col("GRG_GHM"), F.lit("")).startswith(ERROR_GHM))
    return grouped.select(_stay_key(grouped).alias("stay")).distinct().join(patients, "stay")


def hospital_diagnoses(t_mco_b: DataFrame, t_mco_c: DataFrame, t_mco_d: DataFrame,
                       clear: Mapping[str, bool | str]) -> DataFrame:
    """ICD-10 diagnoses of usable stays: main (`DGN_PAL`), related (`DGN_REL`), associated
    (T_MCOaaD `ASS_DGN`); categories `diagnosis_main`, `diagnosis_related`, `diagnosis_associated`."""
    stays = pmsi_stays(t_mco_b, t_mco_c, clear)
    b = t_mco_b.select(_stay_key(t_mco_b).alias("stay"), "DGN_PAL", "DGN_REL")
    d = t_mco_d.select(_stay_key(t_mco_d).alias("stay"), "ASS_DGN")
    roles = [(b, "DGN_PAL", "diagnosis_main", "T_MCOaaB"), (b, "DGN_REL", "diagnosis_related", "T_MCOaaB"),
             (d, "ASS_DGN", "diagnosis_associated", "T_MCOaaD")]
    events = [_events(frame.join(stays, "stay").where(F.trim(F.col(column)) != ""), F.col("patient"), category,
                      F.trim(F.col(column)), F.col("start"), F.col("end"), F.col("stay"), source, F.lit(1))
              for frame, column, category, source in roles]
    return reduce(DataFrame.unionByName, events).distinct()


def hospital_acts(t_mco_a: DataFrame, t_mco_b: DataFrame, t_mco_c: DataFrame,
                  clear: Mapping[str, bool | str]) -> DataFrame:
    """CCAM acts of usable stays (`CDC_ACT`), dated by their delay from the stay's start."""
    stays = pmsi_stays(t_mco_b, t_mco_c, clear)
    a = t_mco_a.select(_stay_key(t_mco_a).alias("stay"), "CDC_ACT", "ENT_DAT_DEL")
    rows = a.join(stays, "stay").where(F.trim(F.col("CDC_ACT")) != "")
    day = F.date_add(F.col("start"), F.coalesce(F.col("ENT_DAT_DEL"), F.lit(0)).cast("int"))
    return _events(rows, F.col("patient"), "act", F.trim(F.col("CDC_ACT")), day, day, F.col("stay"), "T_MCOaaA",
                   F.lit(1))


# -- referentials -----------------------------------------------------------------------
def long_term_conditions(ir_imb_r: DataFrame) -> DataFrame:
    """Long-term conditions (ALD): the ICD-10 code `MED_MTF_COD`, from `IMB_ALD_DTD` to `IMB_ALD_DTF`."""
    rows = ir_imb_r.where(F.trim(F.coalesce(F.col("MED_MTF_COD"), F.lit(""))) != "")
    return _events(rows, F.col("BEN_NIR_PSA"), "long_term_condition", F.trim(F.col("MED_MTF_COD")),
                   F.col("IMB_ALD_DTD"), F.col("IMB_ALD_DTF"), F.lit(None), "IR_IMB_R", F.lit(1)).distinct()


def deaths(ir_ben_r: DataFrame) -> DataFrame:
    """A death on `BEN_DCD_DTE` (dates past 2100 are SNDS's 'none')."""
    rows = ir_ben_r.where(F.col("BEN_DCD_DTE").isNotNull() & (F.year("BEN_DCD_DTE") < 2100))
    return _events(rows, F.col("BEN_NIR_PSA"), "death", F.lit("death"), F.col("BEN_DCD_DTE"), F.col("BEN_DCD_DTE"),
                   F.lit(None), "IR_BEN_R", F.lit(1)).distinct()


def patients(ir_ben_r: DataFrame) -> DataFrame:
    """One row a patient (`patient`, `birth_year`, `birth`: first day of the birth month, January
    when unknown, `sex`, `death`), from IR_BEN_R. A patient with several lines (BEN_RNG_GEM) keeps
    the smallest known value of each, so that the row does not depend on the lines' order."""
    rows = ir_ben_r.select(F.col("BEN_NIR_PSA").cast("string").alias("patient"),
                           F.col("BEN_NAI_ANN").cast("int").alias("birth_year"),
                           F.col("BEN_NAI_MOI").cast("int").alias("_month"),
                           F.col("BEN_SEX_COD").cast("int").alias("sex"),
                           F.when(F.year("BEN_DCD_DTE") < 2100, F.col("BEN_DCD_DTE").cast("date")).alias("death"))
    one = rows.groupBy("patient").agg(F.min("birth_year").alias("birth_year"), F.min("_month").alias("_month"),
                                      F.min("sex").alias("sex"), F.min("death").alias("death"))
    birth = F.make_date(F.col("birth_year"), F.coalesce(F.col("_month"), F.lit(1)), F.lit(1))
    return one.select("patient", "birth_year", birth.alias("birth"), "sex", "death")

"""The coherent core of a corpus: patients, DCIR prestations and satellites, PMSI MCO
stays, long-term conditions and deaths, chained as in the SNDS.

Each fact row is a pure function of its row number, so satellites are made from the
same row numbers as their ER_PRS_F row and share its 9 join keys without a join.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pds_spark.catalog import Catalogue
from pds_spark.synth import codes as C
from pds_spark.synth.config import CorpusConfig
from pds_spark.synth.random import pick, randint, skewed_index, uniform

DCIR_KEYS = ("DCT_ORD_NUM", "FLX_DIS_DTD", "FLX_EMT_NUM", "FLX_EMT_ORD", "FLX_EMT_TYP",
             "FLX_TRT_DTD", "ORG_CLE_NUM", "PRS_ORD_NUM", "REM_TYP_AFF")
PMSI_RET_FLAGS = ("NIR_RET", "NAI_RET", "SEX_RET", "SEJ_RET", "FHO_RET", "PMS_RET", "DAT_RET")
# Nature of prestation (IR_NAT_V) by kind of care
PHARMACY_NAT = ("3311", "3312", "3313", "3317")
ACT_NAT = ("1111", "1112", "1211", "1311")
ESTABLISHMENT_NAT = ("3121", "3131")
OTHER_NAT = ("1098", "1101", "1421", "2141", "3511", "3521", "5111")
UNUSABLE_STAY_SHARE = 0.02
# ATC classes of the generated drugs (IR_PHA_R): antidiabetics, insulins, and common others
DRUG_CLASSES = ("A10BA02", "A10BB09", "A10BG03", "A10BH01", "A10AB05", "A10AE04", "A02BC01", "C10AA05",
                "C09AA05", "C07AB07", "C03CA01", "N02BE01", "N06AB06", "N05BA12", "R03AC02", "J01CA04",
                "B01AC06", "M01AE01", "H03AA01", "C08CA01")
PRACTITIONERS = (10_000_001, 10_000_500)  # PFS numbers (DA_PRA_R) of the prescribers and performers
ESTABLISHMENTS = (10_000_000, 10_000_300)  # FINESS numbers (BE_IDE_R) of ER_PRS_F and ER_ETE_F
STAYS_ESTABLISHMENTS = 300  # ETA_NUM of the PMSI stays (T_MCOaaE): 100000000 + i * 1009
HEAVY_USERS = 0.1  # share of patients who are heavy users of care
HEAVY_USE = 0.5  # share of prestations that go to heavy users


@dataclass
class Lists:
    """Small code lists, broadcast-joined on a drawn index."""

    diagnoses: DataFrame  # (dgn_idx, dgn) ICD-10 of MS_CIM_V, planted family excluded
    n_diagnoses: int
    ald_diagnoses: list[str]
    acts: DataFrame  # (act_idx, act) CCAM
    n_acts: int
    drugs: DataFrame  # (drug_idx, drug) CIP13, planted drug excluded
    n_drugs: int
    places: DataFrame  # (place_idx, place) 'DPT|COM' of IR_GEO_V
    n_places: int
    organisms: list[str]
    emitters: list[int]  # FLX_EMT_NUM: emitter numbers of IR_NEM_T


def load_lists(spark: SparkSession, catalogue: Catalogue, cfg: CorpusConfig) -> Lists:
    seed, prefix = cfg.seed, cfg.planted.diagnosis_prefix
    dgn = [c for c in C.code_list(catalogue, "MS_CIM_V:CIM_COD")
           if 3 <= len(c) <= 6 and c[0].isalpha() and not c.startswith(prefix)]
    dgn = C.shuffled(dgn, seed, "dgn")
    ald = [c for c in C.code_list(catalogue, "IR_CIM_V") if len(c) <= 5 and not c.startswith(prefix)]
    acts = C.shuffled([c for c in C.code_list(catalogue, "IR_CCAM_V63") if len(c) == 7], seed, "act")
    places = []
    geo = catalogue.code_list("IR_GEO_V")
    if geo:
        with geo.open(encoding="utf-8", errors="replace") as fh:
            for row in csv.DictReader(fh, delimiter=";"):
                dpt, com = row.get("GEO_DPT_COD", ""), row.get("GEO_COM_COD", "")
                if len(dpt) == 3 and dpt[1:].isdigit() and dpt != "000" and len(com) == 3 and com.isdigit():
                    places.append(f"{dpt}|{com}")
    places = C.shuffled(sorted(set(places)) or ["075|056"], seed, "place")
    organisms = [c for c in C.code_list(catalogue, "IR_ORG_V") if len(c) == 9][:200] or ["01C731221"]
    # emitters in both lists that name them (ER_DTR_F reads FLX_EMT_NUM with IR_NEM_V, the others IR_NEM_T)
    also = {c for c in C.code_list(catalogue, "IR_NEM_V") if c.isdigit()}
    emitters = sorted(int(c) for c in C.code_list(catalogue, "IR_NEM_T")
                      if c.isdigit() and int(c) <= 30 and (not also or c in also)) or list(range(1, 31))
    drugs = sorted({str(3400930000000 + (i * 7919) % 9_999_991) for i in range(1, 2001)}
                   - {str(cfg.planted.drug_cip13)})
    return Lists(C.indexed(spark, dgn, "dgn"), len(dgn), ald[:400] or ["I10"],
                 C.indexed(spark, acts, "act"), len(acts), C.indexed(spark, C.shuffled(drugs, seed, "drug"), "drug"),
                 len(drugs), C.indexed(spark, places, "place"), len(places), organisms, emitters)


def patients(spark: SparkSession, cfg: CorpusConfig, lists: Lists, start: int = 0,
             count: int | None = None) -> DataFrame:
    """One row per person: sex, birth, residence, NIR, SNDS pseudonyms, death, planted flag.

    People numbered from `cfg.patients` on are outside the corpus (decoys of external files).
    """
    s, pid = cfg.seed, "pid"
    last_year = cfg.first_year + cfg.years - 1
    df = spark.range(start, start + (cfg.patients if count is None else count)).select(F.col("id").alias("pid"))
    df = df.select(
        "pid",
        F.when(uniform(s, "sex", pid) < 0.49, 1).otherwise(2).alias("sex"),
        (F.lit(cfg.first_year) - F.floor(F.pow(uniform(s, "age", pid), 1.15) * 100)).cast("int").alias("birth_year"),
        randint(s, "birth_month", 1, 12, pid).cast("int").alias("birth_month"),
        randint(s, "birth_day", 1, 28, pid).cast("int").alias("birth_day"),
        skewed_index(s, "place", lists.n_places, pid, power=2.0).alias("place_idx"),
        F.when(uniform(s, "twin", pid) < 0.005, 2).otherwise(1).alias("rank"),
        F.when(uniform(s, "dead", pid) < 0.01 * cfg.years,
               F.date_add(F.make_date(F.lit(last_year), F.lit(1), F.lit(1)),
                          randint(s, "death_day", 0, 364, pid).cast("int"))).alias("death_date"),
        (uniform(s, "planted", pid) < cfg.planted.rate).alias("planted"),
        randint(s, "nir_order", 1, 999, pid).cast("int").alias("nir_order"),
    )
    df = df.join(F.broadcast(lists.places), "place_idx").drop("place_idx")
    dpt = F.split("place", r"\|").getItem(0)
    com = F.split("place", r"\|").getItem(1)
    birth_dept = F.when(dpt.rlike("^0[0-9][0-9]$") & (dpt != "020"), F.substring(dpt, 2, 2)).otherwise(F.lit("99"))
    nir13 = F.concat(F.col("sex").cast("string"), F.lpad((F.col("birth_year") % 100).cast("string"), 2, "0"),
                     F.lpad(F.col("birth_month").cast("string"), 2, "0"), birth_dept,
                     F.when(birth_dept == "99", F.lit("999")).otherwise(com),
                     F.lpad(F.col("nir_order").cast("string"), 3, "0"))
    nir_key = F.lpad((F.lit(97) - F.pmod(nir13.cast("long"), F.lit(97))).cast("string"), 2, "0")
    pseudo = lambda salt: F.upper(F.substring(F.sha2(F.concat(F.lit(f"synth|{s}|{salt}|"), F.col("nir")), 256), 1, 17))  # noqa: E731
    return (df.withColumn("dpt", dpt).withColumn("com", com)
            .withColumn("nir", F.concat(nir13, nir_key))
            .withColumn("BEN_NIR_PSA", pseudo("psa"))
            .withColumn("BEN_NIR_ANO", pseudo("ano"))
            .withColumn("BEN_IDT_ANO", pseudo("idt"))
            .drop("place", "nir_order"))


def _patient_of(seed: int, salt: str, row: str, n: int) -> Column:
    """Which patient a fact row belongs to: heavy users get a larger share."""
    heavy = uniform(seed, salt + ".heavy", row) < HEAVY_USE
    any_patient = F.floor(uniform(seed, salt + ".pid", row) * n)
    heavy_patient = F.floor(uniform(seed, salt + ".pid", row) * max(1, int(n * HEAVY_USERS)))
    return F.when(heavy, heavy_patient).otherwise(any_patient).cast("long")


def _care_date(seed: int, salt: str, row: str, year: Column) -> Column:
    return F.date_add(F.make_date(year, F.lit(1), F.lit(1)), randint(seed, salt, 0, 364, row).cast("int"))


def prestation_base(spark: SparkSession, cfg: CorpusConfig, people: DataFrame, lists: Lists) -> DataFrame:
    """ER_PRS_F rows with their 9 keys, kind of care, date and patient; planted drug rows appended."""
    s, r = cfg.seed, "r"
    n_years = cfg.years
    random_rows = spark.range(cfg.prestation_rows).select(
        F.col("id").alias("r"),
        (F.lit(cfg.first_year) + F.col("id") % n_years).cast("int").alias("_year"),
        _patient_of(s, "prs", "id", cfg.patients).alias("pid"),
    ).withColumn("kind_u", uniform(s, "kind", r))
    random_rows = random_rows.select(
        "r", "_year", "pid",
        F.when(F.col("kind_u") < 0.35, "PHA").when(F.col("kind_u") < 0.5, "CAM")
        .when(F.col("kind_u") < 0.6, "ETE").otherwise("OTHER").alias("kind"),
        _care_date(s, "care", r, F.col("_year")).alias("care_date"),
        F.lit(False).alias("planted_row"),
    )
    planted = people.where("planted").select(
        (F.lit(cfg.prestation_rows) + F.col("pid")).alias("r"), F.lit(cfg.window_year).alias("_year"),
        "pid", F.lit("PHA").alias("kind"),
        _care_date(s, "planted_care", "pid", F.lit(cfg.window_year)).alias("care_date"),
        F.lit(True).alias("planted_row"))
    rows = random_rows.unionByName(planted)
    who = people.select("pid", "death_date")
    rows = rows.join(F.broadcast(who) if cfg.patients <= 2_000_000 else who, "pid")
    year_start = F.make_date(F.col("_year"), F.lit(1), F.lit(1))
    care = F.greatest(F.least(F.col("care_date"), F.coalesce(F.col("death_date"), F.col("care_date"))), year_start)
    flux = F.add_months(F.trunc(care, "month"), 1)
    return rows.select(
        "r", "_year", "pid", "kind", "planted_row", care.alias("EXE_SOI_DTD"),
        F.date_add(care, randint(s, "care_end", 0, 2, r).cast("int")).alias("EXE_SOI_DTF"),
        (F.col("r") + 1).cast("long").alias("DCT_ORD_NUM"),
        flux.alias("FLX_DIS_DTD"),
        pick(s, "emt_num", lists.emitters, r).cast("int").alias("FLX_EMT_NUM"),
        randint(s, "emt_ord", 0, 50, r).cast("int").alias("FLX_EMT_ORD"),
        F.lit(1).alias("FLX_EMT_TYP"),
        F.date_sub(flux, randint(s, "trt", 1, 20, r).cast("int")).alias("FLX_TRT_DTD"),
        pick(s, "org", lists.organisms[:50], r).alias("ORG_CLE_NUM"),
        F.lit(1).alias("PRS_ORD_NUM"),
        F.lit(0).alias("REM_TYP_AFF"),
        F.col("r").alias("_sort"),
    )


def er_prs_f(base: DataFrame, people: DataFrame, cfg: CorpusConfig) -> DataFrame:
    s, r = cfg.seed, "r"
    nat = (F.when(F.col("kind") == "PHA", pick(s, "nat_pha", PHARMACY_NAT, r))
           .when(F.col("kind") == "CAM", pick(s, "nat_cam", ACT_NAT, r))
           .when(F.col("kind") == "ETE", pick(s, "nat_ete", ESTABLISHMENT_NAT, r))
           .otherwise(pick(s, "nat_other", OTHER_NAT, r)))
    who = people.select("pid", "BEN_NIR_PSA", F.col("rank").alias("BEN_RNG_GEM"),
                        F.col("sex").alias("BEN_SEX_COD"), F.col("birth_year").alias("BEN_NAI_ANN"),
                        F.col("dpt").alias("BEN_RES_DPT"), F.col("com").alias("BEN_RES_COM"))
    df = base.join(F.broadcast(who) if cfg.patients <= 2_000_000 else who, "pid")
    paid = F.round(F.pow(uniform(s, "amount", r), 3) * 400 + 1, 2)
    return df.select(
        "*", nat.alias("PRS_NAT_REF"),
        # IR_AMA_V codes ages in years, but the second year of life in months (1012..1023)
        F.when(F.col("_year") - F.col("BEN_NAI_ANN") == 1, F.lit(1012))
        .otherwise(F.col("_year") - F.col("BEN_NAI_ANN")).alias("BEN_AMA_COD"),
        paid.alias("PRS_PAI_MNT"), paid.alias("BSE_REM_BSE"),
        *[F.format_string("%08d", randint(s, f"pfs_{c}", *PRACTITIONERS, r)).alias(c)
          for c in ("PFS_EXE_NUM", "PFS_PRE_NUM", "PRS_MTT_NUM")],
        F.format_string("%08d", randint(s, "etb_pre", *ESTABLISHMENTS, r)).alias("ETB_PRE_FIN"),
        F.round(paid * 0.7, 2).alias("BSE_REM_MNT"),
        F.lit(1).alias("PRS_ACT_QTE"),
        F.lit(0).alias("PRS_REJ_TOP"),
    ).withColumn("_fault_key", F.col("r"))


def er_pha_f(base: DataFrame, cfg: CorpusConfig, lists: Lists) -> DataFrame:
    s, r = cfg.seed, "r"
    rows = base.where(F.col("kind") == "PHA").withColumn("drug_idx", skewed_index(s, "drug", lists.n_drugs, r))
    rows = rows.join(F.broadcast(lists.drugs), "drug_idx")
    cip13 = F.when(F.col("planted_row"), F.lit(cfg.planted.drug_cip13)).otherwise(F.col("drug").cast("long"))
    return rows.select(
        *DCIR_KEYS, "_year", "_sort", cip13.alias("PHA_PRS_C13"),
        (cip13 % 10_000_000).alias("PHA_PRS_IDE"),
        randint(s, "pha_qty", 1, 3, r).cast("int").alias("PHA_ACT_QSN"),
        F.lit(1).alias("PHA_ORD_NUM"), F.col("r").alias("_fault_key"))


def ir_pha_r(spark: SparkSession, cfg: CorpusConfig, lists: Lists) -> DataFrame:
    """The drug referential: every drug dispensed (CIP13, CIP7) with its ATC class; the planted
    drug's class (`drug_atc`) is its own."""
    planted = spark.range(1).select(F.lit(lists.n_drugs).alias("drug_idx"),
                                    F.lit(str(cfg.planted.drug_cip13)).alias("drug"))
    drugs = lists.drugs.unionByName(planted)
    cip13 = F.col("drug").cast("long")
    atc = F.when(F.col("drug_idx") == lists.n_drugs, F.lit(cfg.planted.drug_atc)).otherwise(
        pick(cfg.seed, "atc", DRUG_CLASSES, "drug"))
    return drugs.select(
        cip13.alias("PHA_CIP_C13"), (cip13 % 10_000_000).alias("PHA_PRS_IDE"), atc.alias("PHA_ATC_C07"),
        F.substring(atc, 1, 3).alias("PHA_ATC_C03"),
        F.concat(F.lit("MEDICAMENT "), F.col("drug").substr(6, 8)).alias("PHA_MED_NOM"),
        F.lit(None).cast("int").alias("_year"), F.col("drug_idx").alias("_sort"),
        F.col("drug_idx").alias("_fault_key"))


def numbered(spark: SparkSession, first: int, last: int, column: str, width: int) -> DataFrame:
    """A referential of numbers `first`..`last` written on `width` digits (one row each)."""
    return spark.range(first, last + 1).select(
        F.format_string(f"%0{width}d", F.col("id")).alias(column), F.lit(None).cast("int").alias("_year"),
        F.col("id").alias("_sort"), F.col("id").alias("_fault_key"))


def establishment(index: Column) -> Column:
    """The ETA_NUM (a long) of the stays' establishment number `index` (0 to STAYS_ESTABLISHMENTS - 1)."""
    return F.lit(100_000_000) + index * 1009


def t_mco_e(spark: SparkSession, cfg: CorpusConfig) -> DataFrame:
    """The establishments of the stays, a year each (T_MCOaaE: one row an ETA_NUM)."""
    years = spark.createDataFrame([(y,) for y in cfg.year_list], "_year int")
    eta = spark.range(STAYS_ESTABLISHMENTS).select(establishment(F.col("id")).alias("eta"))
    return eta.crossJoin(years).select(F.col("eta").cast("string").alias("ETA_NUM"), "_year",
                                       F.col("eta").alias("_sort"), (F.col("eta") * 10_000 + F.col("_year")).alias("_fault_key"))


def ir_iba_r(people: DataFrame) -> DataFrame:
    """One row a beneficiary's anonymous identity (BEN_IDT_ANO), which KI_CCI_R and others name."""
    return people.select("BEN_IDT_ANO", F.lit(None).cast("int").alias("_year"), F.col("pid").alias("_sort"),
                         F.col("pid").alias("_fault_key"))


def er_cam_f(base: DataFrame, cfg: CorpusConfig, lists: Lists) -> DataFrame:
    s, r = cfg.seed, "r"
    rows = base.where(F.col("kind") == "CAM").withColumn(
        "act_idx", skewed_index(s, "act", lists.n_acts, r))
    return rows.join(F.broadcast(lists.acts), "act_idx").select(
        *DCIR_KEYS, "_year", "_sort", F.col("act").alias("CAM_PRS_IDE"),
        F.lit(1).alias("CAM_ORD_NUM"), F.col("r").alias("_fault_key"))


def er_ete_f(base: DataFrame, cfg: CorpusConfig) -> DataFrame:
    s, r = cfg.seed, "r"
    return base.where(F.col("kind") == "ETE").select(
        *DCIR_KEYS, "_year", "_sort",
        F.format_string("%08d", randint(s, "etb", *ESTABLISHMENTS, r)).alias("ETB_EXE_FIN"),
        F.col("r").alias("_fault_key"))


def ir_ben_r(people: DataFrame, cfg: CorpusConfig) -> DataFrame:
    return people.select(
        "BEN_NIR_PSA", F.col("rank").alias("BEN_RNG_GEM"), "BEN_NIR_ANO", "BEN_IDT_ANO",
        F.col("BEN_NIR_ANO").alias("ASS_NIR_ANO"), F.col("sex").alias("BEN_SEX_COD"),
        F.col("birth_year").alias("BEN_NAI_ANN"),
        F.lpad(F.col("birth_month").cast("string"), 2, "0").alias("BEN_NAI_MOI"),
        F.col("dpt").alias("BEN_RES_DPT"), F.col("com").alias("BEN_RES_COM"),
        F.col("death_date").alias("BEN_DCD_DTE"),
        F.date_format("death_date", "yyyyMM").alias("BEN_DCD_AME"),
        F.lit(None).cast("int").alias("_year"), F.col("pid").alias("_sort"), F.col("pid").alias("_fault_key"))


def ir_imb_r(people: DataFrame, cfg: CorpusConfig, lists: Lists) -> DataFrame:
    s, pid = cfg.seed, "pid"
    ald = people.where(uniform(s, "ald", pid) < 0.15)
    start = F.date_add(F.make_date(F.lit(cfg.first_year - 5), F.lit(1), F.lit(1)),
                       randint(s, "ald_start", 0, 365 * 5, pid).cast("int"))
    return ald.select(
        "BEN_NIR_PSA", F.col("rank").alias("BEN_RNG_GEM"), start.alias("IMB_ALD_DTD"),
        F.add_months(start, 60).alias("IMB_ALD_DTF"),
        randint(s, "ald_num", 1, 30, pid).cast("int").alias("IMB_ALD_NUM"),
        pick(s, "ald_cim", lists.ald_diagnoses, pid).alias("MED_MTF_COD"),
        F.lit(None).cast("int").alias("_year"), F.col("pid").alias("_sort"), F.col("pid").alias("_fault_key"))


def stays(spark: SparkSession, cfg: CorpusConfig, people: DataFrame, lists: Lists) -> DataFrame:
    """PMSI MCO stays (one row per stay) with patient, dates, diagnosis; planted stays appended."""
    s, r = cfg.seed, "r"
    random_stays = spark.range(cfg.stay_rows).select(
        F.col("id").alias("r"), (F.lit(cfg.first_year) + F.col("id") % cfg.years).cast("int").alias("_year"),
        _patient_of(s, "stay", "id", cfg.patients).alias("pid"), F.lit(False).alias("planted_row"))
    planted = people.where("planted").select(
        (F.lit(cfg.stay_rows) + F.col("pid")).alias("r"), F.lit(cfg.window_year).alias("_year"), "pid",
        F.lit(True).alias("planted_row"))
    rows = random_stays.unionByName(planted)
    who = people.select("pid", "BEN_NIR_PSA", "sex", "birth_year", "death_date", "dpt", "com")
    rows = rows.join(F.broadcast(who) if cfg.patients <= 2_000_000 else who, "pid")
    rows = rows.withColumn("dgn_idx", skewed_index(s, "dgn", lists.n_diagnoses, r)) \
        .join(F.broadcast(lists.diagnoses), "dgn_idx")
    planted_dgn = F.concat(F.lit(cfg.planted.diagnosis_prefix), pick(s, "planted_dgn", ["9", "0", "8", ""], r))
    los = F.least(F.floor(-F.log(1 - uniform(s, "los", r)) * 4), F.lit(60)).cast("int")
    year_end = F.make_date(F.col("_year"), F.lit(12), F.lit(31))
    exit_date = F.least(F.date_add(F.make_date(F.col("_year"), F.lit(1), F.lit(1)),
                                   randint(s, "exit", 0, 364, r).cast("int")),
                        F.coalesce(F.col("death_date"), year_end), year_end)
    unusable = ~F.col("planted_row") & (uniform(s, "unusable", r) < UNUSABLE_STAY_SHARE)
    return rows.select(
        "r", "_year", "pid", "planted_row", "BEN_NIR_PSA", "sex", "birth_year", "dpt", "com",
        establishment(randint(s, "eta", 0, STAYS_ESTABLISHMENTS - 1, r)).cast("long").alias("ETA_NUM"),
        (F.col("r") + 1).cast("long").alias("RSA_NUM"),
        F.when(F.col("planted_row"), planted_dgn).otherwise(F.col("dgn")).alias("DGN_PAL"),
        los.alias("SEJ_NBJ"), exit_date.alias("SOR_DAT"),
        F.date_sub(exit_date, los).alias("ENT_DAT"), unusable.alias("unusable"),
        F.col("r").alias("_sort"), F.col("r").alias("_fault_key"))


def t_mco_b(st: DataFrame, cfg: CorpusConfig) -> DataFrame:
    s, r = cfg.seed, "r"
    return st.select(
        "ETA_NUM", "RSA_NUM", "DGN_PAL", "SEJ_NBJ", F.year("SOR_DAT").alias("SOR_ANN"),
        F.date_format("SOR_DAT", "MM").alias("SOR_MOI"),
        (F.col("_year") - F.col("birth_year")).alias("AGE_ANN"), F.col("sex").cast("string").alias("COD_SEX"),
        F.substring("dpt", 2, 2).alias("BDI_DEP"),
        F.concat(F.substring("dpt", 2, 2), F.col("com")).alias("BDI_COD"),
        pick(s, "ent_mod", ["8", "7", "6"], r).alias("ENT_MOD"), pick(s, "sor_mod", ["8", "7", "6", "9"], r).alias("SOR_MOD"),
        F.lit(1).alias("NBR_RUM"), "_year", "_sort", "_fault_key")


def t_mco_c(st: DataFrame, cfg: CorpusConfig) -> DataFrame:
    flags = [F.when(F.col("unusable") & F.lit(flag == "NIR_RET"), "1").otherwise("0").alias(flag)
             for flag in PMSI_RET_FLAGS]
    nir = F.when(F.col("unusable"), F.lit("XXXXXXXXXXXXXXXXX")).otherwise(F.col("BEN_NIR_PSA"))
    return st.select(
        "ETA_NUM", "RSA_NUM", nir.alias("NIR_ANO_17"), *flags, "ENT_DAT", "SOR_DAT",
        F.col("ENT_DAT").cast("timestamp").alias("EXE_SOI_DTD"),
        F.col("SOR_DAT").cast("timestamp").alias("EXE_SOI_DTF"),
        F.year("SOR_DAT").alias("SOR_ANN"), F.date_format("SOR_DAT", "MM").alias("SOR_MOI"),
        F.lit(1).alias("SEJ_NUM"), "_year", "_sort", "_fault_key")


def _children(st: DataFrame, cfg: CorpusConfig, salt: str, most: int) -> DataFrame:
    s, r = cfg.seed, "r"
    n = randint(s, salt, 0, most, r).cast("int")
    return st.select("*", F.explode(F.sequence(F.lit(1), F.greatest(n, F.lit(1)))).alias("k"),
                     n.alias("n")).where(F.col("k") <= F.col("n"))


def t_mco_d(st: DataFrame, cfg: CorpusConfig, lists: Lists) -> DataFrame:
    s = cfg.seed
    rows = _children(st, cfg, "n_dgn", 3).withColumn(
        "dgn_idx", skewed_index(s, "ass_dgn", lists.n_diagnoses, "r", "k"))
    return rows.drop("dgn").join(F.broadcast(lists.diagnoses), "dgn_idx").select(
        F.col("ETA_NUM").cast("string").alias("ETA_NUM"), F.col("RSA_NUM").cast("string").alias("RSA_NUM"),
        F.col("dgn").alias("ASS_DGN"), F.col("k").alias("DGN_ASS_NUM"), "_year",
        (F.col("_sort") * 10 + F.col("k")).alias("_sort"), (F.col("_fault_key") * 10 + F.col("k")).alias("_fault_key"))


def t_mco_a(st: DataFrame, cfg: CorpusConfig, lists: Lists) -> DataFrame:
    s = cfg.seed
    rows = _children(st, cfg, "n_act", 2).withColumn(
        "act_idx", skewed_index(s, "mco_act", lists.n_acts, "r", "k"))
    return rows.join(F.broadcast(lists.acts), "act_idx").select(
        F.col("ETA_NUM").cast("string").alias("ETA_NUM"), F.col("RSA_NUM").cast("string").alias("RSA_NUM"),
        F.col("act").alias("CDC_ACT"), F.lit(1).alias("NBR_EXE_ACT"), "_year",
        (F.col("_sort") * 10 + F.col("k")).alias("_sort"), (F.col("_fault_key") * 10 + F.col("k")).alias("_fault_key"))


def ki_cci_r(people: DataFrame, cfg: CorpusConfig, lists: Lists) -> DataFrame:
    s, pid = cfg.seed, "pid"
    dead = people.where(F.col("death_date").isNotNull())
    return dead.select(
        "BEN_IDT_ANO", "BEN_NIR_ANO", F.lit(1).alias("BEN_IDT_TOP"),
        F.year("death_date").alias("FLX_PER_ANN"), F.col("death_date").alias("BEN_DCD_DTE"),
        F.date_format("death_date", "yyyyMM").alias("BEN_DCD_AME"),
        F.col("birth_year").alias("BEN_NAI_ANN"),
        F.lpad(F.col("birth_month").cast("string"), 2, "0").alias("BEN_NAI_MOI"),
        F.col("sex").alias("BEN_SEX_COD"), F.col("dpt").alias("BEN_RES_DPT"), F.col("com").alias("BEN_RES_COM"),
        F.col("dpt").alias("DCD_DPT_COD"), F.col("com").alias("DCD_COM_COD"),
        F.substring(pick(s, "death_cause", lists.ald_diagnoses, pid), 1, 4).alias("DCD_CIM_COD"),
        F.year("death_date").alias("_year"), F.col("pid").alias("_sort"), F.col("pid").alias("_fault_key"))


def planted_truth(people: DataFrame) -> DataFrame:
    return people.where("planted").select("pid", "BEN_NIR_PSA", F.col("rank").alias("BEN_RNG_GEM"))

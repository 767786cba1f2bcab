"""The SNDS side of an indirect linkage (the CNAM's method): each beneficiary's quasi-identifiers
(sex, birth month, commune of residence, from IR_BEN_R) and, one row each, their usable hospital
stays (FINESS and admission date, from the PMSI MCO). A research file is linked to these rows;
its links name `BEN_NIR_PSA`, never a quasi-identifier's value."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pds_spark.catalog import Catalogue
from pds_spark.cohort import events as E
from pds_spark.linkage.comparisons import LinkageError
from pds_spark.warehouse import Warehouse, delta_exists

ID = "BEN_NIR_PSA"
COLUMNS_READ = {"IR_BEN_R": ("BEN_NIR_PSA", "BEN_SEX_COD", "BEN_NAI_ANN", "BEN_NAI_MOI", "BEN_RES_DPT", "BEN_RES_COM"),
                "T_MCOaaB": ("ETA_NUM", "RSA_NUM", "GRG_GHM"),
                "T_MCOaaC": ("ETA_NUM", "RSA_NUM", "NIR_ANO_17", "EXE_SOI_DTD", "EXE_SOI_DTF", *E.PMSI_RET_FLAGS)}
COLUMNS = ("sex", "birth_month", "commune", "finess", "admission_date")


def people_and_stays(ir_ben_r: DataFrame, t_mco_b: DataFrame, t_mco_c: DataFrame,
                     clear: Mapping[str, bool | str]) -> DataFrame:
    """One row a usable stay of a beneficiary (one row with no stay for those without):
    `BEN_NIR_PSA`, `sex` ('1', '2'), `birth_month` (its first day), `commune` (the INSEE code:
    the département's last two characters and BEN_RES_COM), `finess` (ETA_NUM) and
    `admission_date`. Stays as `cohort.events.pmsi_stays` keeps them (chained, grouped)."""
    month = F.col("BEN_NAI_MOI").try_cast("int")
    people = ir_ben_r.select(
        F.col("BEN_NIR_PSA").cast("string").alias(ID), F.col("BEN_SEX_COD").try_cast("int").cast("string").alias("sex"),
        F.when(month.between(1, 12), F.try_to_timestamp(  # a year or month not a number: no birth month
            F.format_string("%04d-%02d-01", F.col("BEN_NAI_ANN").try_cast("int"), month), F.lit("yyyy-MM-dd"))
        .cast("date")).alias("birth_month"),
        F.concat(F.substring(F.col("BEN_RES_DPT").cast("string"), 2, 2),
                 F.col("BEN_RES_COM").cast("string")).alias("commune")).distinct()
    stays = E.pmsi_stays(t_mco_b, t_mco_c, clear).select(
        F.col("patient").alias(ID), F.split("stay", r"\|").getItem(0).alias("finess"),
        F.col("start").alias("admission_date"))
    return people.join(stays, ID, "left")


def read_people_and_stays(spark: SparkSession, warehouse: Warehouse, catalogue: Catalogue) -> DataFrame:
    """`people_and_stays` of the warehouse's tables (the columns of COLUMNS_READ only)."""
    frames = {}
    for table, columns in COLUMNS_READ.items():
        path = warehouse.snds(table)
        if not delta_exists(spark, path):
            raise LinkageError(f"the warehouse has no {table}: load it before linking with the SNDS")
        df = spark.read.format("delta").load(path)
        frames[table] = df.select(*[c for c in columns if c in df.columns])
    return people_and_stays(frames["IR_BEN_R"], frames["T_MCOaaB"], frames["T_MCOaaC"],
                            E.flags_clear(catalogue.table("T_MCOaaC")))

"""An external research cohort with direct identifiers, noise, and its truth table."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pds_spark.frames import local_frame
from pds_spark.synth import codes as C
from pds_spark.synth.config import CorpusConfig
from pds_spark.synth.model import STAYS_ESTABLISHMENTS, Lists, establishment, patients
from pds_spark.synth.random import randint, randint_sql, u_sql, uniform

NAME_SLOTS = 1 << 18
# Noise: kind -> probability per record
NOISE = {
    "surname_typo": 0.10, "first_name_typo": 0.05, "names_swapped": 0.03, "nir_missing": 0.15,
    "nir_transposed": 0.02, "commune_missing": 0.10, "first_name_missing": 0.02,
    "birth_date_shifted": 0.05, "birth_day_month_swapped": 0.02, "moved": 0.06,
    "stay_not_reported": 0.10, "admission_shifted": 0.10, "admission_day_month_swapped": 0.02, "finess_missing": 0.04,
}
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def name_frames(spark: SparkSession, names_dir: Path) -> tuple[DataFrame, DataFrame]:
    freq = C.insee_names(Path(names_dir))
    first = []
    for sex in (1, 2):
        for slot, name in enumerate(C.weighted_slots(freq[f"first_{sex}"], NAME_SLOTS)):
            first.append((sex, slot, name))
    surnames = list(enumerate(C.weighted_slots(freq["surname"], NAME_SLOTS)))
    return (_arrow_frame(spark, first, ["sex", "first_slot", "first_name"]),
            _arrow_frame(spark, surnames, ["surname_slot", "surname"]))


def _arrow_frame(spark: SparkSession, rows: list[tuple], names: list[str]) -> DataFrame:
    """A local table to Spark, in small tasks."""
    schema = ", ".join(f"{n} {'int' if isinstance(v, int) else 'string'}" for n, v in zip(names, rows[0]))
    return local_frame(spark, rows, schema)


def typo(seed: int, salt: str, name: str, key: str) -> Column:
    """Replace one letter of a name (a column), or drop it."""
    pos = f"CAST({randint_sql(seed, salt + '.pos', 1, f'greatest(length({name}), 1)', key)} AS INT)"
    letter = f"substring('{LETTERS}', CAST({randint_sql(seed, salt + '.letter', 1, 26, key)} AS INT), 1)"
    head, tail = f"substring({name}, 1, {pos} - 1)", f"substring({name}, {pos} + 1, 100)"
    return F.expr(f"CASE WHEN length({name}) <= 2 THEN {name} "
                  f"WHEN {u_sql(seed, salt + '.kind', key)} < 0.7D THEN concat({head}, {letter}, {tail}) "
                  f"ELSE concat({head}, {tail}) END")


def _one_stay(stays: DataFrame, seed: int) -> DataFrame:
    """One hospital stay a patient (`pid`, `ETA_NUM`, `ENT_DAT`), drawn among theirs."""
    order = Window.partitionBy("pid").orderBy(F.xxhash64(F.lit(seed), F.lit("ext_stay"), F.col("r")), "r")
    return (stays.select("pid", "r", F.col("ETA_NUM").cast("string").alias("ETA_NUM"), "ENT_DAT")
            .withColumn("_n", F.row_number().over(order)).where("_n = 1").drop("_n", "r"))


def _made_up_stay(cfg: CorpusConfig) -> tuple[Column, Column]:
    """A decoy's stay: an establishment of the corpus, a day of its years."""
    s, pid = cfg.seed, "pid"
    eta = establishment(randint(s, "decoy.eta", 0, STAYS_ESTABLISHMENTS - 1, pid)).cast("string")
    day = F.date_add(F.make_date(F.lit(cfg.first_year), F.lit(1), F.lit(1)),
                     randint(s, "decoy.day", 0, 365 * cfg.years - 1, pid).cast("int"))
    return eta, day


def noisy_date(seed: int, salt: str, key: str, day: Column, shifted: Column, swapped: Column) -> Column:
    """`day` 1 to 3 days off where `shifted`, or with its day and month swapped where `swapped`
    (when the day can be a month), drawn by `key`."""
    shift = randint(seed, f"{salt}.shift", 1, 3, key).cast("int") * \
        F.when(uniform(seed, f"{salt}.sign", key) < 0.5, -1).otherwise(1)
    return (F.when(shifted, F.date_add(day, shift))
            .when(swapped & (F.dayofmonth(day) <= 12), F.make_date(F.year(day), F.dayofmonth(day), F.month(day)))
            .otherwise(day))


def same_department(seed: int, salt: str, key: str, department: Column) -> Column:
    """A commune drawn by `key` in `department` (its two characters): where one has moved to."""
    return F.concat(department, F.lpad(randint(seed, salt, 1, 999, key).cast("string"), 3, "0"))


def external_cohort(spark: SparkSession, cfg: CorpusConfig, people: DataFrame, lists: Lists,
                    names_dir: Path, stays: DataFrame) -> DataFrame:
    """Records (with identifiers and quasi-identifiers, after noise) and, per record, the patient
    it really is. A patient with hospital stays reports one of them (its FINESS and admission
    date); a decoy reports a made-up one."""
    s, pid = cfg.seed, "pid"
    matched = people.where(uniform(s, "external", pid) < cfg.external_share)
    matched = matched.join(_one_stay(stays.join(matched.select(pid), pid), s), pid, "left")
    n_decoys = max(1, int(cfg.patients * cfg.external_share * cfg.external_decoys))
    decoy_eta, decoy_day = _made_up_stay(cfg)
    decoys = patients(spark, cfg, lists, start=cfg.patients, count=n_decoys)
    decoys = decoys.withColumn("BEN_NIR_PSA", F.lit(None).cast("string")) \
        .withColumn("ETA_NUM", decoy_eta).withColumn("ENT_DAT", decoy_day)  # not in the corpus
    rows = matched.unionByName(decoys)
    first, surnames = name_frames(spark, names_dir)
    rows = (rows.withColumn("first_slot", F.floor(uniform(s, "first", pid) * NAME_SLOTS).cast("int"))
            .withColumn("surname_slot", F.floor(uniform(s, "surname", pid) * NAME_SLOTS).cast("int"))
            .join(F.broadcast(first), ["sex", "first_slot"]).join(F.broadcast(surnames), "surname_slot"))
    noisy = {k: uniform(s, f"noise.{k}", pid) < p for k, p in NOISE.items()}
    surname = F.when(noisy["surname_typo"], typo(s, "typo.s", "surname", pid)).otherwise(F.col("surname"))
    given = F.when(noisy["first_name_typo"], typo(s, "typo.f", "first_name", pid)).otherwise(
        F.upper(F.col("first_name")))
    last_out = F.when(noisy["names_swapped"], given).otherwise(surname)
    first_out = F.when(noisy["first_name_missing"], F.lit(None)).when(noisy["names_swapped"], surname).otherwise(given)
    nir = F.col("nir")
    transposed = F.concat(F.substring(nir, 1, 5), F.substring(nir, 7, 1), F.substring(nir, 6, 1), F.substring(nir, 8, 8))
    nir_out = F.when(noisy["nir_missing"], F.lit(None)).when(noisy["nir_transposed"], transposed).otherwise(nir)
    birth = F.make_date(F.col("birth_year"), F.col("birth_month"), F.col("birth_day"))
    birth_out = noisy_date(s, "shift", pid, birth, noisy["birth_date_shifted"], noisy["birth_day_month_swapped"])
    department = F.substring("dpt", 2, 2)
    commune = (F.when(noisy["commune_missing"], F.lit(None))
               .when(noisy["moved"], same_department(s, "moved.com", pid, department))
               .otherwise(F.concat(department, F.col("com"))))
    reported = F.col("ENT_DAT").isNotNull() & ~noisy["stay_not_reported"]
    admission = noisy_date(s, "admission", pid, F.col("ENT_DAT"), noisy["admission_shifted"],
                           noisy["admission_day_month_swapped"])
    finess = F.when(reported & ~noisy["finess_missing"], F.col("ETA_NUM"))
    applies = {"stay_not_reported": F.col("ENT_DAT").isNotNull(), "admission_shifted": reported,
               "admission_day_month_swapped": reported, "finess_missing": reported}  # noise on a stay it has
    noise = F.concat_ws(",", *[F.when(flag & applies.get(k, F.lit(True)), F.lit(k)) for k, flag in noisy.items()])
    return rows.select(
        F.concat(F.lit("EXT"), F.lpad(F.conv(F.pmod(F.xxhash64(F.lit(s), F.lit("ext_id"), F.col(pid)),
                                                    F.lit(36 ** 9)).cast("string"), 10, 36), 9, "0")).alias("id_ext"),
        nir_out.alias("nir"), last_out.alias("nom"), first_out.alias("prenom"),
        F.col("sex").cast("string").alias("sexe"), F.date_format(birth_out, "dd/MM/yyyy").alias("date_naissance"),
        commune.alias("commune_residence"), finess.alias("finess_sejour"),
        F.date_format(F.when(reported, admission), "dd/MM/yyyy").alias("date_entree_sejour"),
        F.col("BEN_NIR_PSA"), F.col("rank").alias("BEN_RNG_GEM"), noise.alias("noise"))

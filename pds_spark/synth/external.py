"""An external research cohort with direct identifiers, noise, and its truth table."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pds_spark.frames import local_frame
from pds_spark.synth import codes as C
from pds_spark.synth.config import CorpusConfig
from pds_spark.synth.model import Lists, patients
from pds_spark.synth.random import randint, randint_sql, u_sql, uniform

NAME_SLOTS = 1 << 18
# Noise: kind -> probability per record
NOISE = {
    "surname_typo": 0.10, "first_name_typo": 0.05, "names_swapped": 0.03, "nir_missing": 0.15,
    "nir_transposed": 0.02, "commune_missing": 0.10, "first_name_missing": 0.02,
    "birth_date_shifted": 0.05, "birth_day_month_swapped": 0.02,
}
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _names(spark: SparkSession, names_dir: Path) -> tuple[DataFrame, DataFrame]:
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


def _typo(seed: int, salt: str, name: str, key: str) -> Column:
    """Replace one letter of a name (a column), or drop it."""
    pos = f"CAST({randint_sql(seed, salt + '.pos', 1, f'greatest(length({name}), 1)', key)} AS INT)"
    letter = f"substring('{LETTERS}', CAST({randint_sql(seed, salt + '.letter', 1, 26, key)} AS INT), 1)"
    head, tail = f"substring({name}, 1, {pos} - 1)", f"substring({name}, {pos} + 1, 100)"
    return F.expr(f"CASE WHEN length({name}) <= 2 THEN {name} "
                  f"WHEN {u_sql(seed, salt + '.kind', key)} < 0.7D THEN concat({head}, {letter}, {tail}) "
                  f"ELSE concat({head}, {tail}) END")


def external_cohort(spark: SparkSession, cfg: CorpusConfig, people: DataFrame, lists: Lists,
                    names_dir: Path) -> DataFrame:
    """Records (with identifiers, after noise) and, per record, the patient it really is."""
    s, pid = cfg.seed, "pid"
    matched = people.where(uniform(s, "external", pid) < cfg.external_share)
    n_decoys = max(1, int(cfg.patients * cfg.external_share * cfg.external_decoys))
    decoys = patients(spark, cfg, lists, start=cfg.patients, count=n_decoys)
    decoys = decoys.withColumn("BEN_NIR_PSA", F.lit(None).cast("string"))  # not in the corpus
    rows = matched.unionByName(decoys)
    first, surnames = _names(spark, names_dir)
    rows = (rows.withColumn("first_slot", F.floor(uniform(s, "first", pid) * NAME_SLOTS).cast("int"))
            .withColumn("surname_slot", F.floor(uniform(s, "surname", pid) * NAME_SLOTS).cast("int"))
            .join(F.broadcast(first), ["sex", "first_slot"]).join(F.broadcast(surnames), "surname_slot"))
    noisy = {k: uniform(s, f"noise.{k}", pid) < p for k, p in NOISE.items()}
    surname = F.when(noisy["surname_typo"], _typo(s, "typo.s", "surname", pid)).otherwise(F.col("surname"))
    given = F.when(noisy["first_name_typo"], _typo(s, "typo.f", "first_name", pid)).otherwise(
        F.upper(F.col("first_name")))
    last_out = F.when(noisy["names_swapped"], given).otherwise(surname)
    first_out = F.when(noisy["first_name_missing"], F.lit(None)).when(noisy["names_swapped"], surname).otherwise(given)
    nir = F.col("nir")
    transposed = F.concat(F.substring(nir, 1, 5), F.substring(nir, 7, 1), F.substring(nir, 6, 1), F.substring(nir, 8, 8))
    nir_out = F.when(noisy["nir_missing"], F.lit(None)).when(noisy["nir_transposed"], transposed).otherwise(nir)
    birth = F.make_date(F.col("birth_year"), F.col("birth_month"), F.col("birth_day"))
    shift = randint(s, "shift", 1, 3, pid).cast("int") * F.when(uniform(s, "shift.sign", pid) < 0.5, -1).otherwise(1)
    birth_out = (F.when(noisy["birth_date_shifted"], F.date_add(birth, shift))
                 .when(noisy["birth_day_month_swapped"] & (F.col("birth_day") <= 12),
                       F.make_date(F.col("birth_year"), F.col("birth_day"), F.col("birth_month")))
                 .otherwise(birth))
    commune = F.when(noisy["commune_missing"], F.lit(None)).otherwise(
        F.concat(F.substring("dpt", 2, 2), F.col("com")))
    noise = F.concat_ws(",", *[F.when(flag, F.lit(k)) for k, flag in noisy.items()])
    return rows.select(
        F.concat(F.lit("EXT"), F.lpad(F.conv(F.pmod(F.xxhash64(F.lit(s), F.lit("ext_id"), F.col(pid)),
                                                    F.lit(36 ** 9)).cast("string"), 10, 36), 9, "0")).alias("id_ext"),
        nir_out.alias("nir"), last_out.alias("nom"), first_out.alias("prenom"),
        F.col("sex").cast("string").alias("sexe"), F.date_format(birth_out, "dd/MM/yyyy").alias("date_naissance"),
        commune.alias("commune_residence"),
        F.col("BEN_NIR_PSA"), F.col("rank").alias("BEN_RNG_GEM"), noise.alias("noise"))

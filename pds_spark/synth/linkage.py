"""Two noisy copies of one population, for file-to-file linkage: names from INSEE's
frequencies, birth dates, communes and street addresses, each copy with its own typos,
shifted or swapped dates, moves and missing values; and the truth table (which record of
one copy is which of the other). Deterministic in the seed, whatever the partitioning."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pds_spark.synth.external import NAME_SLOTS, name_frames, noisy_date, same_department, typo
from pds_spark.synth.random import pick, randint, uniform

STREETS = ("RUE DE LA REPUBLIQUE", "RUE VICTOR HUGO", "RUE DE LA GARE", "RUE PASTEUR", "RUE JEAN JAURES",
           "RUE DE L EGLISE", "GRANDE RUE", "RUE DU MOULIN", "PLACE DE LA MAIRIE", "RUE DES ECOLES",
           "AVENUE DU GENERAL DE GAULLE", "RUE NATIONALE", "RUE DU CHATEAU", "RUE DES JARDINS", "ROUTE DE PARIS",
           "RUE DE LA FONTAINE", "CHEMIN DES VIGNES", "RUE DU STADE", "BOULEVARD GAMBETTA", "RUE DE VERDUN")
# Noise: kind -> probability per record and copy
NOISE = {"surname_typo": 0.10, "first_name_typo": 0.06, "first_name_missing": 0.03, "birth_shifted": 0.04,
         "birth_day_month_swapped": 0.03, "birth_missing": 0.02, "moved": 0.06, "street_typo": 0.06,
         "commune_missing": 0.04}


@dataclass(frozen=True)
class LinkageFiles:
    left: DataFrame
    right: DataFrame
    truth: DataFrame  # id_l, id_r


def _copy(people: DataFrame, seed: int, side: str) -> DataFrame:
    key = "person"
    noisy: dict[str, Column] = {k: uniform(seed, f"{side}.noise.{k}", key) < p for k, p in NOISE.items()}
    surname = F.when(noisy["surname_typo"], typo(seed, f"{side}.typo.s", "surname", key)).otherwise(F.col("surname"))
    first = (F.when(noisy["first_name_missing"], F.lit(None))
             .when(noisy["first_name_typo"], typo(seed, f"{side}.typo.f", "first_name", key))
             .otherwise(F.col("first_name")))
    birth_out = F.when(noisy["birth_missing"], F.lit(None).cast("date")).otherwise(
        noisy_date(seed, side, key, F.col("birth_date"), noisy["birth_shifted"], noisy["birth_day_month_swapped"]))
    moved_commune = same_department(seed, f"{side}.com", key, F.substring("commune", 1, 2))
    commune = (F.when(noisy["commune_missing"], F.lit(None)).when(noisy["moved"], moved_commune)
               .otherwise(F.col("commune")))
    street = F.when(noisy["moved"], pick(seed, f"{side}.street", STREETS, key)).otherwise(F.col("street"))
    number = F.when(noisy["moved"], randint(seed, f"{side}.number", 1, 150, key)).otherwise(F.col("number"))
    ident = F.concat(F.lit(side.upper()), F.lpad(F.conv(F.pmod(F.xxhash64(F.lit(seed), F.lit(side), F.col(key)),
                                                              F.lit(36 ** 9)).cast("string"), 10, 36), 9, "0"))
    out = people.select(ident.alias("record_id"), F.col(key), surname.alias("surname"), first.alias("first_name"),
                        F.col("sex"), birth_out.alias("birth_date"), commune.alias("commune"),
                        F.concat_ws(" ", number.cast("string"), street).alias("address"), noisy["street_typo"].alias("_t"))
    return out.withColumn("address", F.when(F.col("_t"), typo(seed, f"{side}.typo.a", "address", key))
                          .otherwise(F.col("address"))).drop("_t")


def linkage_files(spark: SparkSession, names_dir: Path, people: int, seed: int = 7, overlap: float = 0.8
                  ) -> LinkageFiles:
    """`people` people; the left copy holds each of them, the right copy a share `overlap` of
    them and as many others; both with their own noise."""
    first, surnames = name_frames(spark, names_dir)
    key = "person"
    base = spark.range(int(people / overlap) if overlap else people).withColumnRenamed("id", key).select(
        F.col(key), randint(seed, "sex", 1, 2, key).cast("int").alias("sex"),
        F.floor(uniform(seed, "first", key) * NAME_SLOTS).cast("int").alias("first_slot"),
        F.floor(uniform(seed, "surname", key) * NAME_SLOTS).cast("int").alias("surname_slot"),
        F.date_add(F.lit("1930-01-01").cast("date"), randint(seed, "birth", 0, 30_000, key).cast("int"))
        .alias("birth_date"),
        F.concat(F.lpad(randint(seed, "dpt", 1, 95, key).cast("string"), 2, "0"),
                 F.lpad(randint(seed, "com", 1, 600, key).cast("string"), 3, "0")).alias("commune"),
        randint(seed, "number", 1, 150, key).alias("number"), pick(seed, "street", STREETS, key).alias("street"))
    base = (base.join(F.broadcast(first), ["sex", "first_slot"]).join(F.broadcast(surnames), "surname_slot")
            .withColumn("first_name", F.upper("first_name")))
    in_left = F.col(key) < people
    in_right = (uniform(seed, "right", key) < overlap) if overlap < 1 else F.lit(True)
    left = _copy(base.where(in_left), seed + 1, "l")
    right = _copy(base.where(in_right), seed + 2, "r")
    truth = left.select(F.col("record_id").alias("id_l"), key).join(
        right.select(F.col("record_id").alias("id_r"), key), key).drop(key)
    return LinkageFiles(left.drop(key), right.drop(key), truth)

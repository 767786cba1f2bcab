"""The events layer: every care event of the warehouse in one Delta table, partitioned by
category and year so that a cohort reads only what it needs, and rebuilt for the (extractor,
period) pairs whose source tables changed since the last build (the ledger says which).

Tables under <warehouse>/events/: `care_events` (EVENT_COLUMNS + extractor, period, year),
`patients` (one row a patient, from IR_BEN_R), `built` (which source version each part was
built from).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.catalog import Catalogue
from pds_spark.cohort import events as E
from pds_spark.errors import PdsError
from pds_spark.ingest.ledger import loaded_periods
from pds_spark.sqltext import in_list, sql_text
from pds_spark.warehouse import Warehouse, added_rows, create_table, delta_exists, replace_rows

log = logging.getLogger("pds.cohort")

NO_PERIOD = "-"  # the `_period` of a table delivered whole (a referential)
LAYER_SCHEMA = T.StructType([T.StructField(n, t, True) for n, t in [
    ("patient", T.StringType()), ("category", T.StringType()), ("code", T.StringType()), ("start", T.DateType()),
    ("end", T.DateType()), ("group", T.StringType()), ("source", T.StringType()), ("quantity", T.DoubleType()),
    ("extractor", T.StringType()), ("period", T.StringType()), ("year", T.IntegerType())]])
BUILT_SCHEMA = "extractor string, table string, period string, version long, built_at timestamp"
PATIENT_COLUMNS = ("BEN_NIR_PSA", "BEN_NAI_ANN", "BEN_NAI_MOI", "BEN_SEX_COD", "BEN_DCD_DTE")
PRS_COLUMNS = (*E.DCIR_KEYS, "BEN_NIR_PSA", "EXE_SOI_DTD", "DPN_QLF", "PRS_NAT_REF", "PRS_ACT_QTE")
STAY = ("ETA_NUM", "RSA_NUM")
MCO_C = (*STAY, "NIR_ANO_17", "EXE_SOI_DTD", "EXE_SOI_DTF", *E.PMSI_RET_FLAGS)


@dataclass(frozen=True)
class Extractor:
    """Events of some categories made from some tables (and the columns it reads of each)."""

    name: str
    categories: tuple[str, ...]
    tables: Mapping[str, tuple[str, ...]]
    make: Callable[[Mapping[str, DataFrame], Catalogue], DataFrame]


def _clear(catalogue: Catalogue) -> dict[str, bool | str]:
    return E.flags_clear(catalogue.table("T_MCOaaC"))


EXTRACTORS = (
    Extractor("dcir_drugs", ("drug",), {"ER_PRS_F": PRS_COLUMNS,
                                        "ER_PHA_F": (*E.DCIR_KEYS, "PHA_PRS_C13", "PHA_ACT_QSN")},
              lambda t, c: E.drug_dispensations(t["ER_PRS_F"], t["ER_PHA_F"])),
    Extractor("dcir_drug_classes", ("drug_atc",),
              {"ER_PRS_F": PRS_COLUMNS, "ER_PHA_F": (*E.DCIR_KEYS, "PHA_PRS_C13", "PHA_ACT_QSN"),
               "IR_PHA_R": ("PHA_CIP_C13", "PHA_ATC_C07")},
              lambda t, c: E.drug_classes(E.drug_dispensations(t["ER_PRS_F"], t["ER_PHA_F"]), t["IR_PHA_R"])),
    Extractor("dcir_acts", ("act",), {"ER_PRS_F": PRS_COLUMNS, "ER_CAM_F": (*E.DCIR_KEYS, "CAM_PRS_IDE")},
              lambda t, c: E.dcir_acts(t["ER_PRS_F"], t["ER_CAM_F"])),
    Extractor("pmsi_diagnoses", ("diagnosis_main", "diagnosis_related", "diagnosis_associated"),
              {"T_MCOaaB": (*STAY, "GRG_GHM", "DGN_PAL", "DGN_REL"), "T_MCOaaC": MCO_C,
               "T_MCOaaD": (*STAY, "ASS_DGN")},
              lambda t, c: E.hospital_diagnoses(t["T_MCOaaB"], t["T_MCOaaC"], t["T_MCOaaD"], _clear(c))),
    Extractor("pmsi_acts", ("act",), {"T_MCOaaA": (*STAY, "CDC_ACT", "ENT_DAT_DEL"),
                                      "T_MCOaaB": (*STAY, "GRG_GHM"), "T_MCOaaC": MCO_C},
              lambda t, c: E.hospital_acts(t["T_MCOaaA"], t["T_MCOaaB"], t["T_MCOaaC"], _clear(c))),
    Extractor("long_term_conditions", ("long_term_condition",),
              {"IR_IMB_R": ("BEN_NIR_PSA", "MED_MTF_COD", "IMB_ALD_DTD", "IMB_ALD_DTF")},
              lambda t, c: E.long_term_conditions(t["IR_IMB_R"])),
    Extractor("deaths", ("death",), {"IR_BEN_R": ("BEN_NIR_PSA", "BEN_DCD_DTE")}, lambda t, c: E.deaths(t["IR_BEN_R"])),
)
CATEGORIES_ALL = tuple(c for x in EXTRACTORS for c in x.categories)
PATIENTS = Extractor("patients", (), {"IR_BEN_R": PATIENT_COLUMNS}, lambda t, c: E.patients(t["IR_BEN_R"]))


def stored_categories(categories: Iterable[str]) -> set[str]:
    """The categories the layer stores for these ('diagnosis': its three roles)."""
    wanted = set(categories)
    if "diagnosis" in wanted:
        wanted |= {"diagnosis_main", "diagnosis_related", "diagnosis_associated"}
    return wanted


def extractors_of(categories: Iterable[str]) -> list[Extractor]:
    """The extractors whose events a cohort over these categories reads."""
    wanted = stored_categories(categories)
    return [x for x in EXTRACTORS if wanted & set(x.categories)]


def columns_read(categories: Iterable[str], birth: str = "year", death: bool = False) -> dict[str, tuple[str, ...]]:
    """Table -> the columns a cohort over these categories reads, its population's included
    (birth month and death date only when asked): what the project's grant must cover."""
    out: dict[str, set[str]] = {"IR_BEN_R": {"BEN_NIR_PSA", "BEN_NAI_ANN", "BEN_SEX_COD"}}
    out["IR_BEN_R"] |= {"BEN_NAI_MOI"} if birth == "month" else set()
    out["IR_BEN_R"] |= {"BEN_DCD_DTE"} if death else set()
    for x in extractors_of(categories):
        for table, columns in x.tables.items():
            out.setdefault(table, set()).update(columns)
    return {t: tuple(sorted(c)) for t, c in sorted(out.items())}


# -- what to rebuild (pure) -------------------------------------------------------------
Parts = dict[str, set[str]]  # extractor -> the periods to rebuild


def _periodic(table: str, loaded: Mapping[tuple[str, str], int]) -> bool:
    """Whether the table is loaded period by period (not delivered whole)."""
    return any(t == table and p != NO_PERIOD for t, p in loaded)


def plan_rebuild(extractors: Iterable[Extractor], loaded: Mapping[tuple[str, str], int],
                 built: Mapping[tuple[str, str, str], int]) -> tuple[Parts, dict[str, list[str]]]:
    """(extractor -> periods to rebuild, extractor -> its missing tables). `loaded`: (table,
    period) -> the Delta version that last loaded it; `built`: (extractor, table, period) -> the
    version a part was built from. A period-wise table's changed period is rebuilt alone; a
    referential changed (or never built) rebuilds every period of its extractors."""
    parts: Parts = {}
    missing: dict[str, list[str]] = {}
    for x in extractors:
        absent = [t for t in x.tables if not any(k[0] == t for k in loaded)]
        if absent:
            missing[x.name] = absent
            continue
        periodic = [t for t in x.tables if _periodic(t, loaded)]
        periods = {p for (t, p) in loaded if t in periodic} or {NO_PERIOD}
        changed: set[str] = set()
        for (t, p), version in loaded.items():
            if t not in x.tables:
                continue
            part_periods = periods if t not in periodic else {p}  # a referential: in every part
            changed |= {q for q in part_periods if built.get((x.name, t, q)) != version}
        if changed:
            parts[x.name] = changed
    return parts, missing


# -- the layer in Delta -----------------------------------------------------------------
@dataclass
class LayerBuild:
    parts: Parts
    missing: dict[str, list[str]]
    events: int = 0  # events written
    patients: int | None = None  # patients written (None: IR_BEN_R unchanged)
    version: int | None = None
    by_category: dict[str, int] = field(default_factory=dict)

    def summary(self) -> list[str]:
        if not self.parts and self.patients is None:
            lines = ["events layer up to date: no source table changed since its last build"]
        else:
            done = ", ".join(f"{x} ({', '.join(sorted(p))})" for x, p in sorted(self.parts.items()))
            lines = [f"events layer: {self.events:,} events rebuilt for {done or 'no extractor'}"
                     + (f"; {self.patients:,} patients" if self.patients is not None else "")]
            lines += [f"  {c:<22} {n:>12,}" for c, n in sorted(self.by_category.items())]
        lines += [f"  not built: {x} (no {', '.join(t)} loaded)" for x, t in sorted(self.missing.items())]
        return lines


def loaded_versions(spark: SparkSession, warehouse: Warehouse) -> dict[tuple[str, str], int]:
    """(table, period) -> the Delta version of the last commit that loaded rows into it (ledger)."""
    tables = set(warehouse.snds_tables())
    return {k: version for k, (version, _) in loaded_periods(spark, warehouse.ledger).items() if k[0] in tables}


def built_versions(spark: SparkSession, warehouse: Warehouse) -> dict[tuple[str, str, str], int]:
    path = warehouse.events("built")
    if not delta_exists(spark, path):
        return {}
    return {(r.extractor, r.table, r.period): r.version
            for r in spark.read.format("delta").load(path).collect()}  # a few rows a table and period


def _sources(spark: SparkSession, warehouse: Warehouse, x: Extractor, periods: set[str],
             loaded: Mapping[tuple[str, str], int]) -> dict[str, DataFrame]:
    """The extractor's tables, their period-wise ones read for `periods` only (partition pruning)."""
    out = {}
    for table, columns in x.tables.items():
        df = spark.read.format("delta").load(warehouse.snds(table))
        present = [c for c in columns if c in df.columns]
        periodic = _periodic(table, loaded)
        if periodic:
            df = df.where(F.col("_period").isin(sorted(periods)))
        out[table] = df.select(*present, *(["_period"] if periodic else []),
                               *[F.lit(None).cast("string").alias(c) for c in columns if c not in df.columns])
    return out


def extract(spark: SparkSession, warehouse: Warehouse, catalogue: Catalogue, x: Extractor, periods: set[str],
            loaded: Mapping[tuple[str, str], int]) -> DataFrame:
    """The extractor's events for these periods, with the layer's columns. A period-wise
    extractor runs once a period, so that each event carries the period it came from."""
    frames = []
    for period in sorted(periods):
        tables = _sources(spark, warehouse, x, {period}, loaded)
        events = x.make(tables, catalogue)
        frames.append(events.select(*E.EVENT_COLUMNS, F.lit(x.name).alias("extractor"), F.lit(period).alias("period"),
                                    F.year("start").alias("year")))
    return reduce(DataFrame.unionByName, frames)


def build_layer(spark: SparkSession, warehouse: Warehouse, catalogue: Catalogue, full: bool = False) -> LayerBuild:
    """Rebuild the parts of the events layer whose sources changed (all with `full`), in one
    commit; then the patients when IR_BEN_R changed, then what was built from what."""
    loaded = loaded_versions(spark, warehouse)
    built = {} if full else built_versions(spark, warehouse)
    parts, missing = plan_rebuild(EXTRACTORS, loaded, built)
    people_parts, people_missing = plan_rebuild([PATIENTS], loaded, built)
    result = LayerBuild(parts, {**missing, **people_missing})
    path = warehouse.events("care_events")
    if parts:
        frames = [extract(spark, warehouse, catalogue, x, parts[x.name], loaded) for x in EXTRACTORS if x.name in parts]
        rows = reduce(DataFrame.unionByName, frames)
        fresh = not delta_exists(spark, path) and create_table(spark, path, LAYER_SCHEMA, ["category", "year"], {})
        where = " OR ".join(f"(extractor = {sql_text(x)} AND {in_list('period', sorted(p))})"
                            for x, p in sorted(parts.items()))
        result.version, metrics = replace_rows(rows, path, where, empty=fresh)
        result.by_category = added_rows(spark, path, result.version, "category") or {}
        result.events = int(metrics.get("numOutputRows", sum(result.by_category.values())))
    if people_parts:
        people = PATIENTS.make(_sources(spark, warehouse, PATIENTS, {NO_PERIOD}, loaded), catalogue)
        people.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
            warehouse.events("patients"))
        result.patients = spark.read.format("delta").load(warehouse.events("patients")).count()
    _record(spark, warehouse, {**parts, **people_parts}, loaded, [*EXTRACTORS, PATIENTS])
    return result


def _record(spark: SparkSession, warehouse: Warehouse, parts: Parts, loaded: Mapping[tuple[str, str], int],
            extractors: list[Extractor]) -> None:
    """What each rebuilt part was built from; the rows of the other parts kept."""
    if not parts:
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for x in extractors:
        for period in parts.get(x.name, ()):
            for table in x.tables:
                version = loaded.get((table, period), loaded.get((table, NO_PERIOD)))
                rows.append((x.name, table, period, version, now))
    path = warehouse.events("built")
    new = spark.createDataFrame(rows, BUILT_SCHEMA)
    if delta_exists(spark, path):
        kept = spark.read.format("delta").load(path).join(
            new.select("extractor", "table", "period"), ["extractor", "table", "period"], "left_anti")
        new = kept.unionByName(new).localCheckpoint()  # read before it is overwritten
    new.write.format("delta").mode("overwrite").save(path)


def read_events(spark: SparkSession, warehouse: Warehouse, categories: Iterable[str],
                reach: tuple[date, date]) -> DataFrame:
    """The layer's events of these categories whose start falls in `reach`: only their
    partitions (category, year) are read."""
    path = warehouse.events("care_events")
    if not delta_exists(spark, path):
        raise PdsError(f"no events layer in {warehouse.root}: run jobs/build_events.py after ingestion")
    first, last = reach
    return (spark.read.format("delta").load(path)
            .where(F.col("category").isin(sorted(stored_categories(categories))) & F.col("year").between(first.year, last.year)
                   & F.col("start").between(F.lit(first), F.lit(last)))
            .select(*E.EVENT_COLUMNS))


def data_end(spark: SparkSession, warehouse: Warehouse) -> date | None:
    """The last day the layer holds an event on (the end of the data)."""
    row = spark.read.format("delta").load(warehouse.events("care_events")).agg(F.max("start")).first()
    return row[0] if row else None


def read_patients(spark: SparkSession, warehouse: Warehouse) -> DataFrame:
    path = warehouse.events("patients")
    if not delta_exists(spark, path):
        raise PdsError(f"no patients table in {warehouse.root}/events: run jobs/build_events.py after ingestion")
    return spark.read.format("delta").load(path)

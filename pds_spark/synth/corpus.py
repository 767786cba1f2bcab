"""Generate a whole synthetic delivery with its ground truth.

Layout of the output folder:
  delivery/<product>/<file>.csv[.gz]   the files to ingest (one per table per year)
  external/cohorte_externe.csv         a research team's file with direct identifiers
  truth/planted_cohort.csv             who the planted cohort really is (+ cohort.json)
  truth/external_truth.csv             which external record is which patient, and its noise
  truth/faults.csv                     every injected fault: file, line, kind, table, the quality finding
  truth/corpus.json                    settings and every file with its row count
The folder is built aside and swapped in at the end: a failed run leaves the old one.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pds_spark.catalog import Catalogue, Table, dialect
from pds_spark.session import derived_session
from pds_spark.sqltext import quoted
from pds_spark.synth import model as M
from pds_spark.synth.config import CorpusConfig
from pds_spark.synth.external import external_cohort
from pds_spark.synth.generic import Generated, complete, core_foreign_keys, generic_table
from pds_spark.synth.output import count_lines, file_name, gzip_file, read_manifest, replace_marks, write_delivery

log = logging.getLogger("pds.synth")
CORE_TABLES = ("IR_BEN_R", "IR_IMB_R", "IR_PHA_R", "ER_PRS_F", "ER_PHA_F", "ER_CAM_F", "ER_ETE_F",
               "T_MCOaaB", "T_MCOaaC", "T_MCOaaD", "T_MCOaaA", "KI_CCI_R")
REFERENTIALS = ("IR_BEN_R", "IR_IMB_R", "IR_PHA_R")
# a corpus this small (ER_PRS_F rows, rows of each other table) is generated interpreted, without
# adaptive execution: compiling and re-planning each table's wide projections costs more than
# running them (147 tables of 5 rows: 64 s -> 39 s, warm JVM)
SMALL_CORPUS = (100_000, 10_000)
SMALL_CORPUS_CONF = {"spark.sql.codegen.factoryMode": "NO_CODEGEN", "spark.sql.adaptive.enabled": "false"}


def core_tables(spark: SparkSession, catalogue: Catalogue, cfg: CorpusConfig,
                names_dir: Path) -> tuple[dict[str, DataFrame], DataFrame, DataFrame, DataFrame]:
    """The coherent tables (typed, catalogue columns), the planted truth, the external file,
    and the persisted patients they all derive from (unpersist once written)."""
    lists = M.load_lists(spark, catalogue, cfg)
    people = M.patients(spark, cfg, lists).persist()
    base = M.prestation_base(spark, cfg, people, lists)
    st = M.stays(spark, cfg, people, lists)
    raw = {
        "IR_BEN_R": M.ir_ben_r(people, cfg), "IR_IMB_R": M.ir_imb_r(people, cfg, lists),
        **({"IR_PHA_R": M.ir_pha_r(spark, cfg, lists)} if "IR_PHA_R" in catalogue else {}),
        "ER_PRS_F": M.er_prs_f(base, people, cfg), "ER_PHA_F": M.er_pha_f(base, cfg, lists),
        "ER_CAM_F": M.er_cam_f(base, cfg, lists), "ER_ETE_F": M.er_ete_f(base, cfg),
        "T_MCOaaB": M.t_mco_b(st, cfg), "T_MCOaaC": M.t_mco_c(st, cfg),
        "T_MCOaaD": M.t_mco_d(st, cfg, lists), "T_MCOaaA": M.t_mco_a(st, cfg, lists),
        "KI_CCI_R": M.ki_cci_r(people, cfg, lists),
    }
    if cfg.other_tables:  # the referentials the core tables' own foreign keys name, made from their values
        raw.update({"T_MCOaaE": M.t_mco_e(spark, cfg), "IR_IBA_R": M.ir_iba_r(people),
                    "DA_PRA_R": M.numbered(spark, *M.PRACTITIONERS, "PFS_PFS_NUM", 8),
                    "BE_IDE_R": M.numbered(spark, *M.ESTABLISHMENTS, "IDE_ETA_NU8", 8)})
    tables = {name: complete(df, catalogue.table(name), cfg.seed, ["_fault_key"], "_year", catalogue,
                             default_year=cfg.first_year)
              for name, df in raw.items() if name in catalogue}
    return tables, M.planted_truth(people), external_cohort(spark, cfg, people, lists, names_dir, st), people


def _key_sample(df: DataFrame, columns: tuple[str, ...], size: int = 256) -> list[tuple]:
    """Up to `size` key tuples of a core table, the same ones every run (the smallest)."""
    rows = df.select(*columns).where(" AND ".join(f"{quoted(c)} IS NOT NULL" for c in columns)).distinct() \
        .orderBy(*columns).limit(size).collect()  # a few hundred tuples at most
    return [tuple(r) for r in rows]


def _years(table_name: str, table, cfg: CorpusConfig) -> list[int | None]:
    if table_name in REFERENTIALS:
        return [None]
    if table.is_templated or table_name.endswith("_F") or table_name in CORE_TABLES:
        return list(cfg.year_list)
    return [None]


def _write_one_csv(df: DataFrame, target: Path, sep: str, order: list[str]) -> None:
    tmp = target.with_name(target.name + ".tmp-spark")
    (df.orderBy(*order).coalesce(1).write.mode("overwrite").option("header", True).option("sep", sep)
     .option("emptyValue", "").option("nullValue", "").csv(str(tmp)))
    part = next(tmp.glob("part-*.csv"))
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, target)
    shutil.rmtree(tmp)


def _file_faults(delivery: Path, cfg: CorpusConfig, catalogue: Catalogue, sep: str,
                 written: list, manifest: list[dict]) -> list[dict]:
    """Whole-file faults: a truncated last line, an empty file, a file delivered twice,
    a file of an unknown table."""
    first = cfg.first_year
    by_table = {(f.table, f.year): f for f in written}
    added = []
    prs = by_table.get(("ER_PRS_F", cfg.year_list[-1]))
    if prs:
        path = delivery / prs.path
        data = path.read_bytes()
        body = data[:-1] if data.endswith(b"\n") else data
        cut = body.rfind(b"\n") + 1
        last_line = body[cut:]
        path.write_bytes(body[:cut] + last_line[: max(1, len(last_line) // 2)])
        n = count_lines(path)
        manifest[:] = [m for m in manifest if not (m["file"] == prs.path and int(m["line_no"]) == n)]
        added.append({"file": prs.path, "line_no": n, "fault": "truncated_last_line", "table": "ER_PRS_F"})
    empty = Path("DCIR") / (file_name(catalogue.table("ER_CAM_F"), first - 1) + ".csv")
    (delivery / empty).parent.mkdir(parents=True, exist_ok=True)
    (delivery / empty).write_bytes(b"")
    added.append({"file": str(empty), "line_no": 0, "fault": "empty_file", "table": "ER_CAM_F"})
    pha = by_table.get(("ER_PHA_F", first))
    if pha:
        twice = Path("redelivery") / pha.path
        (delivery / twice).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(delivery / pha.path, delivery / twice)
        added.append({"file": str(twice), "line_no": 0, "fault": "duplicate_file", "table": "ER_PHA_F"})
    unknown = Path("DCIR") / f"XX_INCONNU_F_{first}.csv"
    (delivery / unknown).write_text(sep.join(["A", "B"]) + "\n1" + sep + "2\n", encoding="utf-8")
    added.append({"file": str(unknown), "line_no": 0, "fault": "unknown_table", "table": ""})
    return added


def _edit_line(path: Path, sep: str, line_no: int, change: Callable[[dict[str, str]], None], append: bool) -> int:
    """Change the data line `line_no` (1 = the first) of a delivered file by `change` (column ->
    text), in place or as a copy appended; the number of the line changed or appended."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = next(csv.reader([lines[0]], delimiter=sep))
    row = dict(zip(header, next(csv.reader([lines[line_no]], delimiter=sep))))
    change(row)
    out = io.StringIO()
    csv.writer(out, delimiter=sep, lineterminator="").writerow([row[c] for c in header])
    if append:
        lines.append(out.getvalue())
    else:
        lines[line_no] = out.getvalue()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) if append else line_no + 1


def _quality_faults(delivery: Path, cfg: CorpusConfig, sep: str, written: list) -> list[dict]:
    """One loadable line of each QUALITY_FAULTS kind, with the finding the quality checks must
    make of it (`finding`: table, check, columns): a beneficiary delivered twice, a dispensation
    whose prestation is not in ER_PRS_F, a prestation of a nature IR_NAT_V does not list."""
    by_table = {(f.table, f.year): f for f in written}
    first = cfg.first_year
    faults = []
    ben, pha, prs = by_table[("IR_BEN_R", None)], by_table[("ER_PHA_F", first)], by_table[("ER_PRS_F", first)]
    n = _edit_line(delivery / ben.path, sep, 1, lambda row: None, append=True)
    faults.append({"file": ben.path, "line_no": n, "fault": "duplicate_key", "table": "IR_BEN_R",
                   "finding": "IR_BEN_R primary_key BEN_NIR_PSA,BEN_RNG_GEM"})
    n = _edit_line(delivery / pha.path, sep, 1, lambda row: row.update(DCT_ORD_NUM="99999999"), append=True)
    faults.append({"file": pha.path, "line_no": n, "fault": "orphan_key", "table": "ER_PHA_F",
                   "finding": f"ER_PHA_F foreign_key {','.join(M.DCIR_KEYS)}"})
    n = _edit_line(delivery / prs.path, sep, 2, lambda row: row.update(PRS_NAT_REF="9998"), append=False)
    faults.append({"file": prs.path, "line_no": n, "fault": "unknown_code", "table": "ER_PRS_F",
                   "finding": "ER_PRS_F code_list PRS_NAT_REF"})
    return faults


def rows_by_table(summary: dict) -> dict[str, int]:
    """Rows written per table, from a corpus summary."""
    totals: dict[str, int] = {}
    for f in summary["files"]:
        totals[f["table"]] = totals.get(f["table"], 0) + f["rows"]
    return dict(sorted(totals.items()))


def generate_corpus(spark: SparkSession, catalogue: Catalogue, out: Path, cfg: CorpusConfig,
                    names_dir: Path, interpreted: bool | None = None) -> dict:
    """Generate the corpus under `out` (replaced atomically); returns its summary.
    `interpreted`: in SMALL_CORPUS_CONF's session; by default when the corpus is SMALL_CORPUS."""
    out = Path(out)
    if interpreted is None:
        interpreted = (cfg.patients * cfg.years * cfg.prestations_per_patient_year <= SMALL_CORPUS[0]
                       and (not cfg.other_tables or cfg.rows_per_other_table <= SMALL_CORPUS[1]))
    if interpreted:
        spark = derived_session(spark, SMALL_CORPUS_CONF)
    build = out.with_name(out.name + ".partial")
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    delivery = build / "delivery"
    the_dialect = dialect(cfg.dialect)
    sep = the_dialect.separator

    log.info("generating %d patients over %d year(s) from %d (seed %d)", cfg.patients, cfg.years,
             cfg.first_year, cfg.seed)
    tables, planted, external, people = core_tables(spark, catalogue, cfg, names_dir)
    parts: list[tuple[Table, DataFrame | Callable[[], DataFrame]]] = [
        (catalogue.table(name), df) for name, df in tables.items()]
    years = {name: _years(name, catalogue.table(name), cfg) for name in tables}
    if cfg.other_tables:
        others = {name: tuple(_years(name, table, cfg)) for name, table in catalogue.tables.items()
                  if name not in tables}
        core_keys = {(parent, refs): _key_sample(tables[parent], refs)
                     for parent, refs in sorted(core_foreign_keys(catalogue, set(tables), set(others)))}
        generated = Generated(others, cfg.rows_per_other_table, core_keys)  # keys drawn from their parents' rows
        for name, table in catalogue.tables.items():
            if name in tables:
                continue
            years[name] = list(others[name])
            # built by the thread that writes it, while others write theirs
            parts.append((table, partial(generic_table, spark, table, cfg.rows_per_other_table, cfg.seed,
                                         years[name], catalogue, generated)))
    log.info("writing %d table(s) as a '%s' delivery", len(parts), cfg.dialect)
    manifest_dir = build / "manifest.tmp"
    written = write_delivery(spark, parts, delivery, the_dialect, cfg, years, manifest_dir, one_task=interpreted)

    manifest: list[dict] = []
    if cfg.fault_rate > 0:
        manifest = read_manifest(manifest_dir)
        shutil.rmtree(manifest_dir, ignore_errors=True)
        for path in sorted({m["file"] for m in manifest if m["fault"] == "invalid_utf8"}):
            replace_marks(delivery / path)
        manifest += _file_faults(delivery, cfg, catalogue, sep, written, manifest)
    if cfg.quality_faults:
        manifest += _quality_faults(delivery, cfg, sep, written)
    files: list[dict[str, Any]] = []
    for f in written:
        lines = count_lines(delivery / f.path)
        files.append({"file": f.path, "table": f.table, "year": f.year, "rows": max(0, lines - 1)})
    if cfg.compress:  # every file of the delivery, the faulty ones too
        every = sorted(delivery.rglob("*.csv"))
        log.info("compressing %d file(s)", len(every))
        for path in every:
            gzip_file(path)
        for entry in files + manifest:
            entry["file"] += ".gz"

    truth = build / "truth"
    truth.mkdir()
    _write_one_csv(planted, truth / "planted_cohort.csv", ",", ["pid"])
    cohort = {"diagnosis_prefix": cfg.planted.diagnosis_prefix, "drug_cip13": cfg.planted.drug_cip13,
              "drug_atc": cfg.planted.drug_atc,
              "window": [f"{cfg.window_year}-01-01", f"{cfg.window_year}-12-31"],
              "diagnosis_in": "T_MCOaaB.DGN_PAL", "drug_in": "ER_PHA_F.PHA_PRS_C13"}
    (truth / "cohort.json").write_text(json.dumps(cohort, indent=2) + "\n")
    ext_cols = ["id_ext", "nir", "nom", "prenom", "sexe", "date_naissance", "commune_residence", "finess_sejour",
                "date_entree_sejour"]
    _write_one_csv(external.select(*ext_cols), build / "external" / "cohorte_externe.csv", ";", ["id_ext"])
    _write_one_csv(external.select("id_ext", "BEN_NIR_PSA", F.when(F.col("BEN_NIR_PSA").isNotNull(),
                                                                   F.col("BEN_RNG_GEM")).alias("BEN_RNG_GEM"),
                                   "noise"), truth / "external_truth.csv", ",", ["id_ext"])
    manifest.sort(key=lambda m: (m["file"], int(m["line_no"])))
    with (truth / "faults.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["file", "line", "kind", "table", "finding"])
        writer.writerows([m["file"], m["line_no"], m["fault"], m["table"], m.get("finding", "")] for m in manifest)
    summary = {"config": asdict(cfg), "files": files, "faults": len(manifest),
               "rows": sum(f["rows"] for f in files)}
    (truth / "corpus.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    people.unpersist()

    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(build, out)
    shutil.rmtree(old, ignore_errors=True)
    log.info("corpus ready in %s: %d files, %d rows, %d injected faults", out, len(files),
             summary["rows"], len(manifest))
    return summary

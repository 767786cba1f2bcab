"""The synthetic corpus: coherent joins, catalogue-conformant files, determinism,
ground truth and injected faults that match their manifest exactly."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pds_spark.catalog import dialect
from pds_spark.ingest.parse import typed
from pds_spark.synth import CorpusConfig, generate_corpus
from pds_spark.synth.model import DCIR_KEYS, PMSI_RET_FLAGS


def read_table(spark, catalogue, corpus: Path, table: str, the_dialect="schema", raw=False):
    """Every delivered file of a table, typed under the catalogue; asserts no problem."""
    files = [p for p in (corpus / "delivery").rglob("*.csv*")
             if catalogue.resolve(p.name) and catalogue.resolve(p.name).table.name == table
             and "redelivery" not in p.parts]
    assert files, table
    d = dialect(the_dialect)
    text = (spark.read.option("header", True).option("sep", d.separator).option("inferSchema", False)
           .option("mode", "FAILFAST").csv([str(f) for f in files]))
    return text if raw else typed(text, catalogue.table(table), d)


def test_every_generated_file_loads_with_the_catalogue_schema(spark, catalogue, corpus):
    files = sorted((corpus / "delivery").rglob("*.csv"))
    assert len(files) == 21  # 9 tables a year for 2 years; IR_BEN_R, IR_IMB_R, IR_PHA_R once
    for path in files:
        table = catalogue.resolve(path.name).table
        header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
        assert header == table.column_names, path
    for table in {catalogue.resolve(p.name).table.name for p in files}:
        df = read_table(spark, catalogue, corpus, table)
        bad = df.where(F.size("_problems") > 0)
        assert bad.count() == 0, bad.select("_problems").limit(5).collect()


def test_satellites_join_er_prs_f_on_the_nine_keys(spark, catalogue, corpus):
    prs = read_table(spark, catalogue, corpus, "ER_PRS_F")
    assert prs.count() > 1000
    assert prs.select(*DCIR_KEYS).distinct().count() == prs.count()  # the 9 keys identify a row
    for satellite in ("ER_PHA_F", "ER_CAM_F", "ER_ETE_F"):
        sat = read_table(spark, catalogue, corpus, satellite)
        assert sat.count() > 50
        assert sat.join(prs, list(DCIR_KEYS), "left_anti").count() == 0, satellite
    ben = read_table(spark, catalogue, corpus, "IR_BEN_R")
    assert prs.join(ben, ["BEN_NIR_PSA", "BEN_RNG_GEM"], "left_anti").count() == 0


def test_usable_pmsi_stays_chain_to_their_beneficiary(spark, catalogue, corpus):
    stays = read_table(spark, catalogue, corpus, "T_MCOaaC", raw=True)
    ben = read_table(spark, catalogue, corpus, "IR_BEN_R")
    usable = stays.where(" AND ".join(f"{flag} = '0'" for flag in PMSI_RET_FLAGS))  # as delivered
    n_usable, n_stays = usable.count(), stays.count()
    assert 0 < n_usable < n_stays, (n_usable, n_stays)  # some stays are unusable, as in real data
    assert usable.join(ben, usable.NIR_ANO_17 == ben.BEN_NIR_PSA, "left_anti").count() == 0
    b = read_table(spark, catalogue, corpus, "T_MCOaaB")
    for child in ("T_MCOaaC", "T_MCOaaD", "T_MCOaaA"):
        c = read_table(spark, catalogue, corpus, child)
        keys = c.select(F.col("ETA_NUM").cast("long").alias("ETA_NUM"), F.col("RSA_NUM").cast("long").alias("RSA_NUM"))
        assert keys.join(b, ["ETA_NUM", "RSA_NUM"], "left_anti").count() == 0, child


def test_codes_are_skewed_like_real_care(spark, catalogue, corpus):
    stays = read_table(spark, catalogue, corpus, "T_MCOaaB")
    counts = [r["count"] for r in stays.groupBy("DGN_PAL").count().orderBy(F.desc("count")).collect()]
    assert counts[0] >= 5 * counts[len(counts) // 2]  # a few diagnoses are very common
    codes = {r.CIM_COD for r in spark.read.option("header", True).option("sep", ";")
             .csv(str(catalogue.code_list("MS_CIM_V"))).select("CIM_COD").collect()}
    assert {r.DGN_PAL for r in stays.select("DGN_PAL").distinct().collect()} <= codes | {"E119", "E110", "E118", "E11"}


def test_the_planted_cohort_is_exactly_who_the_truth_says(spark, catalogue, corpus):
    rule = json.loads((corpus / "truth" / "cohort.json").read_text())
    start, end = rule["window"]
    b = read_table(spark, catalogue, corpus, "T_MCOaaB").where(F.col("DGN_PAL").startswith(rule["diagnosis_prefix"]))
    c = read_table(spark, catalogue, corpus, "T_MCOaaC")
    diag = (b.join(c, ["ETA_NUM", "RSA_NUM"]).where(F.col("SOR_DAT").between(start, end))
            .select(F.col("NIR_ANO_17").alias("BEN_NIR_PSA")))
    pha = read_table(spark, catalogue, corpus, "ER_PHA_F").where(F.col("PHA_PRS_C13") == rule["drug_cip13"])
    prs = read_table(spark, catalogue, corpus, "ER_PRS_F")
    drug = (pha.join(prs, list(DCIR_KEYS)).where(F.col("EXE_SOI_DTD").between(start, end))
            .select("BEN_NIR_PSA"))
    found = {r.BEN_NIR_PSA for r in diag.intersect(drug).collect()}
    truth = {row["BEN_NIR_PSA"] for row in csv.DictReader((corpus / "truth" / "planted_cohort.csv").open())}
    assert found == truth and len(truth) > 0


def _nir_key_ok(nir: str) -> bool:
    return len(nir) == 15 and nir.isdigit() and 97 - int(nir[:13]) % 97 == int(nir[13:])


def test_external_cohort_has_identifiers_noise_and_truth(spark, catalogue, corpus):
    records = list(csv.DictReader((corpus / "external" / "cohorte_externe.csv").open(encoding="utf-8"), delimiter=";"))
    truth = {r["id_ext"]: r for r in csv.DictReader((corpus / "truth" / "external_truth.csv").open())}
    assert len(records) == len(truth) > 10
    ben = {r.BEN_NIR_PSA for r in read_table(spark, catalogue, corpus, "IR_BEN_R").select("BEN_NIR_PSA").collect()}
    matched = [r for r in records if truth[r["id_ext"]]["BEN_NIR_PSA"]]
    assert 0 < len(matched) < len(records)  # patients and decoys
    assert all(truth[r["id_ext"]]["BEN_NIR_PSA"] in ben for r in matched)
    clean = [r for r in records if not truth[r["id_ext"]]["noise"]]
    assert clean and all(_nir_key_ok(r["nir"]) for r in clean)
    assert all(r["nom"] and r["prenom"] and r["sexe"] in "12" for r in clean)
    noisy = [r for r in records if "nir_missing" in truth[r["id_ext"]]["noise"]]
    assert all(r["nir"] == "" for r in noisy)


def _read_lines(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n")


def test_same_seed_gives_byte_identical_files(faulty):
    a, b = faulty
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 20
    for rel in files_a:
        assert hashlib.sha256((a / rel).read_bytes()).digest() == hashlib.sha256((b / rel).read_bytes()).digest(), rel


def test_the_fault_manifest_matches_the_files_exactly(spark, catalogue, faulty):
    corpus = faulty[0]
    delivery = corpus / "delivery"
    manifest = list(csv.DictReader((corpus / "truth" / "faults.csv").open()))
    kinds = {m["kind"] for m in manifest}
    assert kinds == {"too_many_fields", "too_few_fields", "bad_number", "bad_date", "unescaped_quote",
                     "invalid_utf8", "over_length", "truncated_last_line", "empty_file", "duplicate_file",
                     "unknown_table"}
    files = {m["file"]: m for m in manifest if m["kind"] in ("empty_file", "duplicate_file", "unknown_table")}
    assert (delivery / next(f for f, m in files.items() if m["kind"] == "empty_file")).stat().st_size == 0
    dup = next(f for f, m in files.items() if m["kind"] == "duplicate_file")
    assert (delivery / dup).read_bytes() == (delivery / Path(*Path(dup).parts[1:])).read_bytes()
    assert catalogue.resolve(next(f for f, m in files.items() if m["kind"] == "unknown_table")) is None

    # Classify every line of every data file independently of the generator
    cnam = dialect("cnam")
    found, good_rows = set(), []
    for path in sorted(delivery.rglob("*.csv.gz")):
        rel = str(path.relative_to(delivery))
        resolved = catalogue.resolve(path.name)
        if resolved is None or "redelivery" in path.parts:
            continue
        table = resolved.table
        lines = _read_lines(path)
        if not lines:
            continue
        truncated = not gzip.decompress(path.read_bytes()).endswith(b"\n")
        for no, raw in enumerate(lines[1:], start=2):
            if truncated and no == len(lines):
                found.add((rel, no, "truncated_last_line"))
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                found.add((rel, no, "invalid_utf8"))
                continue
            fields = text.split(";")
            if any(f.startswith('"') and not (f.endswith('"') and len(f) > 1) for f in fields):
                found.add((rel, no, "unescaped_quote"))
            elif len(fields) > len(table.fields):
                found.add((rel, no, "too_many_fields"))
            elif len(fields) < len(table.fields):
                found.add((rel, no, "too_few_fields"))
            else:
                good_rows.append((rel, no, table.name, fields))
    for name in {t for _, _, t, _ in good_rows}:
        table = catalogue.table(name)
        rows = [(rel, no, *fields) for rel, no, t, fields in good_rows if t == name]
        df = spark.createDataFrame(rows, ["_file", "_line", *table.column_names])
        for r in typed(df, table, cnam, keep=["_file", "_line"]).where(F.size("_problems") > 0).collect():
            problem = " ".join(r["_problems"])
            kind = ("bad_number" if "not an integer" in problem or "not a number" in problem
                    else "bad_date" if "not a date" in problem or "not a datetime" in problem
                    else "over_length" if "longer than" in problem else problem)
            found.add((r["_file"], r["_line"], kind))
    expected = {(m["file"], int(m["line"]), m["kind"]) for m in manifest
                if m["kind"] not in ("empty_file", "duplicate_file", "unknown_table")}
    assert found == expected


@pytest.fixture(scope="module")
def every_table(spark, catalogue, settings, tmp_path_factory):
    """A clean corpus of every catalogue table (its summary and folder)."""
    cfg = CorpusConfig(patients=50, years=1, seed=3, prestations_per_patient_year=2, other_tables=True,
                       rows_per_other_table=5)
    out = tmp_path_factory.mktemp("every") / "all"
    return generate_corpus(spark, catalogue, out, cfg, settings.paths.names), out


def test_every_catalogue_table_can_be_generated_and_loaded(spark, catalogue, every_table):
    summary, out = every_table
    tables = {f["table"] for f in summary["files"]}
    assert tables == set(catalogue.tables)
    schema = dialect("schema")

    def problems(f: dict) -> list:
        path = out / "delivery" / f["file"]
        table = catalogue.resolve(path.name).table
        with path.open(encoding="utf-8") as fh:
            header = fh.readline().rstrip("\n").split(",")
        assert header == table.column_names, path
        text = T.StructType([T.StructField(c, T.StringType()) for c in header])  # no job to read the header
        raw = spark.read.csv(str(path), schema=text, header=True, mode="FAILFAST")
        return typed(raw, table, schema).where(F.size("_problems") > 0).select("_problems").limit(3).collect()

    with ThreadPoolExecutor(4) as pool:  # a table's check is mostly planning: overlapped
        found = {f["file"]: p for f, p in zip(summary["files"], pool.map(problems, summary["files"])) if p}
    assert not found, found


def test_a_clean_corpus_of_every_table_has_no_quality_finding(spark, settings, catalogue, every_table, tmp_path):
    # no false alarm: every key found in its parent, every code in its list, on clean data
    from pds_spark.ingest import discover
    from pds_spark.quality.rules import foreign_key_rules
    from pds_spark.quality.run import check_tables
    from pds_spark.warehouse import Warehouse
    from tests.test_ingest import loader

    _, out = every_table
    result = loader(spark, settings, tmp_path, "wh", parallel=4).run(discover(out / "delivery", catalogue))
    assert result.total("quarantined") == 0
    loaded = sorted({o.file.table.name for o in result.outcomes if o.status == "loaded"})
    checked = check_tables(spark, Warehouse(tmp_path / "wh"), catalogue, loaded, foreign_key_rules(settings.quality.rules),
                           settings.quality, tmp_path)
    findings = [f"{m.table} {m.check} {m.column or m.period}: {m.detail}" for m in checked.errors + checked.warnings]
    assert not findings, "\n".join(findings)
